"""CUDA support (optional). Always importable; the CUDA extension is loaded lazily.

fastnn is built with a second extension, ``fastnn._cuda``, when a CUDA toolkit is
found at build time (CMake option FASTNN_CUDA=AUTO, the default; ON requires it,
OFF skips it). The CUDA runtime is linked in statically, so the module imports on
machines without a GPU or driver; ``is_available()`` then answers False.

    import fastnn.cuda as fc
    fc.is_available()                 # built with CUDA and a GPU present
    x = fc.asarray(np_array)          # host -> GPU copy (float32 / int / uint8 / bool)
    x = fc.asarray(cupy_or_torch)     # __cuda_array_interface__: no copy
    x = fc.from_dlpack(torch_tensor)  # DLPack: no copy
    y = fastnn.ops.relu(x)            # ops run where the data lives
    y.numpy()                         # GPU -> host copy
    torch.from_dlpack(y); cupy.asarray(y)   # out again without a copy

Arrays are C-contiguous with dtype float32 (data), int32 / int64 (labels,
indices) or uint8 (masks; bool reads as uint8). Work is queued on the legacy
default stream. CUDA failures raise RuntimeError with the CUDA error text; running
out of GPU memory raises MemoryError.
"""
from __future__ import annotations

_module = None
_tried = False
_import_error = ""


def _load():
    global _module, _tried, _import_error
    if not _tried:
        _tried = True
        try:
            from . import _cuda  # built only with a CUDA toolkit
            _module = _cuda
        except ImportError as exc:
            import importlib.util

            _module = None
            # empty when the module was simply not built; the reason when it is there but broken
            _import_error = "" if importlib.util.find_spec(f"{__package__}._cuda") is None else str(exc)
    return _module


def is_available() -> bool:
    """True when fastnn was built with CUDA and a usable GPU (and driver) is present."""
    m = _load()
    return bool(m is not None and m.device_count() > 0)


def device_count() -> int:
    """Number of usable CUDA devices (0 without the CUDA module, a driver or a GPU)."""
    m = _load()
    return 0 if m is None else int(m.device_count())


def build_info():
    """False when the CUDA module was not built, else {'archs', 'runtime', 'devices'}."""
    m = _load()
    if m is None:
        return False
    return {"archs": list(m.archs()), "runtime": m.runtime_version(), "devices": int(m.device_count())}


def _require(what: str):
    """The CUDA module, or RuntimeError saying why it cannot be used."""
    m = _load()
    if m is None:
        if _import_error:
            raise RuntimeError(f"{what}: the CUDA module fastnn._cuda failed to import: {_import_error}")
        raise RuntimeError(f"{what}: fastnn was built without CUDA (no CUDA toolkit at build time; "
                           f"rebuild with one, e.g. pip install . -Ccmake.define.FASTNN_CUDA=ON)")
    if m.device_count() == 0:
        raise RuntimeError(f"{what}: no CUDA device is available (no NVIDIA GPU or driver found)")
    return m


class _UnavailableArray:
    """Stands in for fastnn.cuda.Array when the CUDA module was not built."""

    def __new__(cls, *args, **kwargs):
        _require("fastnn.cuda.Array")


def __getattr__(name):
    if name == "Array":
        m = _load()
        return _UnavailableArray if m is None else m.Array
    raise AttributeError(f"module 'fastnn.cuda' has no attribute {name!r}")


_DTYPES = ("float32", "int32", "int64", "uint8")


def _host_array(obj, dtype):
    """obj as a C-contiguous numpy array of one of the four GPU dtypes."""
    import numpy as np

    if dtype is not None:
        name = np.dtype(dtype).name
        if name not in _DTYPES:
            raise TypeError(f"asarray: dtype: expected one of {', '.join(_DTYPES)}, got {name}")
        return np.ascontiguousarray(obj, dtype=name)
    a = np.asarray(obj)
    kind, size = a.dtype.kind, a.dtype.itemsize
    if kind == "f":
        target = "float32"
    elif kind == "b" or (kind == "u" and size == 1):
        target = "uint8"
    elif kind == "i" and size == 4:
        target = "int32"
    elif kind in "iu":
        target = "int64"
    else:
        raise TypeError(f"asarray: expected a real-valued, integer or bool array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=target)


def asarray(obj, dtype=None):
    """A fastnn.cuda.Array for obj.

    - a fastnn.cuda.Array: returned as it is;
    - an object with __cuda_array_interface__ (CuPy, PyTorch CUDA, Numba): wrapped
      without a copy when C-contiguous (else copied once on the GPU); it stays alive
      as long as the result;
    - anything else (numpy, lists): copied to the GPU; floats become float32, bool
      and uint8 uint8, int32 int32, other integers int64, unless dtype says otherwise.
    dtype converts only host data ('float32', 'int32', 'int64', 'uint8').
    """
    m = _require("fastnn.cuda.asarray")
    if isinstance(obj, m.Array) or (not _is_numpy(obj) and _has_cai(obj)):
        a = obj if isinstance(obj, m.Array) else m.from_cuda_array_interface(obj)
        if dtype is not None and str(a.dtype) != _dtype_name(dtype):
            raise TypeError(f"asarray: the GPU array has dtype {a.dtype}, not {_dtype_name(dtype)}; "
                            f"there is no dtype conversion on the GPU")
        return a
    return m.from_host(_host_array(obj, dtype))


def from_dlpack(obj):
    """A fastnn.cuda.Array sharing the memory of a CUDA DLPack exporter (no copy)."""
    return _require("fastnn.cuda.from_dlpack").from_dlpack(obj)


def zeros(shape, dtype="float32"):
    """A zero-filled GPU array."""
    return _require("fastnn.cuda.zeros").zeros(shape, dtype)


def empty(shape, dtype="float32"):
    """An uninitialised GPU array."""
    return _require("fastnn.cuda.empty").empty(shape, dtype)


def matmul(a, b, *, transpose_a=False, transpose_b=False):
    """C = op(a) @ op(b) with fastnn's tiled CUDA SGEMM (float32 GPU arrays)."""
    return _require("fastnn.cuda.matmul").matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)


def synchronize() -> None:
    """Wait until all queued GPU work is done (for timing)."""
    _require("fastnn.cuda.synchronize").synchronize()


def _is_numpy(obj) -> bool:
    import numpy as np

    return isinstance(obj, np.ndarray)


def _has_cai(obj) -> bool:
    try:
        obj.__cuda_array_interface__  # noqa: B018
    except Exception:
        return False
    return True


def _dtype_name(dtype) -> str:
    import numpy as np

    return np.dtype(dtype).name
