"""float64 NumPy references for the augmentation warp (fastnn._core.affine_warp) and for
the affine matrices that ImageDataGenerator builds (written for clarity, not speed)."""
import numpy as np


def ref_map_index(i, n, fill_mode):
    """Neighbour index i (int array) along an axis of size n -> (index, inside-mask).

    nearest: clamp; constant: outside -> mask False; reflect: half-sample symmetric
    (d c b a | a b c d | d c b a); wrap: periodic."""
    i = np.asarray(i, dtype=np.int64)
    if fill_mode == "nearest":
        return np.clip(i, 0, n - 1), np.ones(i.shape, bool)
    if fill_mode == "constant":
        inside = (i >= 0) & (i < n)
        return np.where(inside, i, 0), inside
    if fill_mode == "reflect":
        m = np.mod(i, 2 * n)
        return np.where(m < n, m, 2 * n - 1 - m), np.ones(i.shape, bool)
    if fill_mode == "wrap":
        return np.mod(i, n), np.ones(i.shape, bool)
    raise ValueError(fill_mode)


def ref_warp_image(img, m, fill_mode="nearest", cval=0.0):
    """One image (H, W, C) warped by the 2x3 inverse matrix m (output (r, c) -> input
    (m00 r + m01 c + m02, m10 r + m11 c + m12)) with bilinear interpolation."""
    img = np.asarray(img, dtype=np.float64)
    h, w, _ = img.shape
    r, c = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    sr = m[0, 0] * r + m[0, 2] + m[0, 1] * c
    sc = m[1, 0] * r + m[1, 2] + m[1, 1] * c
    r0, c0 = np.floor(sr), np.floor(sc)
    fr, fc = (sr - r0)[..., None], (sc - c0)[..., None]
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    out = np.zeros(img.shape)
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            ri, rin = ref_map_index(r0 + dr, h, fill_mode)
            ci, cin = ref_map_index(c0 + dc, w, fill_mode)
            v = np.where((rin & cin)[..., None], img[ri, ci], cval)
            out += wr * wc * v
    return out


def ref_affine_warp(x, matrices, index=None, fill_mode="nearest", cval=0.0):
    """Batch version: out[b] = ref_warp_image(x[index[b]], matrices[b])."""
    x = np.asarray(x, dtype=np.float64)
    matrices = np.asarray(matrices, dtype=np.float64)
    index = np.arange(x.shape[0]) if index is None else np.asarray(index)
    out = np.zeros((len(index),) + x.shape[1:])
    for b, i in enumerate(index):
        out[b] = ref_warp_image(x[i], matrices[b], fill_mode, cval)
    return out


def ref_augment_matrix(theta_deg, tx, ty, zx, zy, flip_h, flip_v, h, w):
    """The 2x3 inverse matrix of one set of Keras-style parameters, by 3x3 homogeneous
    composition: centre @ rotation @ shift @ zoom @ uncentre, then the output flips.
    Coordinates are (row, col); tx/zy act on rows, ty/zx on columns."""
    t = np.deg2rad(theta_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=np.float64)
    zoom = np.array([[zy, 0, 0], [0, zx, 0], [0, 0, 1]], dtype=np.float64)
    cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
    centre = np.array([[1, 0, cr], [0, 1, cc], [0, 0, 1]])
    uncentre = np.array([[1, 0, -cr], [0, 1, -cc], [0, 0, 1]])
    m = centre @ rot @ shift @ zoom @ uncentre
    if flip_h:  # out'(r, c) = out(r, w - 1 - c)
        m = m @ np.array([[1, 0, 0], [0, -1, w - 1], [0, 0, 1]], dtype=np.float64)
    if flip_v:  # out'(r, c) = out(h - 1 - r, c)
        m = m @ np.array([[-1, 0, h - 1], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    return m[:2]
