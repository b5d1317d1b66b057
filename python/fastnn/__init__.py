"""fastnn: fast CPU neural-network kernels under a Keras-shaped API.

The C++ core lives in the private extension ``fastnn._core``; this package
re-exports a thin Python layer over it.
"""
from . import _core
from . import ops
from ._runtime import build_info, get_num_threads, set_num_threads, set_seed, get_seed

__version__ = "0.1.0"

__all__ = [
    "__version__", "ops", "build_info", "get_num_threads", "set_num_threads",
    "set_seed", "get_seed",
]
