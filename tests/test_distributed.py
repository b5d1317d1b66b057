"""Data-parallel training (fit(distributed=True)): sharding rule, warm-up, and 2-rank MPI runs.

The MPI tests launch ``mpirun -n 2 python tests/distributed_fit.py ...`` (one OpenMP
thread per rank) and skip when mpi4py or mpirun is absent."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import fastnn
from fastnn import _sharding, callbacks, layers, optimizers
from fastnn.data import ImageDataGenerator

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "distributed_fit.py")
PER_STEP_ATOL = 1e-6  # vs a single process with the global batch (observed <= 3.4e-8, |w| <= 0.16)


def _env():
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"
    env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"  # containers without ptrace rights
    return env


def _mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'pyfastnn[mpi]')")
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpirun/mpiexec on PATH (e.g. apt-get install openmpi-bin)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    extra = ["--allow-run-as-root", "--oversubscribe"] if "Open MPI" in version or "OpenRTE" in version else []
    return [exe] + extra


def _launch(mode, out, ranks=2, timeout=120):
    """Runs the script on `ranks` MPI ranks (0: a plain process, an MPI singleton)."""
    if ranks:
        cmd = _mpirun() + ["-n", str(ranks), sys.executable, SCRIPT, mode, str(out)]
    else:
        _skip_without_mpi4py()
        cmd = [sys.executable, SCRIPT, mode, str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout, cwd=HERE)
    return proc, time.perf_counter() - t0


def _skip_without_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed")
    return sys.executable


# ------------------------------------------------------------------ no MPI needed
@pytest.mark.parametrize("n", [1, 2, 5, 31, 32, 33, 69, 100])
@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
@pytest.mark.parametrize("batch", [1, 7, 16])
def test_every_sample_once_per_epoch_in_single_process_positions(n, ranks, batch):
    g = ranks * batch
    steps = -(-n // g)
    seen = []
    for s in range(steps):
        start, stop = _sharding.global_batch(s, g, n)
        assert (start, stop) == (s * g, min(s * g + g, n))  # the single-process batch of size g
        parts = [_sharding.rank_part(start, stop, ranks, r) for r in range(ranks)]
        assert parts[0][0] == start and parts[-1][1] == stop
        for (lo, hi), (lo2, _) in zip(parts, parts[1:]):
            assert hi == lo2  # contiguous, in rank order
        sizes = [hi - lo for lo, hi in parts]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes)
        if stop - start == g:
            assert sizes == [batch] * ranks
        weights = [_sharding.gradient_weight(k, stop - start) for k in sizes]
        assert abs(sum(weights) - 1.0) < 1e-12
        for lo, hi in parts:
            seen.extend(range(lo, hi))
    assert seen == list(range(n))


def test_equal_parts_weigh_a_power_of_two_exactly():
    assert _sharding.gradient_weight(16, 32) == 0.5 and _sharding.gradient_weight(8, 32) == 0.25
    assert _sharding.gradient_weight(0, 0) == 0.0


@pytest.mark.parametrize("ranks,n,batch", [(2, 69, 16), (3, 20, 4), (4, 6, 4)])
def test_flow_parts_reassemble_the_single_flow_batches(ranks, n, batch):
    rng = np.random.default_rng(0)
    x = rng.random((n, 12, 12, 1), dtype=np.float32)
    y = np.arange(n)
    gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1, seed=5)
    single = gen.flow(x, y, batch_size=ranks * batch)
    flows = [gen.flow(x, y, batch_size=batch) for _ in range(ranks)]
    for _ in range(2 * len(single) + 1):  # across two epoch boundaries
        xs, ys = next(single)
        parts = [f._next_part(ranks, r) for r, f in enumerate(flows)]
        assert all(p[3] == len(ys) for p in parts)
        assert [p[2] for p in parts] == [_sharding.rank_part(0, len(ys), ranks, r)[0] for r in range(ranks)]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), xs)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), ys)
    assert {(f.epoch, f.batch_index) for f in flows} == {(single.epoch, single.batch_index)}


def _tiny_model():
    fastnn.set_seed(1)
    m = fastnn.Sequential([layers.Dense(4, activation="relu", input_shape=(3,)), layers.Dense(1)])
    m.compile(optimizer=optimizers.SGD(0.08), loss="mse")
    return m


class _LrLog(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(self.model.optimizer.learning_rate)


def test_warmup_ramps_linearly_then_leaves_the_rate_alone():
    x = np.random.default_rng(0).random((20, 3), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    m = _tiny_model()
    log = _LrLog()
    warm = callbacks.LearningRateWarmup(warmup_steps=4, initial_factor=0.25)
    m.fit(x, y, batch_size=5, epochs=2, callbacks=[warm, log], verbose=0)  # 4 steps per epoch
    want = [0.08 * (0.25 + 0.75 * t / 4) for t in range(4)] + [0.08] * 4
    np.testing.assert_allclose(log.rates, want, rtol=1e-12)
    assert warm.done and warm.get_state() == {"target": 0.08, "done": True}
    # epochs: 1 warm-up epoch of 4 steps; afterwards another callback may change the rate
    m2 = _tiny_model()
    log2 = _LrLog()
    warm2 = callbacks.LearningRateWarmup(warmup_epochs=1, initial_factor=0.5)

    class Halve(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate = self.model.optimizer.learning_rate / 2

    m2.fit(x, y, batch_size=5, epochs=3, callbacks=[warm2, log2, Halve()], verbose=0)
    # the halving at the end of epoch 0 fell in the warm-up (which sets the target at the
    # next batch); the one after epoch 1 stays
    np.testing.assert_allclose(log2.rates, [0.04, 0.05, 0.06, 0.07] + [0.08] * 4 + [0.04] * 4, rtol=1e-12)


def test_warmup_without_distributed_defaults_to_no_ramp_and_checks_arguments():
    x = np.ones((10, 3), np.float32)
    m = _tiny_model()
    log = _LrLog()
    m.fit(x, x[:, :1], batch_size=5, epochs=1, callbacks=[callbacks.LearningRateWarmup(1), log], verbose=0)
    if "fastnn.distributed" not in sys.modules:
        assert log.rates == [0.08, 0.08]
    with pytest.raises(ValueError, match="initial_factor"):
        callbacks.LearningRateWarmup(initial_factor=1.5)
    with pytest.raises(ValueError, match="warmup_epochs"):
        callbacks.LearningRateWarmup(warmup_epochs=-1)


def test_without_mpi4py_import_says_what_to_install_and_fit_is_unchanged():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import numpy as np, fastnn\n"
            "try:\n    import fastnn.distributed\nexcept ImportError as e:\n    print('ERR', e)\n"
            "m = fastnn.Sequential([fastnn.layers.Dense(1, input_shape=(2,))]); m.compile('sgd', 'mse')\n"
            "m.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0)\n"
            "try:\n    m.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0, distributed=True)\n"
            "except ImportError as e:\n    print('FIT', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'ERR fastnn.distributed needs mpi4py' in out.stdout and 'pyfastnn[mpi]' in out.stdout
    assert 'FIT fastnn.distributed needs mpi4py' in out.stdout


# ------------------------------------------------------------------ MPI runs
@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    """The 'fit' script launched twice on 2 ranks (for repeatability)."""
    runs = []
    for i in range(2):
        out = tmp_path_factory.mktemp(f"mpi_fit_{i}")
        proc, _ = _launch("fit", out)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with open(out / "result.json") as fh:
            result = json.load(fh)
        with np.load(out / "final.npz", allow_pickle=False) as z:
            runs.append((result, {k: z[k] for k in z.files}))
    return runs


def test_two_ranks_hold_identical_weights_after_every_step(two_rank_runs):
    result, _ = two_rank_runs[0]
    assert result["ranks"] == 2 and result["threads"] == 1
    assert result["steps"] == 9  # 2 epochs x 3 steps on arrays, 3 steps on the augmented flow
    assert result["identical_every_step"] == [True] * 9
    assert result["optimizer_state_identical"] and result["logs_identical"]
    assert result["stats"]["steps"] == 3 and result["stats"]["gradient_bytes"] > 3_500_000


def test_two_ranks_match_one_process_with_the_doubled_batch(two_rank_runs):
    result, _ = two_rank_runs[0]
    assert result["reference_steps"] == result["steps"]
    diffs = result["max_abs_diff_vs_single_per_step"]
    assert max(diffs) <= PER_STEP_ATOL, repr(diffs) + "  " + repr(result["max_abs_weight_per_step"])
    (d1, d2), (s1, s2) = result["history"], result["history_single"]
    for dist_h, single_h in ((d1, s1), (d2, s2)):
        assert dist_h.keys() == single_h.keys()
        for k in dist_h:
            np.testing.assert_allclose(dist_h[k], single_h[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # ReduceLROnPlateau acted the same way in both (the rate is part of the history)
    assert d2["learning_rate"] == s2["learning_rate"]


def test_two_rank_run_is_bitwise_repeatable(two_rank_runs):
    (r1, a1), (r2, a2) = two_rank_runs
    assert a1["params"].tobytes() == a2["params"].tobytes()
    assert a1["optimizer"].tobytes() == a2["optimizer"].tobytes()
    assert r1["history"] == r2["history"]
    assert r1["max_abs_diff_vs_single_per_step"] == r2["max_abs_diff_vs_single_per_step"]


@pytest.mark.parametrize("mode,message", [("fail-in-fit", "boom in a callback on rank 1"),
                                          ("fail-outside", "boom outside fit on rank 1"),
                                          ("mismatch", "they differ in samples: [69, 60]")])
def test_a_failing_rank_aborts_the_job_with_its_message(tmp_path, mode, message):
    proc, seconds = _launch(mode, tmp_path, timeout=90)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert message in text and "fastnn.distributed: rank " in text, text
    assert seconds < 60, seconds  # did not hang (rank 0 was waiting in a collective)


def test_batchnorm_generator_checkpoint_csv_earlystopping_warmup_on_two_ranks(tmp_path):
    proc, _ = _launch("features", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "result.json") as fh:
        result = json.load(fh)
    # weights, batch-norm statistics, optimizer state, rate and logs: the same bits everywhere
    assert result["identical"]
    assert result["epochs"] == 3  # EarlyStopping stopped every rank after the same epoch
    assert result["files"] == ["ckpt-rank0-1.fnn", "ckpt-rank0-2.fnn", "ckpt-rank0-3.fnn", "log-rank0.csv",
                               "result.json"]  # rank 0 only
    # warm-up from 1/size of the rate over 6 batches (4 per epoch): epoch 0 ends with the
    # rate of batch 3, the warm-up is over from batch 6 on
    assert result["warmup_target"] == pytest.approx(0.02)
    assert result["history"]["learning_rate"] == pytest.approx([0.02 * (0.5 + 0.5 * 3 / 6), 0.02, 0.02])


def test_one_rank_distributed_fit_equals_plain_fit_bitwise(tmp_path):
    proc, _ = _launch("single", tmp_path, ranks=0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "result.json") as fh:
        result = json.load(fh)
    assert result["ranks"] == 1 and result["steps"] == 15 and result["bitwise_equal"]


def test_fit_distributed_before_init_raises(tmp_path):
    _skip_without_mpi4py()
    code = ("import numpy as np, fastnn\n"
            "m = fastnn.Sequential([fastnn.layers.Dense(1, input_shape=(2,))]); m.compile('sgd', 'mse')\n"
            "try:\n    m.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0, distributed=True)\n"
            "except RuntimeError as e:\n    print('ERR', e)\n"
            # on a single rank an error in fit propagates (nothing can hang): no MPI_Abort
            "import fastnn.distributed as dist; dist.init()\n"
            "class Boom(fastnn.callbacks.Callback):\n"
            "    def on_train_batch_end(self, batch, logs=None):\n        raise KeyError('boom')\n"
            "try:\n    m.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0, distributed=True,\n"
            "          callbacks=[Boom()])\nexcept KeyError as e:\n    print('CAUGHT', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert "ERR fit(distributed=True): call fastnn.distributed.init() first" in out.stdout, out.stdout + out.stderr
    assert "CAUGHT 'boom'" in out.stdout and out.returncode == 0, out.stdout + out.stderr


def test_generator_dropout_offsets_count_the_samples_drawn_in_the_epoch():
    """Dropout masks are keyed by the sample's position in the epoch: with a generator the
    position is the number of samples drawn before it in the epoch (not step x fit's
    batch_size, which made consecutive batches share masks when the two sizes differed)."""
    fastnn.set_seed(0)
    m = fastnn.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dropout(0.5), layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    drop = m.layers[1]
    offsets = []

    class Spy(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            offsets.append((drop.epoch, drop.sample_offset))

    def batches():
        sizes = [10, 10, 7]
        while True:
            for n in sizes:
                yield np.ones((n, 3), np.float32), np.ones((n, 1), np.float32)

    m.fit(batches(), steps_per_epoch=3, epochs=2, callbacks=[Spy()], verbose=0)  # fit's batch_size: 32
    assert offsets == [(0, 0), (0, 10), (0, 20), (1, 0), (1, 10), (1, 20)]
