"""GEMM blocking chosen from the CPU (cpuinfo), the FASTNN_GEMM_BLOCKING override and its
validation, the build_info fields, and every GEMM path under each blocking (Zen 4's table
values, the Sapphire Rapids values, odd ones) and each ISA's micro-kernel, in subprocesses
(the blocking and the ISA are fixed once per process)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "gemm_blocking_child.py")

BLOCKINGS = {
    "zen4": "256,96,1536",          # the table values of Zen 4 (the earlier constants)
    "sapphire_rapids": "384,96,672",  # the table values derived for Sapphire Rapids
    "odd": "40,7,50",               # KC, MC, NC that are not multiples of anything
    "tiny": "8,1,1",                # one row and one column per block: every edge case
}


def _isas():
    order = ["generic", "avx2", "avx512"]
    best = _isa_of(fastnn.build_info()["isa"])
    return order[:order.index(best) + 1]


def _isa_of(name):
    return {"avx2+fma": "avx2"}.get(name, name)


def _run(env_extra, *args, script=None):
    env = dict(os.environ)
    env.update(env_extra)
    cmd = [sys.executable, script or CHILD, *args] if (script or args) else [sys.executable, "-c", "pass"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def _child_info(env_extra):
    code = "import json, warnings, fastnn; print(json.dumps(fastnn.build_info()['gemm_blocking']))"
    env = dict(os.environ)
    env.update(env_extra)
    res = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    import json
    return json.loads(res.stdout.strip().splitlines()[-1]), res.stderr


def test_build_info_reports_cpu_caches_and_blocking():
    info = fastnn.build_info()
    cpu = info["cpu"]
    for key in ("vendor", "brand", "family", "model", "core", "l1d_bytes", "l2_bytes", "l3_bytes",
                "cache_source"):
        assert key in cpu, key
    assert cpu["cache_source"] in ("cpuid", "sysfs", "default")
    assert cpu["l1d_bytes"] >= 4096 and cpu["l2_bytes"] >= cpu["l1d_bytes"]
    blk = info["gemm_blocking"]
    assert set(blk) >= {"kc", "mc", "nc", "source", "warning"}
    assert blk["kc"] >= 8 and blk["mc"] >= 1 and blk["nc"] >= 1
    if "FASTNN_GEMM_BLOCKING" not in os.environ:
        assert blk["source"] in ("derived", "table:zen4", "table:sapphire_rapids")
        assert blk["warning"] == ""
    if cpu["core"] == "zen4" and "FASTNN_GEMM_BLOCKING" not in os.environ:
        # Zen 4 keeps the constants of the earlier releases, so its bits are unchanged
        assert (blk["kc"], blk["mc"], blk["nc"], blk["source"]) == (256, 96, 1536, "table:zen4")


def test_cache_sizes_match_sysfs():
    """CPUID and sysfs describe the same caches (where sysfs is there to ask)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    if not os.path.isdir(base):
        pytest.skip("no sysfs cache description")
    sizes = {}
    for d in sorted(os.listdir(base)):
        if not d.startswith("index"):
            continue
        rd = lambda f: open(os.path.join(base, d, f)).read().strip()
        lvl, typ, size = rd("level"), rd("type"), rd("size")
        mult = {"K": 1024, "M": 1 << 20}.get(size[-1], 1)
        val = int(size.rstrip("KM")) * mult
        if lvl == "1" and typ == "Data":
            sizes["l1d_bytes"] = val
        elif lvl in ("2", "3") and typ != "Instruction":
            sizes[f"l{lvl}_bytes"] = val
    cpu = fastnn.build_info()["cpu"]
    for key, val in sizes.items():
        if key == "l3_bytes" and cpu["cache_source"] == "cpuid" and cpu[key] != val:
            continue  # an L3 shared by a complex may be reported per complex or in all
        assert cpu[key] == val, (key, cpu[key], val)


@pytest.mark.parametrize("name", sorted(BLOCKINGS))
def test_override_is_used(name):
    blk, err = _child_info({"FASTNN_GEMM_BLOCKING": BLOCKINGS[name]})
    assert [blk["kc"], blk["mc"], blk["nc"]] == [int(v) for v in BLOCKINGS[name].split(",")]
    assert blk["source"] == "env" and blk["warning"] == ""
    assert "RuntimeWarning" not in err


@pytest.mark.parametrize("bad", ["1,2", "a,b,c", "0,96,1536", "256,0,1536", "256,96,0", "256,-1,1536",
                                 "7,96,1536", "256,96,1536,4", "256;96;1536", "99999999999999999999,1,1",
                                 "8192,8192,65536", " , , ", "256,96,1536x"])
def test_bad_override_warns_and_falls_back(bad):
    blk, err = _child_info({"FASTNN_GEMM_BLOCKING": bad})
    assert "RuntimeWarning" in err and "FASTNN_GEMM_BLOCKING ignored" in err, err
    assert blk["source"] != "env" and "FASTNN_GEMM_BLOCKING ignored" in blk["warning"]
    want = fastnn.build_info()["gemm_blocking"] if "FASTNN_GEMM_BLOCKING" not in os.environ else None
    if want is not None:
        assert (blk["kc"], blk["mc"], blk["nc"]) == (want["kc"], want["mc"], want["nc"])


def test_empty_override_is_unset():
    blk, err = _child_info({"FASTNN_GEMM_BLOCKING": ""})
    assert blk["source"] != "env" and blk["warning"] == "" and "RuntimeWarning" not in err


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    """Every (blocking, ISA) child run once; its products kept for the comparisons."""
    out = {}
    tmp = tmp_path_factory.mktemp("gemm_blocking")
    for name, spec in BLOCKINGS.items():
        for isa in _isas():
            path = str(tmp / f"{name}_{isa}.npz")
            res = _run({"FASTNN_GEMM_BLOCKING": spec, "FASTNN_ISA": isa}, path)
            out[(name, isa)] = (res, path)
    return out


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
@pytest.mark.parametrize("name", sorted(BLOCKINGS))
def test_every_path_under_each_blocking_and_isa(products, name, isa):
    if isa not in _isas():
        pytest.skip(f"{isa} not supported by this CPU")
    res, path = products[(name, isa)]
    assert res.returncode == 0, res.stdout + res.stderr
    first = res.stdout.strip().splitlines()[-1]
    assert first.split()[0].startswith(isa), first
    assert "'source': 'env'" in first


def test_kc_changes_the_bits_and_mc_nc_do_not(products):
    """Only KC enters the summation order: two blockings with the same KC give the same
    bits (MC, NC only move work), a different KC gives other bits for K > KC."""
    isa = _isas()[-1]
    for key in products:
        assert products[key][0].returncode == 0, products[key][0].stderr
    zen = np.load(products[("zen4", isa)][1])
    spr = np.load(products[("sapphire_rapids", isa)][1])
    odd = np.load(products[("odd", isa)][1])
    differ = [k for k in zen.files if not np.array_equal(zen[k].view(np.int32), spr[k].view(np.int32))]
    assert "m200n300k1000" in differ  # K = 1000 crosses KC = 256 and 384 at other places
    for k in zen.files:  # the same maths, whatever the blocking
        np.testing.assert_allclose(zen[k], odd[k], rtol=1e-4, atol=1e-4)
    # K <= 8 (one block whatever the KC): identical under every blocking
    for name in BLOCKINGS:
        other = np.load(products[(name, isa)][1])
        assert np.array_equal(zen["m300n40k3"].view(np.int32), other["m300n40k3"].view(np.int32)), name


def test_same_kc_same_bits_whatever_mc_nc(tmp_path):
    isa = _isas()[-1]
    paths = []
    for spec in ("256,96,1536", "256,12,64"):
        p = str(tmp_path / (spec.replace(",", "_") + ".npz"))
        res = _run({"FASTNN_GEMM_BLOCKING": spec, "FASTNN_ISA": isa}, p)
        assert res.returncode == 0, res.stderr
        paths.append(np.load(p))
    for k in paths[0].files:
        assert np.array_equal(paths[0][k].view(np.int32), paths[1][k].view(np.int32)), k
