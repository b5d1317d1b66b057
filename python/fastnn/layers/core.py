"""Core layers: Input, Dense, Activation, Flatten, Dropout (+ the activation table)."""
from __future__ import annotations

import math

import numpy as np

from .. import _core, ops, regularizers as _regularizers
from .base import Layer, check_int, check_shape


# ---------------------------------------------------------------------------
# Activations: name -> (forward(z) -> y, backward(dy, z, y) -> dz, keep) where keep
# says which of z / y the backward needs.

def _linear_bwd(dy, z, y):
    return dy


ACTIVATIONS = {
    "linear": (lambda z: z, _linear_bwd, None),
    "relu": (ops.relu, lambda dy, z, y: ops.relu_backward(dy, y), "y"),
    "sigmoid": (ops.sigmoid, lambda dy, z, y: ops.sigmoid_backward(dy, z), "z"),
    "tanh": (ops.tanh, lambda dy, z, y: ops.tanh_backward(dy, z), "z"),
    "softmax": (ops.softmax, lambda dy, z, y: ops.softmax_backward(dy, y), "y"),
}


def get_activation(identifier):
    if identifier is None:
        return "linear"
    if isinstance(identifier, str) and identifier.lower() in ACTIVATIONS:
        return identifier.lower()
    raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)} or None, got {identifier!r}")


class _Activated(Layer):
    """Shared forward/backward of a layer with an optional activation after it."""

    def _set_activation(self, activation):
        self.activation = get_activation(activation)
        self.emit_logits = False  # set by the model when the loss takes the pre-softmax output
        self._logits_out = False  # whether the last training forward returned logits

    def _activate(self, z, training):
        name = self.activation
        self._logits_out = self.emit_logits and training and name == "softmax"
        if name == "linear" or self._logits_out:
            self._z = self._y = None
            return z
        fwd, _, keep = ACTIVATIONS[name]
        y = fwd(z)
        if training:
            self._z = z if keep == "z" else None
            self._y = y if keep == "y" else None
        return y

    def _activation_backward(self, dy):
        name = self.activation
        if name == "linear" or self._logits_out:
            return dy
        return ACTIVATIONS[name][1](dy, self._z, self._y)


class InputLayer(Layer):
    """Declares the input shape (without the batch axis); computes nothing."""

    def __init__(self, shape=None, input_shape=None, **kwargs):
        super().__init__(input_shape=shape if shape is not None else input_shape, **kwargs)
        if self.input_shape_arg is None:
            raise ValueError("Input: shape: expected a tuple of positive ints, got None")

    def forward(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy if need_dx else None

    def get_config(self):
        cfg = super().get_config()
        cfg["shape"] = cfg.pop("input_shape")
        return cfg


def Input(shape, name=None):
    return InputLayer(shape=shape, name=name)


class Dense(_Activated):
    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_int(units, "units")
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer, regularizer=self.bias_regularizer)
                     if self.use_bias else None)

    def forward(self, x, training=False):
        b = self.bias.value if self.use_bias else None
        if self.activation == "relu":
            y = _core.dense_relu(x, self.kernel.value, b)
            if training:
                self._x, self._y, self._z = x, y, None
            return y
        z = ops.dense(x, self.kernel.value, b)
        if training:
            self._x = x
        return self._activate(z, training)

    def backward(self, dy, need_dx=True):
        dz = self._activation_backward(dy)
        dx, dw, db = ops.dense_backward(dz, self._x, self.kernel.value, need_dx=need_dx, need_db=self.use_bias)
        self.kernel.grad[...] = dw
        if self.use_bias:
            self.bias.grad[...] = db
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                   kernel_initializer=_init_cfg(self.kernel_initializer),
                   bias_initializer=_init_cfg(self.bias_initializer),
                   kernel_regularizer=_reg_cfg(self.kernel_regularizer),
                   bias_regularizer=_reg_cfg(self.bias_regularizer))
        return cfg


class Activation(_Activated):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._set_activation(activation)

    def forward(self, x, training=False):
        return self._activate(x, training)

    def backward(self, dy, need_dx=True):
        return self._activation_backward(dy) if need_dx else None

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = self.activation
        return cfg


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...) in row-major (h, w, c) order, as Keras does."""

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)   # Python ints: no int64 wrap-around

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))   # (not -1: N may be 0)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape) if need_dx else None


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if target_shape is None:
            raise TypeError("Reshape: target_shape: expected a tuple of ints, got None")
        self.target_shape = check_shape(target_shape, "target_shape")

    def compute_output_shape(self, input_shape):
        if math.prod(input_shape) != math.prod(self.target_shape):
            raise ValueError(f"Reshape: target_shape {self.target_shape} does not match input {input_shape}")
        return self.target_shape

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape((x.shape[0],) + self.target_shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape) if need_dx else None

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = list(self.target_shape)
        return cfg


def _mix_seed(*words):
    """A 63-bit seed from integers (splitmix64 finalizer), for per-epoch dropout streams."""
    h = 0x9E3779B97F4A7C15
    for w in words:
        h = (h ^ (int(w) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
        h = h * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


class Dropout(Layer):
    """Inverted dropout. Masks come from a counter-based stream keyed by
    (layer seed, epoch, position of the sample in the epoch's order)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise TypeError(f"Dropout: rate: expected a float in [0, 1), got {rate!r}") from None
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate: expected a float in [0, 1), got {rate}")
        if noise_shape is not None:
            raise ValueError("Dropout: noise_shape is not supported")
        self.rate = rate
        self.seed = None if seed is None else check_int(seed, "seed", 0)
        self.stream_seed = 0      # fixed by the model at build time
        self.epoch = 0            # set by the model during fit
        self.sample_offset = 0    # set by the model per batch

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        seed = _mix_seed(self.stream_seed, self.epoch)
        y, self._mask = ops.dropout(x, self.rate, seed, sample_offset=self.sample_offset)
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._mask is None:
            return dy
        return ops.dropout_backward(dy, self._mask, self.rate)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(rate=self.rate, seed=self.seed)
        return cfg


def _init_cfg(init):
    from .. import initializers
    return initializers.get(init).get_config()


def _reg_cfg(reg):
    # with its class name, so that from_config (and models.load) can rebuild it
    return None if reg is None else _regularizers.serialize(reg)
