"""float64 NumPy references: loss kernels (each a mean, with its gradient)."""
import numpy as np  # noqa: F401


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def log_softmax(z):
    z = _f64(z)
    m = np.max(z, axis=1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))


def onehot(labels, num_classes):
    labels = np.asarray(labels).reshape(-1)
    t = np.zeros((labels.size, num_classes))
    t[np.arange(labels.size), labels] = 1.0
    return t


def softmax_cross_entropy(logits, labels):
    """loss = mean_n -sum_k t_nk log softmax(z)_nk; dlogits = (T_n softmax - t) / N
    where T_n = sum_k t_nk (1 for one-hot / probability rows). labels: integer
    class indices (N,) or float rows (N, K). N == 0 gives (0.0, empty)."""
    z = _f64(logits)
    n, k = z.shape
    labels = np.asarray(labels)
    t = onehot(labels, k) if labels.dtype.kind in "iu" else _f64(labels)
    if n == 0:
        return 0.0, np.zeros_like(z)
    ls = log_softmax(z)
    loss = -np.sum(t * ls) / n
    p = np.exp(ls)
    d = (np.sum(t, axis=1, keepdims=True) * p - t) / n
    return float(loss), d


def mse(pred, target):
    d = _f64(pred) - _f64(target)
    if d.size == 0:
        return 0.0, d
    return float(np.mean(d * d)), 2.0 * d / d.size


def mae(pred, target):
    d = _f64(pred) - _f64(target)
    if d.size == 0:
        return 0.0, d
    return float(np.mean(np.abs(d))), np.sign(d) / d.size
