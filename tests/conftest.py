import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import fastnn  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_threads():
    n = fastnn.get_num_threads()
    yield
    fastnn.set_num_threads(n)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
