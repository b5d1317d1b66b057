"""Fused in-place optimizer updates (Keras 3 formulas) and clipping helpers vs
float64 reference trajectories, PyTorch, bad input and thread determinism."""
import numpy as np
import pytest

from fastnn import ops

import reference as ref
from helpers import compare, f32, same_bits, threads

SIZES = [1, 7, 40000, 0]  # 40000 spans several parallel chunks; 0 is a no-op


def init_state(rs, kind, n):
    """float32 param and state arrays for one optimizer (Keras initial values)."""
    p = f32(rs, n)
    if kind == "sgd":
        return p, [np.zeros(n, np.float32)]
    if kind == "rmsprop":
        return p, [np.zeros(n, np.float32)]
    if kind == "adam":
        return p, [np.zeros(n, np.float32), np.zeros(n, np.float32)]
    if kind == "adagrad":
        return p, [np.full(n, 0.1, np.float32)]
    if kind == "adadelta":
        return p, [np.zeros(n, np.float32), np.zeros(n, np.float32)]
    raise AssertionError(kind)


def run_fast(kind, p, g, state, step, hp):
    if kind == "sgd":
        ops.sgd_update(p, g, state[0] if hp.get("momentum", 0.0) else None, **hp)
    elif kind == "rmsprop":
        ops.rmsprop_update(p, g, state[0], **hp)
    elif kind == "adam":
        ops.adam_update(p, g, state[0], state[1], step=step, **hp)
    elif kind == "adagrad":
        ops.adagrad_update(p, g, state[0], **hp)
    else:
        ops.adadelta_update(p, g, state[0], state[1], **hp)


def run_ref(kind, p, g, state, step, hp):
    if kind == "sgd":
        p2, v = ref.sgd(p, g, state[0], **hp)
        return p2, [state[0] if v is None else v]
    if kind == "rmsprop":
        p2, ms = ref.rmsprop(p, g, state[0], **hp)
        return p2, [ms]
    if kind == "adam":
        p2, m, v = ref.adam(p, g, state[0], state[1], step=step, **hp)
        return p2, [m, v]
    if kind == "adagrad":
        p2, a = ref.adagrad(p, g, state[0], **hp)
        return p2, [a]
    p2, ag, ad = ref.adadelta(p, g, state[0], state[1], **hp)
    return p2, [ag, ad]


CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.05, momentum=0.5, weight_decay=0.1)),
    ("sgd", dict(lr=0.1, weight_decay=0.3)),
    ("rmsprop", dict(lr=1e-2)),
    ("rmsprop", dict(lr=1e-2, rho=0.5, epsilon=1e-3, weight_decay=0.05)),
    ("adam", dict(lr=1e-2)),
    ("adam", dict(lr=1e-2, beta_1=0.5, beta_2=0.9, epsilon=1e-4, weight_decay=0.1)),
    ("adagrad", dict(lr=0.1)),
    ("adagrad", dict(lr=0.1, epsilon=1e-3, weight_decay=0.02)),
    ("adadelta", dict(lr=1.0)),
    ("adadelta", dict(lr=0.5, rho=0.9, epsilon=1e-4, weight_decay=0.01)),
]


@pytest.mark.parametrize("kind,hp", CASES)
@pytest.mark.parametrize("n", SIZES)
def test_update_trajectory_vs_reference(kind, hp, n):
    rs = np.random.default_rng(20)
    p, state = init_state(rs, kind, n)
    rp, rstate = p.astype(np.float64), [s.astype(np.float64) for s in state]
    for step in range(1, 6):
        g = f32(rs, n)
        run_fast(kind, p, g, state, step, hp)
        rp, rstate = run_ref(kind, rp, g, rstate, step, hp)
        assert p.dtype == np.float32
        compare(p, rp, name=f"param after step {step}")
        for i, (s, rsv) in enumerate(zip(state, rstate)):
            compare(s, rsv, floor=1e-3, name=f"state {i} after step {step}")


def test_update_multidim_and_float64_grad():
    rs = np.random.default_rng(21)
    p = f32(rs, 4, 5)
    m, v = np.zeros_like(p), np.zeros_like(p)
    g = rs.standard_normal((4, 5))  # float64 grad is converted once
    rp, rm, rv = ref.adam(p, g.astype(np.float32), m, v, lr=0.01, step=1)
    ops.adam_update(p, g, m, v, lr=0.01, step=1)
    compare(p, rp, name="param")
    compare(m, rm, name="m")
    compare(v, rv, name="v")


def test_sgd_momentum_zero_ignores_velocity():
    rs = np.random.default_rng(22)
    p, g = f32(rs, 9), f32(rs, 9)
    v = f32(rs, 9)
    v0 = v.copy()
    ops.sgd_update(p, g, v, lr=0.1)
    same_bits(v, v0, "velocity")


def test_nan_gradient_passes_through():
    p = np.ones(5, np.float32)
    g = np.array([0.1, np.nan, 0.2, np.inf, 0.0], np.float32)
    m, v = np.zeros(5, np.float32), np.zeros(5, np.float32)
    ops.adam_update(p, g, m, v, lr=0.1, step=1)
    assert np.isnan(p[1]) and np.isnan(p[3])
    assert np.isfinite(p[[0, 2, 4]]).all()


KINDS = ["sgd", "rmsprop", "adam", "adagrad", "adadelta"]


@pytest.mark.parametrize("kind", KINDS)
def test_update_threads_bitwise(kind):
    rs = np.random.default_rng(23)
    n = 100003
    grads = [f32(rs, n) for _ in range(3)]
    p0, s0 = init_state(rs, kind, n)
    hp = dict(lr=0.01, weight_decay=0.01)
    if kind == "sgd":
        hp.update(momentum=0.9, nesterov=True)
    out = []
    for t in (1, 2):
        with threads(t):
            p, state = p0.copy(), [s.copy() for s in s0]
            for step, g in enumerate(grads, 1):
                run_fast(kind, p, g, state, step, hp)
            out.append([p, *state])
    for a, b in zip(*out):
        same_bits(a, b)


def test_clip_helpers_threads_bitwise():
    rs = np.random.default_rng(24)
    arrays = [f32(rs, 70001), f32(rs, 3, 5), f32(rs, 40000)]
    res = []
    for t in (1, 2):
        with threads(t):
            g = arrays[0].copy()
            ops.clip_by_value_(g, 0.5)
            h = arrays[2].copy()
            ops.scale_(h, 0.3)
            res.append((ops.global_norm(arrays), g, h))
    assert res[0][0] == res[1][0]
    same_bits(res[0][1], res[1][1])
    same_bits(res[0][2], res[1][2])


@pytest.mark.parametrize("shapes", [[(5,)], [(3, 4), (7,), (1,)], [(100000,)], [(0,), (2,)], []])
def test_global_norm_reference(shapes):
    rs = np.random.default_rng(25)
    arrays = [f32(rs, *s) for s in shapes]
    got = ops.global_norm(arrays)
    assert isinstance(got, float)
    want = ref.global_norm(arrays)
    assert abs(got - want) <= 1e-12 * max(want, 1.0)
    if arrays:
        assert ops.global_norm(tuple(arrays)) == got
        # float64 input is accepted (converted to float32)
        assert abs(ops.global_norm([a.astype(np.float64) for a in arrays]) - want) <= 1e-12 * max(want, 1.0)
    if len(arrays) == 1:
        assert ops.global_norm(arrays[0]) == got  # a bare array is one array


@pytest.mark.parametrize("n", [1, 9, 50000])
@pytest.mark.parametrize("clipvalue", [0.0, 0.3, 5.0])
def test_clip_by_value_reference(n, clipvalue):
    rs = np.random.default_rng(26)
    g = f32(rs, n)
    want = ref.clip_by_value(g, np.float32(clipvalue))  # the bound is a float32
    ops.clip_by_value_(g, clipvalue)
    compare(g, want, rtol=0, floor=1e-30, name="clipped")  # exact


def test_clip_by_value_nan():
    g = np.array([np.nan, 3.0, -3.0, np.inf, -np.inf], np.float32)
    ops.clip_by_value_(g, 1.0)
    assert np.isnan(g[0])
    np.testing.assert_array_equal(g[1:], [1.0, -1.0, 1.0, -1.0])


@pytest.mark.parametrize("clipnorm", [0.5, 2.0, 1e3])
def test_clipnorm_via_global_norm_and_scale(clipnorm):
    # Keras clipnorm clips each gradient by its own norm:
    #   g *= clipnorm / max(norm(g), clipnorm)
    rs = np.random.default_rng(27)
    g = f32(rs, 3, 7)
    want = ref.clip_by_norm(g, clipnorm)
    before = g.copy()
    norm = ops.global_norm([g])
    ops.scale_(g, clipnorm / max(norm, clipnorm))
    compare(g, want, rtol=1e-6, name="clipnorm")
    if clipnorm > norm:
        same_bits(g, before, "unclipped gradient")
    else:
        assert abs(np.linalg.norm(g.astype(np.float64)) - clipnorm) <= 1e-5 * clipnorm


def test_scale_reference():
    rs = np.random.default_rng(28)
    a = f32(rs, 40001)
    want = a.astype(np.float64) * np.float32(-0.25)
    ops.scale_(a, -0.25)
    compare(a, want, rtol=0, floor=1e-30, name="scaled")


# ---- bad input ---------------------------------------------------------------

def _arrays(n=4):
    return np.ones(n, np.float32), np.ones(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)


def test_bad_param_and_state_arrays():
    p, g, s1, s2 = _arrays()
    with pytest.raises(TypeError, match="param"):
        ops.sgd_update(p.astype(np.float64), g, lr=0.1)
    with pytest.raises(TypeError, match="param"):
        ops.sgd_update([1.0, 2.0], [1.0, 2.0], lr=0.1)
    ro = p.copy()
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="param"):
        ops.sgd_update(ro, g, lr=0.1)
    with pytest.raises(ValueError, match="param"):
        ops.sgd_update(np.ones(8, np.float32)[::2], g, lr=0.1)
    with pytest.raises(ValueError, match="mean_square"):
        ops.rmsprop_update(p, g, np.zeros(8, np.float32)[::2], lr=0.1)
    ro_s = s1.copy()
    ro_s.setflags(write=False)
    with pytest.raises(ValueError, match="accumulator"):
        ops.adagrad_update(p, g, ro_s, lr=0.1)
    with pytest.raises(TypeError, match="v"):
        ops.adam_update(p, g, s1, s2.astype(np.float64), lr=0.1, step=1)
    with pytest.raises(TypeError, match="accum_delta"):
        ops.adadelta_update(p, g, s1, s2.astype(np.float16), lr=0.1)
    with pytest.raises(TypeError, match="grad"):
        ops.sgd_update(p, g.astype(bool), lr=0.1)
    with pytest.raises(TypeError, match="grad"):
        ops.sgd_update(p, g.astype(complex), lr=0.1)
    with pytest.raises(TypeError, match="grad"):
        ops.sgd_update(p, np.array(["a"] * 4, dtype=object), lr=0.1)


def test_bad_lengths_and_aliasing():
    p, g, s1, s2 = _arrays()
    with pytest.raises(ValueError, match="grad"):
        ops.sgd_update(p, np.ones(5, np.float32), lr=0.1)
    with pytest.raises(ValueError, match="grad"):
        ops.sgd_update(p, np.ones((2, 2), np.float32), lr=0.1)
    with pytest.raises(ValueError, match="velocity"):
        ops.sgd_update(p, g, np.zeros(3, np.float32), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="velocity"):
        ops.sgd_update(p, g, None, lr=0.1, momentum=0.9)  # required when momentum > 0
    with pytest.raises(ValueError, match="m"):
        ops.adam_update(p, g, np.zeros(5, np.float32), s2, lr=0.1, step=1)
    with pytest.raises(ValueError, match="accum_grad"):
        ops.adadelta_update(p, g, np.zeros(2, np.float32), s2, lr=0.1)
    with pytest.raises(ValueError, match="v"):
        ops.adam_update(p, g, s1, s1, lr=0.1, step=1)  # m and v are the same array
    with pytest.raises(ValueError, match="grad"):
        ops.sgd_update(p, p, lr=0.1)
    buf = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="mean_square"):
        ops.rmsprop_update(buf[:4], g, buf[2:], lr=0.1)  # partial overlap


@pytest.mark.parametrize("call,name", [
    (lambda a: ops.sgd_update(a[0], a[1], lr=-0.1), "lr"),
    (lambda a: ops.sgd_update(a[0], a[1], lr=np.nan), "lr"),
    (lambda a: ops.sgd_update(a[0], a[1], a[2], lr=0.1, momentum=-0.1), "momentum"),
    (lambda a: ops.sgd_update(a[0], a[1], a[2], lr=0.1, momentum=1.5), "momentum"),
    (lambda a: ops.sgd_update(a[0], a[1], lr=0.1, weight_decay=-1.0), "weight_decay"),
    (lambda a: ops.rmsprop_update(a[0], a[1], a[2], lr=0.1, rho=1.0), "rho"),
    (lambda a: ops.rmsprop_update(a[0], a[1], a[2], lr=0.1, rho=-0.5), "rho"),
    (lambda a: ops.rmsprop_update(a[0], a[1], a[2], lr=0.1, epsilon=-1e-7), "epsilon"),
    (lambda a: ops.adam_update(a[0], a[1], a[2], a[3], lr=0.1, step=0), "step"),
    (lambda a: ops.adam_update(a[0], a[1], a[2], a[3], lr=0.1, step=1, beta_1=1.0), "beta_1"),
    (lambda a: ops.adam_update(a[0], a[1], a[2], a[3], lr=0.1, step=1, beta_2=-0.1), "beta_2"),
    (lambda a: ops.adam_update(a[0], a[1], a[2], a[3], lr=np.inf, step=1), "lr"),
    (lambda a: ops.adagrad_update(a[0], a[1], a[2], lr=0.1, epsilon=np.nan), "epsilon"),
    (lambda a: ops.adadelta_update(a[0], a[1], a[2], a[3], lr=0.1, rho=1.0), "rho"),
    (lambda a: ops.adadelta_update(a[0], a[1], a[2], a[3], lr=0.1, weight_decay=np.nan), "weight_decay"),
    (lambda a: ops.clip_by_value_(a[1], -1.0), "clipvalue"),
])
def test_bad_hyperparameters(call, name):
    arrays = _arrays()
    before = [a.copy() for a in arrays]
    with pytest.raises(ValueError, match=name):
        call(arrays)
    for a, b in zip(arrays, before):  # nothing was touched
        same_bits(a, b)


def test_bad_argument_types():
    p, g, s1, s2 = _arrays()
    with pytest.raises(TypeError):
        ops.adam_update(p, g, s1, s2, lr=0.1, step=1.5)  # step must be an int
    with pytest.raises(TypeError):
        ops.sgd_update(p, g, lr="0.1")
    with pytest.raises(TypeError):
        ops.sgd_update(p, g, None, 0.1)  # lr is keyword-only
    with pytest.raises(TypeError, match="arrays"):
        ops.global_norm("abc")
    with pytest.raises(TypeError, match="arrays"):
        ops.global_norm(3.0)
    with pytest.raises(TypeError, match=r"arrays\[1\]"):
        ops.global_norm([g, g.astype(bool)])
    with pytest.raises(TypeError, match="grad"):
        ops.clip_by_value_(g.astype(np.float64), 1.0)
    with pytest.raises(ValueError, match="array"):
        ops.scale_(np.ones(8, np.float32)[::2], 2.0)


# ---- PyTorch cross-checks -------------------------------------------------------

def _torch_run(torch, opt_cls, p0, grads, **kw):
    t = torch.tensor(p0.astype(np.float64), requires_grad=True)
    opt = opt_cls([t], **kw)
    for g in grads:
        opt.zero_grad()
        t.grad = torch.tensor(g.astype(np.float64))
        opt.step()
    return t.detach().numpy()


def _fast_run(kind, p0, grads, hp):
    p, state = p0.copy(), init_state(np.random.default_rng(0), kind, p0.size)[1]
    if kind == "adagrad":
        state[0][:] = 0.0
    for step, g in enumerate(grads, 1):
        run_fast(kind, p, g, state, step, hp)
    return p


@pytest.mark.torch
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_vs_torch(nesterov):
    # torch keeps v' = mu*v' + g and p -= lr*v'; Keras keeps v = mu*v - lr*g and
    # p += v. For a constant lr, v = -lr*v' and the parameter trajectories agree.
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(29)
    p0, grads = f32(rs, 50), [f32(rs, 50) for _ in range(6)]
    want = _torch_run(torch, torch.optim.SGD, p0, grads, lr=0.05, momentum=0.9, nesterov=nesterov)
    got = _fast_run("sgd", p0, grads, dict(lr=0.05, momentum=0.9, nesterov=nesterov))
    compare(got, want, name="param")


@pytest.mark.torch
@pytest.mark.parametrize("eps", [0.0, 1e-7])
def test_rmsprop_adam_adagrad_vs_torch(eps):
    # torch adds epsilon outside the square root where Keras 3 RMSprop/Adagrad add it
    # inside, and Adam's torch epsilon is scaled by sqrt(1 - beta_2^t): identical
    # formulas at eps = 0, within round-off of each other at eps = 1e-7.
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(30)
    p0, grads = f32(rs, 64), [f32(rs, 64) for _ in range(6)]
    tol = 1e-4 if eps == 0.0 else 1e-3
    want = _torch_run(torch, torch.optim.RMSprop, p0, grads, lr=0.01, alpha=0.9, eps=eps)
    compare(_fast_run("rmsprop", p0, grads, dict(lr=0.01, rho=0.9, epsilon=eps)), want,
            rtol=tol, name="rmsprop")
    want = _torch_run(torch, torch.optim.Adam, p0, grads, lr=0.01, betas=(0.9, 0.999), eps=eps)
    compare(_fast_run("adam", p0, grads, dict(lr=0.01, epsilon=eps)), want, rtol=tol, name="adam")
    # decoupled weight decay: torch AdamW == Keras 3 Adam(weight_decay=...)
    want = _torch_run(torch, torch.optim.AdamW, p0, grads, lr=0.01, eps=eps, weight_decay=0.1)
    compare(_fast_run("adam", p0, grads, dict(lr=0.01, epsilon=eps, weight_decay=0.1)), want,
            rtol=tol, name="adamw")
    want = _torch_run(torch, torch.optim.Adagrad, p0, grads, lr=0.1, eps=eps)
    compare(_fast_run("adagrad", p0, grads, dict(lr=0.1, epsilon=eps)), want, rtol=tol,
            name="adagrad")


@pytest.mark.torch
def test_adadelta_vs_torch():
    # Same formula in both (epsilon inside both square roots).
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(31)
    p0, grads = f32(rs, 64), [f32(rs, 64) for _ in range(6)]
    want = _torch_run(torch, torch.optim.Adadelta, p0, grads, lr=1.0, rho=0.95, eps=1e-6)
    got = _fast_run("adadelta", p0, grads, dict(lr=1.0, rho=0.95, epsilon=1e-6))
    # parameter moves are tiny (~sqrt(eps)), so compare the displacement
    compare(got - p0, want - p0.astype(np.float64), rtol=1e-3, name="adadelta step")
