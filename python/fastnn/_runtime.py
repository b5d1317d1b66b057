"""Process-wide settings: threads, seed, build information."""
from __future__ import annotations

import operator

from . import _core

_seed = 0


def get_num_threads() -> int:
    """Number of OpenMP threads the kernels use."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use (n >= 1). Results do not depend on it."""
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n: expected an int, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"set_num_threads: n: expected an integer >= 1, got {n}")
    if n > 1 and _core.forked_child():
        import warnings
        warnings.warn(f"set_num_threads({n}): this process was forked from one that loaded fastnn; "
                      "its OpenMP thread pool does not survive fork, so kernels keep running one thread "
                      "here (use the 'spawn' or 'forkserver' start method for threaded workers)",
                      RuntimeWarning, stacklevel=2)
    _core.set_num_threads(n)


def forked_child() -> bool:
    """True in a process forked (without exec) from one that had loaded fastnn: kernels run
    one thread there and set_num_threads keeps one (results are the same bits)."""
    return bool(_core.forked_child())


def set_seed(seed: int) -> None:
    """Seed for everything random in fastnn (initialisers, dropout, augmentation, shuffling)."""
    global _seed
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"set_seed: seed: expected an int, got {type(seed).__name__}") from None
    if seed < 0:
        raise ValueError(f"set_seed: seed: expected a non-negative integer, got {seed}")
    _seed = seed
    # restart the initializers' draw counter, so set_seed(s) twice gives the same weights
    from . import initializers
    initializers.reset_counter()


def get_seed() -> int:
    return _seed


def _warn_gemm_blocking() -> None:
    """A rejected FASTNN_GEMM_BLOCKING becomes a RuntimeWarning at import (the core ignores it)."""
    msg = _core.build_info()["gemm_blocking"]["warning"]
    if msg:
        import warnings
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


_warn_gemm_blocking()


def build_info() -> dict:
    """What this build of fastnn is: version, compiler, ISA chosen at run time, OpenMP, threads,
    the CPU ('cpu': vendor, brand, family, model, core, l1d/l2/l3_bytes, cache_source) and the GEMM
    blocking ('gemm_blocking': kc, mc, nc, source, warning)."""
    from . import __version__

    from . import cuda

    info = {"version": __version__}
    info.update(_core.build_info())
    # False without the CUDA module, else {'archs': [...], 'runtime': '13.0', 'devices': n}
    info["cuda"] = cuda.build_info()
    return info
