"""The Layer base class: argument checking, weight specs, and the forward/backward contract.

A layer never owns its parameter memory: the model gathers every layer's weight
specs, allocates one flat float32 arena for the trainable parameters (and one for
their gradients, and one for non-trainable state), and hands each layer views into
them. ``forward(x, training)`` returns the output and keeps what ``backward``
needs; ``backward(dy, need_dx)`` writes the parameter gradients into the gradient
views and returns dx (or None).
"""
from __future__ import annotations

import math

import operator
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from .. import initializers


@dataclass
class WeightSpec:
    name: str
    shape: tuple
    initializer: object
    trainable: bool = True
    regularizer: object = None
    value: np.ndarray = field(default=None, repr=False)   # view into the model's arena
    grad: np.ndarray = field(default=None, repr=False)    # view into the gradient arena (trainable only)


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("2_d", "2d").replace("_l_s_t_m", "_lstm")


def check_int(value, name, minimum=1):
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}") from None
    if isinstance(value, bool) or v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return v


def check_pair(value, name, minimum=1):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
        return (check_int(value[0], name, minimum), check_int(value[1], name, minimum))
    v = check_int(value, name, minimum)
    return (v, v)


def check_shape(value, name):
    if value is None:
        return None
    if isinstance(value, int):
        value = (value,)
    try:
        shape = tuple(check_int(v, name, 1) if v is not None else None for v in value)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of ints, got {value!r}") from None
    if not shape:
        raise ValueError(f"{name}: expected a non-empty shape, got {value!r}")
    return shape


class Layer:
    """Base class of all layers (Keras-shaped)."""

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None, **kwargs):
        if "batch_input_shape" in kwargs:
            bis = kwargs.pop("batch_input_shape")
            input_shape = tuple(bis[1:])
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{type(self).__name__}: dtype: only float32 is supported, got {dtype!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a string, got {type(name).__name__}")
        self.name = name
        self.input_shape_arg = check_shape(input_shape, "input_shape")
        self.trainable = bool(trainable)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.weights: list[WeightSpec] = []
        # Per-call state: forward keeps what backward needs on self.ctx (never on self),
        # so that a layer called at several nodes of a graph keeps one context per node;
        # the model points ctx at the node's context before each forward and backward.
        self.ctx = SimpleNamespace()
        # False: store_grad writes the gradient; True: it adds (a later node of a shared
        # layer in the same backward pass). Set by the model.
        self._grad_accumulate = False

    # -- construction ------------------------------------------------------
    def default_name(self):
        return _snake(type(self).__name__)

    def build(self, input_shape):
        """Sets self.input_shape/output_shape (without the batch axis) and declares weights."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def add_weight(self, name, shape, initializer, trainable=True, regularizer=None):
        spec = WeightSpec(name, tuple(int(s) for s in shape), initializers.get(initializer),
                          trainable and self.trainable, regularizer)
        self.weights.append(spec)
        return spec

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def count_params(self):
        return int(sum(math.prod(w.shape) for w in self.weights))

    # -- computation ---------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy, need_dx=True):
        raise NotImplementedError

    def store_grad(self, spec, value):
        """Gives spec its gradient from this call: written on the layer's first backward
        of a step, added on later ones (a shared layer); nothing for a frozen weight."""
        if spec.grad is None or not spec.trainable:
            return
        if self._grad_accumulate:
            spec.grad += value
        else:
            spec.grad[...] = value

    def regularization_loss(self):
        total = 0.0
        for w in self.weights:
            if w.regularizer is not None and w.trainable:
                total += float(w.regularizer(w.value))
        return total

    def add_regularization_gradients(self):
        for w in self.weights:
            if w.regularizer is not None and w.trainable:
                w.regularizer.add_gradient(w.value, w.grad)

    # -- config ----------------------------------------------------------------
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable}
        if self.input_shape_arg is not None:
            cfg["input_shape"] = list(self.input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} output_shape={self.output_shape}>"
