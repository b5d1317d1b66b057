"""CUDA support (optional). Always importable; the CUDA extension is loaded lazily.

This build has no CUDA module unless it was compiled where a CUDA toolkit was
found; ``is_available()`` then reports False and nothing else changes.
"""
from __future__ import annotations

_module = None
_tried = False


def _load():
    global _module, _tried
    if not _tried:
        _tried = True
        try:
            from . import _cuda  # noqa: F401  (built only with a CUDA toolkit)
            _module = _cuda
        except ImportError:
            _module = None
    return _module


def is_available() -> bool:
    """True when fastnn was built with CUDA and a device is present."""
    m = _load()
    return bool(m is not None and m.device_count() > 0)


def device_count() -> int:
    m = _load()
    return 0 if m is None else int(m.device_count())
