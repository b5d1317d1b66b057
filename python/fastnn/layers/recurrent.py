"""Recurrent layers: LSTM, GRU, SimpleRNN and the Bidirectional wrapper (Keras-shaped).

Inputs are batch-first (N, T, I); the layers call the fused kernels
``ops.lstm_forward/backward``, ``ops.gru_forward/backward`` and
``ops.rnn_forward/backward``. Weights follow Keras's order and layouts:

- LSTM: kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,), gates i, f, c, o;
  with ``unit_forget_bias=True`` the forget-gate slice bias[H:2H] starts at 1.
- GRU (``reset_after=True``, Keras's default and the cuDNN/PyTorch formula): kernel
  (I, 3H), recurrent_kernel (H, 3H), bias (2, 3H) (row 0 input bias, row 1 recurrent
  bias), gates z, r, h.
- SimpleRNN: kernel (I, H), recurrent_kernel (H, H), bias (H,).
- Bidirectional: the forward layer's weights, then the backward layer's.

Decisions:
- Only the activations the kernels implement are accepted: activation "tanh" and
  (LSTM, GRU) recurrent_activation "sigmoid"; anything else raises ValueError at
  construction. ``GRU(reset_after=False)``, ``recurrent_dropout > 0`` and
  ``stateful=True`` raise ValueError (not supported); ``unroll`` is accepted and has no
  effect (the kernels always run the fused time loop).
- ``dropout`` works as in Keras: one mask per sample over the input features, shared
  by every time step, scaled by 1/(1-rate), training only. The mask comes from
  ``ops.dropout`` keyed like the Dropout layer's: (stream seed, epoch, global sample
  index); the layer exposes ``stream_seed``, ``epoch`` and ``sample_offset`` for the
  model to set (as it does for Dropout).
- ``return_state=True`` gives several outputs, which a Sequential model (like Keras's)
  cannot pass on: building such a layer inside Sequential raises ValueError. Use it
  standalone: ``outputs = layer(x, initial_state=None)`` returns
  ``[output, h_T]`` (GRU, SimpleRNN) or ``[output, h_T, c_T]`` (LSTM) as numpy arrays;
  a standalone layer builds (and initializes) its own weights on first call, and
  ``layer.get_weights()/set_weights()`` work on it. After ``layer(x, training=True)``,
  ``layer.backward(dy, dh_T=..., dc_T=...)`` returns dx and leaves the gradients of
  the initial state in ``layer.initial_state_grads``.
- ``go_backwards=True`` processes the sequence in reverse and (as Keras) returns the
  output sequence in that reversed order. Bidirectional runs a copy of the layer with
  go_backwards flipped and reverses its output sequence back before merging, so
  position t of both halves refers to input step t. Bidirectional does not support
  return_state (ValueError).
"""
from __future__ import annotations

import numpy as np

from .. import initializers, ops
from .. import regularizers as _regularizers
from .base import Layer, check_int
from .core import _init_cfg, _mix_seed, _reg_cfg

__all__ = ["LSTM", "GRU", "SimpleRNN", "Bidirectional"]


class _UnitForgetBias(initializers.Initializer):
    """LSTM bias: the base initializer on the i, c, o slices and ones on the f slice."""
    name = "unit_forget_bias"

    def __init__(self, base):
        self.base = initializers.get(base)

    def __call__(self, shape, rng):
        h = shape[0] // 4
        return np.concatenate([self.base((h,), rng), np.ones((h,), np.float32),
                               self.base((2 * h,), rng)]).astype(np.float32)

    def get_config(self):
        return self.base.get_config()


def _rate(value, name):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a float in [0, 1), got {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name}: expected a float in [0, 1), got {value!r}")
    return v


def _act_name(value, allowed, name, layer):
    if isinstance(value, str) and value.lower() == allowed:
        return allowed
    raise ValueError(f"{layer}: {name}: only {allowed!r} is supported by the fused kernels, got {value!r}")


class _Recurrent(Layer):
    """Shared argument handling, weights, dropout and forward/backward of the RNN layers."""

    _gates = 1           # 4 for LSTM, 3 for GRU
    _has_cell = False    # LSTM carries c besides h
    _recurrent_act = False

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.units = check_int(units, "units")
        self.activation = _act_name(activation, "tanh", "activation", cls)
        self.recurrent_activation = (_act_name(recurrent_activation, "sigmoid", "recurrent_activation", cls)
                                     if self._recurrent_act else None)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = _regularizers.get(recurrent_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        self.dropout = _rate(dropout, f"{cls}: dropout")
        if _rate(recurrent_dropout, f"{cls}: recurrent_dropout") != 0.0:
            raise ValueError(f"{cls}: recurrent_dropout is not supported (the fused kernels keep h unmasked)")
        if stateful:
            raise ValueError(f"{cls}: stateful=True is not supported")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.seed = None if seed is None else check_int(seed, "seed", 0)
        self.stream_seed = 0      # set by the model at build time (or on first use)
        self.epoch = 0            # set by the model during fit
        self.sample_offset = 0    # set by the model per batch
        self._standalone = False
        self._cache = None
        self._scale = None
        self.initial_state_grads = None

    # ------------------------------------------------------------------ shapes
    def default_name(self):
        return self._default_name

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__}: expected inputs (batch, timesteps, features), "
                             f"got input shape {(None,) + tuple(input_shape)}")
        t = input_shape[0]
        return (t, self.units) if self.return_sequences else (self.units,)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        if self.return_state and not self._standalone:
            raise ValueError(f"{type(self).__name__}: return_state=True gives several outputs, which a Sequential "
                             "model cannot pass on (as in Keras); call the layer directly: "
                             "out, *states = layer(x)")
        super().build(input_shape)
        i, g = input_shape[-1], self._gates * self.units
        self.kernel = self.add_weight("kernel", (i, g), self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, g), self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_initializer(),
                                     regularizer=self.bias_regularizer) if self.use_bias else None)

    # -------------------------------------------------------------- computation
    def _dropout_scale(self, n, i):
        """(n, i) float32 multipliers (0 or 1/(1-rate)), one per sample and input feature."""
        if self.stream_seed == 0:
            self.stream_seed = (self.seed if self.seed is not None else
                                int(initializers.new_stream().integers(1, 2**62)))
        scale, _ = ops.dropout(np.ones((n, i), np.float32), self.dropout, _mix_seed(self.stream_seed, self.epoch),
                               sample_offset=self.sample_offset)
        return scale

    def _check_input(self, x):
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__}: x: expected shape (N, T, I), got {x.shape}")
        if self.built and x.shape[2] != self.input_shape[-1]:
            raise ValueError(f"{type(self).__name__}: x: expected {self.input_shape[-1]} features in the last "
                             f"axis, got shape {x.shape}")

    def _run(self, x, training, initial_state):
        x = np.asarray(x, dtype=np.float32)
        self._check_input(x)
        self._scale = None
        if training and self.dropout > 0.0 and x.shape[0] > 0:
            self._scale = self._dropout_scale(x.shape[0], x.shape[2])
            x = x * self._scale[:, None, :]
        if self.go_backwards:
            x = x[:, ::-1]
        b = self.bias.value if self.use_bias else None
        states = list(initial_state) if initial_state is not None else []
        if self._has_cell:
            h0 = states[0] if len(states) > 0 else None
            c0 = states[1] if len(states) > 1 else None
            h_seq, h_t, c_t, cache = ops.lstm_forward(x, self.kernel.value, self.recurrent_kernel.value, b,
                                                      h0, c0)
            final = [h_t, c_t]
        else:
            h0 = states[0] if states else None
            h_seq, h_t, cache = self._op_forward(x, self.kernel.value, self.recurrent_kernel.value, b, h0)
            final = [h_t]
        self._cache = cache if training else None
        return (h_seq if self.return_sequences else h_t), final

    def forward(self, x, training=False):
        return self._run(x, training, None)[0]

    def backward(self, dy, need_dx=True, dh_T=None, dc_T=None):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call forward(x, training=True) first")
        if self.return_sequences:
            dh_seq = dy
        else:
            dh_seq = None
            dh_T = dy if dh_T is None else dy + dh_T
        if self._has_cell:
            dx, dk, drk, db, dh0, dc0 = ops.lstm_backward(dh_seq, self._cache, dh_T, dc_T, need_dx=need_dx)
            self.initial_state_grads = [dh0, dc0]
        else:
            dx, dk, drk, db, dh0 = self._op_backward(dh_seq, self._cache, dh_T, need_dx=need_dx)
            self.initial_state_grads = [dh0]
        if self.kernel.grad is not None:
            self.kernel.grad[...] = dk
            self.recurrent_kernel.grad[...] = drk
            if self.use_bias:
                self.bias.grad[...] = db.reshape(self.bias.shape)
        if not need_dx:
            return None
        if self.go_backwards:
            dx = dx[:, ::-1]
        if self._scale is not None:
            dx = dx * self._scale[:, None, :]
        return np.ascontiguousarray(dx)

    # ----------------------------------------------------------- standalone use
    def __call__(self, x, initial_state=None, training=False):
        """Standalone call: the output, or [output, *final states] with return_state=True."""
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"{type(self).__name__}: x: expected a real-valued array, got dtype {x.dtype}")
        if not self.built:
            if x.ndim != 3:
                raise ValueError(f"{type(self).__name__}: x: expected shape (N, T, I), got {x.shape}")
            self._standalone = True
            self.weights = []
            self.build(x.shape[1:])
            for w in self.weights:
                w.value = np.ascontiguousarray(w.initializer(w.shape, initializers.new_stream()), np.float32)
                w.grad = np.zeros(w.shape, np.float32) if w.trainable else None
        out, final = self._run(x, training, initial_state)
        return [out] + final if self.return_state else out

    def get_weights(self):
        return [w.value.copy() for w in self.weights]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self.weights):
            raise ValueError(f"set_weights: expected {len(self.weights)} arrays, got {len(weights)}")
        for spec, a in zip(self.weights, weights):
            a = np.asarray(a)
            if a.shape != spec.shape:
                raise ValueError(f"set_weights: {spec.name}: expected shape {spec.shape}, got {a.shape}")
        for spec, a in zip(self.weights, weights):
            np.copyto(spec.value, np.asarray(a), casting="unsafe")

    # ------------------------------------------------------------------ config
    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                   kernel_initializer=_init_cfg(self.kernel_initializer),
                   recurrent_initializer=_init_cfg(self.recurrent_initializer),
                   bias_initializer=_init_cfg(self.bias_initializer),
                   kernel_regularizer=_reg_cfg(self.kernel_regularizer),
                   recurrent_regularizer=_reg_cfg(self.recurrent_regularizer),
                   bias_regularizer=_reg_cfg(self.bias_regularizer),
                   dropout=self.dropout, return_sequences=self.return_sequences,
                   return_state=self.return_state, go_backwards=self.go_backwards, unroll=self.unroll,
                   seed=self.seed)
        if self._recurrent_act:
            cfg["recurrent_activation"] = self.recurrent_activation
        return cfg


class LSTM(_Recurrent):
    """Long short-term memory (Keras's LSTM; gates i, f, c, o)."""
    _gates = 4
    _has_cell = True
    _recurrent_act = True
    _default_name = "lstm"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        return _UnitForgetBias(self.bias_initializer) if self.unit_forget_bias else self.bias_initializer

    def get_config(self):
        cfg = super().get_config()
        cfg["unit_forget_bias"] = self.unit_forget_bias
        return cfg


class GRU(_Recurrent):
    """Gated recurrent unit, Keras's reset_after=True form (gates z, r, h; bias (2, 3H))."""
    _gates = 3
    _recurrent_act = True
    _default_name = "gru"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", reset_after=True, **kwargs):
        if not reset_after:
            raise ValueError("GRU: reset_after=False is not supported; fastnn implements Keras's default "
                             "reset_after=True (the cuDNN/PyTorch formula)")
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)
        self.reset_after = True

    def _bias_shape(self):
        return (2, 3 * self.units)

    @staticmethod
    def _op_forward(*args, **kwargs):
        return ops.gru_forward(*args, **kwargs)

    @staticmethod
    def _op_backward(*args, **kwargs):
        return ops.gru_backward(*args, **kwargs)

    def get_config(self):
        cfg = super().get_config()
        cfg["reset_after"] = True
        return cfg


class SimpleRNN(_Recurrent):
    """Fully connected RNN: h_t = tanh(x_t kernel + h_{t-1} recurrent_kernel + bias)."""
    _gates = 1
    _default_name = "simple_rnn"

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, **kwargs)

    @staticmethod
    def _op_forward(*args, **kwargs):
        return ops.rnn_forward(*args, **kwargs)

    @staticmethod
    def _op_backward(*args, **kwargs):
        return ops.rnn_backward(*args, **kwargs)


_MERGE_MODES = ("concat", "sum", "mul", "ave")


class Bidirectional(Layer):
    """Runs ``layer`` forward and a copy of it on the reversed sequence; merges the two.

    Weights: the forward layer's, then the backward layer's (Keras order)."""

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"Bidirectional: layer: expected an LSTM, GRU or SimpleRNN layer, "
                            f"got {type(layer).__name__}")
        if backward_layer is not None:
            raise ValueError("Bidirectional: backward_layer is not supported (a copy of layer is used)")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode: expected one of {list(_MERGE_MODES)}, got {merge_mode!r}")
        if layer.return_state:
            raise ValueError("Bidirectional: a wrapped layer with return_state=True is not supported")
        self.merge_mode = merge_mode
        if self.input_shape_arg is None and layer.input_shape_arg is not None:
            self.input_shape_arg = layer.input_shape_arg   # Bidirectional(LSTM(8, input_shape=(T, I)))
        self.layer_config = {"class_name": type(layer).__name__, "config": layer.get_config()}
        base = layer.name or layer.default_name()
        fcfg = dict(self.layer_config["config"], name="forward_" + base)
        bcfg = dict(self.layer_config["config"], name="backward_" + base, go_backwards=not layer.go_backwards)
        self.forward_layer = type(layer).from_config(fcfg)
        self.backward_layer = type(layer).from_config(bcfg)
        self.return_sequences = layer.return_sequences
        self._stream_seed = 0
        self._epoch = 0
        self._sample_offset = 0
        if layer.seed is not None:
            self.stream_seed = layer.seed

    @property
    def _layers(self):
        return (self.forward_layer, self.backward_layer)

    # dropout stream plumbing, set by the model like Dropout's
    @property
    def stream_seed(self):
        return self._stream_seed

    @stream_seed.setter
    def stream_seed(self, value):
        self._stream_seed = int(value)
        self.forward_layer.stream_seed = _mix_seed(value, 1) if value else 0
        self.backward_layer.stream_seed = _mix_seed(value, 2) if value else 0

    @property
    def seed(self):
        return self.forward_layer.seed

    @property
    def epoch(self):
        return self._epoch

    @epoch.setter
    def epoch(self, value):
        self._epoch = value
        for l in self._layers:
            l.epoch = value

    @property
    def sample_offset(self):
        return self._sample_offset

    @sample_offset.setter
    def sample_offset(self, value):
        self._sample_offset = value
        for l in self._layers:
            l.sample_offset = value

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            shape = tuple(shape[:-1]) + (2 * shape[-1],)
        return shape

    def build(self, input_shape):
        super().build(input_shape)
        for l in self._layers:
            l.trainable = self.trainable
            l.weights = []
            l.built = False
            l.build(input_shape)
        self.weights = list(self.forward_layer.weights) + list(self.backward_layer.weights)

    def forward(self, x, training=False):
        yf = self.forward_layer.forward(x, training)
        yb = self.backward_layer.forward(x, training)
        if self.return_sequences:
            yb = yb[:, ::-1]
        if training and self.merge_mode == "mul":
            self._yf, self._yb = yf, yb
        m = self.merge_mode
        if m == "concat":
            return np.concatenate([yf, yb], axis=-1)
        if m == "sum":
            return yf + yb
        if m == "mul":
            return yf * yb
        return (yf + yb) * np.float32(0.5)

    def backward(self, dy, need_dx=True):
        m = self.merge_mode
        if m == "concat":
            h = dy.shape[-1] // 2
            dyf, dyb = dy[..., :h], dy[..., h:]
        elif m == "sum":
            dyf = dyb = dy
        elif m == "mul":
            dyf, dyb = dy * self._yb, dy * self._yf
        else:
            dyf = dyb = dy * np.float32(0.5)
        if self.return_sequences:
            dyb = dyb[:, ::-1]
        dxf = self.forward_layer.backward(np.ascontiguousarray(dyf), need_dx)
        dxb = self.backward_layer.backward(np.ascontiguousarray(dyb), need_dx)
        return dxf + dxb if need_dx else None

    def get_config(self):
        cfg = super().get_config()
        cfg.update(layer=self.layer_config, merge_mode=self.merge_mode)
        return cfg

    @classmethod
    def from_config(cls, config):
        from . import get_class

        config = dict(config)
        inner = config.pop("layer")
        layer = get_class(inner["class_name"]).from_config(dict(inner["config"]))
        return cls(layer, **config)
