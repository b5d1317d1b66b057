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


def test_bench_runs_and_verifies_small_problems(tmp_path):
    res = harness.run(["gemm:m64n48k80", "conv:mb2_ih9iw9_ic3oc8_kh3kw3_sh1_ph1"], threads=(1,), rounds=2,
                      verbose=False)
    assert len(res) == 2
    for r in res:
        assert r.times["fastnn"][0] > 0 and r.gflops > 0
        for err in r.errors.values():
            assert err < 1e-4


def test_distributed_without_mpi4py_says_what_to_install():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pyfastnn\[mpi\]"):
            import fastnn.distributed  # noqa: F401
    else:
        pytest.skip("mpi4py is installed here")
