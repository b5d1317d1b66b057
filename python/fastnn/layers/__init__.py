"""Keras-shaped layers (NHWC, Keras weight layouts)."""
from .base import Layer, WeightSpec
from .conv import AveragePooling2D, AvgPool2D, Conv2D, MaxPool2D, MaxPooling2D
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
from .normalization import BatchNormalization
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN

__all__ = [
    "Layer", "WeightSpec", "Input", "InputLayer", "Dense", "Activation", "Flatten", "Reshape", "Dropout",
    "Conv2D", "MaxPool2D", "MaxPooling2D", "AveragePooling2D", "AvgPool2D", "BatchNormalization",
    "LSTM", "GRU", "SimpleRNN", "Bidirectional",
]

_REGISTRY = {name: obj for name, obj in globals().items() if isinstance(obj, type) and issubclass(obj, Layer)}


def get_class(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown layer class {name!r}") from None
