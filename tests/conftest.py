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


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="property tests with many more hypothesis examples")


def pytest_configure(config):
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    settings.register_profile("ci", max_examples=25, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("long", max_examples=1000, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("long" if config.getoption("--long") else "ci")
