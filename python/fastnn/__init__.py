"""fastnn: fast CPU neural-network kernels under a Keras-shaped API.

The C++ core lives in the private extension ``fastnn._core``; ``fastnn.ops`` is
a thin functional layer over it. The Keras-shaped modules (layers, models,
optimizers, ...) are imported on first use so that ``import fastnn`` stays fast.
"""
import importlib as _importlib

from . import _core
from . import ops
from ._runtime import build_info, get_num_threads, get_seed, set_num_threads, set_seed

__version__ = "0.1.0"

_LAZY_MODULES = {"layers", "models", "optimizers", "losses", "metrics", "callbacks", "regularizers",
                 "initializers", "data", "datasets", "cuda", "bench", "selfcheck", "demo", "stocks", "distributed",
                 "utils", "preprocessing", "backend"}
_LAZY_ATTRS = {"Sequential": ("models", "Sequential")}

# fastnn.distributed is importable on demand only (it needs the optional mpi4py).
__all__ = ["__version__", "ops", "build_info", "get_num_threads", "set_num_threads", "set_seed", "get_seed",
           "Sequential", *sorted(_LAZY_MODULES - {"distributed"})]


def __getattr__(name):
    if name in _LAZY_MODULES:
        module = _importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in _LAZY_ATTRS:
        mod, attr = _LAZY_ATTRS[name]
        value = getattr(_importlib.import_module(f".{mod}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_MODULES | set(_LAZY_ATTRS))
