"""float64 NumPy references: norm kernels (batch norm, channels last, Keras semantics)."""
import numpy as np


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.99,
               epsilon=1e-3):
    """Returns (y, new_running_mean, new_running_var); inputs are not modified.

    Statistics over every axis but the last. Training: batch mean and biased
    variance; running = running*momentum + batch*(1-momentum) (Keras, biased var).
    gamma/beta None mean 1/0."""
    x = np.asarray(x, dtype=np.float64)
    C = x.shape[-1]
    g = np.ones(C) if gamma is None else np.asarray(gamma, dtype=np.float64)
    b = np.zeros(C) if beta is None else np.asarray(beta, dtype=np.float64)
    rm = np.asarray(running_mean, dtype=np.float64)
    rv = np.asarray(running_var, dtype=np.float64)
    rows = x.reshape(-1, C)
    if training and rows.shape[0] > 0:
        mean = rows.mean(axis=0)
        var = ((rows - mean) ** 2).mean(axis=0)
        new_rm = rm * momentum + mean * (1 - momentum)
        new_rv = rv * momentum + var * (1 - momentum)
    else:
        mean, var = rm, rv
        new_rm, new_rv = rm.copy(), rv.copy()
    y = g * (x - mean) / np.sqrt(var + epsilon) + b
    return y, new_rm, new_rv


def batch_norm_backward(dy, x, gamma, running_mean, running_var, training, epsilon=1e-3):
    """(dx, dgamma, dbeta) of batch_norm (training: through the batch statistics)."""
    dy = np.asarray(dy, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    C = x.shape[-1]
    g = np.ones(C) if gamma is None else np.asarray(gamma, dtype=np.float64)
    rows = x.reshape(-1, C)
    drows = dy.reshape(-1, C)
    m = rows.shape[0]
    if training and m > 0:
        mean = rows.mean(axis=0)
        var = ((rows - mean) ** 2).mean(axis=0)
    else:
        mean = np.asarray(running_mean, dtype=np.float64)
        var = np.asarray(running_var, dtype=np.float64)
    inv_std = 1.0 / np.sqrt(var + epsilon)
    xhat = (rows - mean) * inv_std
    dbeta = drows.sum(axis=0)
    dgamma = (drows * xhat).sum(axis=0)
    if training and m > 0:
        # Chain rule through mean and var, written out term by term.
        dxhat = drows * g
        dvar = np.sum(dxhat * (rows - mean), axis=0) * -0.5 * inv_std ** 3
        dmean = -np.sum(dxhat * inv_std, axis=0) + dvar * np.mean(-2.0 * (rows - mean), axis=0)
        dx = dxhat * inv_std + dvar * 2.0 * (rows - mean) / m + dmean / m
    else:
        dx = drows * g * inv_std
    return dx.reshape(x.shape), dgamma, dbeta
