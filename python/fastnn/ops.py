"""Functional kernels: float32, NHWC, numpy in / numpy out (thin wrappers over _core).

Every function dispatches on where its first array lives: a numpy array (or any
host array-like) runs the CPU kernel of ``fastnn._core``; a GPU array
(``fastnn.cuda.Array``, or any object with ``__cuda_array_interface__`` such as a
CuPy array or a PyTorch CUDA tensor) runs the CUDA twin in ``fastnn._cuda`` and
returns ``fastnn.cuda.Array`` results. The CPU path costs one class check more
than calling ``_core`` directly; the CUDA module is imported on first GPU use.
"""
from __future__ import annotations

from numpy import ndarray as _ndarray

from . import _core

_gpu_array_type = None  # fastnn._cuda.Array once the CUDA module is loaded


def _is_gpu(x) -> bool:
    """True for a fastnn.cuda.Array or an object exporting __cuda_array_interface__."""
    if x.__class__ is _gpu_array_type:
        return True
    try:
        x.__cuda_array_interface__  # noqa: B018  (a CPU torch tensor raises here)
    except Exception:
        return False
    return True


_twins = {}  # name -> fastnn._cuda function, filled on first GPU use


def _cuda_twin(name):
    twin = _twins.get(name)
    if twin is None:
        global _gpu_array_type
        from . import cuda

        module = cuda._require(f"ops.{name}")  # RuntimeError: not built / no GPU
        _gpu_array_type = module.Array
        twin = _twins[name] = getattr(module, name)
    return twin


def _dispatching(name, first):
    """ops.<name>: the _core kernel, or its CUDA twin when `first` is on the GPU."""
    cpu = getattr(_core, name)

    def op(*args, **kwargs):
        x = args[0] if args else kwargs.get(first)
        if x.__class__ is not _ndarray and x is not None and _is_gpu(x):
            return _cuda_twin(name)(*args, **kwargs)
        return cpu(*args, **kwargs)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = cpu.__doc__
    op.__module__ = __name__
    return op


def _cpu_only(name, first):
    """ops.<name> without a CUDA twin yet: GPU arrays raise a clear TypeError."""
    cpu = getattr(_core, name)

    def op(*args, **kwargs):
        x = args[0] if args else kwargs.get(first)
        # None (an optional first argument such as dh_seq) is not probed: the probe's
        # AttributeError costs about a microsecond
        if x.__class__ is not _ndarray and x is not None and _is_gpu(x):
            raise TypeError(f"ops.{name}: {first}: there is no CUDA kernel for {name} yet; "
                            f"pass numpy arrays (copy with .numpy())")
        return cpu(*args, **kwargs)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = cpu.__doc__
    op.__module__ = __name__
    return op


# convolution
conv2d = _dispatching("conv2d", "x")
conv2d_backward = _dispatching("conv2d_backward", "dy")
# pool
max_pool2d = _dispatching("max_pool2d", "x")
max_pool2d_backward = _dispatching("max_pool2d_backward", "dy")
avg_pool2d = _dispatching("avg_pool2d", "x")
avg_pool2d_backward = _dispatching("avg_pool2d_backward", "dy")
# private, CPU only: the MaxPooling2D layer's inference and compact-index training forms
_max_pool2d_inference = _cpu_only("max_pool2d_inference", "x")
_max_pool2d_window = _cpu_only("max_pool2d_window", "x")
_max_pool2d_window_backward = _cpu_only("max_pool2d_window_backward", "dy")
# dense
dense = _dispatching("dense", "x")
dense_backward = _dispatching("dense_backward", "dy")
# activation / dropout
relu = _dispatching("relu", "x")
sigmoid = _dispatching("sigmoid", "x")
tanh = _dispatching("tanh", "x")
softmax = _dispatching("softmax", "x")
relu_backward = _dispatching("relu_backward", "dy")
sigmoid_backward = _dispatching("sigmoid_backward", "dy")
tanh_backward = _dispatching("tanh_backward", "dy")
softmax_backward = _dispatching("softmax_backward", "dy")
dropout = _dispatching("dropout", "x")
dropout_backward = _dispatching("dropout_backward", "dy")
# loss
softmax_cross_entropy = _dispatching("softmax_cross_entropy", "logits")
mse = _dispatching("mse", "pred")
mae = _dispatching("mae", "pred")
# optimizer updates and clipping
sgd_update = _dispatching("sgd_update", "param")
rmsprop_update = _dispatching("rmsprop_update", "param")
adam_update = _dispatching("adam_update", "param")
adagrad_update = _dispatching("adagrad_update", "param")
adadelta_update = _dispatching("adadelta_update", "param")
_global_norm_cpu = _core.global_norm


def global_norm(arrays):
    """sqrt of the sum of squares over a list of float arrays (deterministic, double
    accumulation); on the GPU when the first array is."""
    first = arrays[0] if isinstance(arrays, (list, tuple)) and arrays else arrays
    if first.__class__ is not _ndarray and _is_gpu(first):
        return _cuda_twin("global_norm")(arrays)
    return _global_norm_cpu(arrays)


clip_by_value_ = _dispatching("clip_by_value_", "grad")
scale_ = _dispatching("scale_", "array")
# batch norm (the backward dispatches on dy)
batch_norm = _dispatching("batch_norm", "x")
batch_norm_backward = _dispatching("batch_norm_backward", "dy")
# no CUDA kernels yet: the recurrent layers
lstm_forward = _cpu_only("lstm_forward", "x")
lstm_backward = _cpu_only("lstm_backward", "dh_seq")
gru_forward = _cpu_only("gru_forward", "x")
gru_backward = _cpu_only("gru_backward", "dh_seq")
rnn_forward = _cpu_only("rnn_forward", "x")
rnn_backward = _cpu_only("rnn_backward", "dh_seq")
