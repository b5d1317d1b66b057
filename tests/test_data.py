"""fastnn.data helpers: to_categorical, splits, scalers, sliding_windows."""
import numpy as np
import pytest

from fastnn.data import (MinMaxScaler, NotFittedError, StandardScaler, sliding_windows, temporal_split,
                         to_categorical, train_test_split)


# ---------------------------------------------------------------------------
# to_categorical

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.int64, np.uint64])
@pytest.mark.parametrize("shape", [(7,), (7, 1)])
def test_to_categorical_matches_eye(dtype, shape, rng):
    labels = rng.integers(0, 5, 7).astype(dtype).reshape(shape)
    out = to_categorical(labels, 6)
    assert out.dtype == np.float32 and out.shape == (7, 6)
    np.testing.assert_array_equal(out, np.eye(6, dtype=np.float32)[labels.reshape(-1).astype(int)])


def test_to_categorical_infers_classes_and_keeps_shape(rng):
    labels = rng.integers(0, 4, (3, 5))
    labels[0, 0] = 3
    out = to_categorical(labels)
    assert out.shape == (3, 5, 4)
    np.testing.assert_array_equal(out.argmax(-1), labels)
    np.testing.assert_array_equal(out.sum(-1), 1.0)
    np.testing.assert_array_equal(to_categorical([2.0, 0.0]), [[0, 0, 1], [1, 0, 0]])
    assert to_categorical(np.zeros(0, int), 3).shape == (0, 3)


@pytest.mark.parametrize("labels,k,exc,match", [
    ([0, -1, 2], 3, ValueError, "labels"),
    ([0, 3], 3, ValueError, "num_classes"),
    ([0, 1], 0, ValueError, "num_classes"),
    ([0.5, 1], None, ValueError, "labels"),
    ([True, False], None, TypeError, "labels"),
    (["a"], None, TypeError, "labels"),
    ([], None, ValueError, "num_classes"),
])
def test_to_categorical_bad(labels, k, exc, match):
    with pytest.raises(exc, match=match):
        to_categorical(np.asarray(labels), k)


# ---------------------------------------------------------------------------
# train_test_split / temporal_split

def test_split_sizes_partition_and_alignment(rng):
    x = rng.standard_normal((103, 4))
    y = np.arange(103)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.1, random_state=0)
    assert len(x_te) == 11 and len(x_tr) == 92  # ceil(0.1 * 103), as scikit-learn
    np.testing.assert_array_equal(x_tr, x[y_tr])
    np.testing.assert_array_equal(x_te, x[y_te])
    assert sorted(np.concatenate([y_tr, y_te])) == list(range(103))
    assert not np.array_equal(y_tr, np.sort(y_tr))  # shuffled
    _, x_te2, _, _ = train_test_split(x, y, test_size=25, random_state=0)
    assert len(x_te2) == 25


def test_split_deterministic(rng):
    x = rng.standard_normal((50, 3))
    y = rng.integers(0, 3, 50)
    a = train_test_split(x, y, test_size=0.2, random_state=4)
    b = train_test_split(x, y, test_size=0.2, random_state=4)
    c = train_test_split(x, y, test_size=0.2, random_state=5)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[3], c[3]) or not np.array_equal(a[1], c[1])
    gen = train_test_split(x, y, test_size=0.2, random_state=np.random.default_rng(4))
    assert len(gen[1]) == 10


@pytest.mark.parametrize("one_hot", [False, True])
def test_stratified_split_keeps_proportions(one_hot, rng):
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    rng.shuffle(y)
    x = np.arange(200)
    strat = np.eye(4)[y] if one_hot else y
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=1, stratify=strat)
    counts = np.bincount(y_te, minlength=4)
    assert counts.sum() == 50
    exact = np.array([100, 50, 30, 20]) * 0.25
    assert np.all((counts == np.floor(exact)) | (counts == np.ceil(exact)))  # largest remainders
    np.testing.assert_array_equal(y[x_te], y_te)
    np.testing.assert_array_equal(y[x_tr], y_tr)
    assert sorted(np.concatenate([x_tr, x_te])) == list(range(200))


def test_stratified_matches_sklearn_counts(rng):
    sk = pytest.importorskip("sklearn.model_selection")
    y = np.repeat(np.arange(5), [37, 21, 13, 8, 5])
    x = np.arange(len(y))
    _, _, _, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    _, _, _, y_te_sk = sk.train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    assert len(y_te) == len(y_te_sk)
    np.testing.assert_allclose(np.bincount(y_te, minlength=5), np.bincount(y_te_sk, minlength=5), atol=1)


def _sk_split():
    return pytest.importorskip("sklearn.model_selection").train_test_split


@pytest.mark.parametrize("kw", [{}, {"test_size": 0.1}, {"test_size": 7}, {"train_size": 0.6},
                                {"train_size": 30, "test_size": 10}, {"train_size": 0.5, "test_size": 0.2},
                                {"shuffle": False}, {"shuffle": False, "test_size": 0.3}])
@pytest.mark.parametrize("seed", [0, 2, 42, 12345])
def test_split_rows_equal_sklearn(kw, seed, rng):
    sk = _sk_split()
    x = rng.standard_normal((53, 3))
    y = np.arange(53)
    w = rng.standard_normal(53)
    ours = train_test_split(x, y, w, random_state=seed, **kw)
    theirs = sk(x, y, w, random_state=seed, **kw)
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 7])
@pytest.mark.parametrize("kw", [{"test_size": 0.3}, {"test_size": 0.1}, {"train_size": 0.5}, {"test_size": 11}])
def test_stratified_rows_equal_sklearn(one_hot, seed, kw, rng):
    sk = _sk_split()
    y = rng.permutation(np.repeat(np.arange(5), [37, 21, 13, 8, 5]))
    x = np.arange(len(y))
    strat = np.eye(5)[y] if one_hot else y
    ours = train_test_split(x, y, random_state=seed, stratify=strat, **kw)
    theirs = sk(x, y, random_state=seed, stratify=strat, **kw)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_split_random_state_instance_and_string_labels(rng):
    sk = _sk_split()
    y = rng.choice(np.array(["cat", "dog", "eel"]), 40)
    x = np.arange(40)
    ours = train_test_split(x, random_state=np.random.RandomState(3), stratify=y)
    theirs = sk(x, random_state=np.random.RandomState(3), stratify=y)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_split_defaults_like_sklearn():
    x = np.arange(100)
    x_tr, x_te = train_test_split(x, random_state=0)
    assert len(x_te) == 25 and len(x_tr) == 75  # test_size=0.25 when both sizes are None
    x_tr, x_te = train_test_split(x, train_size=0.9, random_state=0)
    assert len(x_tr) == 90 and len(x_te) == 10
    # the workbook's call: 10 % validation with random_state=2, the rows of a plain
    # RandomState(2) permutation (first n_test rows are the test part)
    perm = np.random.RandomState(2).permutation(100)
    _, x_te, _, y_te = train_test_split(x, x * 10, test_size=0.1, random_state=2)
    np.testing.assert_array_equal(x_te, perm[:10])
    np.testing.assert_array_equal(y_te, perm[:10] * 10)
    # three arrays, None passes through, no shuffle keeps order
    a_tr, a_te, n_tr, n_te = train_test_split(x, None, test_size=0.2, shuffle=False)
    np.testing.assert_array_equal(a_tr, np.arange(80))
    np.testing.assert_array_equal(a_te, np.arange(80, 100))
    assert n_tr is None and n_te is None


@pytest.mark.parametrize("kw,match", [
    ({"train_size": 0.8, "test_size": 0.3}, "test_size \\+ train_size"),
    ({"train_size": 8, "test_size": 5}, "more than"),
    ({"train_size": 1.0}, "train_size"),
    ({"train_size": 0}, "train_size"),
    ({"shuffle": False, "stratify": np.arange(10) % 2}, "shuffle"),
    ({"stratify": np.arange(10) % 5, "test_size": 3}, "number of classes"),
    ({"stratify": np.arange(10) % 5, "train_size": 3}, "number of classes"),
    ({"stratify": np.zeros((10, 2, 2))}, "stratify"),
])
def test_split_bad_sizes(kw, match):
    with pytest.raises(ValueError, match=match):
        train_test_split(np.zeros((10, 2)), np.zeros(10), **kw)


def test_split_bad_arrays():
    with pytest.raises(ValueError, match="at least one"):
        train_test_split()
    with pytest.raises(ValueError, match="arrays\\[2\\]"):
        train_test_split(np.zeros(10), np.zeros(10), np.zeros(9))
    with pytest.raises(TypeError, match="train_size"):
        train_test_split(np.zeros(10), train_size=True)
    with pytest.raises(TypeError, match="random_state"):
        train_test_split(np.zeros(10), random_state=1.5)


@pytest.mark.parametrize("kw,exc,match", [
    ({"test_size": 0.0}, ValueError, "test_size"),
    ({"test_size": 1.0}, ValueError, "test_size"),
    ({"test_size": 10}, ValueError, "test_size"),
    ({"test_size": 0}, ValueError, "test_size"),
    ({"test_size": "a"}, TypeError, "test_size"),
    ({"random_state": -3}, ValueError, "random_state"),
    ({"stratify": np.array([0] * 9 + [1])}, ValueError, "stratify"),
    ({"stratify": np.zeros(4)}, ValueError, "stratify"),
])
def test_split_bad(kw, exc, match):
    with pytest.raises(exc, match=match):
        train_test_split(np.zeros((10, 2)), np.zeros(10), **kw)
    with pytest.raises(ValueError, match="y"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))


def test_temporal_split(rng):
    x = rng.standard_normal((1762, 15, 1))
    y = rng.standard_normal((1762, 1))
    x_tr, x_te, y_tr, y_te = temporal_split(x, y, 0.7)
    assert len(x_tr) == 1233  # floor(0.7 * 1762)
    np.testing.assert_array_equal(np.concatenate([x_tr, x_te]), x)
    np.testing.assert_array_equal(np.concatenate([y_tr, y_te]), y)
    a, b, c, d = temporal_split(np.arange(100), None, 0.29)
    assert len(a) == 29 and c is None and d is None
    with pytest.raises(ValueError, match="train_fraction"):
        temporal_split(x, y, 1.0)
    with pytest.raises(ValueError, match="train_fraction"):
        temporal_split(np.arange(3), None, 0.1)
    with pytest.raises(ValueError, match="y"):
        temporal_split(x, y[:5])


# ---------------------------------------------------------------------------
# scalers

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40,), (40, 1), (40, 3), (5, 8, 3)])
def test_minmax_scaler(dtype, shape, rng):
    a = (rng.standard_normal(shape) * 7 + 3).astype(dtype)
    sc = MinMaxScaler(feature_range=(-1, 2))
    out = sc.fit_transform(a)
    assert out.shape == a.shape and out.dtype == dtype
    flat = a.reshape(-1, 1 if a.ndim == 1 else a.shape[-1]).astype(np.float64)
    lo, hi = flat.min(0), flat.max(0)
    expect = -1 + 3 * (flat - lo) / (hi - lo)
    np.testing.assert_allclose(out.reshape(flat.shape), expect, rtol=1e-5, atol=1e-5)
    back = sc.inverse_transform(out)
    assert back.dtype == dtype and back.shape == a.shape
    np.testing.assert_allclose(back, a, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40,), (40, 3), (5, 8, 3)])
def test_standard_scaler(dtype, shape, rng):
    a = (rng.standard_normal(shape) * 4 - 2).astype(dtype)
    sc = StandardScaler()
    out = sc.fit_transform(a)
    assert out.shape == a.shape and out.dtype == dtype
    flat = a.reshape(-1, 1 if a.ndim == 1 else a.shape[-1]).astype(np.float64)
    expect = (flat - flat.mean(0)) / flat.std(0)
    np.testing.assert_allclose(out.reshape(flat.shape), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sc.inverse_transform(out), a, rtol=1e-5, atol=1e-5)


def test_scaler_fit_on_train_transform_other(rng):
    tr, te = rng.uniform(0, 10, (30, 2)), rng.uniform(-5, 15, (20, 2))
    sc = MinMaxScaler().fit(tr)
    np.testing.assert_allclose(sc.transform(te), (te - tr.min(0)) / (tr.max(0) - tr.min(0)))
    assert sc.transform(np.arange(6).reshape(3, 2)).dtype == np.float64  # ints -> float64


def test_constant_feature_no_division_by_zero():
    a = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]], np.float32)
    with np.errstate(all="raise"):
        m = MinMaxScaler().fit_transform(a)
        s = StandardScaler().fit_transform(a)
    np.testing.assert_array_equal(m[:, 1], 0.0)
    np.testing.assert_array_equal(s[:, 1], 0.0)
    np.testing.assert_allclose(MinMaxScaler().fit(a).inverse_transform(m), a)
    np.testing.assert_allclose(StandardScaler().fit(a).inverse_transform(s), a)


def test_scalers_vs_sklearn(rng):
    pre = pytest.importorskip("sklearn.preprocessing")
    a = rng.standard_normal((50, 4)) * [1, 10, 0, 3]
    np.testing.assert_allclose(MinMaxScaler((2, 3)).fit_transform(a), pre.MinMaxScaler((2, 3)).fit_transform(a))
    np.testing.assert_allclose(StandardScaler().fit_transform(a), pre.StandardScaler().fit_transform(a))


@pytest.mark.parametrize("cls", [MinMaxScaler, StandardScaler])
def test_scaler_errors(cls):
    sc = cls()
    for method in (sc.transform, sc.inverse_transform):
        with pytest.raises(NotFittedError, match=cls.__name__):
            method(np.zeros((3, 2)))
    assert issubclass(NotFittedError, ValueError)
    sc.fit(np.arange(12.0).reshape(4, 3))
    with pytest.raises(ValueError, match="feature"):
        sc.transform(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="data"):
        sc.fit(np.array(["a", "b"]))
    with pytest.raises(ValueError):
        cls().fit(np.zeros((0, 2)))


def test_minmax_bad_range():
    with pytest.raises(ValueError, match="feature_range"):
        MinMaxScaler((1, 1))
    with pytest.raises(ValueError, match="feature_range"):
        MinMaxScaler(5)


# ---------------------------------------------------------------------------
# sliding_windows

@pytest.mark.parametrize("shape", [(20,), (20, 1), (20, 3)])
@pytest.mark.parametrize("lookback,horizon", [(1, 1), (5, 1), (15, 1), (4, 3), (1, 19)])
def test_sliding_windows_values(shape, lookback, horizon, rng):
    s = rng.standard_normal(shape).astype(np.float32)
    x, y = sliding_windows(s, lookback, horizon)
    s2 = s.reshape(20, -1)
    n = 20 - lookback - horizon + 1
    assert x.shape == (n, lookback, s2.shape[1]) and y.shape == (n, s2.shape[1])
    assert x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable
    for i in range(n):
        np.testing.assert_array_equal(x[i], s2[i:i + lookback])
        np.testing.assert_array_equal(y[i], s2[i + lookback + horizon - 1])
    x[0] = 99  # a copy, not a view of the series
    assert not np.any(s == 99)


def test_sliding_windows_noncontiguous(rng):
    s = rng.standard_normal((30, 4))[::2, ::2]
    x, y = sliding_windows(s, 3)
    np.testing.assert_array_equal(x[2], s[2:5])
    np.testing.assert_array_equal(y[-1], s[-1])


@pytest.mark.parametrize("args,exc,match", [
    ((np.arange(10.0), 0), ValueError, "lookback"),
    ((np.arange(10.0), 3, 0), ValueError, "horizon"),
    ((np.arange(10.0), 10), ValueError, "series"),
    ((np.arange(10.0), 8, 3), ValueError, "series"),
    ((np.zeros((4, 2, 2)), 2), ValueError, "series"),
    ((np.arange(10.0), 2.5), TypeError, "lookback"),
    ((np.array(["a"] * 5), 2), TypeError, "series"),
])
def test_sliding_windows_bad(args, exc, match):
    with pytest.raises(exc, match=match):
        sliding_windows(*args)
