"""Property-based tests (hypothesis), part 2: the ops not covered by test_properties.py,
against the float64 references over random shapes and parameters: activations and their
backward passes, softmax, dropout (mask and scale semantics), batch norm forward and
backward, the losses, the optimizer updates, GRU and SimpleRNN forward and backward,
and the augmentation warp, and the MaxPooling2D layer's private max-pool forms. 25 examples
per property; `pytest --long` runs 1000."""
import numpy as np
import pytest

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

import reference as ref  # noqa: E402
from fastnn import _core, ops  # noqa: E402
from helpers import compare, same_bits, threads  # noqa: E402

SEED = st.integers(0, 2**31)
shapes = st.lists(st.integers(0, 9), min_size=0, max_size=4).map(tuple)


def _rand(seed, shape, scale=1.0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=np.float32)


@given(shapes, SEED, st.sampled_from([0.1, 1.0, 10.0]), st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_activation_property(shape, seed, scale, name):
    x = _rand(seed, shape, scale)
    dy = _rand(seed + 1, shape)
    y = getattr(ops, name)(x)
    compare(y, getattr(ref, name)(x), name=name)
    arg = y if name == "relu" else x     # relu_backward takes the output; the others the input
    compare(getattr(ops, name + "_backward")(dy, arg), getattr(ref, name + "_backward")(dy, x), name=name + "'")


@given(st.integers(0, 12), st.integers(1, 40), SEED, st.sampled_from([0.1, 1.0, 30.0]))
def test_softmax_property(n, k, seed, scale):
    x = _rand(seed, (n, k), scale)
    y = ops.softmax(x)
    compare(y, ref.softmax(x))
    if n:
        assert np.allclose(y.astype(np.float64).sum(axis=1), 1.0, atol=1e-5)
    dy = _rand(seed + 1, (n, k))
    # y * (dy - sum(dy * y)) cancels when one class takes all the mass: float32 round-off
    # is relative to |dy|, so that is the floor of the comparison
    compare(ops.softmax_backward(dy, y), ref.softmax_backward(dy, y),
            floor=1e-2 * float(np.max(np.abs(dy), initial=0.0)), name="softmax_backward")


@given(shapes, st.floats(0.0, 0.95), SEED, st.integers(0, 2**64 - 1), st.integers(0, 1000))
def test_dropout_property(shape, rate, seed, stream, offset):
    """y = x * mask / (1 - rate) with a 0/1 mask; backward applies the same mask and scale;
    the mask depends only on (seed, sample_offset + row): a slice drawn with its offset
    gets the same rows; rate 0 keeps everything."""
    x = _rand(seed, shape)
    y, mask = ops.dropout(x, rate, stream, sample_offset=offset)
    assert mask.dtype == np.uint8 and mask.shape == x.shape and set(np.unique(mask)) <= {0, 1}
    compare(y, ref.dropout_apply(x, mask, rate))
    dy = _rand(seed + 1, shape)
    compare(ops.dropout_backward(dy, mask, rate), ref.dropout_apply(dy, mask, rate))
    if rate == 0.0:
        assert mask.all()
    if len(shape) >= 1 and shape[0] >= 2:
        lo = shape[0] // 2
        _, part = ops.dropout(x[lo:], rate, stream, sample_offset=offset + lo)
        same_bits(part, mask[lo:], "mask of a slice")


@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(1, 9), st.booleans(), SEED,
       st.floats(0.0, 0.999), st.sampled_from([1e-5, 1e-3, 0.1]), st.booleans())
def test_batch_norm_property(lead, c, training, seed, momentum, eps, affine):
    shape = tuple(lead) + (c,)
    rs = np.random.default_rng(seed)
    x = (rs.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    gamma = (1 + 0.5 * rs.standard_normal(c)).astype(np.float32) if affine else None
    beta = (0.3 * rs.standard_normal(c)).astype(np.float32) if affine else None
    rm = (0.2 * rs.standard_normal(c)).astype(np.float32)
    rv = (1 + rs.random(c)).astype(np.float32)
    rm0, rv0 = rm.copy(), rv.copy()
    y, cache = ops.batch_norm(x, gamma, beta, rm, rv, training=training, momentum=momentum, epsilon=eps)
    ry, rrm, rrv = ref.batch_norm(x, gamma, beta, rm0, rv0, training, momentum, eps)
    compare(y, ry, rtol=3e-4, name="y")
    compare(rm, rrm, floor=1e-3, name="running mean")
    compare(rv, rrv, floor=1e-3, name="running var")
    dy = rs.standard_normal(shape).astype(np.float32)
    dx, dg, db = ops.batch_norm_backward(dy, cache)
    rdx, rdg, rdb = ref.batch_norm_backward(dy, x, gamma, rm0, rv0, training, eps)
    rows = int(np.prod(lead))
    # dx cancels (few rows, eps ~ var): float32 round-off is relative to |dy| |gamma| / sigma
    var = x.astype(np.float64).reshape(-1, c).var(axis=0) if training else rv0.astype(np.float64)
    g_max = 1.0 if gamma is None else float(np.max(np.abs(gamma)))
    scale = float(np.max(np.abs(dy))) * g_max / float(np.sqrt(np.min(var) + eps))
    if not (training and rows == 1):   # one row in training: the true dx is 0, pure round-off
        compare(dx, rdx, rtol=5e-4, floor=0.1 * scale, name="dx")
    if affine:
        compare(db, rdb, name="dbeta")
        compare(dg, rdg, rtol=5e-4, floor=1e-3, name="dgamma")
    else:
        assert dg is None and db is None


@given(st.integers(0, 20), st.integers(1, 30), SEED, st.booleans(), st.sampled_from([0.1, 1.0, 20.0]))
def test_softmax_cross_entropy_property(n, k, seed, sparse, scale):
    rs = np.random.default_rng(seed)
    z = (rs.standard_normal((n, k)) * scale).astype(np.float32)
    if sparse:
        t = rs.integers(0, k, n)
    else:
        p = rs.random((n, k)) + 0.05
        t = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    loss, d = ops.softmax_cross_entropy(z, t)
    rl, rd = ref.softmax_cross_entropy(z, t)
    assert abs(loss - rl) <= 1e-5 * max(abs(rl), 1e-3)
    compare(d, rd)


@given(shapes, SEED, st.sampled_from(["mse", "mae"]))
def test_regression_loss_property(shape, seed, name):
    p, t = _rand(seed, shape), _rand(seed + 1, shape)
    if name == "mae" and p.size:
        t[np.abs(p - t) < 1e-3] += 0.01    # keep away from the kink of |d|
    loss, d = getattr(ops, name)(p, t)
    rl, rd = getattr(ref, name)(p, t)
    assert abs(loss - rl) <= 1e-5 * max(abs(rl), 1e-3)
    compare(d, rd)


OPT = st.sampled_from(["sgd", "sgd_momentum", "nesterov", "rmsprop", "adam", "adagrad", "adadelta"])


@given(OPT, st.integers(1, 300), st.integers(1, 5), SEED, st.sampled_from([1e-3, 1e-2, 0.1]),
       st.sampled_from([0.0, 0.01]))
def test_optimizer_update_property(kind, n, steps, seed, lr, wd):
    rs = np.random.default_rng(seed)
    p = rs.standard_normal(n).astype(np.float32)
    rp = p.astype(np.float64)
    zeros = lambda: np.zeros(n, np.float32)  # noqa: E731
    state = {"sgd": [], "sgd_momentum": [zeros()], "nesterov": [zeros()], "rmsprop": [zeros()],
             "adam": [zeros(), zeros()], "adagrad": [np.full(n, 0.1, np.float32)],
             "adadelta": [zeros(), zeros()]}[kind]
    rstate = [s.astype(np.float64) for s in state]
    for step in range(1, steps + 1):
        g = rs.standard_normal(n).astype(np.float32)
        if kind.startswith("sgd") or kind == "nesterov":
            mom = 0.0 if kind == "sgd" else 0.9
            ops.sgd_update(p, g, state[0] if state else None, lr=lr, momentum=mom, nesterov=kind == "nesterov",
                           weight_decay=wd)
            rp, v = ref.sgd(rp, g, rstate[0] if rstate else None, lr=lr, momentum=mom,
                            nesterov=kind == "nesterov", weight_decay=wd)
            rstate = [v] if rstate else []
        elif kind == "rmsprop":
            ops.rmsprop_update(p, g, state[0], lr=lr, weight_decay=wd)
            rp, ms = ref.rmsprop(rp, g, rstate[0], lr=lr, weight_decay=wd)
            rstate = [ms]
        elif kind == "adam":
            ops.adam_update(p, g, state[0], state[1], lr=lr, step=step, weight_decay=wd)
            rp, m, v = ref.adam(rp, g, rstate[0], rstate[1], lr=lr, step=step, weight_decay=wd)
            rstate = [m, v]
        elif kind == "adagrad":
            ops.adagrad_update(p, g, state[0], lr=lr, weight_decay=wd)
            rp, a = ref.adagrad(rp, g, rstate[0], lr=lr, weight_decay=wd)
            rstate = [a]
        else:
            ops.adadelta_update(p, g, state[0], state[1], lr=lr, weight_decay=wd)
            rp, ag, ad = ref.adadelta(rp, g, rstate[0], rstate[1], lr=lr, weight_decay=wd)
            rstate = [ag, ad]
        compare(p, rp, name=f"{kind} param after step {step}")
        for s, r in zip(state, rstate):
            compare(s, r, floor=1e-3, name=f"{kind} state after step {step}")


@given(st.sampled_from(["gru", "rnn"]), st.integers(1, 5), st.integers(1, 7), st.integers(1, 5),
       st.integers(1, 12), st.booleans(), st.booleans(), SEED)
def test_gru_and_simple_rnn_property(cell, n, t, i, h, with_bias, with_h0, seed):
    rs = np.random.default_rng(seed)
    g = 3 if cell == "gru" else 1
    x = rs.standard_normal((n, t, i)).astype(np.float32)
    k = (rs.standard_normal((i, g * h)) * 0.5).astype(np.float32)
    rk = (rs.standard_normal((h, g * h)) * 0.5).astype(np.float32)
    b = None
    if with_bias:
        b = (rs.standard_normal((2, 3 * h) if cell == "gru" else (h,)) * 0.5).astype(np.float32)
    h0 = rs.standard_normal((n, h)).astype(np.float32) if with_h0 else None
    fwd = ops.gru_forward if cell == "gru" else ops.rnn_forward
    bwd = ops.gru_backward if cell == "gru" else ops.rnn_backward
    hs, hT, cache = fwd(x, k, rk, b, h0=h0)
    if cell == "gru":
        rhs, rhT, _ = ref.gru_ref(x, k, rk, b, h0)
        rgrads = ref.gru_backward_ref
    else:
        rhs, rhT = ref.rnn_ref(x, k, rk, b, h0)
        rgrads = ref.rnn_backward_ref
    # floor 1e-3: the cells' tanh/sigmoid are accurate to ~2e-7 absolute (README), so an
    # output whose largest value is ~1e-4 (one tiny step, no bias) cannot meet 1e-4 relative
    compare(hs, rhs, floor=1e-3, name="h_seq")
    compare(hT, rhT, floor=1e-3, name="h_T")
    dhs = rs.standard_normal((n, t, h)).astype(np.float32)
    dhT = rs.standard_normal((n, h)).astype(np.float32)
    got = bwd(dhs, cache, dh_T=dhT)
    want = rgrads(x, k, rk, b, h0, dh_seq=dhs, dh_T=dhT)
    for name, a, r in zip(["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"], got, want):
        if r is None:
            continue
        compare(a, r, rtol=3e-4, floor=1e-3, name=name)
    with threads(1):
        one = bwd(dhs, fwd(x, k, rk, b, h0=h0)[2], dh_T=dhT)
    with threads(2):
        two = bwd(dhs, fwd(x, k, rk, b, h0=h0)[2], dh_T=dhT)
    for a, c in zip(one, two):
        if a is not None:
            same_bits(a, c, "1 vs 2 threads")


@given(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.integers(1, 3),
       st.sampled_from(["nearest", "constant", "reflect", "wrap"]), SEED)
def test_affine_warp_property(n, h, w, c, mode, seed):
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((n, h, w, c)).astype(np.float32)
    mats = np.stack([ref.ref_augment_matrix(rs.uniform(-40, 40), rs.uniform(-0.3, 0.3) * h,
                                            rs.uniform(-0.3, 0.3) * w, rs.uniform(0.7, 1.3), rs.uniform(0.7, 1.3),
                                            bool(rs.integers(2)), bool(rs.integers(2)), h, w) for _ in range(n)])
    out = _core.affine_warp(x, mats, None, fill_mode=mode, cval=0.25)
    compare(out, ref.ref_affine_warp(x, mats, fill_mode=mode, cval=0.25), name=mode)


@given(st.integers(0, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2), st.integers(0, 2), st.integers(1, 20), SEED)
def test_max_pool_layer_forms_property(n, kh, kw, sh, sw, ph, pw, c, seed):
    """The MaxPooling2D layer's private forms (y only; uint8 window offsets and their
    backward) against the public op, bitwise, and the float64 reference: random windows,
    strides and paddings on inputs full of ties, with NaN and -0.0."""
    ph, pw = min(ph, kh // 2), min(pw, kw // 2)
    rs = np.random.default_rng(seed)
    H, W = kh + int(rs.integers(0, 7)), kw + int(rs.integers(0, 7))
    x = rs.integers(-2, 3, size=(n, H, W, c)).astype(np.float32)
    x[rs.random(x.shape) < 0.05] = np.nan
    x[x == 0] = -0.0
    kw_ = dict(stride=(sh, sw), padding=(ph, pw))
    y, idx = ops.max_pool2d(x, (kh, kw), **kw_)
    y_win, win = ops._max_pool2d_window(x, (kh, kw), **kw_)
    same_bits(y_win, y)
    same_bits(ops._max_pool2d_inference(x, (kh, kw), **kw_), y)
    y_ref, win_ref = ref.max_pool2d_window(x, (kh, kw), (sh, sw), (ph, pw))
    np.testing.assert_array_equal(win, win_ref)
    dy = _rand(seed + 1, y.shape)
    dx = ops._max_pool2d_window_backward(dy, win, x.shape, (kh, kw), **kw_)
    same_bits(dx, ops.max_pool2d_backward(dy, idx, x.shape))
    compare(dx, ref.max_pool2d_window_backward(dy, win, x.shape, (kh, kw), (sh, sw), (ph, pw)), name="dx")
