"""Saved model files: checksums, and crafted archives refused before anything is
executed or allocated (no pickle, no absurd shape claims, no odd member names)."""
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

import fastnn as fnn
from fastnn import layers


@pytest.fixture
def saved(tmp_path):
    m = fnn.Sequential([layers.Dense(4, activation="relu", input_shape=(3,)), layers.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    m.fit(np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32), epochs=1, verbose=0)
    path = tmp_path / "m.fnn"
    m.save(path)
    return path, m


def _rewrite(path, out, edit):
    """Copies the archive, letting edit(members, meta) change members/meta in place."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    meta = json.loads(members.pop("model.json"))
    edit(members, meta)
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        for name, data in members.items():
            if isinstance(data, tuple):  # (bytes, compression)
                zf.writestr(name, data[0], compress_type=data[1])
            else:
                zf.writestr(name, data)
    return out


def _fix_sum(meta, name, data):
    meta["checksums"][name] = hashlib.sha256(data).hexdigest()


def test_save_records_checksums_and_loads(saved):
    path, m = saved
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
        names = [i.filename for i in zf.infolist() if i.filename != "model.json"]
    assert sorted(meta["checksums"]) == sorted(names)
    m2 = fnn.models.load(path)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        assert a.tobytes() == b.tobytes()


def test_flipped_byte_is_a_checksum_error(saved, tmp_path):
    path, _ = saved

    def edit(members, meta):
        name = "weights/00000.npy"
        data = bytearray(members[name])
        data[-1] ^= 0x40
        members[name] = bytes(data)
    bad = _rewrite(path, tmp_path / "bad.fnn", edit)
    with pytest.raises(ValueError, match="checksum mismatch"):
        fnn.models.load(bad)


def test_absurd_shape_claim_is_refused_before_allocating(saved, tmp_path):
    path, _ = saved

    def edit(members, meta):
        name = "weights/00000.npy"
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
        header = header + " " * (63 - (10 + len(header)) % 64) + "\n"
        data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 48
        members[name] = data
        _fix_sum(meta, name, data)
    bad = _rewrite(path, tmp_path / "bad.fnn", edit)
    with pytest.raises(ValueError, match="claims shape"):
        fnn.models.load(bad)


def test_pickle_payload_is_refused(saved, tmp_path):
    path, _ = saved

    def edit(members, meta):
        name = "weights/00000.npy"
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        members[name] = buf.getvalue()
        _fix_sum(meta, name, members[name])
    bad = _rewrite(path, tmp_path / "bad.fnn", edit)
    with pytest.raises(ValueError, match="dtype"):
        fnn.models.load(bad)


@pytest.mark.parametrize("member", ["../evil.npy", "/abs/path.npy", "weights/x.pkl"])
def test_odd_member_names_are_refused(saved, tmp_path, member):
    path, _ = saved

    def edit(members, meta):
        members[member] = members["weights/00000.npy"]
        _fix_sum(meta, member, members[member])
    bad = _rewrite(path, tmp_path / "bad.fnn", edit)
    with pytest.raises(ValueError, match="unexpected member"):
        fnn.models.load(bad)


def test_zip_bomb_member_is_refused(saved, tmp_path):
    path, _ = saved

    def edit(members, meta):
        data = b"\0" * (64 << 20)
        members["weights/99999.npy"] = (data, zipfile.ZIP_DEFLATED)
        _fix_sum(meta, "weights/99999.npy", data)
    bad = _rewrite(path, tmp_path / "bad.fnn", edit)
    with pytest.raises(ValueError, match="expands|not declared"):
        fnn.models.load(bad)


def test_missing_checksums_are_refused(saved, tmp_path):
    path, _ = saved
    bad = _rewrite(path, tmp_path / "bad.fnn", lambda members, meta: meta.pop("checksums"))
    with pytest.raises(ValueError, match="checksums"):
        fnn.models.load(bad)
