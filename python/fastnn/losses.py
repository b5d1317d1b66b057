"""Keras-shaped losses with their gradients (every loss is a mean over the batch).

Interface used by the model::

    loss = losses.get("categorical_crossentropy")
    value = loss(y_true, y_pred)                       # Python float, Keras call order
    value, dy_pred = loss.value_and_grad(y_true, y_pred)
    if loss.fused_softmax and last_activation == "softmax":
        value, dlogits = loss.value_and_grad_from_logits(y_true, logits)

Decisions:

- Reduction is Keras' default "sum_over_batch_size": the per-sample losses are
  averaged. For the cross-entropies a "sample" is a row of the last axis (y_pred
  (N, K) or (N, T, K)); for mse/mae the mean runs over all elements (equal to
  Keras' mean over the last axis then over the batch).
- Cross-entropy on probabilities follows Keras exactly: y_pred is renormalised so
  each row sums to 1, clipped to [eps, 1 - eps] with eps = 1e-7, then
  -sum(y_true * log(p)). ``value_and_grad`` returns the exact gradient of that value
  w.r.t. the unnormalised y_pred (zero where the clip is active), computed in float64
  and returned as float32 shaped like y_pred.
- ``value_and_grad_from_logits`` (the fused softmax + cross-entropy path the model
  uses when the last layer's activation is softmax) is the exact log-softmax loss via
  ``ops.softmax_cross_entropy``; it does not clip at 1e-7, which is what Keras' TF
  backend does too (it reads the logits behind a softmax output). dlogits =
  (softmax - y_true) / N.
- ``from_logits=True`` makes ``__call__``/``value_and_grad`` treat y_pred as logits.
  ``label_smoothing`` (CategoricalCrossentropy only, as in Keras 3) replaces y_true by
  y_true * (1 - ls) + ls / K on both paths.
- Sparse labels: integer class indices of shape (N,) or (N, 1) (or y_pred's shape
  without its last axis); float labels holding whole numbers are accepted (Keras casts
  them); labels outside [0, K) raise ValueError.
- mse / mae accept y_true (N,) with y_pred (N, 1) (and vice versa), as Keras does by
  squeezing the trailing 1; any other shape mismatch raises ValueError. They run the
  C++ kernels ``ops.mse`` / ``ops.mae``.
- An empty batch gives loss 0.0 and an empty gradient (as the ops do).
"""
from __future__ import annotations

import numpy as np

from . import ops
from . import _registry

__all__ = [
    "Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "MeanSquaredError",
    "MeanAbsoluteError", "get", "serialize", "deserialize", "EPSILON",
]

EPSILON = 1e-7  # Keras backend.epsilon(): probability clip for cross-entropy


def _as_real(x, name):
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    return a


def _match_shapes(y_true, y_pred):
    """Keras squeeze_or_expand_to_same_rank for elementwise losses: returns y_true
    reshaped to y_pred's shape, or raises."""
    if y_true.shape == y_pred.shape:
        return y_true
    a, b = y_true.shape, y_pred.shape
    if (len(a) == len(b) + 1 and a[-1] == 1 and a[:-1] == b) or \
       (len(b) == len(a) + 1 and b[-1] == 1 and b[:-1] == a):
        return y_true.reshape(b)
    raise ValueError(f"y_true: shape {a} does not match y_pred's shape {b}")


class Loss:
    """Base class. Subclasses implement ``value_and_grad``."""

    fused_softmax = False
    _default_name = "loss"

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction != "sum_over_batch_size":
            raise ValueError(f"reduction: only 'sum_over_batch_size' (the mean) is supported, "
                             f"got {reduction!r}")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name: expected a string, got {name!r}")
        self.name = name if name is not None else self._default_name
        self.reduction = reduction

    def __call__(self, y_true, y_pred) -> float:
        return self.value_and_grad(y_true, y_pred)[0]

    def value_and_grad(self, y_true, y_pred):  # pragma: no cover - abstract
        raise NotImplementedError

    def value_and_grad_from_logits(self, y_true, logits):
        raise TypeError(f"{type(self).__name__} has no fused softmax path")

    def _own_config(self):
        return {}

    def get_config(self) -> dict:
        cfg = {"class_name": type(self).__name__, "name": self.name, "reduction": self.reduction}
        cfg.update(self._own_config())
        return cfg

    @classmethod
    def from_config(cls, config):
        cfg = dict(config)
        cfg.pop("class_name", None)
        return cls(**cfg)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


# ------------------------------------------------------------ cross-entropies
def _probs_2d(y_pred):
    p = _as_real(y_pred, "y_pred")
    if p.ndim < 1 or p.shape[-1] < 1:
        raise ValueError(f"y_pred: expected shape (N, K) with K >= 1, got {p.shape}")
    if p.ndim == 1:
        raise ValueError(f"y_pred: expected shape (N, K) (class scores per row), got {p.shape}")
    return p


def _ce_prob_value_and_grad(t, p):
    """t, p: float64 (M, K). Keras probability cross-entropy and its gradient w.r.t. p."""
    m = p.shape[0]
    if m == 0:
        return 0.0, np.zeros(p.shape, np.float32)
    s = np.sum(p, axis=1, keepdims=True)
    q = p / s
    qc = np.clip(q, EPSILON, 1.0 - EPSILON)
    loss = float(-np.sum(t * np.log(qc)) / m)
    inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)
    dq = np.where(inside, -t / qc, 0.0) / m
    dp = (dq - np.sum(dq * q, axis=1, keepdims=True)) / s
    return loss, dp.astype(np.float32)


class _CrossEntropy(Loss):
    fused_softmax = True

    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size", axis=-1):
        super().__init__(name=name, reduction=reduction)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise ValueError(f"from_logits: expected a bool, got {from_logits!r}")
        if axis != -1:
            raise ValueError(f"axis: only -1 (the last axis) is supported, got {axis!r}")
        self.from_logits = bool(from_logits)
        self.axis = -1

    # subclass: y_true -> labels for ops (int (M,) or float32 (M, K)), and float64 (M, K) targets
    def _targets(self, y_true, pred_shape, onehot):  # pragma: no cover - abstract
        raise NotImplementedError

    def value_and_grad(self, y_true, y_pred):
        if self.from_logits:
            return self.value_and_grad_from_logits(y_true, y_pred)
        p = _probs_2d(y_pred)
        k = p.shape[-1]
        t = self._targets(y_true, p.shape, onehot=True)
        loss, dp = _ce_prob_value_and_grad(t, p.reshape(-1, k).astype(np.float64))
        return loss, dp.reshape(p.shape)

    def value_and_grad_from_logits(self, y_true, logits):
        z = _probs_2d(logits)
        k = z.shape[-1]
        labels = self._targets(y_true, z.shape, onehot=False)
        loss, dz = ops.softmax_cross_entropy(z.reshape(-1, k), labels)
        return float(loss), dz.reshape(z.shape)

    def _own_config(self):
        return {"from_logits": self.from_logits}


class CategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy with one-hot / probability targets y_true shaped like y_pred."""

    _default_name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None):
        super().__init__(from_logits=from_logits, name=name, reduction=reduction, axis=axis)
        ls = label_smoothing
        if isinstance(ls, (bool, np.bool_)) or not isinstance(ls, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(ls) <= 1.0:
            raise ValueError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(ls)

    def _targets(self, y_true, pred_shape, onehot):
        t = _as_real(y_true, "y_true")
        if t.shape != tuple(pred_shape):
            hint = (" (integer class labels need sparse_categorical_crossentropy, or "
                    "fastnn.data.to_categorical)" if t.ndim == len(pred_shape) - 1 or
                    (t.ndim == len(pred_shape) and t.shape[-1] == 1) else "")
            raise ValueError(f"y_true: expected one-hot/probability rows of shape "
                             f"{tuple(pred_shape)} like y_pred, got {t.shape}{hint}")
        k = pred_shape[-1]
        t = t.reshape(-1, k).astype(np.float64 if onehot else np.float32)
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + self.label_smoothing / k
            if not onehot:
                t = t.astype(np.float32)
        return t

    def _own_config(self):
        cfg = super()._own_config()
        cfg["label_smoothing"] = self.label_smoothing
        cfg["axis"] = self.axis
        return cfg


class SparseCategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy with integer class labels y_true of shape (N,) or (N, 1)."""

    _default_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None):
        super().__init__(from_logits=from_logits, name=name, reduction=reduction)

    def _targets(self, y_true, pred_shape, onehot):
        y = np.asarray(y_true)
        if y.dtype.kind not in "iuf":
            raise TypeError(f"y_true: expected integer class labels, got dtype {y.dtype}")
        m = int(np.prod(pred_shape[:-1]))
        k = int(pred_shape[-1])
        ok_shapes = {tuple(pred_shape[:-1]), tuple(pred_shape[:-1]) + (1,)}
        if y.shape not in ok_shapes:
            raise ValueError(f"y_true: expected class labels of shape {tuple(pred_shape[:-1])} "
                             f"or {tuple(pred_shape[:-1]) + (1,)} for y_pred {tuple(pred_shape)}, "
                             f"got {y.shape}")
        y = y.reshape(m)
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.floor(y)):
                raise ValueError("y_true: float labels must hold whole class indices")
        if m and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"y_true: class labels must lie in [0, {k}), got range "
                             f"[{y.min()}, {y.max()}]")
        labels = y.astype(np.int64)
        if not onehot:
            return labels
        t = np.zeros((m, k), np.float64)
        t[np.arange(m), labels] = 1.0
        return t


# ------------------------------------------------------------ regression losses
class _Elementwise(Loss):
    _kernel = None

    def value_and_grad(self, y_true, y_pred):
        p = _as_real(y_pred, "y_pred")
        t = _match_shapes(_as_real(y_true, "y_true"), p)
        loss, d = type(self)._kernel(p, t)
        return float(loss), d.reshape(p.shape)


class MeanSquaredError(_Elementwise):
    """mean((y_pred - y_true)^2); gradient 2 (y_pred - y_true) / size."""

    _default_name = "mean_squared_error"
    _kernel = staticmethod(ops.mse)


class MeanAbsoluteError(_Elementwise):
    """mean(|y_pred - y_true|); gradient sign(y_pred - y_true) / size."""

    _default_name = "mean_absolute_error"
    _kernel = staticmethod(ops.mae)


# ------------------------------------------------------------ lookup
_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}
_BY_CLASS = {c.__name__: c for c in set(_BY_NAME.values())}


def serialize(loss: Loss) -> dict:
    if not isinstance(loss, Loss):
        raise TypeError(f"loss: expected a Loss, got {type(loss).__name__}")
    cfg = loss.get_config()
    return {"class_name": cfg.pop("class_name"), "config": cfg}


def deserialize(config) -> Loss:
    cls, cfg = _registry.from_config(config, _BY_CLASS, _BY_NAME, "loss")
    return cls(**cfg)


def get(identifier):
    """None -> None; a Loss instance -> itself; a name (Keras string, or class name) ->
    a new instance; a config dict -> deserialize."""
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _registry.class_for_name(identifier, _BY_CLASS, _BY_NAME, "loss")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"loss: expected a name in {sorted(_BY_NAME)}, a Loss instance or a "
                     f"config dict, got {identifier!r} (plain functions have no gradient)")
