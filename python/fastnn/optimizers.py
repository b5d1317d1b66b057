"""Keras-3-shaped optimizers over one flat float32 parameter arena.

A model keeps all its trainable parameters in ONE flat float32 array (the arena)
and its gradients in a second array of the same length, so an optimizer step is a
single fused C++ pass (``fastnn.ops.*_update``) over every parameter.

Interface used by the model::

    opt = optimizers.get("rmsprop")        # or an instance: optimizers.Adam(1e-3)
    opt.build(params, slots)               # params: 1-D float32 arena (writable);
                                           # slots: [(offset, size), ...] per variable,
                                           # in Keras weight order
    opt.apply(params, grads)               # clip (in place on grads), one fused update,
                                           # iterations += 1
    opt.learning_rate = 5e-4               # settable (callbacks use it)
    state = opt.get_state(); opt.set_state(state)   # exact resume

Decisions (the lead and DESIGN.md readers should know):

- Update formulas are Keras 3's (see csrc/include/fastnn/optim.hpp). RMSprop puts
  epsilon inside the square root as Keras 3 does. The fused kernels have no RMSprop
  ``momentum``/``centered`` and no Adam ``amsgrad``: those arguments are accepted
  only at their inactive defaults (``momentum=0.0``, ``centered=False``,
  ``amsgrad=False``); anything else raises ValueError.
- Clipping follows Keras 3: at most ONE of ``clipnorm``, ``clipvalue`` and
  ``global_clipnorm`` may be set (ValueError otherwise). ``clipnorm`` clips each
  variable (slot) separately: g *= clipnorm / max(||g||, clipnorm);
  ``global_clipnorm`` does the same with the norm of the whole arena;
  ``clipvalue`` clamps every element to [-clipvalue, clipvalue]. Clipping is done
  IN PLACE on the ``grads`` array passed to ``apply`` (no arena-sized temporary),
  so that array must be a writable C-contiguous float32 array. When the norm does
  not exceed the threshold the gradient is left untouched (Keras multiplies by
  clipnorm/clipnorm, which can differ by one ulp).
- ``weight_decay`` is Keras 3's decoupled decay, p -= p * weight_decay * lr, fused
  into the update. It applies to the WHOLE arena: the arena must hold only
  trainable parameters (never BatchNorm running statistics), since decay and
  momentum would move values whose gradient is zero.
- The update covers the whole arena in one call. ``slots`` only defines the
  per-variable groups for ``clipnorm``; slots must lie inside the arena and must not
  overlap (gaps are allowed: they are updated but not per-variable clipped).
- ``apply`` before ``build`` builds with one slot covering the arena (Keras builds
  on the first apply as well).
- ``learning_rate`` is a Python float (validated finite and >= 0). The kernels use it
  rounded to float32, as Keras stores it in a float32 variable. Learning-rate
  schedules/callables are not supported (use callbacks.ReduceLROnPlateau).
- ``lr=`` is accepted as a deprecated alias of ``learning_rate`` (with a
  DeprecationWarning) because older Keras notebooks use it; ``decay=0``/``None`` is
  accepted and ignored (Keras 3 ignores it); a nonzero ``decay`` raises ValueError
  (it is not implemented, and silently ignoring it would change training).
- State array names (``get_state``): SGD "momentum" (only when momentum > 0),
  RMSprop "velocity" (running mean of g^2), Adam "momentum" and "velocity", Adagrad
  "accumulator", Adadelta "accumulated_grad" and "accumulated_delta_var"; plus
  "iterations" as a 0-d int64 array. ``get_state`` returns copies.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, List, Tuple

import numpy as np

from . import ops
from . import _registry

__all__ = [
    "Optimizer", "SGD", "RMSprop", "Adam", "Adagrad", "Adadelta",
    "get", "serialize", "deserialize", "from_config",
]


# ---------------------------------------------------------------- validation
def _real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


def _nonneg(value, name):
    v = _real(value, name)
    if v < 0:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return v


def _positive_or_none(value, name):
    if value is None:
        return None
    v = _real(value, name)
    if v <= 0:
        raise ValueError(f"{name}: expected a number > 0 (or None), got {value!r}")
    return v


def _unit_open(value, name):
    v = _real(value, name)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return v


def _check_arena(a, name, n=None):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy float32 array, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name}: expected dtype float32, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D arena, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},) (the built arena), got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")


# ---------------------------------------------------------------- base class
class Optimizer:
    """Base class: hyperparameters, clipping, state handling.

    Subclasses define ``_state_names``, ``_init_state(n)`` and ``_update(params, grads)``
    (one fused ``ops.*_update`` call) and ``_own_config()``."""

    _state_names: Tuple[str, ...] = ()
    _default_name = "optimizer"

    def __init__(self, learning_rate=0.001, *, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        if "lr" in kwargs:
            lr = kwargs.pop("lr")
            warnings.warn("`lr` is deprecated, use `learning_rate`", DeprecationWarning,
                          stacklevel=3)
            if learning_rate is not None and learning_rate != self._default_lr():
                raise ValueError("learning_rate: given twice (as learning_rate and lr)")
            learning_rate = lr
        decay = kwargs.pop("decay", None)
        if decay is not None and _real(decay, "decay") != 0.0:
            raise ValueError("decay: time-based learning-rate decay is not supported "
                             f"(got decay={decay!r}); use callbacks.ReduceLROnPlateau")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {sorted(kwargs)}")
        self._lr = _nonneg(learning_rate, "learning_rate")
        self.weight_decay = None if weight_decay is None else _nonneg(weight_decay, "weight_decay")
        self.clipnorm = _positive_or_none(clipnorm, "clipnorm")
        self.clipvalue = _positive_or_none(clipvalue, "clipvalue")
        self.global_clipnorm = _positive_or_none(global_clipnorm, "global_clipnorm")
        n_clip = sum(a is not None for a in (self.clipnorm, self.clipvalue, self.global_clipnorm))
        if n_clip > 1:
            raise ValueError(
                "Only one of clipnorm, clipvalue and global_clipnorm can be set (Keras 3). "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name: expected a string, got {name!r}")
        self.name = name if name is not None else self._default_name
        self.iterations = 0
        self.built = False
        self._n = 0
        self._slots: List[Tuple[int, int]] = []
        self._state: Dict[str, np.ndarray] = {}
        self._checked_params = self._checked_grads = None  # arenas that passed the checks

    @classmethod
    def _default_lr(cls):
        return 0.001

    # -- learning rate ------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._lr = _nonneg(value, "learning_rate")

    @property
    def _wd(self) -> float:
        return self.weight_decay if self.weight_decay is not None else 0.0

    # -- build / apply ------------------------------------------------------
    def build(self, params, slots=None):
        """Allocate the state arrays for the arena ``params`` (1-D float32).

        ``slots``: list of (offset, size) per variable (Keras weight order); None means
        one variable covering the arena. Rebuilding resets the state and iterations."""
        _check_arena(params, "params")
        n = int(params.shape[0])
        if slots is None:
            slots = [(0, n)]
        checked = []
        try:
            items = list(slots)
        except TypeError:
            raise TypeError("slots: expected a list of (offset, size) pairs") from None
        for i, s in enumerate(items):
            try:
                off, size = s
            except (TypeError, ValueError):
                raise ValueError(f"slots[{i}]: expected an (offset, size) pair, got {s!r}") from None
            for v, what in ((off, "offset"), (size, "size")):
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                    raise ValueError(f"slots[{i}]: {what} must be an integer, got {v!r}")
            off, size = int(off), int(size)
            if off < 0 or size < 0 or off + size > n:
                raise ValueError(f"slots[{i}]: (offset={off}, size={size}) lies outside the "
                                 f"arena of {n} elements")
            checked.append((off, size))
        order = sorted(checked)
        for (o1, s1), (o2, _) in zip(order, order[1:]):
            if o1 + s1 > o2:
                raise ValueError(f"slots: variables overlap (offset {o1} size {s1} and offset {o2})")
        self._n = n
        self._checked_params = self._checked_grads = None
        self._slots = checked
        self._state = self._init_state(n)
        self.iterations = 0
        self.built = True

    def apply(self, params, grads):
        """One optimizer step: clip ``grads`` in place, one fused update of ``params``
        (in place), then ``iterations += 1``."""
        if not self.built:
            self.build(params)
        if params is not self._checked_params or grads is not self._checked_grads:
            _check_arena(params, "params", self._n)
            _check_arena(grads, "grads", self._n)
            # the same two arrays next step (a model's arenas) are not checked again
            self._checked_params, self._checked_grads = params, grads
        if self.clipnorm is not None:
            c = self.clipnorm
            for off, size in self._slots:
                if size == 0:
                    continue
                g = grads[off:off + size]
                norm = ops.global_norm(g)
                if norm > c:
                    ops.scale_(g, c / norm)
        elif self.global_clipnorm is not None:
            norm = ops.global_norm(grads)
            if norm > self.global_clipnorm:
                ops.scale_(grads, self.global_clipnorm / norm)
        elif self.clipvalue is not None:
            ops.clip_by_value_(grads, self.clipvalue)
        self._update(params, grads)
        self.iterations += 1

    # subclass hooks
    def _init_state(self, n) -> Dict[str, np.ndarray]:
        return {}

    def _update(self, params, grads):  # pragma: no cover - abstract
        raise NotImplementedError

    def _own_config(self) -> dict:
        return {}

    # -- state --------------------------------------------------------------
    @property
    def variables(self) -> List[np.ndarray]:
        """The state arrays (live, not copies) in a fixed order."""
        return [self._state[k] for k in self._state]

    def get_state(self) -> Dict[str, np.ndarray]:
        """{name: float32 (n,) copy} for every state array, plus 'iterations' (0-d int64)."""
        out = {k: v.copy() for k, v in self._state.items()}
        out["iterations"] = np.array(self.iterations, dtype=np.int64)
        return out

    def set_state(self, state):
        """Restore arrays from ``get_state`` (after ``build``). Names and shapes are checked."""
        if not self.built:
            raise ValueError("set_state: the optimizer is not built; call build(params, slots) first")
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict, got {type(state).__name__}")
        expected = set(self._state) | {"iterations"}
        got = set(state)
        if got != expected:
            raise ValueError(f"state: expected keys {sorted(expected)}, got {sorted(got)}")
        it = np.asarray(state["iterations"])
        if it.size != 1 or it.dtype.kind not in "iu" or int(it.reshape(())) < 0:
            raise ValueError(f"state['iterations']: expected an integer >= 0 (a 0-d int64 array), "
                             f"got {state['iterations']!r}")
        it = it.reshape(())
        arrays = {}
        for k in self._state:
            a = np.asarray(state[k])
            if a.dtype.kind not in "fiu":
                raise TypeError(f"state[{k!r}]: expected a float array, got dtype {a.dtype}")
            if a.shape != (self._n,):
                raise ValueError(f"state[{k!r}]: expected shape ({self._n},), got {a.shape}")
            arrays[k] = a
        for k, a in arrays.items():
            np.copyto(self._state[k], a, casting="unsafe")
        self.iterations = int(it)

    # -- config -------------------------------------------------------------
    def get_config(self) -> dict:
        cfg = {
            "class_name": type(self).__name__,
            "name": self.name,
            "learning_rate": self._lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }
        cfg.update(self._own_config())
        return cfg

    @classmethod
    def from_config(cls, config):
        cfg = dict(config)
        cname = cfg.pop("class_name", cls.__name__)
        if cls is not Optimizer and cname != cls.__name__:
            raise ValueError(f"config: class_name {cname!r} does not match {cls.__name__}")
        if cls is Optimizer:
            return deserialize(config)
        return cls(**cfg)

    def __repr__(self):
        own = ", ".join(f"{k}={v!r}" for k, v in self._own_config().items())
        return f"{type(self).__name__}(learning_rate={self._lr!r}{', ' + own if own else ''})"


# ---------------------------------------------------------------- optimizers
class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum, Keras 3 semantics:
    v = momentum * v - lr * g; p += v (nesterov: p += momentum * v - lr * g)."""

    _default_name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, *, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        m = _real(momentum, "momentum")
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1], got {momentum!r}")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov: expected a bool, got {nesterov!r}")
        self.momentum = m
        self.nesterov = bool(nesterov)

    @classmethod
    def _default_lr(cls):
        return 0.01

    def _init_state(self, n):
        return {"momentum": np.zeros(n, np.float32)} if self.momentum > 0 else {}

    def _update(self, params, grads):
        ops.sgd_update(params, grads, self._state.get("momentum"), lr=self._lr,
                       momentum=self.momentum, nesterov=self.nesterov, weight_decay=self._wd)

    def _own_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop, Keras 3 semantics: v = rho v + (1 - rho) g^2; p -= lr g / sqrt(v + epsilon).

    ``momentum`` and ``centered`` exist only at their inactive defaults (0.0, False):
    the fused kernel implements plain RMSprop."""

    _default_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 *, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.rho = _unit_open(rho, "rho")
        if _real(momentum, "momentum") != 0.0:
            raise ValueError(f"momentum: RMSprop momentum is not supported by the fused kernel "
                             f"(only 0.0), got {momentum!r}")
        if centered not in (False, 0):
            raise ValueError(f"centered: centered RMSprop is not supported (only False), got {centered!r}")
        self.epsilon = _nonneg(epsilon, "epsilon")

    def _init_state(self, n):
        return {"velocity": np.zeros(n, np.float32)}

    def _update(self, params, grads):
        ops.rmsprop_update(params, grads, self._state["velocity"], lr=self._lr, rho=self.rho,
                           epsilon=self.epsilon, weight_decay=self._wd)

    def _own_config(self):
        return {"rho": self.rho, "momentum": 0.0, "epsilon": self.epsilon, "centered": False}


class Adam(Optimizer):
    """Adam, Keras 3 semantics (epsilon added to sqrt(v), bias correction folded into
    the step size). ``amsgrad`` exists only at its default False."""

    _default_name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, *, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1 = _unit_open(beta_1, "beta_1")
        self.beta_2 = _unit_open(beta_2, "beta_2")
        self.epsilon = _nonneg(epsilon, "epsilon")
        if amsgrad not in (False, 0):
            raise ValueError(f"amsgrad: AMSGrad is not supported (only False), got {amsgrad!r}")

    def _init_state(self, n):
        return {"momentum": np.zeros(n, np.float32), "velocity": np.zeros(n, np.float32)}

    def _update(self, params, grads):
        ops.adam_update(params, grads, self._state["momentum"], self._state["velocity"],
                        lr=self._lr, step=self.iterations + 1, beta_1=self.beta_1,
                        beta_2=self.beta_2, epsilon=self.epsilon, weight_decay=self._wd)

    def _own_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": False}


class Adagrad(Optimizer):
    """Adagrad, Keras 3 semantics: acc += g^2; p -= lr g / sqrt(acc + epsilon), with
    acc starting at ``initial_accumulator_value``."""

    _default_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, *,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.initial_accumulator_value = _nonneg(initial_accumulator_value,
                                                 "initial_accumulator_value")
        self.epsilon = _nonneg(epsilon, "epsilon")

    def _init_state(self, n):
        return {"accumulator": np.full(n, self.initial_accumulator_value, np.float32)}

    def _update(self, params, grads):
        ops.adagrad_update(params, grads, self._state["accumulator"], lr=self._lr,
                           epsilon=self.epsilon, weight_decay=self._wd)

    def _own_config(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta, Keras 3 semantics (learning_rate multiplies the Adadelta step)."""

    _default_name = "adadelta"

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, *, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.rho = _unit_open(rho, "rho")
        self.epsilon = _nonneg(epsilon, "epsilon")

    def _init_state(self, n):
        return {"accumulated_grad": np.zeros(n, np.float32),
                "accumulated_delta_var": np.zeros(n, np.float32)}

    def _update(self, params, grads):
        ops.adadelta_update(params, grads, self._state["accumulated_grad"],
                            self._state["accumulated_delta_var"], lr=self._lr, rho=self.rho,
                            epsilon=self.epsilon, weight_decay=self._wd)

    def _own_config(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


# ---------------------------------------------------------------- lookup
_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adagrad": Adagrad,
            "adadelta": Adadelta}
_BY_CLASS = {c.__name__: c for c in _BY_NAME.values()}


def serialize(optimizer: Optimizer) -> dict:
    """Keras-style {'class_name': ..., 'config': {...}} (JSON-able)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected an Optimizer, got {type(optimizer).__name__}")
    cfg = optimizer.get_config()
    cls = cfg.pop("class_name")
    return {"class_name": cls, "config": cfg}


def deserialize(config) -> Optimizer:
    """Inverse of ``serialize`` / ``get_config``: accepts {'class_name', 'config'} or the
    flat ``get_config()`` dict (which carries 'class_name')."""
    cls, cfg = _registry.from_config(config, _BY_CLASS, _BY_NAME, "optimizer")
    return cls(**cfg)


from_config = deserialize


def get(identifier) -> Optimizer:
    """An Optimizer instance (returned as is), a name ('sgd' | 'rmsprop' | 'adam' |
    'adagrad' | 'adadelta', case-insensitive: a new instance with Keras defaults) or a
    config dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"optimizer: unknown name {identifier!r}; expected one of "
                             f"{sorted(_BY_NAME)} (or an Optimizer instance)")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"optimizer: expected an Optimizer instance, a name in {sorted(_BY_NAME)} "
                     f"or a config dict, got {identifier!r}")
