"""Weight initializers (Keras names and formulas) on counter-based random streams.

Every draw is keyed by (global seed, draw counter): the n-th weight initialized
after ``fastnn.set_seed(s)`` always gets the same values, whatever the thread
count. Without set_seed the seed is 0, so a fresh process is reproducible.
"""
from __future__ import annotations

import math

import numpy as np

from . import _runtime

_draws = {"seed": None, "count": 0}


def _next_key():
    seed = _runtime.get_seed()
    if _draws["seed"] != seed:
        _draws["seed"] = seed
        _draws["count"] = 0
    _draws["count"] += 1
    return seed, _draws["count"]


def reset_counter():
    _draws["seed"] = None


def generator(*key) -> np.random.Generator:
    """A Philox stream (counter-based) keyed by integers."""
    words = [int(k) & 0xFFFFFFFFFFFFFFFF for k in key]
    return np.random.Generator(np.random.Philox(key=np.array(words[:2] + [0] * (2 - len(words[:2])), np.uint64),
                                                counter=np.array(words[2:4] + [0] * (4 - len(words[2:4])), np.uint64)))


def new_stream() -> np.random.Generator:
    return generator(*_next_key())


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    name = "initializer"

    def __call__(self, shape, rng):
        raise NotImplementedError

    def get_config(self):
        return {"class_name": self.name}


class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, rng):
        return np.zeros(shape, np.float32)


class Ones(Initializer):
    name = "ones"

    def __call__(self, shape, rng):
        return np.ones(shape, np.float32)


class Constant(Initializer):
    name = "constant"

    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, rng):
        return np.full(shape, self.value, np.float32)

    def get_config(self):
        return {"class_name": self.name, "value": self.value}


class GlorotUniform(Initializer):
    name = "glorot_uniform"

    def __call__(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / max(fan_in + fan_out, 1))
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)


class GlorotNormal(Initializer):
    name = "glorot_normal"

    def __call__(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        std = math.sqrt(2.0 / max(fan_in + fan_out, 1))
        return _truncated_normal(rng, shape, std)


class HeNormal(Initializer):
    name = "he_normal"

    def __call__(self, shape, rng):
        fan_in, _ = _fans(shape)
        return _truncated_normal(rng, shape, math.sqrt(2.0 / max(fan_in, 1)))


class HeUniform(Initializer):
    name = "he_uniform"

    def __call__(self, shape, rng):
        fan_in, _ = _fans(shape)
        limit = math.sqrt(6.0 / max(fan_in, 1))
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)


class Orthogonal(Initializer):
    name = "orthogonal"

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def __call__(self, shape, rng):
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(np.float32)

    def get_config(self):
        return {"class_name": self.name, "gain": self.gain}


def _truncated_normal(rng, shape, std):
    # Keras: truncated at 2 std, scaled by 0.87962566 so the std is the target
    stddev = std / 0.87962566103423978
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2
    return (out * stddev).astype(np.float32)


_BY_NAME = {c.name: c for c in (Zeros, Ones, Constant, GlorotUniform, GlorotNormal, HeNormal, HeUniform, Orthogonal)}


def get(identifier) -> Initializer:
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        cfg = dict(identifier)
        cls = _BY_NAME.get(cfg.pop("class_name", None))
        if cls is None:
            raise ValueError(f"initializer: unknown config {identifier!r}")
        return cls(**cfg)
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"initializer: expected one of {sorted(_BY_NAME)} or an Initializer, got {identifier!r}")
