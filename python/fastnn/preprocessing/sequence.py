"""``keras.preprocessing.sequence`` spellings: ``pad_sequences`` is fastnn.data's."""

__all__ = ["pad_sequences"]


def __getattr__(name):
    if name == "pad_sequences":
        from .. import data
        try:
            return data.pad_sequences
        except AttributeError:
            raise AttributeError("fastnn.preprocessing.sequence.pad_sequences: fastnn.data.pad_sequences is "
                                 "not available in this build") from None
    raise AttributeError(f"module 'fastnn.preprocessing.sequence' has no attribute {name!r}")
