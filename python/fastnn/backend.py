"""Keras's ``keras.backend`` spellings that mean something for fastnn.

- ``clear_session()``: resets the state that makes a later model differ from a fresh
  process: the initialisers' draw counter (so the next model gets the weights it would
  get first after ``set_seed``) and the automatic layer-name counters where the layers
  keep any. The seed itself is kept (Keras keeps its seed too).
- ``image_data_format()`` is always ``"channels_last"``; ``floatx()`` is ``"float32"``;
  ``epsilon()`` is Keras's 1e-7.
"""
from __future__ import annotations

__all__ = ["clear_session", "image_data_format", "floatx", "epsilon"]


def clear_session(free_memory=True):
    """Reset fastnn's global model-building state (see the module docstring)."""
    import sys

    from . import initializers

    initializers.reset_counter()
    # layer-name counters live in the layers package when it keeps any; never import it
    # just for this
    for modname in ("fastnn.layers", "fastnn.layers.base"):
        mod = sys.modules.get(modname)
        for attr in ("reset_name_counters", "_reset_name_counters", "reset_uids"):
            fn = getattr(mod, attr, None) if mod is not None else None
            if callable(fn):
                fn()
                break
    if free_memory:
        import gc
        gc.collect()


def image_data_format():
    return "channels_last"


def floatx():
    return "float32"


def epsilon():
    return 1e-7
