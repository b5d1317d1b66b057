"""Metrics: plain NumPy functions returning Python floats (or an int64 matrix).

    accuracy(y_true, y_pred)                       # fraction correct
    confusion_matrix(y_true, y_pred, num_classes=None)  # int64 (K, K), rows = true class
    rmse(y_true, y_pred); mae(y_true, y_pred); mse(y_true, y_pred)
    metrics.get("accuracy")                        # function; its __name__ is the History key

Decisions:

- accuracy follows Keras' choice for metrics=["accuracy"]: if y_pred has a last
  axis of size K > 1 it compares argmax(y_pred) with y_true, where y_true is either
  integer labels (shape (N,) or (N, 1): sparse categorical accuracy) or one-hot rows
  shaped like y_pred (categorical accuracy, argmax of y_true). If y_pred is (N,) or
  (N, 1): a float y_pred is thresholded at 0.5 (binary accuracy; y_true compared as
  0/1), an integer y_pred is taken as predicted labels and compared with y_true.
  An empty input gives nan.
- confusion_matrix takes label arrays; an (N, K) array (probabilities or one-hot) is
  reduced by argmax first. K = num_classes, else 1 + the largest label seen in either
  array. Negative labels, or labels >= num_classes, raise ValueError.
- metrics.get(name) accepts "accuracy"/"acc", "mae"/"mean_absolute_error",
  "mse"/"mean_squared_error", "rmse"/"root_mean_squared_error" and returns a function
  whose __name__ is the string given (Keras 3 keys History by the identifier the
  user passed: metrics=["acc"] gives "acc" and "val_acc"). Each returned function
  has ``direction`` = "up" or "down", which callbacks use for mode="auto".
"""
from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "confusion_matrix", "rmse", "mae", "mse", "get"]


def _real(x, name):
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    return a


def _labels_1d(a, name):
    """Class labels from an (N,), (N, 1) label array or an (N, K) score array."""
    a = _real(a, name)
    if a.ndim == 2 and a.shape[1] > 1:
        return np.argmax(a, axis=1)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name}: expected labels (N,), (N, 1) or scores (N, K), got shape {a.shape}")
    if a.dtype.kind == "f":
        if a.size and (not np.all(np.isfinite(a)) or np.any(a != np.floor(a))):
            raise ValueError(f"{name}: float labels must hold whole class indices")
    return a.astype(np.int64)


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions (see the module docstring for the rules)."""
    t = _real(y_true, "y_true")
    p = _real(y_pred, "y_pred")
    if p.ndim >= 2 and p.shape[-1] > 1:
        pred = np.argmax(p, axis=-1)
        if t.shape == p.shape:
            true = np.argmax(t, axis=-1)
        elif t.shape == p.shape[:-1] or t.shape == p.shape[:-1] + (1,):
            true = t.reshape(p.shape[:-1])
        else:
            raise ValueError(f"y_true: expected labels of shape {p.shape[:-1]} or one-hot rows of "
                             f"shape {p.shape}, got {t.shape}")
    else:
        if p.ndim >= 2 and p.shape[-1] == 1:
            p = p.reshape(p.shape[:-1])
        if t.shape != p.shape:
            if t.ndim == p.ndim + 1 and t.shape[-1] == 1:
                t = t.reshape(p.shape)
            else:
                raise ValueError(f"y_true: shape {t.shape} does not match y_pred's shape {p.shape}")
        if p.dtype.kind == "f":
            pred = (p > 0.5).astype(np.int64)
            true = (t > 0.5).astype(np.int64) if t.dtype.kind == "f" else t
        else:
            pred, true = p, t
    if pred.size == 0:
        return float("nan")
    return float(np.mean(true == pred))


def confusion_matrix(y_true, y_pred, num_classes=None) -> np.ndarray:
    """int64 (K, K) counts: entry [i, j] = samples of true class i predicted as j."""
    t = _labels_1d(y_true, "y_true")
    p = _labels_1d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_pred: {p.shape[0]} labels, but y_true has {t.shape[0]}")
    if t.size and (t.min() < 0 or p.min() < 0):
        raise ValueError("y_true/y_pred: class labels must be >= 0")
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if num_classes is None:
        k = seen
    else:
        if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 1:
            raise ValueError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
        k = int(num_classes)
        if seen > k:
            raise ValueError(f"num_classes: {k}, but a label {seen - 1} was seen")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def _diff(y_true, y_pred):
    p = _real(y_pred, "y_pred").astype(np.float64)
    t = _real(y_true, "y_true").astype(np.float64)
    if t.shape != p.shape:
        a, b = t.shape, p.shape
        if (len(a) == len(b) + 1 and a[-1] == 1 and a[:-1] == b) or \
           (len(b) == len(a) + 1 and b[-1] == 1 and b[:-1] == a):
            t = t.reshape(b)
        else:
            raise ValueError(f"y_true: shape {a} does not match y_pred's shape {b}")
    return p - t


def mse(y_true, y_pred) -> float:
    d = _diff(y_true, y_pred)
    return float(np.mean(d * d)) if d.size else float("nan")


def rmse(y_true, y_pred) -> float:
    d = _diff(y_true, y_pred)
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def mae(y_true, y_pred) -> float:
    d = _diff(y_true, y_pred)
    return float(np.mean(np.abs(d))) if d.size else float("nan")


_BY_NAME = {
    "accuracy": (accuracy, "up"), "acc": (accuracy, "up"),
    "mae": (mae, "down"), "mean_absolute_error": (mae, "down"),
    "mse": (mse, "down"), "mean_squared_error": (mse, "down"),
    "rmse": (rmse, "down"), "root_mean_squared_error": (rmse, "down"),
}


def _named(fn, name, direction):
    def metric(y_true, y_pred):
        return fn(y_true, y_pred)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = fn.__doc__
    metric.direction = direction
    return metric


def get(identifier):
    """A metric function from its name (see the module docstring), or a callable
    (returned as is)."""
    if isinstance(identifier, str):
        entry = _BY_NAME.get(identifier.lower())
        if entry is None:
            raise ValueError(f"metric: unknown name {identifier!r}; expected one of {sorted(_BY_NAME)}")
        return _named(entry[0], identifier, entry[1])
    if callable(identifier):
        return identifier
    raise ValueError(f"metric: expected a name in {sorted(_BY_NAME)} or a callable, got {identifier!r}")
