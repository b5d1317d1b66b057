"""Keras's ``keras.preprocessing`` spellings: ``image.ImageDataGenerator`` and
``sequence.pad_sequences``, aliases of the implementations in ``fastnn.data``."""
import importlib as _importlib

__all__ = ["image", "sequence"]


def __getattr__(name):
    if name in __all__:
        module = _importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fastnn.preprocessing' has no attribute {name!r}")
