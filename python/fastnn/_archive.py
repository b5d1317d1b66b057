"""The saved-file archive (``.fnn``, weights files, checkpoints): atomic writing and
bounded, strict reading. Nothing here knows about layers or models.

Writing: the ZIP goes to ``.fastnn-<target name>-<hash>-<pid>-<random>.tmp`` in the
target's directory, is fsynced and renamed over the target (the directory is fsynced
too). A successful save then removes the temp files an earlier save of the SAME target
left behind when it was killed (their pid is dead, or they are over an hour old), and
nothing else.

Reading (``read_archive``):
- the path must be a regular file: FIFOs, devices, sockets and directories are refused
  from ``os.stat`` before opening; the file is opened with O_NONBLOCK and checked again
  with ``fstat`` (same inode), so a swapped-in FIFO cannot block;
- the member set must be exactly canonical: ``model.json`` once, and the ``.npy``
  members that model.json declares (weights, optimizer slots, callback arrays) and
  checksums, each once; odd names (``//``, ``./``, ``..``, newline, NUL, over 200
  characters) are refused; members may not overlap or run past the end of the file;
- every member is streamed with an explicit byte budget: model.json at most
  ``MAX_JSON_BYTES``; each array exactly what its (bounded) ``.npy`` header declares,
  which must match the member's stored size, stay within ``MAX_RATIO`` of its
  compressed size, and fit a running total of ``MAX_RATIO`` x the archive size +
  ``SLACK_BYTES`` over the whole archive. An array buffer is allocated only once its
  size has passed these checks, and filled chunk by chunk (peak: the arrays + 1 MiB);
- SHA-256 checksums from model.json are verified on the streamed bytes.
Every problem raises ValueError naming the file and what is wrong.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import stat
import struct
import time
import zipfile
import zlib

import numpy as np

MAX_JSON_BYTES = 16 << 20          # model.json cap
MAX_NPY_HEADER = 64 << 10          # a .npy header longer than this is refused
MAX_RATIO = 200                    # inflated / compressed, per member and over the archive
SLACK_BYTES = 16 << 20             # allowance on top of MAX_RATIO x archive size
MAX_MEMBERS = 1 << 16
MAX_NAME = 200
_CHUNK = 1 << 20
_STALE_AGE = 3600.0                # a temp file of a live pid older than this is stale too

_NPY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.npy$")

# What a damaged archive can raise from zipfile / zlib / numpy besides ValueError.
_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError, NotImplementedError,
           RuntimeError, zlib.error, struct.error, OverflowError, RecursionError, UnicodeDecodeError)


class ArchiveError(ValueError):
    pass


# ----------------------------------------------------------------------------- writing

def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"cannot store {type(o).__name__} in a model file")


def _encode(meta, arrays):
    members = {}
    for name, arr in arrays.items():
        buf = io.BytesIO()
        arr = np.asarray(arr)
        np.save(buf, arr if arr.flags.c_contiguous else np.ascontiguousarray(arr), allow_pickle=False)
        members[name] = buf.getvalue()
    meta = dict(meta)
    meta["checksums"] = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    return json.dumps(meta, indent=1, default=_json_default, allow_nan=True), members


def _write_zip(fh, text, members):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("model.json", text)
        for name, data in members.items():
            zf.writestr(name, data)


def _tmp_stem(base):
    h = hashlib.sha256(base.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", base)[:64]
    return f".fastnn-{safe}-{h}-"


def _pid_alive(pid):
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists
        return True
    return True


def remove_stale_temps(filepath):
    """Removes temp files a killed save of this same target left; returns how many."""
    directory = os.path.dirname(os.path.abspath(filepath))
    stem = _tmp_stem(os.path.basename(filepath))
    pat = re.compile(re.escape(stem) + r"(\d+)-[0-9a-f]{16}\.tmp$")
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    now = time.time()
    for n in names:
        m = pat.match(n)
        if not m:
            continue
        p = os.path.join(directory, n)
        try:
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode):
                continue
            if _pid_alive(int(m.group(1))) and now - st.st_mtime < _STALE_AGE:
                continue  # a save in progress (this or another live process)
            os.unlink(p)
            removed += 1
        except (OSError, ValueError):
            pass
    return removed


def write_archive(filepath, meta, arrays, what="save"):
    """Writes meta (model.json) and arrays ({member name: array}) atomically to filepath,
    or into a writable binary file object."""
    if hasattr(filepath, "write") and not isinstance(filepath, (str, bytes, os.PathLike)):
        text, members = _encode(meta, arrays)
        _write_zip(filepath, text, members)
        return
    if not isinstance(filepath, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: filepath: expected a path, got {type(filepath).__name__}")
    filepath = os.fsdecode(os.fspath(filepath))
    if os.path.isdir(filepath):
        raise IsADirectoryError(f"{what}: filepath: {filepath!r} is a directory, expected a file path")
    for name in arrays:
        if not valid_member_name(name):
            raise ValueError(f"{what}: internal error: bad member name {name!r}")
    text, members = _encode(meta, arrays)
    write_atomic(filepath, lambda fh: _write_zip(fh, text, members))


def write_atomic(filepath, write):
    """Calls write(fh) on a new temp file beside filepath, fsyncs it and renames it over
    filepath (then fsyncs the directory); on any failure the temp file is removed and
    filepath is untouched. Afterwards stale temps of earlier killed writes to the same
    target are removed."""
    filepath = os.fsdecode(os.fspath(filepath))
    directory = os.path.dirname(os.path.abspath(filepath))
    tmp = os.path.join(directory, _tmp_stem(os.path.basename(filepath)) + f"{os.getpid()}-{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    remove_stale_temps(filepath)


# ----------------------------------------------------------------------------- reading

def valid_member_name(name):
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        return False
    if name == "model.json":
        return True
    if "//" in name or "\n" in name or "\x00" in name or "\r" in name:
        return False
    if any(part in (".", "..") for part in name.split("/")):
        return False
    return bool(_NPY_NAME.match(name))


def declared_members(meta, label, what):
    """The .npy member names model.json declares (weights, optimizer slots, callback arrays)."""
    def bad(msg):
        return ArchiveError(f"{what}: {label}: malformed model.json: {msg}")

    names = []
    ws = meta.get("weights", [])
    if not isinstance(ws, list):
        raise bad("'weights' must be a list")
    if len(ws) > MAX_MEMBERS:
        raise bad("too many weights")
    names += [f"weights/{i:05d}.npy" for i in range(len(ws))]
    ost = meta.get("optimizer_state", [])
    if not isinstance(ost, list) or not all(isinstance(k, str) for k in ost):
        raise bad("'optimizer_state' must be a list of names")
    names += [f"optimizer/{k}.npy" for k in ost]
    cbs = meta.get("callbacks", [])
    if not isinstance(cbs, list):
        raise bad("'callbacks' must be a list")
    for c, st in enumerate(cbs):
        if not isinstance(st, dict):
            raise bad(f"callbacks[{c}] must be an object")
        j, arrs = st.get("index"), st.get("arrays", [])
        if type(j) is not int or not isinstance(arrs, list) or not all(isinstance(k, str) for k in arrs):
            raise bad(f"callbacks[{c}]: 'index' must be an int and 'arrays' a list of names")
        names += [f"callbacks/{j}/{k}.npy" for k in arrs]
    for n in names:
        if not valid_member_name(n):
            raise bad(f"declared member name {n!r} is not allowed")
    if len(set(names)) != len(names):
        raise bad("a member is declared twice")
    return names


def _check_regular(path, label, what):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArchiveError(f"{what}: {label}: no such file") from None
    except OSError as exc:
        raise ArchiveError(f"{what}: {label}: cannot stat ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise ArchiveError(f"{what}: {label}: is {kind}, expected a regular file")
    return st


def open_regular(path, what="load", max_bytes=None):
    """Opens path for reading after checking it is a regular file (before and after
    opening, O_NONBLOCK so a FIFO swapped in between cannot block). Returns (file, size)."""
    label = os.fsdecode(path) if isinstance(path, (str, bytes)) else str(path)
    st = _check_regular(path, label, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ArchiveError(f"{what}: {label}: cannot open ({exc.strerror or exc})") from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_ino, fst.st_dev) != (st.st_ino, st.st_dev):
            raise ArchiveError(f"{what}: {label}: changed while opening, or not a regular file")
        if max_bytes is not None and fst.st_size > max_bytes:
            raise ArchiveError(f"{what}: {label}: {fst.st_size} bytes, more than the {max_bytes} allowed")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), fst.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_member(zf, info, budget, sink=None):
    """Streams one member, at most `budget` bytes; returns the bytes (sink None) or the
    count written into sink (a writable memoryview of exactly the expected size)."""
    out = [] if sink is None else None
    total = 0
    with zf.open(info) as f:
        while True:
            want = _CHUNK if sink is None else min(_CHUNK, len(sink) - total)
            chunk = f.read(want if want > 0 else 1)
            if not chunk:
                break
            if total + len(chunk) > budget or (sink is not None and want <= 0):
                raise ArchiveError(f"member {info.filename} inflates past its {budget}-byte budget")
            if sink is None:
                out.append(chunk)
            else:
                sink[total:total + len(chunk)] = chunk
            total += len(chunk)
    return b"".join(out) if sink is None else total


def _parse_npy_header(head, name):
    """(shape, fortran, dtype, header length) from the first bytes of a .npy member."""
    if len(head) < 10 or head[:6] != b"\x93NUMPY":
        raise ValueError(f"array {name} is not a .npy array")
    major = head[6]
    if major == 1:
        hlen, start = struct.unpack("<H", head[8:10])[0], 10
    elif major in (2, 3):
        if len(head) < 12:
            raise ValueError(f"array {name} has a truncated .npy header")
        hlen, start = struct.unpack("<I", head[8:12])[0], 12
    else:
        raise ValueError(f"array {name} has an unsupported .npy version {major}")
    if hlen > MAX_NPY_HEADER:
        raise ValueError(f"array {name} has a {hlen}-byte .npy header (at most {MAX_NPY_HEADER})")
    return start, hlen


def _npy_meta(header_bytes, name):
    fp = io.BytesIO(header_bytes)
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    if dtype.hasobject or dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"array {name} has dtype {dtype}, expected a numeric dtype")
    if not isinstance(shape, tuple) or len(shape) > 32:
        raise ValueError(f"array {name} has an invalid shape {shape!r}")
    count = 1
    for d in shape:
        if type(d) is not int or d < 0:
            raise ValueError(f"array {name} has an invalid shape {shape!r}")
        count *= d
    return shape, bool(fortran), dtype, count


def parse_npy(data, name, label, what="load"):
    """A complete .npy member held in memory -> array (same checks as the archive reader)."""
    try:
        start, hlen = _parse_npy_header(bytes(data[:12]), name)
        shape, fortran, dtype, count = _npy_meta(bytes(data[:start + hlen]), name)
    except (ValueError, OSError, SyntaxError, TypeError, struct.error) as exc:
        raise ArchiveError(f"{what}: {label}: corrupt array {name} ({exc})") from None
    payload = len(data) - start - hlen
    if count * dtype.itemsize != payload:
        raise ArchiveError(f"{what}: {label}: array {name} claims shape {shape} ({count * dtype.itemsize} bytes) "
                           f"but holds {payload} bytes")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=start + hlen)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def _check_layout(infos, size, label, what):
    """No overlapping members, none running past the end of the file."""
    spans = sorted((i.header_offset, i) for i in infos)
    end_prev = 0
    for off, i in spans:
        if off < end_prev:
            raise ArchiveError(f"{what}: {label}: member {i.filename} overlaps another member")
        end = off + 30 + len(i.orig_filename.encode("utf-8", "surrogateescape")) + i.compress_size
        if end > size:
            raise ArchiveError(f"{what}: {label}: member {i.filename} claims {i.compress_size} compressed bytes, "
                               f"past the end of the {size}-byte file")
        end_prev = end


def _read_fileobj(fh, size, label, what):
    with zipfile.ZipFile(fh, "r") as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"{what}: {label}: {len(infos)} members, more than {MAX_MEMBERS}")
        seen = set()
        for i in infos:
            raw = i.orig_filename
            if raw != i.filename or not valid_member_name(raw):
                raise ArchiveError(f"{what}: {label}: unexpected member {raw!r}")
            if raw in seen:
                raise ArchiveError(f"{what}: {label}: member {raw!r} appears twice")
            seen.add(raw)
            if i.flag_bits & 0x1:
                raise ArchiveError(f"{what}: {label}: member {raw!r} is encrypted")
        if "model.json" not in seen:
            raise ArchiveError(f"{what}: {label}: no model.json in the archive")
        _check_layout(infos, size, label, what)
        total_budget = MAX_RATIO * max(size, 1) + SLACK_BYTES
        by_name = {i.filename: i for i in infos}
        mj = by_name["model.json"]
        if mj.file_size > MAX_JSON_BYTES:
            raise ArchiveError(f"{what}: {label}: model.json declares {mj.file_size} bytes "
                               f"(at most {MAX_JSON_BYTES})")
        text = _read_member(zf, mj, min(MAX_JSON_BYTES, total_budget))
        used = len(text)
        try:
            meta = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ArchiveError(f"{what}: {label}: malformed model.json ({type(exc).__name__}: {exc})"[:400]) from None
        if not isinstance(meta, dict):
            raise ArchiveError(f"{what}: {label}: malformed model.json (not an object)")
        sums = meta.get("checksums")
        if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
            raise ArchiveError(f"{what}: {label}: model.json has no checksums")
        declared = declared_members(meta, label, what)
        present = set(by_name) - {"model.json"}
        if set(sums) != present:
            extra = sorted(present - set(sums))
            raise ArchiveError(f"{what}: {label}: "
                               + (f"unexpected member {extra[0]!r}" if extra else
                                  f"missing members {sorted(set(sums) - present)[:3]}"))
        if set(declared) != present:
            extra, missing = sorted(present - set(declared)), sorted(set(declared) - present)
            raise ArchiveError(f"{what}: {label}: " + (f"unexpected member {extra[0]!r} (not declared in model.json)"
                                                       if extra else f"missing members {missing[:3]}"))
        arrays = {}
        for name in declared:
            info = by_name[name]
            if info.file_size > MAX_RATIO * max(info.compress_size, 1) + (1 << 20):
                raise ArchiveError(f"{what}: {label}: member {name} expands {info.file_size} bytes "
                                   f"from {info.compress_size}: refused")
            h = hashlib.sha256()
            with zf.open(info) as f:
                head = f.read(12)
                try:
                    start, hlen = _parse_npy_header(head, name)
                    rest = b""
                    need = start + hlen - len(head)
                    while need > 0:
                        c = f.read(need)
                        if not c:
                            break
                        rest += c
                        need -= len(c)
                    header = head + rest
                    shape, fortran, dtype, count = _npy_meta(header, name)
                except (ValueError, OSError, SyntaxError, TypeError, struct.error, MemoryError) as exc:
                    raise ArchiveError(f"{what}: {label}: corrupt array {name} ({exc})"[:400]) from None
                nbytes = count * dtype.itemsize
                if len(header) + nbytes != info.file_size:
                    raise ArchiveError(f"{what}: {label}: array {name} claims shape {shape} ({nbytes} bytes) "
                                       f"but its member holds {info.file_size - len(header)} bytes")
                if used + len(header) + nbytes > total_budget:
                    raise ArchiveError(f"{what}: {label}: the arrays inflate past the archive's "
                                       f"{total_budget}-byte budget (decompression bomb?)")
                h.update(header)
                arr = np.empty(count, dtype=dtype)
                mv = memoryview(arr.view(np.uint8).reshape(-1)) if nbytes else memoryview(bytearray(0))
                got = 0
                while got < nbytes:
                    c = f.read(min(_CHUNK, nbytes - got))
                    if not c:
                        break
                    mv[got:got + len(c)] = c
                    h.update(c)
                    got += len(c)
                if got != nbytes or f.read(1):
                    raise ArchiveError(f"{what}: {label}: array {name} is truncated or has extra bytes")
                used += len(header) + nbytes
            if sums.get(name) != h.hexdigest():
                raise ArchiveError(f"{what}: {label}: checksum mismatch in {name} (damaged file?)")
            arrays[name] = arr.reshape(shape, order="F" if fortran else "C")
    return meta, arrays


def read_archive(path, what="load"):
    """(meta, {member name: array}) of a fastnn archive: a path, bytes, or a binary file
    object. Any unreadable, damaged, oversized or non-canonical input -> ValueError."""
    if isinstance(path, (bytearray, memoryview)) or (isinstance(path, bytes) and path[:2] == b"PK"):
        data = bytes(path)
        fh, size, label = io.BytesIO(data), len(data), "<bytes>"
    elif hasattr(path, "read") and not isinstance(path, (str, bytes, os.PathLike)):
        pos = path.seek(0, io.SEEK_END)
        path.seek(0)
        fh, size, label = path, pos, "<file object>"
    else:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"{what}: filepath: expected a path, got {type(path).__name__}")
        path = os.fspath(path)
        label = os.fsdecode(path)
        fh, size = open_regular(path, what)
    try:
        try:
            return _read_fileobj(fh, size, label, what)
        except ArchiveError:
            raise
        except _ERRORS as exc:
            raise ArchiveError(f"{what}: {label}: not a readable fastnn file ({type(exc).__name__}: {exc})"[:500]) \
                from None
    finally:
        if label not in ("<file object>",):
            fh.close()


# ----------------------------------------------------------------------------- pickling helpers

def model_to_bytes(model):
    """The model's saved file (`model.save`) as bytes, written through an in-memory buffer."""
    buf = io.BytesIO()
    model.save(buf)
    return buf.getvalue()


def model_from_bytes(data):
    """The model `model_to_bytes` gave, with every check `load` applies to a file."""
    from . import models
    return models.load(io.BytesIO(bytes(data)))
