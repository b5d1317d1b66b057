"""``keras.preprocessing.image`` spellings: the ImageDataGenerator of fastnn.data."""
from ..data import ImageDataGenerator
from ..data import ImageFlow as NumpyArrayIterator

__all__ = ["ImageDataGenerator", "NumpyArrayIterator"]
