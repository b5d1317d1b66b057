"""float64 NumPy references: dense kernels (Keras Dense: kernel (I, O))."""
import numpy as np


def dense(x, w, b=None, relu=False):
    """y = x @ w (+ b) over the last axis of x; optional ReLU."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    y = np.tensordot(x, w, axes=([x.ndim - 1], [0]))
    if b is not None:
        y = y + np.asarray(b, dtype=np.float64)
    if relu:
        y = np.maximum(y, 0.0)
    return y


def dense_backward(dy, x, w):
    """(dx, dw, db) of y = x @ w + b; leading dims of x/dy are flattened into rows."""
    dy = np.asarray(dy, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    rows_x = x.reshape(-1, x.shape[-1])
    rows_dy = dy.reshape(-1, dy.shape[-1])
    dx = (rows_dy @ w.T).reshape(x.shape)
    dw = rows_x.T @ rows_dy
    db = rows_dy.sum(axis=0)
    return dx, dw, db
