"""Data utilities: one-hot labels, splits, scalers, sliding windows and image augmentation.

Everything here is vectorized NumPy (loops run over batches, never over elements or
pixels); the image warp of :class:`ImageDataGenerator` is the C++ batch kernel
``fastnn._core.affine_warp`` (bilinear, OpenMP over samples).

Decisions (the contract is DESIGN.md's "Data" block; where it is silent):

- ``to_categorical`` follows Keras: labels of shape (N,) or (N, 1) give (N, K); other
  shapes get a trailing class axis. Float labels are accepted when they hold whole
  numbers. Labels < 0 or >= num_classes raise ValueError.
- ``train_test_split(*arrays, test_size=None, train_size=None, random_state=None,
  shuffle=True, stratify=None)`` is scikit-learn's: the same sizes (test_size 0.25 when
  both are None; a float test fraction rounds up, a train fraction down), the same
  errors, and for the same int ``random_state`` the same rows (a RandomState permutation,
  the first n_test rows for test; stratified: scikit-learn's StratifiedShuffleSplit draw
  order). Before this the default test_size was 0.1 and the random stream was fastnn's.
- ``temporal_split`` puts the first ``floor(train_fraction * N)`` samples in the training
  part and never shuffles; both parts must be non-empty. ``y`` may be None in both splits
  (then the y parts are None).
- Scalers work per feature along the last axis (every other axis is reduced over); 1-D
  input is one feature and comes back 1-D. Statistics are kept in float64; float32 input
  gives float32 output, float64 gives float64, integers give float64 (as scikit-learn).
  Constant features get scale 1 (no division by zero), like scikit-learn. NaNs are
  ignored when fitting and pass through transform. Using a scaler before ``fit`` raises
  :class:`NotFittedError` (a ValueError and AttributeError, like scikit-learn's).
- ``sliding_windows`` keeps the input dtype; X is one contiguous copy made from a
  strided view.
- ``ImageDataGenerator`` follows Keras's ImageDataGenerator for the parameter ranges
  (rotation uniform in +-rotation_range degrees; zoom factors drawn independently per
  axis from [1 - z, 1 + z] or from a (lo, hi) pair, a factor > 1 showing a smaller image
  as in Keras; a shift range < 1 is a fraction of the height/width, a float >= 1 is
  pixels (uniform), an int >= 1 draws whole pixels from (-range, range), a list draws
  one of its values with a random sign; flips with probability 1/2) and composes the
  transform in Keras's order: rotate(shift(zoom(centred output coordinates))), then
  flips. Differences from Keras, on purpose: rotation and zoom are about the true image
  centre ((H-1)/2, (W-1)/2), not Keras's (H/2 + 0.5, W/2 + 0.5); fill_mode 'constant'
  blends edge pixels with cval (scipy's 'grid-constant') and 'wrap' is periodic
  (scipy's 'grid-wrap'); 'nearest' and 'reflect' are exactly scipy's modes.
- Randomness is counter-based: the parameters of a sample are a hash (splitmix64) of
  (seed, epoch, index of the sample in x), and the shuffling order of an epoch is a hash
  of (seed, epoch) - so batches do not depend on threads, on batch_size or on how many
  batches were drawn before. The seed is ``flow(seed=)``, else the generator's ``seed``,
  else ``fastnn.get_seed()`` when flow() is called.
- ``flow`` converts x once to C-contiguous float32 (no copy when it already is), yields
  (x_batch float32 (B, H, W, C), y_batch) or x_batch alone when y is None; the last batch
  of an epoch is smaller when batch_size does not divide N (as Keras). ``rescale``
  multiplies after the warp (Keras's order).
"""
from __future__ import annotations

import math
import numbers
import operator
import threading

import numpy as np

__all__ = [
    "to_categorical", "train_test_split", "temporal_split", "MinMaxScaler", "StandardScaler",
    "NotFittedError", "sliding_windows", "ImageDataGenerator", "ImageFlow",
]


# ---------------------------------------------------------------------------
# small argument helpers

def _int_arg(v, name, minimum=None):
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int, got bool")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(v).__name__}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v}")
    return v


def _real_arg(v, name, minimum=None):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {v}")
    return v


def _as_numeric(a, name):
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real-valued array, got dtype {a.dtype}")
    return a


def _length(a, name):
    if a.ndim == 0:
        raise ValueError(f"{name}: expected an array with a sample axis, got a scalar")
    return a.shape[0]


# ---------------------------------------------------------------------------
# labels

def to_categorical(labels, num_classes=None):
    """One-hot encode integer class labels (Keras semantics) -> float32.

    labels (N,) or (N, 1) -> (N, num_classes); any other shape S -> S + (num_classes,).
    num_classes defaults to max(labels) + 1."""
    y = np.asarray(labels)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.floor(y)):
            raise ValueError("labels: expected whole-number class labels, got non-integral values")
    elif y.dtype.kind not in "iu":
        raise TypeError(f"labels: expected integer class labels, got dtype {y.dtype}")
    shape = y.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = y.reshape(-1)
    if num_classes is None:
        if flat.size == 0:
            raise ValueError("labels: cannot infer num_classes from empty labels; pass num_classes")
        num_classes = int(flat.max()) + 1
    num_classes = _int_arg(num_classes, "num_classes", 1)
    if flat.size:
        lo, hi = flat.min(), flat.max()
        if lo < 0:
            raise ValueError(f"labels: expected class labels >= 0, got {lo}")
        if hi >= num_classes:
            raise ValueError(f"labels: expected class labels < num_classes={num_classes}, got {hi}")
    out = np.zeros((flat.size, num_classes), dtype=np.float32)
    out[np.arange(flat.size), flat.astype(np.intp)] = 1.0
    return out.reshape(shape + (num_classes,))


# ---------------------------------------------------------------------------
# splits

def _random_state(random_state):
    """scikit-learn's check_random_state: None -> a fresh RandomState seeded from the OS
    (fastnn never touches numpy's global one), an int -> RandomState(int), a RandomState
    or a numpy Generator is used as it is."""
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if random_state is None:
        return np.random.RandomState()
    if isinstance(random_state, (bool, np.bool_)):
        raise TypeError("random_state: expected None, an int, a numpy RandomState or Generator, got bool")
    try:
        seed = operator.index(random_state)
    except TypeError:
        raise TypeError("random_state: expected None, an int, a numpy RandomState or Generator, got "
                        f"{type(random_state).__name__}") from None
    if not 0 <= seed < 2**32:
        raise ValueError(f"random_state: expected an int in [0, 2**32), got {seed}")
    return np.random.RandomState(seed)


def _take(a, idx):
    return None if a is None else a[idx]


def _size_kind(v, name):
    """'none' | 'i' | 'f' for a train/test size (bools and other types raise)."""
    if v is None:
        return "none"
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a float in (0, 1), an int count or None, got bool")
    if isinstance(v, numbers.Integral):
        return "i"
    if isinstance(v, numbers.Real):
        if not math.isfinite(float(v)):
            raise ValueError(f"{name}: expected a float in (0, 1), got {v}")
        return "f"
    raise TypeError(f"{name}: expected a float in (0, 1), an int count or None, got {type(v).__name__}")


def _split_sizes(n, test_size, train_size):
    """(n_train, n_test) by scikit-learn's rules (_validate_shuffle_split)."""
    if test_size is None and train_size is None:
        test_size = 0.25
    kinds = {}
    for name, v in (("test_size", test_size), ("train_size", train_size)):
        k = kinds[name] = _size_kind(v, name)
        if (k == "i" and not 0 < v < n) or (k == "f" and not 0.0 < v < 1.0):
            raise ValueError(f"{name}={v} should be either positive and smaller than the number of samples "
                             f"{n} or a float in the (0, 1) range")
    kt, kr = kinds["test_size"], kinds["train_size"]
    if kt == "f" and kr == "f" and train_size + test_size > 1:
        raise ValueError(f"test_size + train_size = {train_size + test_size}: expected at most 1; reduce "
                         "test_size and/or train_size")
    n_test = math.ceil(float(test_size) * n) if kt == "f" else (int(test_size) if kt == "i" else None)
    n_train = math.floor(float(train_size) * n) if kr == "f" else (int(train_size) if kr == "i" else None)
    if n_train is None:
        n_train = n - n_test
    elif n_test is None:
        n_test = n - n_train
    if n_train + n_test > n:
        raise ValueError(f"train_size + test_size = {n_train + n_test} samples, more than the {n} samples; "
                         "reduce test_size and/or train_size")
    if n_train == 0:
        raise ValueError(f"with {n} samples, test_size={test_size} and train_size={train_size} the training "
                         "part is empty; adjust them")
    return n_train, n_test


def _approximate_mode(counts, n_draws, rs):
    """Samples per class for n_draws draws: floor of the proportional share, the rest
    given to the largest remainders, ties broken by rs.choice (scikit-learn's rule and
    random-number use, so the same RandomState gives the same counts)."""
    share = counts / counts.sum() * n_draws
    out = np.floor(share)
    need = int(n_draws - out.sum())
    if need > 0:
        rem = share - out
        for value in np.sort(np.unique(rem))[::-1]:
            (ties,) = np.where(rem == value)
            k = min(len(ties), need)
            out[rs.choice(ties, size=k, replace=False)] += 1
            need -= k
            if need == 0:
                break
    return out.astype(np.int64)


def _class_codes(s, n):
    """(class codes (n,), counts per class) with the classes in scikit-learn's order:
    sorted values for 1-D labels, rows sorted by their space-joined text for 2-D."""
    if s.ndim == 1:
        _, codes, counts = np.unique(s, return_inverse=True, return_counts=True)
        return codes.reshape(-1), counts
    rows, codes, counts = np.unique(s.reshape(n, -1), axis=0, return_inverse=True, return_counts=True)
    codes = codes.reshape(-1)
    # scikit-learn names a multi-label row by " ".join(row.astype(str)); order classes alike
    # (one string per distinct row, not per sample)
    names = np.array([" ".join(r.astype(str)) for r in rows])
    order = np.argsort(names, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[codes], counts[order]


def _stratified_indices(s, n, n_train, n_test, rs):
    codes, counts = _class_codes(s, n)
    k = counts.shape[0]
    if counts.min() < 2:
        raise ValueError("stratify: the least populated class has only 1 member; every class needs at least 2")
    if n_train < k:
        raise ValueError(f"train_size = {n_train} should be greater or equal to the number of classes = {k}")
    if n_test < k:
        raise ValueError(f"test_size = {n_test} should be greater or equal to the number of classes = {k}")
    by_class = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n_train, rs)
    t_i = _approximate_mode(counts - n_i, n_test, rs)
    train, test = [], []
    for i in range(k):  # one draw per class, in class order (scikit-learn's stream)
        members = by_class[i][rs.permutation(counts[i])]
        train.append(members[:n_i[i]])
        test.append(members[n_i[i]:n_i[i] + t_i[i]])
    return rs.permutation(np.concatenate(train)), rs.permutation(np.concatenate(test))


def train_test_split(*arrays, test_size=None, train_size=None, random_state=None, shuffle=True, stratify=None):
    """Split arrays into random train and test parts, as scikit-learn's train_test_split:
    ``a_train, a_test, b_train, b_test, ... = train_test_split(a, b, ...)``.

    test_size / train_size: a float in (0, 1) (fraction; test rounded up, train down), an
    int count, or None (the complement of the other; both None: test_size=0.25).
    random_state: None, an int, a numpy RandomState (or Generator). For the same int the
    rows are exactly scikit-learn's. shuffle=False takes the first n_train rows for
    training and the next n_test for test. stratify: class labels (N,) or rows (N, K)
    whose proportions both parts keep (needs shuffle=True). An entry of arrays may be
    None: both of its parts are None."""
    if not arrays:
        raise ValueError("train_test_split: expected at least one array")
    arrs = [None if a is None else np.asarray(a) for a in arrays]
    present = [(i, a) for i, a in enumerate(arrs) if a is not None]
    if not present:
        raise ValueError("train_test_split: expected at least one array that is not None")
    name = lambda i: "x" if i == 0 else ("y" if i == 1 else f"arrays[{i}]")  # noqa: E731
    n = _length(present[0][1], name(present[0][0]))
    for i, a in present[1:]:
        if _length(a, name(i)) != n:
            raise ValueError(f"{name(i)}: expected {n} samples to match {name(present[0][0])}, got {a.shape[0]}")
    n_train, n_test = _split_sizes(n, test_size, train_size)
    if not shuffle:
        if stratify is not None:
            raise ValueError("stratify: a stratified split needs shuffle=True")
        tr, te = np.arange(n_train), np.arange(n_train, n_train + n_test)
    else:
        rs = _random_state(random_state)
        if stratify is None:
            perm = rs.permutation(n)
            te, tr = perm[:n_test], perm[n_test:n_test + n_train]
        else:
            s = np.asarray(stratify)
            if _length(s, "stratify") != n:
                raise ValueError(f"stratify: expected {n} labels to match x, got {s.shape[0]}")
            if s.ndim > 2:
                raise ValueError(f"stratify: expected labels (N,) or rows (N, K), got shape {s.shape}")
            tr, te = _stratified_indices(s, n, n_train, n_test, rs)
    out = []
    for a in arrs:
        out += [_take(a, tr), _take(a, te)]
    return out


def temporal_split(x, y, train_fraction=0.7):
    """Split time-ordered data without shuffling: the first floor(train_fraction * N)
    samples are the training part, the rest the test part. -> x_tr, x_te, y_tr, y_te."""
    x = np.asarray(x)
    n = _length(x, "x")
    if y is not None:
        y = np.asarray(y)
        if _length(y, "y") != n:
            raise ValueError(f"y: expected {n} samples to match x, got {y.shape[0]}")
    f = _real_arg(train_fraction, "train_fraction")
    if not 0.0 < f < 1.0:
        raise ValueError(f"train_fraction: expected a fraction in (0, 1), got {train_fraction}")
    n_train = int(math.floor(f * n + 1e-9))
    if n_train < 1 or n_train > n - 1:
        raise ValueError(f"train_fraction={train_fraction} with {n} samples leaves an empty part")
    return (x[:n_train], x[n_train:], None if y is None else y[:n_train],
            None if y is None else y[n_train:])


# ---------------------------------------------------------------------------
# scalers

class NotFittedError(ValueError, AttributeError):
    """A scaler was used before fit()."""


class _Scaler:
    def __init__(self):
        self.n_features_in_ = None

    def _check_fitted(self):
        if self.n_features_in_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(data) before "
                                 "transform / inverse_transform")

    @staticmethod
    def _prepare(a, name):
        a = _as_numeric(a, name)
        if a.ndim == 0:
            raise ValueError(f"{name}: expected a 1-D or N-D array, got a scalar")
        one_d = a.ndim == 1
        out_dtype = a.dtype if a.dtype.kind == "f" and a.dtype.itemsize >= 4 else np.float64
        if a.dtype == np.float16:
            out_dtype = np.float32
        a2 = a.reshape(-1, 1) if one_d else a.reshape(-1, a.shape[-1])
        return a2, one_d, np.dtype(out_dtype), a.shape

    def _check_features(self, a2, name):
        if a2.shape[1] != self.n_features_in_:
            raise ValueError(f"{name}: expected {self.n_features_in_} feature(s) in the last axis "
                             f"(as fitted), got {a2.shape[1]}")

    def fit(self, data):
        a2, _, _, _ = self._prepare(data, "data")
        if a2.shape[0] == 0:
            raise ValueError(f"data: {type(self).__name__}.fit needs at least one sample")
        self._fit(a2.astype(np.float64))
        self.n_features_in_ = a2.shape[1]
        return self

    def transform(self, data):
        self._check_fitted()
        a2, _, dt, shape = self._prepare(data, "data")
        self._check_features(a2, "data")
        return self._forward(a2.astype(np.float64)).astype(dt, copy=False).reshape(shape)

    def fit_transform(self, data):
        return self.fit(data).transform(data)

    def inverse_transform(self, data):
        self._check_fitted()
        a2, _, dt, shape = self._prepare(data, "data")
        self._check_features(a2, "data")
        return self._inverse(a2.astype(np.float64)).astype(dt, copy=False).reshape(shape)


class MinMaxScaler(_Scaler):
    """Scale each feature to feature_range: x * scale_ + min_ (scikit-learn's formula).

    Attributes after fit: data_min_, data_max_, data_range_, scale_, min_, n_features_in_."""

    def __init__(self, feature_range=(0, 1), clip=False):
        super().__init__()
        try:
            lo, hi = feature_range
        except (TypeError, ValueError):
            raise ValueError(f"feature_range: expected a pair (min, max), got {feature_range!r}") from None
        lo, hi = _real_arg(lo, "feature_range"), _real_arg(hi, "feature_range")
        if not lo < hi:
            raise ValueError(f"feature_range: expected min < max, got {feature_range!r}")
        self.feature_range = (lo, hi)
        self.clip = bool(clip)

    def _fit(self, a):
        with np.errstate(invalid="ignore"), _quiet_nan():
            dmin = np.nanmin(a, axis=0)
            dmax = np.nanmax(a, axis=0)
        rng = dmax - dmin
        lo, hi = self.feature_range
        safe = np.where(rng == 0.0, 1.0, rng)
        self.data_min_, self.data_max_, self.data_range_ = dmin, dmax, rng
        self.scale_ = (hi - lo) / safe
        self.min_ = lo - dmin * self.scale_

    def _forward(self, a):
        out = a * self.scale_ + self.min_
        if self.clip:
            out = np.clip(out, *self.feature_range)
        return out

    def _inverse(self, a):
        return (a - self.min_) / self.scale_


class StandardScaler(_Scaler):
    """Standardize each feature: (x - mean_) / scale_ with scale_ the population standard
    deviation (1 for constant features). Attributes after fit: mean_, var_, scale_."""

    def __init__(self, with_mean=True, with_std=True):
        super().__init__()
        self.with_mean = bool(with_mean)
        self.with_std = bool(with_std)

    def _fit(self, a):
        with np.errstate(invalid="ignore"), _quiet_nan():
            mean = np.nanmean(a, axis=0)
            var = np.nanvar(a, axis=0)
            n = np.sum(~np.isnan(a), axis=0)
        eps = np.finfo(np.float64).eps
        constant = var <= (n * eps * mean) ** 2  # zero up to the rounding of the mean
        self.mean_ = mean if self.with_mean else np.zeros_like(mean)
        self.var_ = var
        self.scale_ = np.where(constant, 1.0, np.sqrt(var)) if self.with_std else np.ones_like(var)

    def _forward(self, a):
        return (a - self.mean_) / self.scale_

    def _inverse(self, a):
        return a * self.scale_ + self.mean_


class _quiet_nan:
    """Silences numpy's all-NaN-slice RuntimeWarnings during fit."""

    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


# ---------------------------------------------------------------------------
# sliding windows

def sliding_windows(series, lookback, horizon=1):
    """Supervised windows of a series: X[i] = series[i : i + lookback] and
    y[i] = series[i + lookback + horizon - 1].

    series (T,) or (T, F) -> X (N, lookback, F), y (N, F) with N = T - lookback - horizon + 1
    (F = 1 for 1-D input). The dtype is kept."""
    s = np.asarray(series)
    if s.dtype.kind not in "fiu":
        raise TypeError(f"series: expected a real-valued array, got dtype {s.dtype}")
    if s.ndim == 1:
        s = s.reshape(-1, 1)
    elif s.ndim != 2:
        raise ValueError(f"series: expected shape (T,) or (T, F), got {s.shape}")
    lookback = _int_arg(lookback, "lookback", 1)
    horizon = _int_arg(horizon, "horizon", 1)
    t, f = s.shape
    n = t - lookback - horizon + 1
    if n < 1:
        raise ValueError(f"series: length {t} is too short for lookback={lookback} and horizon={horizon} "
                         f"(needs at least {lookback + horizon})")
    view = np.lib.stride_tricks.as_strided(s, shape=(n, lookback, f),
                                           strides=(s.strides[0], s.strides[0], s.strides[1]),
                                           writeable=False)
    x = np.array(view, copy=True, order="C")
    y = s[lookback + horizon - 1:].copy()
    return x, y


# ---------------------------------------------------------------------------
# counter-based random numbers (splitmix64), vectorized

_U64 = np.uint64
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_TAG_TRANSFORM = 0x5A1E7F0A3C2D1B09
_TAG_SHUFFLE = 0x2C6FE3B41D8A9057
_MASK64 = (1 << 64) - 1


def _mix64(z):
    z = (z ^ (z >> _U64(30))) * _MIX1
    z = (z ^ (z >> _U64(27))) * _MIX2
    return z ^ (z >> _U64(31))


def _stream_key(seed, epoch, tag):
    """A 64-bit key for (seed, epoch, purpose)."""
    with np.errstate(over="ignore"):
        k = _mix64(np.array([(int(seed) ^ tag) & _MASK64], dtype=_U64))
        k = _mix64(k + _U64(int(epoch) & _MASK64) * _GOLDEN)
    return k


def _uniforms(key, index, n_slots):
    """(len(index), n_slots) float64 uniforms in [0, 1), a pure function of (key, index, slot)."""
    with np.errstate(over="ignore"):
        h = _mix64(key ^ (np.asarray(index, dtype=np.int64).astype(_U64) * _GOLDEN))
        slots = (np.arange(1, n_slots + 1, dtype=_U64) * _MIX2)[None, :]
        bits = _mix64(h[:, None] + slots)
    return (bits >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _epoch_order(seed, epoch, n):
    """The shuffled sample order of one epoch: argsort of per-index hashes."""
    key = _stream_key(seed, epoch, _TAG_SHUFFLE)
    with np.errstate(over="ignore"):
        h = _mix64(key ^ (np.arange(n, dtype=_U64) * _GOLDEN))
    return np.argsort(h, kind="stable")


# ---------------------------------------------------------------------------
# image augmentation

_FILL_MODES = ("nearest", "constant", "reflect", "wrap")
# uniform slots per sample
_S_ROT, _S_TX, _S_TY, _S_ZY, _S_ZX, _S_FH, _S_FV, _S_TXS, _S_TYS = range(9)
_N_SLOTS = 9


def _shift_spec(v, name):
    """('none'|'uniform'|'int'|'choice', values array) for a Keras shift range."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a float, an int or a list of numbers, got bool")
    if isinstance(v, numbers.Integral):
        v = int(v)
        if v < 0:
            raise ValueError(f"{name}: expected a value >= 0, got {v}")
        return ("none", None) if v == 0 else ("int", float(v))
    if isinstance(v, numbers.Real):
        v = _real_arg(v, name, 0.0)
        return ("none", None) if v == 0 else ("uniform", v)
    try:
        vals = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a float, an int or a list of numbers, got {v!r}") from None
    if vals.size == 0 or not np.all(np.isfinite(vals)):
        raise ValueError(f"{name}: expected a non-empty list of finite numbers, got {v!r}")
    return "choice", vals


def _shift_values(spec, u, u_sign, size):
    kind, v = spec
    if kind == "none":
        return np.zeros_like(u)
    if kind == "uniform":
        t = (2.0 * u - 1.0) * v
        return t * size if v < 1 else t
    sign = np.where(u_sign < 0.5, -1.0, 1.0)
    if kind == "int":  # Keras: choice(range) * choice([-1, 1])
        return np.minimum(np.floor(u * v), v - 1) * sign
    t = v[np.minimum((u * v.size).astype(np.int64), v.size - 1)] * sign
    return t * size if np.max(v) < 1 else t


class ImageDataGenerator:
    """Random affine augmentation of NHWC image batches (Keras's ImageDataGenerator).

    rotation_range: degrees, uniform in [-r, r]. zoom_range: z -> factors in [1-z, 1+z]
    per axis, or a (lo, hi) pair. width_shift_range / height_shift_range: fraction of the
    width/height when < 1, pixels when >= 1 (Keras's rule). horizontal_flip / vertical_flip:
    each with probability 1/2. fill_mode: 'nearest' (default) | 'constant' | 'reflect' |
    'wrap'; cval: the constant-mode fill value. rescale: multiply the result by this.
    seed: the default seed of flow(); see the module docstring for determinism."""

    def __init__(self, rotation_range=0, zoom_range=0, width_shift_range=0, height_shift_range=0,
                 horizontal_flip=False, vertical_flip=False, fill_mode="nearest", cval=0.0, seed=None,
                 rescale=None):
        self.rotation_range = _real_arg(rotation_range, "rotation_range", 0.0)
        if isinstance(zoom_range, (bool, np.bool_)):
            raise TypeError("zoom_range: expected a float or a (lo, hi) pair, got bool")
        if isinstance(zoom_range, numbers.Real):
            z = _real_arg(zoom_range, "zoom_range", 0.0)
            lo, hi = 1.0 - z, 1.0 + z
        else:
            try:
                lo, hi = zoom_range
            except (TypeError, ValueError):
                raise ValueError(f"zoom_range: expected a float or a (lo, hi) pair, got {zoom_range!r}") from None
            lo, hi = _real_arg(lo, "zoom_range"), _real_arg(hi, "zoom_range")
            if lo > hi:
                raise ValueError(f"zoom_range: expected lo <= hi, got {zoom_range!r}")
        self.zoom_range = (lo, hi)
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self._wshift = _shift_spec(width_shift_range, "width_shift_range")
        self._hshift = _shift_spec(height_shift_range, "height_shift_range")
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"fill_mode: expected one of {', '.join(map(repr, _FILL_MODES))}, got {fill_mode!r}")
        self.fill_mode = fill_mode
        self.cval = _real_arg(cval, "cval")
        self.seed = None if seed is None else _int_arg(seed, "seed", 0)
        self.rescale = None if rescale is None else _real_arg(rescale, "rescale")
        self._calls = 0

    # -- parameters ---------------------------------------------------------
    @property
    def _has_affine(self):
        return (self.rotation_range > 0 or self.zoom_range != (1.0, 1.0) or self._wshift[0] != "none"
                or self._hshift[0] != "none")

    @property
    def _is_identity(self):
        return not (self._has_affine or self.horizontal_flip or self.vertical_flip)

    def _params(self, seed, epoch, index, h, w):
        """Per-sample parameters (arrays over index), Keras's names: theta (degrees), tx
        (rows, from height_shift_range), ty (columns), zx (columns), zy (rows), flips."""
        u = _uniforms(_stream_key(seed, epoch, _TAG_TRANSFORM), index, _N_SLOTS)
        n = u.shape[0]
        theta = (2.0 * u[:, _S_ROT] - 1.0) * self.rotation_range if self.rotation_range > 0 else np.zeros(n)
        tx = _shift_values(self._hshift, u[:, _S_TX], u[:, _S_TXS], h)
        ty = _shift_values(self._wshift, u[:, _S_TY], u[:, _S_TYS], w)
        lo, hi = self.zoom_range
        if lo == 1.0 and hi == 1.0:
            zx = zy = np.ones(n)
        else:
            zx = lo + (hi - lo) * u[:, _S_ZX]
            zy = lo + (hi - lo) * u[:, _S_ZY]
        fh = (u[:, _S_FH] < 0.5) if self.horizontal_flip else np.zeros(n, bool)
        fv = (u[:, _S_FV] < 0.5) if self.vertical_flip else np.zeros(n, bool)
        return {"theta": theta, "tx": tx, "ty": ty, "zx": zx, "zy": zy,
                "flip_horizontal": fh, "flip_vertical": fv}

    @staticmethod
    def _matrices(p, h, w):
        """(n, 2, 3) inverse affine matrices (output (row, col) -> input (row, col))."""
        t = np.deg2rad(np.asarray(p["theta"], np.float64).reshape(-1))
        n = t.shape[0]
        cos, sin = np.cos(t), np.sin(t)
        zr = np.asarray(p["zy"], np.float64).reshape(-1) * np.ones(n)
        zc = np.asarray(p["zx"], np.float64).reshape(-1) * np.ones(n)
        tr = np.asarray(p["tx"], np.float64).reshape(-1) * np.ones(n)
        tc = np.asarray(p["ty"], np.float64).reshape(-1) * np.ones(n)
        cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
        m = np.empty((n, 2, 3))
        # src = centre + R (Z (out - centre) + t), R = [[cos, -sin], [sin, cos]]
        m[:, 0, 0] = cos * zr
        m[:, 0, 1] = -sin * zc
        m[:, 1, 0] = sin * zr
        m[:, 1, 1] = cos * zc
        m[:, 0, 2] = cr + (cos * tr - sin * tc) - (m[:, 0, 0] * cr + m[:, 0, 1] * cc)
        m[:, 1, 2] = cc + (sin * tr + cos * tc) - (m[:, 1, 0] * cr + m[:, 1, 1] * cc)
        # flips act on the transformed image: out'(r, c) = out(r, W-1-c) / out(H-1-r, c)
        fh = np.asarray(p["flip_horizontal"], bool).reshape(-1) & np.ones(n, bool)
        fv = np.asarray(p["flip_vertical"], bool).reshape(-1) & np.ones(n, bool)
        if fh.any():
            m[fh, :, 2] += m[fh, :, 1] * (w - 1)
            m[fh, :, 1] *= -1.0
        if fv.any():
            m[fv, :, 2] += m[fv, :, 0] * (h - 1)
            m[fv, :, 0] *= -1.0
        return m

    def _warp(self, x, index, matrices):
        from . import _core
        out = _core.affine_warp(x, matrices, index, fill_mode=self.fill_mode, cval=self.cval)
        if self.rescale is not None:
            out *= np.float32(self.rescale)
        return out

    def _transform_batch(self, x, index, seed, epoch):
        """Augmented copies of x[index] for the given epoch: (B, H, W, C) float32."""
        if self._is_identity:
            out = x[index]
            if self.rescale is not None:
                out *= np.float32(self.rescale)
            return out
        h, w = x.shape[1], x.shape[2]
        return self._warp(x, index, self._matrices(self._params(seed, epoch, index, h, w), h, w))

    # -- Keras-style single-image API ------------------------------------------
    def _effective_seed(self, seed):
        if seed is not None:
            return _int_arg(seed, "seed", 0)
        if self.seed is not None:
            return self.seed
        from ._runtime import get_seed
        return get_seed()

    def get_random_transform(self, img_shape, seed=None):
        """Random parameters for one image of shape (H, W[, C]) as a dict (Keras's keys:
        theta in degrees, tx/ty row/column shifts in pixels, zx/zy, flip_horizontal,
        flip_vertical). Without a seed, successive calls give fresh parameters."""
        if len(img_shape) < 2:
            raise ValueError(f"img_shape: expected (H, W) or (H, W, C), got {tuple(img_shape)}")
        if seed is None:
            index, self._calls = self._calls, self._calls + 1
        else:
            index = 0
        p = self._params(self._effective_seed(seed), 0, np.array([index]), img_shape[0], img_shape[1])
        return {k: (bool(v[0]) if v.dtype == bool else float(v[0])) for k, v in p.items()}

    def apply_transform(self, x, transform_parameters):
        """Apply a parameter dict (from get_random_transform) to one image (H, W, C) or (H, W)."""
        img = _image_array(x, "x", single=True)
        p = {"theta": 0.0, "tx": 0.0, "ty": 0.0, "zx": 1.0, "zy": 1.0,
             "flip_horizontal": False, "flip_vertical": False}
        p.update(transform_parameters)
        h, w = img.shape[1], img.shape[2]
        out = self._warp(img, None, self._matrices(p, h, w))[0]
        return out if np.ndim(x) == 3 else out[..., 0]

    def random_transform(self, x, seed=None):
        """One randomly transformed copy of an image (H, W, C) or (H, W)."""
        shape = np.shape(x)
        return self.apply_transform(x, self.get_random_transform(shape, seed=seed))

    # -- batches -------------------------------------------------------------------
    def flow(self, x, y=None, batch_size=32, shuffle=True, seed=None):
        """An endless iterator over augmented batches of x (N, H, W, C) or (N, H, W).

        Yields (x_batch, y_batch) (x_batch alone when y is None); len() is the number
        of batches per epoch, ceil(N / batch_size)."""
        return ImageFlow(self, x, y, batch_size=batch_size, shuffle=shuffle,
                         seed=self._effective_seed(seed))


def _image_array(x, name, single=False):
    """x as C-contiguous float32 (N, H, W, C) (a copy only when needed)."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real-valued image array, got dtype {a.dtype}")
    if single:
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3:
            raise ValueError(f"{name}: expected an image (H, W, C) or (H, W), got shape {a.shape}")
        a = a[None]
    else:
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4:
            raise ValueError(f"{name}: expected images (N, H, W, C) or (N, H, W), got shape {a.shape}")
    if min(a.shape[1:]) < 1:
        raise ValueError(f"{name}: expected positive image sizes, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


class ImageFlow:
    """The iterator returned by ImageDataGenerator.flow (Keras's NumpyArrayIterator).

    Attributes: n (samples), batch_size, shuffle, seed, epoch (current epoch, from 0),
    batch_index (next batch within the epoch). Thread-safe: concurrent next() calls each
    get a distinct batch."""

    def __init__(self, generator, x, y, batch_size=32, shuffle=True, seed=0):
        self.generator = generator
        self.x = _image_array(x, "x")
        self.n = self.x.shape[0]
        if self.n == 0:
            raise ValueError("x: expected at least one image, got an empty array")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0 or y.shape[0] != self.n:
                raise ValueError(f"y: expected {self.n} entries to match x, got shape {y.shape}")
        self.y = y
        self.batch_size = _int_arg(batch_size, "batch_size", 1)
        self.shuffle = bool(shuffle)
        self.seed = _int_arg(seed, "seed", 0)
        self.epoch = 0
        self.batch_index = 0
        self._order_epoch = None
        self._order = None
        self._lock = threading.Lock()

    def __len__(self):
        return -(-self.n // self.batch_size)

    def __iter__(self):
        return self

    def _epoch_indices(self, epoch):
        if not self.shuffle:
            return np.arange(self.n)
        if self._order_epoch != epoch:
            self._order = _epoch_order(self.seed, epoch, self.n)
            self._order_epoch = epoch
        return self._order

    def _batch(self, epoch, i):
        with self._lock:
            order = self._epoch_indices(epoch)
        idx = order[i * self.batch_size:(i + 1) * self.batch_size]
        xb = self.generator._transform_batch(self.x, idx, self.seed, epoch)
        return xb if self.y is None else (xb, self.y[idx])

    def __next__(self):
        with self._lock:
            epoch, i = self.epoch, self.batch_index
            order = self._epoch_indices(epoch)
            self.batch_index += 1
            if self.batch_index >= len(self):
                self.batch_index = 0
                self.epoch += 1
        idx = order[i * self.batch_size:(i + 1) * self.batch_size]
        xb = self.generator._transform_batch(self.x, idx, self.seed, epoch)
        return xb if self.y is None else (xb, self.y[idx])

    next = __next__

    def _next_part(self, ranks, rank):
        """For a distributed fit (every rank holds a copy of this flow, in the same state):
        advances over the next global batch of ranks * batch_size positions of the epoch's
        order (ceil(n / (ranks * batch_size)) per epoch) and returns this rank's contiguous
        part of it, augmented as a single flow with batch ranks * batch_size would give it:
        (x_part, y_part, first position of the part within the global batch, global batch size)."""
        from ._sharding import rank_part

        size = self.batch_size * ranks
        per_epoch = -(-self.n // size)
        with self._lock:
            if self.batch_index >= per_epoch:  # left mid-epoch by a single-process fit
                self.batch_index, self.epoch = 0, self.epoch + 1
            epoch, i = self.epoch, self.batch_index
            order = self._epoch_indices(epoch)
            self.batch_index += 1
            if self.batch_index >= per_epoch:
                self.batch_index = 0
                self.epoch += 1
        start, stop = i * size, min((i + 1) * size, self.n)
        lo, hi = rank_part(start, stop, ranks, rank)
        idx = order[lo:hi]
        xb = self.generator._transform_batch(self.x, idx, self.seed, epoch) if len(idx) else self.x[idx]
        return xb, (None if self.y is None else self.y[idx]), lo - start, stop - start

    def __getitem__(self, i):
        """Batch i of the current epoch (does not advance the iterator)."""
        i = _int_arg(i, "index")
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"batch index {i} out of range for {len(self)} batches")
        return self._batch(self.epoch, i)

    def reset(self):
        """Restart the current epoch from its first batch (Keras's reset)."""
        with self._lock:
            self.batch_index = 0

    def get_state(self):
        return {"seed": self.seed, "epoch": self.epoch, "batch_index": self.batch_index}

    def set_state(self, state):
        """Resume at state['epoch'], state['batch_index'] (e.g. fit(..., initial_epoch=k))."""
        with self._lock:
            self.seed = _int_arg(state.get("seed", self.seed), "seed", 0)
            self.epoch = _int_arg(state.get("epoch", self.epoch), "epoch", 0)
            bi = _int_arg(state.get("batch_index", 0), "batch_index", 0)
            if bi >= len(self):
                raise ValueError(f"batch_index: expected < {len(self)}, got {bi}")
            self.batch_index = bi
            self._order_epoch = None
