"""Convolution and pooling layers (NHWC)."""
from __future__ import annotations

import math

import numpy as np

from .. import _core, ops, regularizers as _regularizers
from .base import Layer, check_int, check_pair
from .core import _Activated, _init_cfg, _reg_cfg


def _padding_mode(padding, name):
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{name}: padding: expected 'valid' or 'same', got {padding!r}")
    return padding.lower()


def _same_pads(n, k, s):
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


CONV_ALGORITHMS = ("auto", "direct", "gemm", "winograd", "winograd_f2x2", "winograd_f4x4")


class Conv2D(_Activated):
    """Keras's Conv2D (channels_last). `algorithm` (a fastnn extension, default "auto")
    is passed to ops.conv2d / ops.conv2d_backward: "gemm" keeps the weight gradient's
    rounding to a reordering of the same products (see the README's Winograd notes)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, data_format=None, dilation_rate=(1, 1), algorithm="auto", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(algorithm, str) or algorithm not in CONV_ALGORITHMS:
            raise ValueError(f"Conv2D: algorithm: expected one of {', '.join(map(repr, CONV_ALGORITHMS))}, "
                             f"got {algorithm!r}")
        self.algorithm = algorithm
        self.filters = check_int(filters, "filters")
        self.kernel_size = check_pair(kernel_size, "kernel_size")
        self.strides = check_pair(strides, "strides")
        self.padding = _padding_mode(padding, "Conv2D")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Conv2D: data_format: only 'channels_last' is supported, got {data_format!r}")
        if check_pair(dilation_rate, "dilation_rate") != (1, 1):
            raise ValueError("Conv2D: dilation_rate other than 1 is not supported")
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D: expected inputs (H, W, C) per sample, got {input_shape}")
        H, W, _ = input_shape
        (R, S), (sh, sw) = self.kernel_size, self.strides
        if self.padding == "same":
            P, Q = math.ceil(H / sh), math.ceil(W / sw)
        else:
            if R > H or S > W:
                raise ValueError(f"Conv2D: kernel {self.kernel_size} is larger than the input {input_shape} with 'valid'")
            P, Q = (H - R) // sh + 1, (W - S) // sw + 1
        return (P, Q, self.filters)

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (input_shape[-1], self.filters),
                                      self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer, regularizer=self.bias_regularizer)
                     if self.use_bias else None)

    def forward(self, x, training=False):
        b = self.bias.value if self.use_bias else None
        if self.activation == "relu":
            y = _core.conv2d(x, self.kernel.value, b, stride=self.strides, padding=self.padding, relu=True,
                             algorithm=self.algorithm)
            if training:
                self._x, self._y, self._z = x, y, None
            return y
        z = ops.conv2d(x, self.kernel.value, b, stride=self.strides, padding=self.padding, algorithm=self.algorithm)
        if training:
            self._x = x
        return self._activate(z, training)

    def backward(self, dy, need_dx=True):
        dz = self._activation_backward(dy)
        dx, dw, db = ops.conv2d_backward(dz, self._x, self.kernel.value, stride=self.strides, padding=self.padding,
                                         need_dx=need_dx, need_db=self.use_bias, algorithm=self.algorithm)
        np.copyto(self.kernel.grad, dw)
        if self.use_bias:
            np.copyto(self.bias.grad, db)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=list(self.kernel_size), strides=list(self.strides),
                   padding=self.padding, activation=self.activation, use_bias=self.use_bias,
                   kernel_initializer=_init_cfg(self.kernel_initializer),
                   bias_initializer=_init_cfg(self.bias_initializer),
                   kernel_regularizer=_reg_cfg(self.kernel_regularizer),
                   bias_regularizer=_reg_cfg(self.bias_regularizer), algorithm=self.algorithm)
        return cfg


class _Pool2D(Layer):
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = check_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else check_pair(strides, "strides")
        self.padding = _padding_mode(padding, type(self).__name__)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__}: data_format: only 'channels_last' is supported")

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__}: expected inputs (H, W, C) per sample, got {input_shape}")
        H, W, C = input_shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if self.padding == "same":
            return (math.ceil(H / sh), math.ceil(W / sw), C)
        if ph > H or pw > W:
            raise ValueError(f"{type(self).__name__}: pool {self.pool_size} is larger than the input {input_shape}")
        return ((H - ph) // sh + 1, (W - pw) // sw + 1, C)

    def build(self, input_shape):
        super().build(input_shape)
        H, W, _ = input_shape
        self._pads = (0, 0, 0, 0)
        if self.padding == "same":
            self._pads = _same_pads(H, self.pool_size[0], self.strides[0]) + _same_pads(W, self.pool_size[1], self.strides[1])
        t, b, l, r = self._pads
        # symmetric padding within the kernel's limit goes to the kernel; otherwise pad explicitly
        self._kernel_pad = (t, l) if (t == b and l == r and t <= self.pool_size[0] // 2
                                      and l <= self.pool_size[1] // 2) else None

    def _pad_input(self, x, fill):
        t, b, l, r = self._pads
        return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)

    def _crop(self, dx):
        t, b, l, r = self._pads
        return dx[:, t:dx.shape[1] - b, l:dx.shape[2] - r, :]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=list(self.pool_size), strides=list(self.strides), padding=self.padding)
        return cfg


class MaxPooling2D(_Pool2D):
    """Max pooling (Keras class name; MaxPool2D is an alias, as in Keras). Ties go to the
    first maximum in row-major window order; padding never wins.

    Inference (training=False) computes y only. Training records the winner of each
    window as a uint8 offset inside the window (windows of up to 256 elements; larger
    ones fall back to the int64 flat indices of ops.max_pool2d); the backward gives
    bitwise the dx of ops.max_pool2d_backward."""

    _WINDOW_OFFSET_LIMIT = 256

    def _forward_input(self, x):
        """(the array the kernel pools, its padding): explicit -inf padding only when the
        kernel cannot take it (asymmetric 'same')."""
        if self._kernel_pad is not None:
            return x, self._kernel_pad
        return self._pad_input(x, -np.inf), (0, 0)

    def forward(self, x, training=False):
        xin, pad = self._forward_input(x)
        if not training:
            return ops._max_pool2d_inference(xin, self.pool_size, stride=self.strides, padding=pad)
        self._xshape = xin.shape
        if self.pool_size[0] * self.pool_size[1] <= self._WINDOW_OFFSET_LIMIT:
            y, self._win = ops._max_pool2d_window(xin, self.pool_size, stride=self.strides, padding=pad)
            self._idx = None
        else:
            y, self._idx = ops.max_pool2d(xin, self.pool_size, stride=self.strides, padding=pad)
            self._win = None
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._win is not None:
            dx = ops._max_pool2d_window_backward(dy, self._win, self._xshape, self.pool_size,
                                                 stride=self.strides, padding=self._kernel_pad or (0, 0))
        else:
            dx = ops.max_pool2d_backward(dy, self._idx, self._xshape)
        return dx if self._kernel_pad is not None else np.ascontiguousarray(self._crop(dx))


class AveragePooling2D(_Pool2D):
    """Keras semantics: padded positions are not counted in the average.

    Asymmetric 'same' padding (an odd total, the extra row/column at the bottom/right)
    pads the input with zeros and averages with count_include_pad=True, then rescales
    each output by (window size / number of real inputs in the window)."""

    def build(self, input_shape):
        super().build(input_shape)
        self._scale = None
        if self._kernel_pad is None and any(self._pads):
            ones = self._pad_input(np.ones((1,) + tuple(input_shape[:2]) + (1,), np.float32), 0.0)
            frac = ops.avg_pool2d(ones, self.pool_size, stride=self.strides, count_include_pad=True)
            self._scale = (1.0 / frac.astype(np.float64)).astype(np.float32)   # (1, P, Q, 1)

    def forward(self, x, training=False):
        if training:
            self._xshape = x.shape
        if self._scale is not None:
            y = ops.avg_pool2d(self._pad_input(x, 0.0), self.pool_size, stride=self.strides, count_include_pad=True)
            y *= self._scale
            return y
        pad = self._kernel_pad or (0, 0)
        return ops.avg_pool2d(x, self.pool_size, stride=self.strides, padding=pad, count_include_pad=False)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._scale is not None:
            t, b, l, r = self._pads
            n, h, w, c = self._xshape
            dx = ops.avg_pool2d_backward(dy * self._scale, (n, h + t + b, w + l + r, c), self.pool_size,
                                         stride=self.strides, count_include_pad=True)
            return np.ascontiguousarray(self._crop(dx))
        return ops.avg_pool2d_backward(dy, self._xshape, self.pool_size, stride=self.strides,
                                       padding=self._kernel_pad or (0, 0), count_include_pad=False)


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
