"""float64 NumPy references: activation kernels (relu, sigmoid, tanh, softmax,
their backward passes) and dropout given a mask."""
import numpy as np  # noqa: F401


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def relu(x):
    x = _f64(x)
    return np.where(x < 0, 0.0, x)  # NaN stays NaN


def relu_backward(dy, x):
    dy, x = _f64(dy), _f64(x)
    return np.where(x > 0, dy, 0.0)


def sigmoid(x):
    x = _f64(x)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def sigmoid_backward(dy, x):
    s = sigmoid(x)
    return _f64(dy) * s * (1.0 - s)


def tanh(x):
    return np.tanh(_f64(x))


def tanh_backward(dy, x):
    t = np.tanh(_f64(x))
    return _f64(dy) * (1.0 - t * t)


def softmax(x, axis=-1):
    x = _f64(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_backward(dy, y, axis=-1):
    dy, y = _f64(dy), _f64(y)
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def dropout_apply(x, mask, rate):
    """Inverted dropout for a given keep mask: x * mask / (1 - rate)."""
    return _f64(x) * (np.asarray(mask) != 0) / (1.0 - rate)
