"""float64 NumPy references: optim kernels (Keras 3 update rules).

Each returns new arrays (param, *state); nothing is modified in place."""
import numpy as np


def _f64(*arrays):
    return [np.array(a, dtype=np.float64) for a in arrays]


def _decay(p, lr, weight_decay):
    return p - p * weight_decay * lr if weight_decay else p


def sgd(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    p, g = _f64(param, grad)
    p = _decay(p, lr, weight_decay)
    if momentum == 0:
        return p - lr * g, (None if velocity is None else np.array(velocity, dtype=np.float64))
    (v,) = _f64(velocity)
    v = momentum * v - lr * g
    p = p + (momentum * v - lr * g if nesterov else v)
    return p, v


def rmsprop(param, grad, mean_square, *, lr, rho=0.9, epsilon=1e-7, weight_decay=0.0):
    """Keras 3: epsilon inside the square root."""
    p, g, ms = _f64(param, grad, mean_square)
    p = _decay(p, lr, weight_decay)
    ms = rho * ms + (1 - rho) * g * g
    return p - lr * g / np.sqrt(ms + epsilon), ms


def adam(param, grad, m, v, *, lr, step, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
         weight_decay=0.0):
    p, g, m, v = _f64(param, grad, m, v)
    p = _decay(p, lr, weight_decay)
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    alpha = lr * np.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
    return p - alpha * m / (np.sqrt(v) + epsilon), m, v


def adagrad(param, grad, accumulator, *, lr, epsilon=1e-7, weight_decay=0.0):
    p, g, acc = _f64(param, grad, accumulator)
    p = _decay(p, lr, weight_decay)
    acc = acc + g * g
    return p - lr * g / np.sqrt(acc + epsilon), acc


def adadelta(param, grad, accum_grad, accum_delta, *, lr, rho=0.95, epsilon=1e-7,
             weight_decay=0.0):
    p, g, ag, ad = _f64(param, grad, accum_grad, accum_delta)
    p = _decay(p, lr, weight_decay)
    ag = rho * ag + (1 - rho) * g * g
    d = -np.sqrt(ad + epsilon) / np.sqrt(ag + epsilon) * g
    ad = rho * ad + (1 - rho) * d * d
    return p + lr * d, ag, ad


def global_norm(arrays):
    return float(np.sqrt(sum(np.sum(np.asarray(a, dtype=np.float64) ** 2) for a in arrays)))


def clip_by_norm(grad, clipnorm):
    """Keras clipnorm (per gradient): g * clipnorm / max(||g||, clipnorm)."""
    g = np.asarray(grad, dtype=np.float64)
    return g * clipnorm / max(np.sqrt(np.sum(g * g)), clipnorm)


def clip_by_value(grad, clipvalue):
    return np.clip(np.asarray(grad, dtype=np.float64), -clipvalue, clipvalue)
