"""fastnn.losses, fastnn.metrics and fastnn.regularizers vs float64 NumPy references
(Keras formulas), PyTorch, finite differences, lookup and bad input."""
import json

import numpy as np
import pytest

from fastnn import losses, metrics, regularizers
from fastnn.losses import (CategoricalCrossentropy, MeanAbsoluteError, MeanSquaredError,
                           SparseCategoricalCrossentropy)

from helpers import compare, fd_check

EPS = 1e-7


# ------------------------------------------------------------ references (float64)
def ref_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ref_ce_probs(t, p):
    """Keras 3 categorical_crossentropy(from_logits=False), averaged over rows."""
    t = np.asarray(t, np.float64)
    p = np.asarray(p, np.float64)
    p = p / p.sum(axis=-1, keepdims=True)
    p = np.clip(p, EPS, 1 - EPS)
    per = -np.sum(t * np.log(p), axis=-1)
    return float(per.mean()) if per.size else 0.0


def ref_ce_logits(t, z):
    z = np.asarray(z, np.float64)
    lse = np.log(np.sum(np.exp(z - z.max(-1, keepdims=True)), -1, keepdims=True)) + z.max(-1, keepdims=True)
    return float(np.mean(-np.sum(np.asarray(t, np.float64) * (z - lse), axis=-1)))


def onehot(labels, k):
    labels = np.asarray(labels).reshape(-1)
    out = np.zeros((labels.size, k))
    out[np.arange(labels.size), labels] = 1
    return out


def case(rs, n, k):
    logits = rs.standard_normal((n, k)) * 1.5
    labels = rs.integers(0, k, n)
    return logits, labels, ref_softmax(logits).astype(np.float32)


SHAPES = [(1, 2), (5, 3), (7, 10), (32, 10)]


# ------------------------------------------------------------ cross-entropy
@pytest.mark.parametrize("n,k", SHAPES)
def test_categorical_ce_probs_value_and_fd(n, k):
    rs = np.random.default_rng(n * 10 + k)
    _, labels, probs = case(rs, n, k)
    y = onehot(labels, k).astype(np.float32)
    loss = CategoricalCrossentropy()
    v, d = loss.value_and_grad(y, probs)
    assert isinstance(v, float)
    assert v == pytest.approx(ref_ce_probs(y, probs), rel=1e-6)
    assert loss(y, probs) == v
    assert d.shape == probs.shape and d.dtype == np.float32
    fd_check(lambda p: loss(y, p), probs.astype(np.float64), 1.0, d, eps=1e-4, name="dCE/dp")


@pytest.mark.parametrize("n,k", SHAPES)
def test_sparse_ce_probs_matches_categorical(n, k):
    rs = np.random.default_rng(k)
    _, labels, probs = case(rs, n, k)
    sp = SparseCategoricalCrossentropy()
    cat = CategoricalCrossentropy()
    y = onehot(labels, k)
    for lab in (labels, labels.reshape(-1, 1), labels.astype(np.uint8), labels.astype(np.float32)):
        v, d = sp.value_and_grad(lab, probs)
        v2, d2 = cat.value_and_grad(y, probs)
        assert v == pytest.approx(ref_ce_probs(y, probs), rel=1e-6)
        assert v == v2
        np.testing.assert_array_equal(d, d2)


def test_ce_probs_unnormalised_rows_and_clip():
    """Keras renormalises rows and clips at 1e-7: the gradient is that of the value."""
    y = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    p = np.array([[0.2, 0.6, 0.6], [0.5, 0.25, 0.25]], np.float64)
    loss = CategoricalCrossentropy()
    v, d = loss.value_and_grad(y, p)
    assert v == pytest.approx(ref_ce_probs(y, p), rel=1e-7)
    fd_check(lambda q: loss(y, q), p, 1.0, d, eps=1e-5, n_coords=6, name="unnormalised")
    # a true-class probability of 0 is clipped: finite loss = -log(1e-7)/N, zero gradient there
    p0 = np.array([[1.0, 0.0]], np.float32)
    v0, d0 = loss.value_and_grad(np.array([[0.0, 1.0]]), p0)
    assert v0 == pytest.approx(-np.log(EPS), rel=1e-6)
    assert d0[0, 1] == 0


@pytest.mark.parametrize("n,k", SHAPES + [(0, 4)])
def test_fused_from_logits(n, k):
    rs = np.random.default_rng(3 + n)
    logits, labels, _ = case(rs, n, k)
    logits = logits.astype(np.float32)
    y = onehot(labels, k)
    for loss, yt in ((CategoricalCrossentropy(), y.astype(np.float32)),
                     (SparseCategoricalCrossentropy(), labels)):
        assert loss.fused_softmax is True
        v, dz = loss.value_and_grad_from_logits(yt, logits)
        assert isinstance(v, float) and dz.shape == (n, k) and dz.dtype == np.float32
        if n == 0:
            assert v == 0.0
            continue
        assert v == pytest.approx(ref_ce_logits(y, logits), rel=1e-5)
        compare(dz, (ref_softmax(logits) - y) / n, name="dlogits")
        # from_logits=True routes __call__ through the same path
        cls = type(loss)
        assert cls(from_logits=True)(yt, logits) == v


def test_fused_matches_probability_path_away_from_clip():
    rs = np.random.default_rng(0)
    logits, labels, probs = case(rs, 16, 5)
    a = SparseCategoricalCrossentropy().value_and_grad_from_logits(labels, logits)[0]
    b = SparseCategoricalCrossentropy()(labels, probs)
    assert a == pytest.approx(b, rel=1e-5)


def test_label_smoothing():
    rs = np.random.default_rng(1)
    logits, labels, probs = case(rs, 6, 4)
    ls = 0.2
    y = onehot(labels, 4)
    ys = y * (1 - ls) + ls / 4
    loss = CategoricalCrossentropy(label_smoothing=ls)
    assert loss(y, probs) == pytest.approx(ref_ce_probs(ys, probs), rel=1e-6)
    v, dz = loss.value_and_grad_from_logits(y, logits)
    assert v == pytest.approx(ref_ce_logits(ys, logits), rel=1e-5)
    compare(dz, (ref_softmax(logits) - ys) / 6)


def test_ce_sequence_shape():
    rs = np.random.default_rng(2)
    z = rs.standard_normal((3, 4, 5)).astype(np.float32)
    lab = rs.integers(0, 5, (3, 4))
    v, dz = SparseCategoricalCrossentropy().value_and_grad_from_logits(lab, z)
    assert dz.shape == z.shape
    assert v == pytest.approx(ref_ce_logits(onehot(lab, 5), z.reshape(-1, 5)), rel=1e-5)
    p = ref_softmax(z)
    assert SparseCategoricalCrossentropy()(lab, p) == pytest.approx(
        ref_ce_probs(onehot(lab, 5), p.reshape(-1, 5)), rel=1e-6)


@pytest.mark.torch
def test_ce_vs_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rs = np.random.default_rng(4)
    logits, labels, probs = case(rs, 9, 6)
    z = torch.tensor(logits, requires_grad=True)
    tl = F.cross_entropy(z, torch.tensor(labels))
    tl.backward()
    v, dz = SparseCategoricalCrossentropy().value_and_grad_from_logits(labels, logits)
    assert v == pytest.approx(tl.item(), rel=1e-5)
    compare(dz, z.grad.numpy(), name="dlogits vs torch")
    # probability path: torch autograd of the Keras formula
    p = torch.tensor(probs.astype(np.float64), requires_grad=True)
    q = torch.clamp(p / p.sum(1, keepdim=True), EPS, 1 - EPS)
    tl = -(torch.tensor(onehot(labels, 6)) * torch.log(q)).sum(1).mean()
    tl.backward()
    v, dp = CategoricalCrossentropy().value_and_grad(onehot(labels, 6), probs)
    assert v == pytest.approx(tl.item(), rel=1e-6)
    compare(dp, p.grad.numpy(), name="dprobs vs torch")


# ------------------------------------------------------------ mse / mae
@pytest.mark.parametrize("shape", [(1, 1), (8, 1), (5, 3), (4, 2, 3), (0, 2)])
@pytest.mark.parametrize("cls", [MeanSquaredError, MeanAbsoluteError])
def test_regression_losses(cls, shape):
    rs = np.random.default_rng(sum(shape))
    p = rs.standard_normal(shape).astype(np.float32)
    t = rs.standard_normal(shape).astype(np.float32)
    loss = cls()
    v, d = loss.value_and_grad(t, p)
    diff = p.astype(np.float64) - t
    if diff.size == 0:
        assert v == 0.0 and d.shape == shape
        return
    if cls is MeanSquaredError:
        ref_v, ref_d = np.mean(diff ** 2), 2 * diff / diff.size
    else:
        ref_v, ref_d = np.mean(np.abs(diff)), np.sign(diff) / diff.size
    assert v == pytest.approx(ref_v, rel=1e-5)
    compare(d, ref_d)
    if cls is MeanSquaredError:
        fd_check(lambda x: loss(t, x), p, 1.0, d, name="dmse")


@pytest.mark.parametrize("cls", [MeanSquaredError, MeanAbsoluteError])
def test_regression_losses_accept_trailing_one(cls):
    rs = np.random.default_rng(0)
    p = rs.standard_normal((6, 1)).astype(np.float32)
    t = rs.standard_normal(6)
    v, d = cls().value_and_grad(t, p)
    assert d.shape == (6, 1)
    v2, _ = cls().value_and_grad(t.reshape(6, 1), p)
    assert v == v2
    with pytest.raises(ValueError, match="y_true"):
        cls()(np.zeros((6, 2)), p)


@pytest.mark.torch
def test_regression_vs_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rs = np.random.default_rng(8)
    p = rs.standard_normal((7, 3)).astype(np.float32)
    t = rs.standard_normal((7, 3)).astype(np.float32)
    for cls, tf in ((MeanSquaredError, F.mse_loss), (MeanAbsoluteError, F.l1_loss)):
        tp = torch.tensor(p.astype(np.float64), requires_grad=True)
        tl = tf(tp, torch.tensor(t.astype(np.float64)))
        tl.backward()
        v, d = cls().value_and_grad(t, p)
        assert v == pytest.approx(tl.item(), rel=1e-5)
        compare(d, tp.grad.numpy())


# ------------------------------------------------------------ loss lookup / errors
def test_losses_get_and_config():
    names = {"categorical_crossentropy": CategoricalCrossentropy,
             "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
             "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
             "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
             "CategoricalCrossentropy": CategoricalCrossentropy}
    for name, cls in names.items():
        loss = losses.get(name)
        assert type(loss) is cls
        cfg = loss.get_config()
        again = losses.deserialize(json.loads(json.dumps(losses.serialize(loss))))
        assert again.get_config() == cfg
    assert losses.get("mse").name == "mean_squared_error"
    assert losses.get("categorical_crossentropy").name == "categorical_crossentropy"
    assert MeanSquaredError().fused_softmax is False
    inst = MeanAbsoluteError()
    assert losses.get(inst) is inst
    assert losses.get(None) is None
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        losses.get("hinge")
    with pytest.raises(ValueError):
        losses.get(lambda a, b: 0.0)
    with pytest.raises(TypeError):
        MeanSquaredError().value_and_grad_from_logits(np.zeros((2, 2)), np.zeros((2, 2)))


def test_loss_bad_input():
    probs = np.full((3, 4), 0.25, np.float32)
    sp = SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="y_true"):
        sp(np.array([0, 1, 4]), probs)
    with pytest.raises(ValueError, match="y_true"):
        sp(np.array([0, -1, 2]), probs)
    with pytest.raises(ValueError, match="y_true"):
        sp(np.array([0.5, 1, 2]), probs)
    with pytest.raises(ValueError, match="y_true"):
        sp(np.array([0, 1]), probs)
    with pytest.raises(TypeError, match="y_true"):
        sp(np.array([True, False, True]), probs)
    with pytest.raises(ValueError, match="y_true.*sparse"):
        CategoricalCrossentropy()(np.array([0, 1, 2]), probs)
    with pytest.raises(ValueError, match="y_pred"):
        CategoricalCrossentropy()(np.zeros(4), np.zeros(4))
    with pytest.raises(TypeError, match="y_pred"):
        MeanSquaredError()(np.zeros(3), np.zeros(3, complex))
    with pytest.raises(ValueError, match="label_smoothing"):
        CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        MeanSquaredError(reduction="sum")
    with pytest.raises(ValueError, match="from_logits"):
        SparseCategoricalCrossentropy(from_logits="yes")


# ------------------------------------------------------------ metrics
def ref_accuracy(true_labels, pred_labels):
    return sum(int(a == b) for a, b in zip(true_labels, pred_labels)) / len(true_labels)


def test_accuracy_sparse_categorical_binary():
    rs = np.random.default_rng(0)
    probs = rs.random((50, 4))
    labels = rs.integers(0, 4, 50)
    pred = [int(np.argmax(r)) for r in probs]
    expect = ref_accuracy(labels, pred)
    assert 0 < expect < 1
    assert metrics.accuracy(labels, probs) == pytest.approx(expect)
    assert metrics.accuracy(labels.reshape(-1, 1), probs) == pytest.approx(expect)
    assert metrics.accuracy(onehot(labels, 4), probs) == pytest.approx(expect)
    assert metrics.accuracy(labels.astype(np.uint8), probs.astype(np.float32)) == pytest.approx(expect)
    # binary: sigmoid outputs thresholded at 0.5
    s = rs.random((40, 1))
    yb = rs.integers(0, 2, 40)
    expect_b = ref_accuracy(yb, [int(v > 0.5) for v in s[:, 0]])
    assert metrics.accuracy(yb, s) == pytest.approx(expect_b)
    assert metrics.accuracy(yb.reshape(-1, 1).astype(np.float32), s) == pytest.approx(expect_b)
    # integer predictions are labels
    assert metrics.accuracy(labels, np.array(pred)) == pytest.approx(expect)
    assert np.isnan(metrics.accuracy(np.zeros(0, int), np.zeros((0, 3))))
    with pytest.raises(ValueError, match="y_true"):
        metrics.accuracy(np.zeros(3, int), np.zeros((4, 3)))


def ref_confusion(t, p, k):
    m = np.zeros((k, k), np.int64)
    for a, b in zip(t, p):
        m[a, b] += 1
    return m


def test_confusion_matrix():
    rs = np.random.default_rng(1)
    t = rs.integers(0, 5, 200)
    p = rs.integers(0, 5, 200)
    cm = metrics.confusion_matrix(t, p)
    assert cm.dtype == np.int64 and cm.shape == (5, 5)
    np.testing.assert_array_equal(cm, ref_confusion(t, p, 5))
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p, num_classes=7), ref_confusion(t, p, 7))
    probs = rs.random((200, 5))
    np.testing.assert_array_equal(metrics.confusion_matrix(onehot(t, 5), probs),
                                  ref_confusion(t, probs.argmax(1), 5))
    # rows = true class
    cm = metrics.confusion_matrix([0, 0, 1], [1, 1, 1])
    assert cm[0, 1] == 2 and cm[1, 1] == 1 and cm.sum() == 3
    assert metrics.confusion_matrix(np.zeros(0, int), np.zeros(0, int), num_classes=3).sum() == 0
    with pytest.raises(ValueError, match="num_classes"):
        metrics.confusion_matrix(t, p, num_classes=3)
    with pytest.raises(ValueError, match="y_pred"):
        metrics.confusion_matrix(t, p[:-1])
    with pytest.raises(ValueError, match=">= 0"):
        metrics.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(ValueError, match="num_classes"):
        metrics.confusion_matrix(t, p, num_classes=0)


def test_regression_metrics():
    rs = np.random.default_rng(2)
    t = rs.standard_normal(30)
    p = rs.standard_normal((30, 1)).astype(np.float32)
    d = p[:, 0].astype(np.float64) - t
    assert metrics.rmse(t, p) == pytest.approx(np.sqrt(np.mean(d ** 2)))
    assert metrics.mae(t, p) == pytest.approx(np.mean(np.abs(d)))
    assert metrics.mse(t, p) == pytest.approx(np.mean(d ** 2))
    assert isinstance(metrics.rmse(t, p), float)
    with pytest.raises(ValueError, match="y_true"):
        metrics.mae(np.zeros(3), np.zeros(4))


def test_metrics_get():
    acc = metrics.get("accuracy")
    assert acc.__name__ == "accuracy" and acc.direction == "up"
    assert metrics.get("acc").__name__ == "acc"  # Keras 3 keys History by the given string
    assert acc([0, 1], np.array([[0.9, 0.1], [0.2, 0.8]])) == 1.0
    for name in ("mae", "mse", "rmse", "mean_absolute_error"):
        f = metrics.get(name)
        assert f.__name__ == name and f.direction == "down"
    assert metrics.get("rmse")([0.0, 0.0], [3.0, 4.0]) == pytest.approx(np.sqrt(12.5))
    assert metrics.accuracy.__name__ == "accuracy"  # the module function is not renamed
    with pytest.raises(ValueError, match="accuracy"):
        metrics.get("f1")


# ------------------------------------------------------------ regularizers
@pytest.mark.parametrize("reg,l1,l2", [(regularizers.l1(0.3), 0.3, 0.0), (regularizers.l2(0.2), 0.0, 0.2),
                                       (regularizers.l1_l2(l1=0.05, l2=0.1), 0.05, 0.1),
                                       (regularizers.L2(), 0.0, 0.01), (regularizers.L1(), 0.01, 0.0),
                                       (regularizers.l1_l2(), 0.0, 0.0)])
def test_regularizer_value_and_gradient(reg, l1, l2):
    rs = np.random.default_rng(3)
    w = rs.standard_normal((5, 7)).astype(np.float32)
    w64 = w.astype(np.float64)
    assert reg(w) == pytest.approx(l1 * np.abs(w64).sum() + l2 * (w64 ** 2).sum(), rel=1e-6, abs=1e-12)
    dw = rs.standard_normal(w.shape).astype(np.float32)
    base = dw.copy()
    out = reg.add_gradient(w, dw)
    assert out is dw
    added = dw.astype(np.float64) - base
    compare(added, l1 * np.sign(w64) + 2 * l2 * w64, floor=1e-3)
    if l1 or l2:
        fd_check(lambda x: reg(x), w64, 1.0, added, eps=1e-3, name="dpenalty")
    reg.add_gradient(w, dw)  # the scratch buffer is reused
    compare(dw.astype(np.float64) - base, 2 * (l1 * np.sign(w64) + 2 * l2 * w64), floor=1e-3)


def test_regularizer_api():
    assert regularizers.l1 is regularizers.L1 and regularizers.l1_l2 is regularizers.L1L2
    assert regularizers.L1().l1 == 0.01 and regularizers.L2().l2 == 0.01
    assert regularizers.l1_l2().get_config() == {"l1": 0.0, "l2": 0.0}
    r = regularizers.l1_l2(l1=0.1, l2=0.2)
    assert regularizers.deserialize(json.loads(json.dumps(regularizers.serialize(r)))) == r
    assert regularizers.L2.from_config({"l2": 0.5}).l2 == 0.5
    assert regularizers.get(None) is None
    assert regularizers.get(r) is r
    assert type(regularizers.get("l2")) is regularizers.L2
    assert type(regularizers.get("L1L2")) is regularizers.L1L2
    assert regularizers.get({"class_name": "L1", "config": {"l1": 0.5}}).l1 == 0.5
    with pytest.raises(ValueError, match="l1"):
        regularizers.get("l3")
    for bad in (-0.1, float("nan"), "x", True):
        with pytest.raises(ValueError, match="l2"):
            regularizers.L2(bad)
    with pytest.raises(ValueError, match="dw"):
        r.add_gradient(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match="w"):
        r(np.zeros(3, complex))
    assert regularizers.l2(0.1)(np.zeros((0, 3), np.float32)) == 0.0
