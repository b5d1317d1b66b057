"""``fastnn.datasets.mnist.load_data()``: Keras's MNIST loader, same file and same result.

``load_data(path="mnist.npz")`` reads Keras's mnist.npz from the cache directory
($FASTNN_HOME/datasets, default ~/.fastnn/datasets; an absolute path is used as it is),
downloading it from Keras's canonical address with a SHA-256 check when it is absent, and
returns ``(x_train, y_train), (x_test, y_test)``: uint8 (60000, 28, 28), uint8 (60000,),
uint8 (10000, 28, 28), uint8 (10000,). The file is read without pickle, and every array's
header (shape, dtype, size) is checked before anything is allocated. For the bundled
10k/2k sample or IDX/CSV files use ``fastnn.datasets.load_mnist``.
"""
from __future__ import annotations

from . import _download

REMOTE_NAME = "mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_MAX_BYTES = 64 << 20  # the real file is 11,490,434 bytes
_MAX_MEMBER = 64 << 20  # x_train is 47,040,000 bytes uncompressed

__all__ = ["load_data"]


def _check_headers(path):
    """Checks the .npz members' headers (names, dtypes, shapes, sizes) before loading."""
    import zipfile
    import zlib

    import numpy as np

    want = {"x_train": 3, "y_train": 1, "x_test": 3, "y_test": 1}
    try:
        with zipfile.ZipFile(path) as z:
            infos = {i.filename[:-4]: i for i in z.infolist() if i.filename.endswith(".npy")}
            missing = sorted(set(want) - set(infos))
            if missing:
                raise ValueError(f"{path}: expected arrays x_train, y_train, x_test, y_test; missing {missing}")
            shapes = {}
            for name, ndim in want.items():
                info = infos[name]
                if info.file_size > _MAX_MEMBER:
                    raise ValueError(f"{path}: {name} claims {info.file_size} bytes, more than MNIST holds")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"{path}: {name}: unsupported .npy version {version}")
                if dtype.hasobject or dtype.kind not in "iu":
                    raise ValueError(f"{path}: {name}: expected an integer array, got dtype {dtype}")
                if len(shape) != ndim or (ndim == 3 and shape[1:] != (28, 28)):
                    want_shape = "(N, 28, 28)" if ndim == 3 else "(N,)"
                    raise ValueError(f"{path}: {name}: expected shape {want_shape}, got {shape}")
                if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                    raise ValueError(f"{path}: {name}: the header says {shape} {dtype}, more than the "
                                     f"{info.file_size} bytes stored")
                shapes[name] = (shape, dtype)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    for split in ("train", "test"):
        (xs, xd), (ys, _) = shapes["x_" + split], shapes["y_" + split]
        if xd != np.uint8:
            raise ValueError(f"{path}: x_{split}: expected uint8 images, got dtype {xd}")
        if ys[0] != xs[0]:
            raise ValueError(f"{path}: {ys[0]} labels in y_{split} for {xs[0]} images in x_{split}")


def load_data(path="mnist.npz"):
    """MNIST as Keras's ``keras.datasets.mnist.load_data`` returns it:
    ``(x_train, y_train), (x_test, y_test)``, uint8 arrays (60000, 28, 28), (60000,),
    (10000, 28, 28), (10000,). ``path`` is relative to $FASTNN_HOME/datasets."""
    import numpy as np

    from ._mnist import _load_npz

    local = _download.get_file(path, REMOTE_NAME, SHA256, _MAX_BYTES)
    _check_headers(local)
    (x_tr, y_tr), (x_te, y_te) = _load_npz(local)
    for name, y in (("y_train", y_tr), ("y_test", y_te)):
        if y.size and int(y.max()) > 9:
            raise ValueError(f"{local}: {name}: expected digit labels 0..9, got {int(y.max())}")
    return (x_tr, y_tr.astype(np.uint8, copy=False)), (x_te, y_te.astype(np.uint8, copy=False))
