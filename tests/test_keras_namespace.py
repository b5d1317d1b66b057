"""Keras spellings (fastnn.utils, fastnn.preprocessing, fastnn.backend,
fastnn.datasets.mnist) are aliases of the one implementation, loaded lazily."""
import os
import random
import subprocess
import sys

import numpy as np
import pytest

import fastnn


def test_aliases_are_the_same_objects():
    from fastnn import data
    assert fastnn.utils.to_categorical is data.to_categorical
    from fastnn.preprocessing.image import ImageDataGenerator, NumpyArrayIterator
    assert ImageDataGenerator is data.ImageDataGenerator
    assert NumpyArrayIterator is data.ImageFlow
    assert fastnn.preprocessing.image.ImageDataGenerator is data.ImageDataGenerator
    from fastnn.datasets import mnist
    assert fastnn.datasets.mnist is mnist and callable(mnist.load_data)
    assert callable(fastnn.backend.clear_session)
    assert fastnn.backend.image_data_format() == "channels_last"
    assert fastnn.backend.floatx() == "float32"


def test_pad_sequences_aliases():
    from fastnn import data
    if not hasattr(data, "pad_sequences"):
        with pytest.raises(AttributeError, match="pad_sequences"):
            fastnn.utils.pad_sequences
        pytest.skip("fastnn.data.pad_sequences is not in this build yet")
    assert fastnn.utils.pad_sequences is data.pad_sequences
    from fastnn.preprocessing.sequence import pad_sequences
    assert pad_sequences is data.pad_sequences


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError):
        fastnn.utils.no_such_thing
    with pytest.raises(AttributeError):
        fastnn.preprocessing.no_such_thing
    with pytest.raises(AttributeError):
        fastnn.preprocessing.sequence.no_such_thing
    with pytest.raises(AttributeError):
        fastnn.datasets.no_such_thing


def test_import_fastnn_loads_none_of_them():
    code = ("import sys, fastnn; print(sorted(m for m in sys.modules if m.startswith('fastnn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ)).stdout
    mods = eval(out)
    assert set(mods) <= {"fastnn", "fastnn._core", "fastnn._runtime", "fastnn.ops"}, mods
    for name in ("utils", "preprocessing", "backend"):
        assert name in fastnn._LAZY_MODULES and name in dir(fastnn)


def test_set_random_seed_seeds_fastnn_numpy_and_python():
    old = fastnn.get_seed()
    try:
        fastnn.utils.set_random_seed(123)
        assert fastnn.get_seed() == 123
        a, r = np.random.random(3), random.random()
        fastnn.utils.set_random_seed(123)
        np.testing.assert_array_equal(np.random.random(3), a)
        assert random.random() == r
        for bad, exc in ((-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError),
                         ("1", TypeError)):
            with pytest.raises(exc, match="seed"):
                fastnn.utils.set_random_seed(bad)
        assert fastnn.get_seed() == 123
    finally:
        fastnn.set_seed(old)


def test_clear_session_restarts_initializer_draws():
    from fastnn import initializers
    old = fastnn.get_seed()
    try:
        fastnn.set_seed(5)
        first = initializers.new_stream().random(4)
        initializers.new_stream()
        fastnn.backend.clear_session()
        np.testing.assert_array_equal(initializers.new_stream().random(4), first)
        assert fastnn.get_seed() == 5
    finally:
        fastnn.set_seed(old)
