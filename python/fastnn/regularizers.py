"""Weight regularizers (Keras 3 names and defaults).

    reg = regularizers.l2(1e-4)          # also L2(...); l1(0.01); l1_l2(l1=0.0, l2=0.0)
    penalty = reg(w)                     # Python float: l1 * sum|w| + l2 * sum(w^2)
    reg.add_gradient(w, dw)              # dw += l1 * sign(w) + 2 * l2 * w, in place

Decisions:

- As in Keras 3, ``l1``/``l2``/``l1_l2`` are the classes ``L1``/``L2``/``L1L2``
  themselves (aliases), so ``l1_l2()`` has Keras' defaults l1 = l2 = 0.0.
- Factors must be finite numbers >= 0 (ValueError naming the argument).
- The penalty is summed in float64 (sum(w^2) by the deterministic ``ops.global_norm``
  kernel), so it does not depend on thread count. The derivative of |w| at 0 is 0.
- ``add_gradient`` works in place on a float32 ``dw`` shaped like ``w`` and reuses a
  scratch buffer per weight shape, so a training step allocates nothing after the
  first (not thread-safe: do not call one instance from several threads at once).
"""
from __future__ import annotations

import math

import numpy as np

from . import ops
from . import _registry

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize",
           "deserialize"]


def _factor(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a non-negative float, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite non-negative float, got {value!r}")
    return v


class Regularizer:
    """Base class: penalty ``__call__(w)`` and in-place ``add_gradient(w, dw)``."""

    l1 = 0.0
    l2 = 0.0

    def __init__(self):
        self._bufs = {}

    def _scratch(self, w):
        # one buffer per weight shape, so an instance shared by several layers
        # does not reallocate every step
        buf = self._bufs.get(w.shape)
        if buf is None:
            buf = self._bufs[w.shape] = np.empty(w.shape, np.float32)
        return buf

    @staticmethod
    def _as_w(w):
        a = np.asarray(w)
        if a.dtype.kind not in "fiu":
            raise TypeError(f"w: expected a real array, got dtype {a.dtype}")
        return a

    def __call__(self, w) -> float:
        a = self._as_w(w)
        total = 0.0
        if self.l2:
            total += self.l2 * ops.global_norm(a) ** 2
        if self.l1:
            a32 = a if a.dtype == np.float32 else a.astype(np.float32)
            buf = self._scratch(a32)
            np.abs(a32, out=buf)
            total += self.l1 * float(np.sum(buf, dtype=np.float64))
        return float(total)

    def add_gradient(self, w, dw):
        """dw += d(penalty)/dw, in place (dw: writable array shaped like w)."""
        a = self._as_w(w)
        if not isinstance(dw, np.ndarray) or dw.dtype.kind != "f":
            raise TypeError("dw: expected a writable float numpy array")
        if dw.shape != a.shape:
            raise ValueError(f"dw: expected shape {a.shape} (like w), got {dw.shape}")
        if not (self.l1 or self.l2):
            return dw
        buf = self._scratch(a)
        if self.l2:
            np.multiply(a, 2.0 * self.l2, out=buf, casting="unsafe")
            np.add(dw, buf, out=dw, casting="unsafe")
        if self.l1:
            np.sign(a, out=buf, casting="unsafe")
            buf *= np.float32(self.l1)
            np.add(dw, buf, out=dw, casting="unsafe")
        return dw

    def get_config(self) -> dict:  # pragma: no cover - overridden
        return {}

    @classmethod
    def from_config(cls, config):
        cfg = dict(config)
        cfg.pop("class_name", None)
        return cls(**cfg)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__


class L1(Regularizer):
    """penalty = l1 * sum(|w|)."""

    def __init__(self, l1=0.01):
        super().__init__()
        self.l1 = _factor(l1, "l1")

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """penalty = l2 * sum(w^2)."""

    def __init__(self, l2=0.01):
        super().__init__()
        self.l2 = _factor(l2, "l2")

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """penalty = l1 * sum(|w|) + l2 * sum(w^2)."""

    def __init__(self, l1=0.0, l2=0.0):
        super().__init__()
        self.l1 = _factor(l1, "l1")
        self.l2 = _factor(l2, "l2")

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


l1 = L1
l2 = L2
l1_l2 = L1L2

_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}
_BY_CLASS = {"L1": L1, "L2": L2, "L1L2": L1L2}


def serialize(reg):
    if not isinstance(reg, Regularizer):
        raise TypeError(f"regularizer: expected a Regularizer, got {type(reg).__name__}")
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config):
    cls, cfg = _registry.from_config(config, _BY_CLASS, _BY_NAME, "regularizer")
    return cls(**cfg)


def get(identifier):
    """None -> None; a Regularizer -> itself; 'l1' | 'l2' | 'l1_l2' (or class names) -> a
    new instance with Keras defaults; a dict -> deserialize."""
    if identifier is None:
        return None
    if isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        cls = _registry.class_for_name(identifier, _BY_CLASS, _BY_NAME, "regularizer")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"regularizer: expected None, a name, a Regularizer or a config dict, "
                     f"got {identifier!r}")
