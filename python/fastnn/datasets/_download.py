"""Keras-style dataset files: a cache directory, a download with a SHA-256 check, and a
clear message when there is no network.

Decisions:
- The cache directory is ``$FASTNN_HOME/datasets`` (``FASTNN_HOME`` defaults to
  ``~/.fastnn``), as Keras uses ``$KERAS_HOME/datasets``. A relative ``path`` is taken
  inside it, an absolute one as it is.
- The base address is ``ORIGIN`` (Keras's canonical
  https://storage.googleapis.com/tensorflow/tf-keras-datasets/), or the environment
  variable ``FASTNN_DATASETS_URL`` when set (a mirror; the tests use a local server).
- A file already in the cache is used as it is (its contents are validated by the
  loader); the checksum guards what is downloaded. A download streams into a hidden
  temporary file in the cache directory, hashing as it goes, and is renamed into place
  only when its SHA-256 matches (so a half-written or corrupt file never sits under the
  final name); on a mismatch the temporary file is removed and ValueError is raised.
  Downloads larger than ``max_bytes`` are cut off (ValueError).
- No network (or any transfer error): FileNotFoundError naming the file, the address and
  the path to place a hand-downloaded copy at.
"""
from __future__ import annotations

import hashlib
import os
import tempfile

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CHUNK = 1 << 16


def fastnn_home() -> str:
    return os.path.expanduser(os.environ.get("FASTNN_HOME") or os.path.join("~", ".fastnn"))


def cache_dir() -> str:
    """Where downloaded datasets are kept: $FASTNN_HOME/datasets (~/.fastnn/datasets)."""
    return os.path.join(fastnn_home(), "datasets")


def origin() -> str:
    base = os.environ.get("FASTNN_DATASETS_URL") or ORIGIN
    return base if base.endswith("/") else base + "/"


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def get_file(fname, remote_name, sha256, max_bytes, timeout=60.0):
    """The local path of a dataset file, downloading origin()+remote_name when absent."""
    fname = os.fspath(fname)
    if not isinstance(fname, str) or not fname:
        raise TypeError(f"path: expected a non-empty file name, got {fname!r}")
    target = os.path.join(cache_dir(), fname)
    if os.path.exists(target):
        if not os.path.isfile(target):
            raise ValueError(f"{target}: expected a regular file (the cached {remote_name})")
        return target
    url = origin() + remote_name
    directory = os.path.dirname(target) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise FileNotFoundError(f"{remote_name}: cannot create the cache directory {directory} ({e}); "
                                f"set FASTNN_HOME to a writable directory") from None
    import urllib.error
    import urllib.request

    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".part", dir=directory)
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    while True:
                        block = resp.read(_CHUNK)
                        if not block:
                            break
                        size += len(block)
                        if size > max_bytes:
                            raise ValueError(f"{url}: the download exceeds {max_bytes} bytes, more than "
                                             f"{remote_name} holds; not the expected file")
                        h.update(block)
                        out.write(block)
            except (urllib.error.URLError, OSError, EOFError) as e:
                reason = getattr(e, "reason", None) or e
                raise FileNotFoundError(
                    f"{remote_name} is not in the cache and could not be downloaded from {url} ({reason}). "
                    f"Without network, download it by hand and place it at {target} "
                    f"(the cache directory is $FASTNN_HOME/datasets; FASTNN_HOME={fastnn_home()})") from None
        got = h.hexdigest()
        if got != sha256:
            raise ValueError(f"{url}: downloaded {size} bytes with SHA-256 {got}, expected {sha256}; "
                             "the partial file was removed")
        os.replace(tmp, target)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return target
