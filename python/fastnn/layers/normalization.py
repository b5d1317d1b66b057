"""BatchNormalization (channels last, Keras defaults)."""
from __future__ import annotations

import numpy as np

from .. import ops
from .base import Layer


class BatchNormalization(Layer):
    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1,):
            raise ValueError(f"BatchNormalization: axis: only -1 (channels last) is supported, got {axis!r}")
        momentum, epsilon = float(momentum), float(epsilon)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: momentum: expected a float in [0, 1], got {momentum}")
        if not epsilon >= 0.0:
            raise ValueError(f"BatchNormalization: epsilon: expected a float >= 0, got {epsilon}")
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon
        self.center, self.scale = bool(center), bool(scale)
        self.inits = dict(beta=beta_initializer, gamma=gamma_initializer, moving_mean=moving_mean_initializer,
                          moving_variance=moving_variance_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        C = (input_shape[-1],)
        self.gamma = self.add_weight("gamma", C, self.inits["gamma"]) if self.scale else None
        self.beta = self.add_weight("beta", C, self.inits["beta"]) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", C, self.inits["moving_mean"], trainable=False)
        self.moving_variance = self.add_weight("moving_variance", C, self.inits["moving_variance"], trainable=False)

    def forward(self, x, training=False):
        y, cache = ops.batch_norm(x, None if self.gamma is None else self.gamma.value,
                                  None if self.beta is None else self.beta.value,
                                  self.moving_mean.value, self.moving_variance.value,
                                  training=training, momentum=self.momentum, epsilon=self.epsilon)
        if training:
            self._cache = cache
        return y

    def backward(self, dy, need_dx=True):
        dx, dgamma, dbeta = ops.batch_norm_backward(dy, self._cache)
        if self.gamma is not None:
            np.copyto(self.gamma.grad, dgamma)
        if self.beta is not None:
            np.copyto(self.beta.grad, dbeta)
        return dx

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center, scale=self.scale)
        return cfg
