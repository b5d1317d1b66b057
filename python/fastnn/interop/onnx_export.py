"""ONNX export of Sequential and Functional models (opset 17).

The exported graph keeps fastnn's layout: the inputs are NHWC (or (N, T, F) for
sequences) exactly as ``model.predict`` takes them, and tensors stay channels-last
between layers, so Flatten keeps Keras's (h, w, c) order with no weight permutation.
Each convolution or pooling is wrapped in a Transpose to NCHW and back (ONNX's Conv
and pools are NCHW-only); ONNX Runtime fuses the back-to-back pairs away. Weights
are converted once: convolution kernels HWIO -> OIHW, LSTM gates i, f, c, o ->
ONNX's i, o, f, c, GRU (reset_after) -> ONNX GRU with linear_before_reset=1 (gates z,
r, h in both), inference-mode batch normalization folded into one scale and shift.
"""
from __future__ import annotations

import math
import os

import numpy as np

OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("fastnn: ONNX export needs the onnx package: pip install 'pyfastnn[onnx]' "
                          "(or pip install onnx)") from None
    return onnx, helper, numpy_helper


class _Graph:
    def __init__(self):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, base):
        self._n += 1
        return f"{base}__{self._n}"

    def const(self, array, base="c"):
        n = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), n))
        return n

    def ints(self, values, base="shape"):
        return self.const(np.asarray(values, np.int64), base)

    def op(self, op_type, inputs, base=None, n_out=1, **attrs):
        outs = [self.name(base or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    # NHWC <-> NCHW around the spatial ops
    def to_nchw(self, x):
        return self.op("Transpose", [x], perm=[0, 3, 1, 2])

    def to_nhwc(self, x):
        return self.op("Transpose", [x], perm=[0, 2, 3, 1])


# ------------------------------------------------------------------ activations

def _activation(g, x, name, layer=None):
    if name in (None, "linear"):
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
              "softsign": "Softsign", "exponential": "Exp", "elu": "Elu", "selu": "Selu"}
    if name in simple:
        return g.op(simple[name], [x])
    if name == "softmax":
        return g.op("Softmax", [x], axis=-1)
    if name in ("swish", "silu"):
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if name == "relu6":
        return g.op("Clip", [x, g.const(np.float32(0)), g.const(np.float32(6))])
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], alpha=0.2)
    if name == "gelu":
        half = g.op("Mul", [x, g.const(np.float32(0.5))])
        erf = g.op("Erf", [g.op("Mul", [x, g.const(np.float32(1 / math.sqrt(2)))])])
        return g.op("Mul", [half, g.op("Add", [erf, g.const(np.float32(1))])])
    raise ValueError(f"export: activation {name!r} has no ONNX form in fastnn's exporter"
                     + (f" (layer {layer.name!r})" if layer is not None else ""))


# ------------------------------------------------------------------ padding

def _same(size, k, s):
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pads(padding, in_hw, kernel, strides):
    """ONNX pads [top, left, bottom, right] for a fastnn padding spec."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        if padding == "same":
            t, b = _same(in_hw[0], kernel[0], strides[0])
            l, r = _same(in_hw[1], kernel[1], strides[1])
            return [t, l, b, r]
        raise ValueError(f"export: padding {padding!r} is not supported")
    if isinstance(padding, int):
        return [padding] * 4
    p = list(padding)
    if len(p) == 2:
        return [p[0], p[1], p[0], p[1]]
    if len(p) == 4:   # (top, bottom, left, right)
        return [p[0], p[2], p[1], p[3]]
    raise ValueError(f"export: padding {padding!r} is not supported")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ------------------------------------------------------------------ layer emitters

def _conv2d(g, layer, x):
    w = layer.kernel.value                                   # (R, S, C, K)
    ins = [g.to_nchw(x), g.const(w.transpose(3, 2, 0, 1).astype(np.float32), "W")]
    if layer.use_bias:
        ins.append(g.const(layer.bias.value.astype(np.float32), "B"))
    k = w.shape[:2]
    s = _pair(layer.strides)
    y = g.op("Conv", ins, kernel_shape=list(k), strides=list(s),
             pads=_pads(layer.padding, layer.input_shape[:2], k, s))
    return _activation(g, g.to_nhwc(y), layer.activation, layer)


def _depthwise(g, layer, x, with_pointwise=False):
    w = layer.depthwise_kernel.value                         # (R, S, C, dm)
    R, S, C, dm = w.shape
    s = _pair(layer.strides)
    wk = w.transpose(2, 3, 0, 1).reshape(C * dm, 1, R, S)
    ins = [g.to_nchw(x), g.const(wk.astype(np.float32), "W")]
    if layer.use_bias and not with_pointwise:
        ins.append(g.const(layer.bias.value.astype(np.float32), "B"))
    y = g.op("Conv", ins, kernel_shape=[R, S], strides=list(s), group=C,
             pads=_pads(layer.padding, layer.input_shape[:2], (R, S), s))
    if with_pointwise:
        pw = layer.pointwise_kernel.value                     # (1, 1, C*dm, F)
        ins = [y, g.const(pw.transpose(3, 2, 0, 1).astype(np.float32), "W")]
        if layer.use_bias:
            ins.append(g.const(layer.bias.value.astype(np.float32), "B"))
        y = g.op("Conv", ins, kernel_shape=[1, 1])
    return _activation(g, g.to_nhwc(y), getattr(layer, "activation", None), layer)


def _pool(g, layer, x, kind):
    k = _pair(layer.pool_size)
    s = _pair(layer.strides)
    attrs = dict(kernel_shape=list(k), strides=list(s), pads=_pads(layer.padding, layer.input_shape[:2], k, s))
    if kind == "AveragePool":
        attrs["count_include_pad"] = 0
    return g.to_nhwc(g.op(kind, [g.to_nchw(x)], **attrs))


def _batch_norm(g, layer, x):
    gamma = layer.gamma.value.astype(np.float64) if getattr(layer, "scale", True) and hasattr(layer, "gamma") else 1.0
    beta = layer.beta.value.astype(np.float64) if getattr(layer, "center", True) and hasattr(layer, "beta") else 0.0
    mean = layer.moving_mean.value.astype(np.float64)
    var = layer.moving_variance.value.astype(np.float64)
    scale = gamma / np.sqrt(var + layer.epsilon)
    shift = beta - mean * scale
    y = g.op("Mul", [x, g.const(np.asarray(scale, np.float32), "scale")])
    return g.op("Add", [y, g.const(np.asarray(shift, np.float32), "shift")])


def _dense(g, layer, x):
    y = g.op("MatMul", [x, g.const(layer.kernel.value.astype(np.float32), "W")])
    if layer.use_bias:
        y = g.op("Add", [y, g.const(layer.bias.value.astype(np.float32), "B")])
    return _activation(g, y, layer.activation, layer)


def _reverse_time(g, x, axis):
    big = np.iinfo(np.int64).max
    return g.op("Slice", [x, g.ints([-1]), g.ints([-big]), g.ints([axis]), g.ints([-1])])


def _rnn_weights(layer):
    """ONNX (W, R, B) of one direction of an LSTM / GRU / SimpleRNN layer."""
    k, rk = layer.kernel.value, layer.recurrent_kernel.value
    H = layer.units
    kind = type(layer).__name__
    if kind == "LSTM":
        order = np.concatenate([np.arange(H) + j * H for j in (0, 3, 1, 2)])   # i f c o -> i o f c
        W, R = k[:, order].T, rk[:, order].T
        b = layer.bias.value[order] if layer.use_bias else np.zeros(4 * H, np.float32)
        B = np.concatenate([b, np.zeros(4 * H, np.float32)])
    elif kind == "GRU":
        W, R = k.T, rk.T
        B = (layer.bias.value.reshape(2, 3 * H).reshape(-1) if layer.use_bias else np.zeros(6 * H, np.float32))
    else:
        W, R = k.T, rk.T
        b = layer.bias.value if layer.use_bias else np.zeros(H, np.float32)
        B = np.concatenate([b, np.zeros(H, np.float32)])
    return W.astype(np.float32), R.astype(np.float32), B.astype(np.float32)


_ONNX_RNN = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}


def _rnn_node(g, cells, x, direction):
    first = cells[0]
    kind = type(first).__name__
    if first.activation != "tanh" or getattr(first, "recurrent_activation", "sigmoid") not in (None, "sigmoid"):
        raise ValueError(f"export: layer {first.name!r}: only the default activations have an ONNX form here")
    Ws, Rs, Bs = zip(*(_rnn_weights(c) for c in cells))
    attrs = dict(hidden_size=first.units, direction=direction)
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    xt = g.op("Transpose", [x], perm=[1, 0, 2])                        # (T, N, I)
    outs = g.op(_ONNX_RNN[kind], [xt, g.const(np.stack(Ws), "W"), g.const(np.stack(Rs), "R"),
                                  g.const(np.stack(Bs), "B")], n_out=2, **attrs)
    return outs   # Y (T, D, N, H), Y_h (D, N, H)


def _recurrent(g, layer, x):
    if getattr(layer, "return_state", False):
        raise ValueError(f"export: layer {layer.name!r}: return_state=True is not supported")
    direction = "reverse" if layer.go_backwards else "forward"
    y, yh = _rnn_node(g, [layer], x, direction)
    if layer.return_sequences:
        seq = g.op("Squeeze", [y, g.ints([1])])                     # (T, N, H)
        if layer.go_backwards:     # Keras returns the steps in the order they were processed
            seq = _reverse_time(g, seq, 0)
        return g.op("Transpose", [seq], perm=[1, 0, 2])
    return g.op("Squeeze", [yh, g.ints([0])])


def _bidirectional(g, layer, x):
    f, b = layer.forward_layer, layer.backward_layer
    if f.go_backwards or not b.go_backwards:
        raise ValueError(f"export: layer {layer.name!r}: a wrapped layer with go_backwards=True is not supported")
    y, yh = _rnn_node(g, [f, b], x, "bidirectional")
    H = f.units
    mode = layer.merge_mode
    if layer.return_sequences:
        if mode == "concat":
            t = g.op("Transpose", [y], perm=[2, 0, 1, 3])             # (N, T, 2, H)
            return g.op("Reshape", [t, g.ints([0, 0, 2 * H])])
        t = g.op("Transpose", [y], perm=[1, 2, 0, 3])                 # (2, N, T, H)
    else:
        if mode == "concat":
            t = g.op("Transpose", [yh], perm=[1, 0, 2])               # (N, 2, H)
            return g.op("Reshape", [t, g.ints([0, 2 * H])])
        t = yh                                                        # (2, N, H)
    if mode == "sum":
        return g.op("ReduceSum", [t, g.ints([0])], keepdims=0)
    if mode == "ave":
        return g.op("ReduceMean", [t], axes=[0], keepdims=0)
    if mode == "mul":
        a, c = g.op("Split", [t], n_out=2, axis=0)
        return g.op("Squeeze", [g.op("Mul", [a, c]), g.ints([0])])
    raise ValueError(f"export: layer {layer.name!r}: merge_mode {mode!r} is not supported")


def _merge(g, layer, xs, op):
    y = xs[0]
    for other in xs[1:]:
        y = g.op(op, [y, other])
    return y


def emit(g, layer, xs):
    """Emits `layer` applied to the ONNX tensor names xs; returns the output name."""
    cname = type(layer).__name__
    x = xs[0]
    if cname == "Conv2D":
        return _conv2d(g, layer, x)
    if cname == "DepthwiseConv2D":
        return _depthwise(g, layer, x)
    if cname == "SeparableConv2D":
        return _depthwise(g, layer, x, with_pointwise=True)
    if cname in ("MaxPooling2D", "MaxPool2D"):
        return _pool(g, layer, x, "MaxPool")
    if cname in ("AveragePooling2D", "AvgPool2D"):
        return _pool(g, layer, x, "AveragePool")
    if cname == "BatchNormalization":
        return _batch_norm(g, layer, x)
    if cname == "Dense":
        return _dense(g, layer, x)
    if cname == "Activation":
        return _activation(g, x, layer.activation, layer)
    if cname in ("Dropout", "InputLayer"):
        return x
    if cname == "Flatten":
        return g.op("Flatten", [x], axis=1)
    if cname == "Reshape":
        return g.op("Reshape", [x, g.ints([-1] + list(layer.target_shape))])
    if cname in ("LSTM", "GRU", "SimpleRNN"):
        return _recurrent(g, layer, x)
    if cname == "Bidirectional":
        return _bidirectional(g, layer, x)
    if cname == "Add":
        return _merge(g, layer, xs, "Add")
    if cname == "Subtract":
        return g.op("Sub", [xs[0], xs[1]])
    if cname == "Multiply":
        return _merge(g, layer, xs, "Mul")
    if cname == "Maximum":
        return g.op("Max", list(xs))
    if cname == "Average":
        return g.op("Mean", list(xs))
    if cname == "Concatenate":
        return g.op("Concat", list(xs), axis=int(layer.axis))
    if cname == "GlobalAveragePooling2D":
        return g.op("ReduceMean", [x], axes=[1, 2], keepdims=0)
    if cname == "GlobalMaxPooling2D":
        return g.op("ReduceMax", [x], axes=[1, 2], keepdims=0)
    if cname == "GlobalAveragePooling1D":
        return g.op("ReduceMean", [x], axes=[1], keepdims=0)
    if cname == "GlobalMaxPooling1D":
        return g.op("ReduceMax", [x], axes=[1], keepdims=0)
    if cname == "ReLU":
        return _relu_layer(g, layer, x)
    if cname == "LeakyReLU":
        return g.op("LeakyRelu", [x], alpha=float(layer.negative_slope))
    if cname == "Softmax":
        return g.op("Softmax", [x], axis=int(getattr(layer, "axis", -1)))
    raise ValueError(f"export: layer {layer.name!r} ({cname}) has no ONNX form in fastnn's exporter")


def _relu_layer(g, layer, x):
    mv, ns, th = layer.max_value, float(layer.negative_slope), float(layer.threshold)
    if ns == 0.0 and th == 0.0:
        if mv is None:
            return g.op("Relu", [x])
        return g.op("Clip", [x, g.const(np.float32(0)), g.const(np.float32(mv))])
    # general form: x >= threshold ? min(x, max_value) : negative_slope * (x - threshold)
    pos = x if mv is None else g.op("Min", [x, g.const(np.float32(mv))])
    neg = g.op("Mul", [g.op("Sub", [x, g.const(np.float32(th))]), g.const(np.float32(ns))])
    cond = g.op("GreaterOrEqual", [x, g.const(np.float32(th))])
    return g.op("Where", [cond, pos, neg])


# ------------------------------------------------------------------ models

def _value_info(helper, onnx, name, shape, dtype):
    elem = {"float32": onnx.TensorProto.FLOAT, "int32": onnx.TensorProto.INT32}.get(dtype, onnx.TensorProto.FLOAT)
    dims = ["N"] + [int(d) if d is not None else f"d{i}" for i, d in enumerate(shape)]
    return helper.make_tensor_value_info(name, elem, dims)


def to_onnx(model):
    """The onnx.ModelProto of a built fastnn model."""
    g = _Graph()
    onnx, helper = g.onnx, g.helper
    plan = getattr(model, "_onnx_plan", None)
    if plan is None:          # a Sequential: one input, layers in order
        from ..layers.core import InputLayer
        shape = model.input_shape
        if shape is None:
            raise ValueError("export: the model is not built: its input shape is unknown")
        in_name = "input"
        inputs = [_value_info(helper, onnx, in_name, shape[1:], "float32")]
        x = in_name
        for layer in model.layers:
            if isinstance(layer, InputLayer):
                continue
            x = emit(g, layer, [x])
        out_shapes = [model.output_shape[1:]]
        outs = [x]
    else:
        inputs, outs, out_shapes = plan(g, emit, lambda n, s, d: _value_info(helper, onnx, n, s, d))
    outputs = []
    for i, (o, s) in enumerate(zip(outs, out_shapes)):
        name = "output" if len(outs) == 1 else f"output_{i}"
        g.nodes.append(helper.make_node("Identity", [o], [name]))
        outputs.append(_value_info(helper, onnx, name, s, "float32"))
    graph = helper.make_graph(g.nodes, model.name or "fastnn_model", inputs, outputs, g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fastnn")
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model, path):
    """Writes model as an ONNX file (atomically); returns the path."""
    proto = to_onnx(model)
    from .._archive import write_atomic

    data = proto.SerializeToString()
    write_atomic(path, lambda fh: fh.write(data))
    return os.fspath(path)
