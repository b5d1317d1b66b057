"""Keras's ``keras.utils`` spellings: each name here is the one fastnn implementation.

- ``to_categorical`` is ``fastnn.data.to_categorical``.
- ``pad_sequences`` is ``fastnn.data.pad_sequences`` (resolved on first use).
- ``set_random_seed(seed)`` seeds fastnn (``fastnn.set_seed``), NumPy's global generator
  and Python's ``random``, as Keras's seeds Python, NumPy and the backend.
"""
from __future__ import annotations

from .data import to_categorical

__all__ = ["to_categorical", "pad_sequences", "set_random_seed"]


def set_random_seed(seed):
    """Seed everything random: fastnn (initialisers, dropout, augmentation, shuffling),
    numpy.random's global state and Python's random module. seed: an int in [0, 2**32)."""
    import operator
    import random

    import numpy as np

    from ._runtime import set_seed

    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed: expected an int, got bool")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}") from None
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed}")
    set_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def __getattr__(name):
    if name == "pad_sequences":
        from . import data
        try:
            return data.pad_sequences
        except AttributeError:
            raise AttributeError("fastnn.utils.pad_sequences: fastnn.data.pad_sequences is not available "
                                 "in this build") from None
    raise AttributeError(f"module 'fastnn.utils' has no attribute {name!r}")
