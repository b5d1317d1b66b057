"""MNIST loader: IDX files (gzip or not), a Kaggle digit-recognizer CSV, or Keras's
mnist.npz; the bundled sample by default.

Decisions:
- path=None: the bundled sample (first 10,000 training + first 2,000 test images).
- path is a directory: the four IDX files under their standard names
  (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
  t10k-labels-idx1-ubyte), each with or without '.gz' (gzip is detected from the
  content, not the name). The training pair is required; when both test files are
  absent the test split comes back empty. A directory without IDX files but with a
  Kaggle 'train.csv' loads that CSV.
- path is a .csv file (optionally gzip-compressed): a Kaggle digit-recognizer training
  CSV, header 'label,pixel0,...,pixel783' (a headerless CSV of 785 numeric columns is
  also accepted); it is the training split and the test split is empty, shape (0, 28, 28).
  Kaggle's test.csv (no labels) is rejected with a ValueError.
- path is a .npz file: Keras's mnist.npz (x_train, y_train, x_test, y_test), read with
  allow_pickle=False.
- Images must be 28x28 uint8, labels uint8; every problem with a file (bad magic,
  header/size mismatch, short or extra data, corrupt gzip, non-numeric CSV cells, values
  outside 0..255, wrong column count, image/label count mismatch) raises ValueError
  naming the file. A missing file raises FileNotFoundError.
- The returned arrays are writable copies (Keras returns writable arrays).
"""
from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"
_TEST_IMAGES = "t10k-images-idx3-ubyte"
_TEST_LABELS = "t10k-labels-idx1-ubyte"
_ROWS = _COLS = 28
_PIXELS = _ROWS * _COLS


MAX_IDX_BYTES = 1 << 31     # the data an IDX header may declare (full MNIST: 47 MB)
MAX_CSV_BYTES = 1 << 30     # a CSV after decompression


def _open(path, what="load_mnist"):
    """A regular file (FIFOs, devices, directories refused before opening) -> binary
    stream, gunzipped (streaming) when it holds gzip data."""
    from .._archive import open_regular
    import gzip

    fh, _ = open_regular(path, what)
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb"), fh
    return fh, fh


def _read_bounded(path, limit, what="load_mnist"):
    """At most `limit` bytes of a (possibly gzip) file, streamed; more -> ValueError."""
    import zlib
    f, raw = _open(path, what)
    try:
        data = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None
    finally:
        f.close()
        raw.close()
    if len(data) > limit:
        raise ValueError(f"{path}: more than {limit} bytes (after decompression): refused")
    return data


def _read(path):
    """The bytes of a file (gunzipped when it is gzip data), at most MAX_CSV_BYTES."""
    return _read_bounded(path, MAX_CSV_BYTES)


def _read_idx(path, ndim):
    """An IDX file: the header is read and checked first, then exactly the data it
    declares is inflated (a gzip bomb stops at the header's size + 1 byte)."""
    import zlib
    f, raw = _open(path)
    try:
        try:
            head = f.read(4 + 4 * ndim)
            if len(head) >= 4 and int.from_bytes(head[:4], "big") == 0x800 + ndim and len(head) == 4 + 4 * ndim:
                dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
                count = 1
                for d in dims:
                    count *= d
                if count > MAX_IDX_BYTES:
                    raise ValueError(f"{path}: the IDX header declares {tuple(dims)} = {count} bytes "
                                     f"(at most {MAX_IDX_BYTES}): refused")
                data = head + f.read(count + 1)
            else:
                data = head  # _parse_idx names the problem
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None
    finally:
        f.close()
        raw.close()
    return _parse_idx(data, path, ndim)


def _parse_idx(data, path, ndim):
    """An IDX array of unsigned bytes with `ndim` dimensions (magic 0x0000080{ndim})."""
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x800 + ndim:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{0x800 + ndim:08x} "
                         f"(unsigned bytes, {ndim}-D)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} of {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(dims, dtype=np.int64))
    have = len(data) - header
    if have != count:
        what = "truncated" if have < count else "has extra bytes"
        raise ValueError(f"{path}: {what}: the header says {dims} = {count} bytes of data, the file holds {have}")
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims).copy()


def _find(directory, name):
    for cand in (name, name + ".gz"):
        p = os.path.join(directory, cand)
        if os.path.isfile(p):
            return p
    return None


def _load_idx_pair(images_path, labels_path):
    x = _read_idx(images_path, 3)
    if x.shape[1:] != (_ROWS, _COLS):
        raise ValueError(f"{images_path}: expected {_ROWS}x{_COLS} images, got {x.shape[1]}x{x.shape[2]}")
    y = _read_idx(labels_path, 1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{labels_path}: {y.shape[0]} labels for {x.shape[0]} images in {images_path}")
    return x, y


def _empty():
    return np.zeros((0, _ROWS, _COLS), np.uint8), np.zeros((0,), np.uint8)


def _load_dir(directory):
    tr_x, tr_y = _find(directory, _TRAIN_IMAGES), _find(directory, _TRAIN_LABELS)
    te_x, te_y = _find(directory, _TEST_IMAGES), _find(directory, _TEST_LABELS)
    if tr_x is None and tr_y is None:
        csv_path = os.path.join(directory, "train.csv")
        if os.path.isfile(csv_path):
            return _load_csv(csv_path)
    missing = [n for n, p in ((_TRAIN_IMAGES, tr_x), (_TRAIN_LABELS, tr_y)) if p is None]
    if (te_x is None) != (te_y is None):
        missing += [n for n, p in ((_TEST_IMAGES, te_x), (_TEST_LABELS, te_y)) if p is None]
    if missing:
        raise FileNotFoundError(f"{directory}: missing MNIST file(s) {', '.join(missing)} (with or without .gz)")
    train = _load_idx_pair(tr_x, tr_y)
    test = _load_idx_pair(te_x, te_y) if te_x is not None else _empty()
    return train, test


def _load_csv(path):
    import csv
    import io

    data = _read(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text CSV ({e})") from None
    if "\x00" in text:
        raise ValueError(f"{path}: the CSV holds NUL bytes (a binary file?)")
    first, _, rest = text.partition("\n")
    header = next(csv.reader([first]), [])
    cells = [h.strip() for h in header]
    if not cells:
        raise ValueError(f"{path}: empty CSV, expected the header 'label,pixel0,...,pixel783'")
    try:
        [float(c) for c in cells]
        body, skipped = text, 0  # headerless: the first line is data
    except ValueError:
        if cells[0].lower() != "label":
            if len(cells) == _PIXELS and cells[0].lower() == "pixel0":
                raise ValueError(f"{path}: this CSV has no 'label' column (Kaggle's test.csv?); "
                                 "load_mnist needs labelled images ('label,pixel0,...,pixel783')") from None
            raise ValueError(f"{path}: expected the header 'label,pixel0,...,pixel783', got "
                             f"'{first[:60].strip()}...'") from None
        if len(cells) != _PIXELS + 1:
            raise ValueError(f"{path}: expected {_PIXELS + 1} columns (label + {_PIXELS} pixels) in the header, "
                             f"got {len(cells)}") from None
        body, skipped = rest, 1
    if not body.strip():
        raise ValueError(f"{path}: no data rows")
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        import re
        msg = re.sub(r"at row (\d+)", lambda m: f"at line {int(m.group(1)) + skipped + 1}", str(e))
        raise ValueError(f"{path}: malformed CSV data: {msg}") from None
    if a.shape[1] != _PIXELS + 1:
        raise ValueError(f"{path}: expected {_PIXELS + 1} columns (label + {_PIXELS} pixels), got {a.shape[1]}")
    bad = ~((a >= 0) & (a <= 255) & (a == np.floor(a)))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{path}: expected whole numbers in 0..255, got {float(a[r, c])} at line "
                         f"{r + skipped + 1}, column {c + 1}")
    a = a.astype(np.uint8)
    x = np.ascontiguousarray(a[:, 1:]).reshape(-1, _ROWS, _COLS)
    y = a[:, 0].copy()
    return (x, y), _empty()


def _load_npz(path):
    from .._archive import open_regular
    fh, _ = open_regular(path, "load_mnist")  # a FIFO or device is refused, never opened blocking
    try:
        with fh, np.load(fh, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as e:
        raise ValueError(f"{path}: expected arrays x_train, y_train, x_test, y_test ({e})") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    out = []
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.ndim != 3 or x.shape[1:] != (_ROWS, _COLS) or y.shape != (x.shape[0],):
            raise ValueError(f"{path}: expected x_{split} (N, 28, 28) and y_{split} (N,), got {x.shape} and {y.shape}")
        if x.dtype != np.uint8 or y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() > 255)):
            raise ValueError(f"{path}: expected uint8 images and integer labels in 0..255 in the {split} split")
        out.append((np.array(x, np.uint8), np.array(y, np.uint8)))
    return tuple(out)


def load_mnist(path=None):
    """MNIST as Keras returns it: ``(x_train, y_train), (x_test, y_test)``, uint8 images
    (N, 28, 28) and uint8 labels.

    path=None loads the bundled sample (10,000 training + 2,000 test images). Otherwise
    path is a directory of the four IDX files (gzip or not), a Kaggle digit-recognizer
    CSV (label,pixel0..pixel783; the test split comes back empty) or Keras's mnist.npz."""
    if path is None:
        return _load_dir(DATA_DIR)
    path = os.fspath(path)
    if os.path.isdir(path):
        return _load_dir(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    low = path.lower()
    if low.endswith(".npz"):
        return _load_npz(path)
    if low.endswith(".csv") or low.endswith(".csv.gz"):
        return _load_csv(path)
    raise ValueError(f"{path}: expected a directory of MNIST IDX files, a Kaggle .csv or a Keras .npz file")
