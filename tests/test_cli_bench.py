"""The CLI self-check and the benchmark harness."""
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import selfcheck
from fastnn.bench import harness


def test_selfcheck_passes():
    assert selfcheck.run(verbose=False)


def test_selfcheck_catches_a_wrong_kernel(monkeypatch):
    from fastnn import ops
    monkeypatch.setattr(ops, "relu", lambda x: np.abs(np.asarray(x, np.float32)))
    assert not selfcheck.run(verbose=False)


def test_info_command_prints_build_and_selfcheck():
    res = subprocess.run([sys.executable, "-m", "fastnn", "info"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "isa" in res.stdout and "self-check passed" in res.stdout


def test_build_info_fields():
    info = fastnn.build_info()
    for key in ("version", "compiler", "isa", "openmp", "threads"):
        assert key in info
    # False without the CUDA module, else its archs / runtime / devices (tests/test_cuda.py)
    assert info["cuda"] is False or set(info["cuda"]) == {"archs", "runtime", "devices"}
    assert info["isa"] in ("avx512", "avx2+fma", "generic")


def test_threads_setting():
    fastnn.set_num_threads(1)
    assert fastnn.get_num_threads() == 1
    with pytest.raises(ValueError, match="n"):
        fastnn.set_num_threads(0)
    with pytest.raises(TypeError):
        fastnn.set_num_threads(1.5)


@pytest.mark.parametrize("text,kind,key,value", [
    ("gemm:m1024n512k256", "gemm", "n", 512),
    ("conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2", "conv", "ph", 2),
    ("conv:mb2_ih9_ic3oc4_kh3_ph1", "conv", "iw", 9),
])
def test_parse_problem(text, kind, key, value):
    p = harness.parse_problem(text)
    assert p.kind == kind and p.params[key] == value


@pytest.mark.parametrize("text", ["gemm:", "gemm:m1n2", "lstm:mb1", "conv:mb1_ih4_zz3"])
def test_parse_problem_rejects(text):
    with pytest.raises(ValueError, match="problem"):
        harness.parse_problem(text)


def test_conv_flops():
    p = harness.parse_problem("conv:mb2_ih4iw4_ic3oc5_kh3kw3_sh1_ph1_dx0")
    assert p.flops == 2 * (2.0 * 2 * 16 * 5 * 9 * 3)


def test_bench_runs_and_verifies_small_problems():
    # fastnn alone (no peer processes): every kind builds, runs and reports
    res = harness.run(["gemm:m64n48k80", "conv:mb2_ih9iw9_ic3oc8_kh3kw3_sh1_ph1"], threads=(1,), rounds=2,
                      frameworks=(), verbose=False)
    assert len(res) == 2
    for r in res:
        assert r.times["fastnn"][0] > 0 and r.gflops > 0
        assert r.errors == {} and not r.verify_failed


def test_distributed_without_mpi4py_says_what_to_install():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pyfastnn\[mpi\]"):
            import fastnn.distributed  # noqa: F401
    else:
        pytest.skip("mpi4py is installed here")


# ---------------------------------------------------------------------------
# the benchmark harness: problem strings, verify-then-time, reports (no timing asserts)

import json  # noqa: E402
import os  # noqa: E402

from fastnn.bench import problems as bp  # noqa: E402
from fastnn.bench import worker as bw  # noqa: E402


@pytest.mark.parametrize("text,expect", [
    ("conv:fwd_mb2_ih9_ic3oc4_kh3_ph1", dict(word="fwd", iw=9, kw=3, sh=1, sw=1, pw=1, dx=1)),
    ("conv:bwdw_mb2_ih9iw7_ic3oc4_kh3kw1_sh2", dict(word="bwdw", sw=2, ph=0, kw=1)),
    ("conv:mb2_ih9_ic3oc4_kh3", dict(word="fwdbwd", mb=2)),
    ("pool:mb1_ih8iw6_ic3_kh2kw3", dict(word="max", sh=2, sw=3, ph=0)),
    ("pool:avg_mb1_ih8_ic3_kh3_sh1_ph1", dict(word="avg", sw=1, pw=1)),
    ("lstm:mb64_t100_i512_h512", dict(word="fwdbwd", mb=64)),
    ("lstm:fwd_t3_i2_h4", dict(word="fwd", mb=1)),
    ("cnn_train:mb86", dict(mb=86)),
    ("lstm_train:mb32_t15_i1_h20_nb5", dict(nb=5)),
    ("augment:mb8_ih28_ic1", dict(iw=28)),
])
def test_parse_problem_every_kind(text, expect):
    p = bp.parse_problem(text)
    assert p.name == text
    for k, v in expect.items():
        assert (p.word if k == "word" else p.params[k]) == v, k


@pytest.mark.parametrize("text,match", [
    ("conv2d:mb1_ih4_ic1oc1_kh3", "unknown kind"),
    ("conv:bwd_mb1_ih4_ic1oc1_kh3", "takes one of"),
    ("gemm:fast_m1n1k1", "takes no word"),
    ("conv:mb1_ih4_ic1oc1_kh3_mb2", "twice"),
    ("conv:mb1_ih4_ic1oc1", "needs kh"),
    ("conv:mb1_ih4_ic0oc1_kh3", ">= 1"),
    ("conv:mb1_ih2_ic1oc1_kh3", "empty output"),
    ("conv:bwdd_mb1_ih4_ic1oc1_kh3_dx0", "dx0"),
    ("conv:mb1_ih4_ic1oc1_kh3_dx2", "dx must be"),
    ("conv:mb1-ih4_ic1oc1_kh3", "cannot parse"),
    ("cnn_train:mb86_t3", "unknown cnn_train key"),
    ("lstm_predict:mb1_t15_i1", "needs h"),
])
def test_parse_problem_errors_name_the_problem(text, match):
    with pytest.raises(ValueError, match=match):
        bp.parse_problem(text)


def test_flops_of_each_kind():
    fwd = 2.0 * 2 * 9 * 9 * 4 * 9 * 3
    assert bp.parse_problem("conv:mb2_ih9_ic3oc4_kh3_ph1").flops == 3 * fwd
    for word in ("fwd", "bwdd", "bwdw"):
        assert bp.parse_problem(f"conv:{word}_mb2_ih9_ic3oc4_kh3_ph1").flops == fwd
    assert bp.parse_problem("lstm:fwd_mb2_t3_i5_h4").flops == 2.0 * 2 * 3 * 9 * 16
    assert bp.parse_problem("lstm:mb2_t3_i5_h4").flops == 3 * 2.0 * 2 * 3 * 9 * 16
    assert bp.parse_problem("pool:mb2_ih8_ic3_kh2").flops is None
    assert bp.parse_problem("augment:mb2_ih8_ic1").flops is None
    # the workbook CNN: about 15 GFLOP per training batch of 86, a third of it forward
    train, pred = bp.parse_problem("cnn_train:mb86"), bp.parse_problem("cnn_predict:mb86")
    assert 14e9 < train.flops < 17e9 and 2.9 < train.flops / pred.flops < 3.0
    assert train.per_call == 10 and bp.parse_problem("cnn_train:mb86_nb3").per_call == 3
    assert bp.parse_problem("lstm_train:mb32_t15_i1_h20").per_call == 20


def test_make_data_is_a_function_of_problem_and_seed():
    p = bp.parse_problem("conv:mb2_ih5_ic3oc4_kh3_ph1")
    a, b, c = bp.make_data(p, 0), bp.make_data(p, 0), bp.make_data(p, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["x"], c["x"])
    assert a["x"].dtype == np.float32 and a["dy"].shape == (2, 5, 5, 4)
    d = bp.make_data(bp.parse_problem("cnn_train:mb4_nb3"), 0)
    assert d["x"].shape == (12, 28, 28, 1) and d["y"].shape == (12, 10)


def test_max_rel_err():
    a = [np.ones(3, np.float32), None]
    assert bp.max_rel_err(a, [np.ones(3), np.zeros(2)]) == 0.0
    assert bp.max_rel_err(a, [np.full(3, 2.0), None]) == pytest.approx(0.5)
    assert bp.max_rel_err([np.ones(3)], [np.ones(4)]) == float("inf")
    with pytest.raises(ValueError, match="verify"):
        bp.max_rel_err([np.ones(3)], [np.ones(3), np.ones(3)])


def test_time_interleaved_warms_up_and_interleaves():
    log = []

    def fake(name, dt):
        def run(reps):
            log.append((name, reps))
            return dt
        return run
    times, rounds = harness.time_interleaved({"a": fake("a", 0.004), "b": fake("b", 1.5)}, rounds=4,
                                             min_time=0.02, settle=0.0)
    assert rounds == 4
    # a: warm-up, calibration, then per sample one untimed call and 5 timed calls;
    # b: one call long enough, no calibration, then an untimed call and one timed call
    assert log[:3] == [("a", 1), ("a", 1), ("b", 1)]
    assert log[3:] == [("a", 1), ("a", 5), ("b", 1), ("b", 1)] * 4
    assert times == {"a": (0.004, 0.004, 0.004), "b": (1.5, 1.5, 1.5)}
    _, rounds = harness.time_interleaved({"a": fake("a", 0.004)}, rounds=10, min_time=0.02, budget=0.0,
                                         settle=0.0)
    assert rounds == 3          # a budget never cuts below three rounds


class FakeWorker:
    """Stands in for a peer process: its check() returns fastnn's answer times `scale`."""

    def __init__(self, framework, variants, scale=1.0, unavailable=None):
        self.framework, self.variants, self.scale, self.unavailable = framework, variants, scale, unavailable
        self.timed = []

    def available(self):
        return self.unavailable is None

    def setup(self, problem, seed, weights_path):
        self.prob = bp.parse_problem(problem)
        self.data = bp.make_data(self.prob, seed)
        self.weights_path = weights_path
        return list(self.variants)

    def check(self, variant):
        a, b = self.data["a"].astype(np.float64), self.data["b"].astype(np.float64)
        return [(a @ b) * self.scale]

    def timer(self, variant):
        def run(reps):
            self.timed.append(variant)
            return 1e-3
        return run

    def call(self, **req):
        return {"ok": True}


def test_run_verifies_then_times_only_agreeing_peers(tmp_path):
    good = FakeWorker("torch", ["torch"])
    bad = FakeWorker("tf", ["tf"], scale=1.01)
    empty = FakeWorker("jax", [])
    res = harness.run_one("gemm:m8n6k5", 1, {"torch": good, "tf": bad, "jax": empty}, str(tmp_path), rounds=2,
                          min_time=1e-4)
    assert res.errors["torch"] < 1e-6 and res.errors["tf"] == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert res.verify_failed and any("VERIFY FAILED" in n and "tf" in n for n in res.notes)
    assert any("JAX: no equivalent" in n for n in res.notes)
    assert set(res.times) == {"fastnn", "torch"} and good.timed and not bad.timed
    assert res.ratio("torch") == pytest.approx(1e-3 / res.times["fastnn"][0])
    assert res.ratio() == res.ratio("torch") and res.ratio("tf") is None
    off = FakeWorker("jax", ["jax"], unavailable="jax is not installed")
    res = harness.run_one("gemm:m8n6k5", 1, {"jax": off}, str(tmp_path), rounds=2, min_time=1e-4)
    assert set(res.times) == {"fastnn"} and not res.verify_failed


def test_model_weights_reach_the_peer(tmp_path):
    w = FakeWorker("torch", [])
    harness.run_one("lstm_predict:mb1_t3_i1_h2", 1, {"torch": w}, str(tmp_path), rounds=1, min_time=1e-4)
    got = bw.load_arrays(w.weights_path)
    assert [a.shape for a in got] == [(1, 8), (2, 8), (8,), (2, 1), (1,)]


def test_markdown_has_both_ratios():
    r = harness.Result("gemm:m8n8k8", 1, times={"fastnn": (1e-3, 9e-4, 2e-3), "torch": (2e-3, 2e-3, 3e-3),
                                                "jax": (1.5e-3, 1e-3, 2e-3)}, flops=1e6, gflops=1.0)
    md = harness.markdown([r], {"1": 10.0})
    row = md.splitlines()[2]
    assert "2.00×" in row and "1.50× (jax)" in row and "10%" in row and "1 ms (900 µs–2 ms)" in row


def test_worker_reports_a_missing_framework():
    code = ("from fastnn.bench import worker; worker.IMPORT_NAMES['torch'] = 'no_such_module_for_fastnn'; "
            "worker.serve('torch', 1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    msg = json.loads(out.stdout.splitlines()[0])
    assert "not installed" in msg["unavailable"]


def test_torch_worker_verifies_every_conv_direction(tmp_path):
    pytest.importorskip("torch")
    probs = ["gemm:m33n17k9", "conv:mb2_ih7iw6_ic3oc5_kh3kw2_sh1_ph1", "conv:fwd_mb2_ih7_ic3oc5_kh3_ph1",
             "conv:bwdd_mb2_ih7_ic3oc5_kh3_ph1", "conv:bwdw_mb2_ih7_ic3oc5_kh3_ph1", "pool:max_mb2_ih6_ic3_kh2",
             "lstm:mb2_t4_i3_h5", "lstm_predict:mb3_t4_i1_h5"]
    res = harness.run(probs, threads=(1,), rounds=1, frameworks=("torch",), verbose=False, min_time=1e-4)
    for r in res:
        assert not r.verify_failed, (r.problem, r.notes)
        assert any(k.startswith("torch") for k in r.times), (r.problem, r.notes)


def test_bench_command_writes_reports(tmp_path):
    rc = harness.main(["--problems", "gemm:m32n32k32", "pool:avg_mb1_ih6_ic2_kh2", "--threads", "1",
                       "--rounds", "2", "--peers", "", "--out", str(tmp_path)])
    assert rc == 0
    data = json.loads((tmp_path / "bench-latest.json").read_text())
    assert [r["problem"] for r in data["results"]] == ["gemm:m32n32k32", "pool:avg_mb1_ih6_ic2_kh2"]
    assert "fma_peak_gflops" in data["machine"]
    assert "| `gemm:m32n32k32` | 1 |" in (tmp_path / "bench-latest.md").read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert not (tmp_path / "bench-latest.png").exists()    # no peer, no ratio to plot
    for bad in (["--threads", "0"], ["--problems", "gemm:m1n1"], ["--peers", "mxnet"]):
        with pytest.raises(SystemExit):
            harness.main(bad + ["--out", str(tmp_path)])
    assert os.path.exists(tmp_path / "bench-latest.md")


def test_a_peer_that_fails_while_timed_is_dropped_with_a_note(tmp_path):
    class Dying(FakeWorker):
        def timer(self, variant):
            def run(reps):
                raise RuntimeError("torch worker (threads=1) exited with code -9")
            return run
    res = harness.run_one("gemm:m8n6k5", 1, {"torch": Dying("torch", ["torch"])}, str(tmp_path), rounds=2,
                          min_time=1e-4)
    assert set(res.times) == {"fastnn"}
    assert [n for n in res.notes if "timing failed" in n] == ["torch: timing failed: torch worker (threads=1) "
                                                              "exited with code -9"]


def test_memory_bench_runs_and_reports_every_row(tmp_path):
    """bench/memory.py (peak RSS beside PyTorch's, each in a fresh process) runs end to
    end from a checkout and writes its JSON where it is told."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "memory.json"
    res = subprocess.run([sys.executable, os.path.join(root, "bench", "memory.py"), "--steps", "3",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    libs = [r["lib"] for r in json.loads(out.read_text())["results"]]
    assert libs.count("fastnn") == 2, libs
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    assert libs.count("torch") == 2, res.stdout


def test_maxpool_forms_bench_runs_and_reports_every_form():
    """bench/maxpool_forms.py (the public max pool against the layer's private forms)
    runs end to end from a checkout; --old-core loads a _core extension beside ours
    (here our own, so the import path is exercised)."""
    import subprocess
    from fastnn import _core
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, os.path.join(root, "bench", "maxpool_forms.py"), "--reps", "1",
                          "--old-core", _core.__file__], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    import re
    for form in ("public fwd", "public bwd", "window fwd", "window bwd", "inference", "old public fwd"):
        rows = re.findall(rf"^  {form} +\d+$", res.stdout, flags=re.M)
        assert len(rows) == 2, res.stdout   # one row per shape
