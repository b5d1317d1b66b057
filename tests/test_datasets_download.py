"""fastnn.datasets.mnist.load_data: the cache directory, a download from a local HTTP
server (127.0.0.1 only; never the internet), the checksum, the no-network message and
bad files."""
import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile

import numpy as np
import pytest

from fastnn.datasets import _download, mnist


def fake_npz(n_train=6, n_test=4, seed=0, **override):
    rs = np.random.RandomState(seed)
    arrays = {"x_train": rs.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
              "y_train": rs.randint(0, 10, n_train).astype(np.uint8),
              "x_test": rs.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
              "y_test": rs.randint(0, 10, n_test).astype(np.uint8)}
    arrays.update(override)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue(), arrays


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FASTNN_DATASETS_URL", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # 127.0.0.1 must be reached directly
    return tmp_path / "home" / "datasets"


class _Server:
    def __init__(self, files):
        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                body = outer.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    srv = _Server({})
    monkeypatch.setenv("FASTNN_DATASETS_URL", srv.url)
    yield srv
    srv.close()


def check_same(result, arrays):
    (x_tr, y_tr), (x_te, y_te) = result
    for got, key in ((x_tr, "x_train"), (y_tr, "y_train"), (x_te, "x_test"), (y_te, "y_test")):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])
        assert got.flags.writeable


def test_cache_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTNN_HOME", raising=False)
    assert _download.cache_dir() == os.path.join(os.path.expanduser("~"), ".fastnn", "datasets")
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path))
    assert _download.cache_dir() == os.path.join(str(tmp_path), "datasets")
    monkeypatch.delenv("FASTNN_DATASETS_URL", raising=False)
    assert _download.origin() == "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
    assert mnist.SHA256 == "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def test_loads_a_file_already_in_the_cache(home, monkeypatch):
    monkeypatch.setenv("FASTNN_DATASETS_URL", "http://127.0.0.1:9/")  # never contacted
    body, arrays = fake_npz()
    home.mkdir(parents=True)
    (home / "mnist.npz").write_bytes(body)
    check_same(mnist.load_data(), arrays)
    (home / "other.npz").write_bytes(body)
    check_same(mnist.load_data(path="other.npz"), arrays)


def test_absolute_path(home, tmp_path):
    body, arrays = fake_npz(seed=3)
    p = tmp_path / "elsewhere.npz"
    p.write_bytes(body)
    check_same(mnist.load_data(path=str(p)), arrays)


def test_downloads_with_checksum_into_the_cache(home, server, monkeypatch):
    body, arrays = fake_npz(seed=1)
    server.files["mnist.npz"] = body
    monkeypatch.setattr(mnist, "SHA256", hashlib.sha256(body).hexdigest())
    check_same(mnist.load_data(), arrays)
    assert server.requests == ["/mnist.npz"]
    assert sorted(os.listdir(home)) == ["mnist.npz"]  # no partial file left
    assert (home / "mnist.npz").read_bytes() == body
    check_same(mnist.load_data(), arrays)  # second call: from the cache
    assert server.requests == ["/mnist.npz"]


def test_checksum_mismatch_removes_the_partial_file(home, server):
    body, _ = fake_npz(seed=2)
    server.files["mnist.npz"] = body
    with pytest.raises(ValueError, match="SHA-256"):
        mnist.load_data()
    assert not home.exists() or os.listdir(home) == []


def test_oversized_download_is_cut_off(home, server, monkeypatch):
    server.files["mnist.npz"] = b"\0" * 5000
    monkeypatch.setattr(mnist, "_MAX_BYTES", 1000)
    with pytest.raises(ValueError, match="exceeds"):
        mnist.load_data()
    assert os.listdir(home) == []


def test_missing_on_server(home, server):
    with pytest.raises(FileNotFoundError, match="mnist.npz"):
        mnist.load_data()
    assert os.listdir(home) == []


def test_no_network_message_names_file_and_place(home, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.setenv("FASTNN_DATASETS_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(FileNotFoundError) as ei:
        mnist.load_data()
    msg = str(ei.value)
    assert "mnist.npz" in msg and str(home / "mnist.npz") in msg and f"127.0.0.1:{port}" in msg
    assert os.listdir(home) == []


def _write(home, body):
    home.mkdir(parents=True, exist_ok=True)
    (home / "mnist.npz").write_bytes(body)


@pytest.mark.parametrize("override,match", [
    ({"x_train": np.zeros((6, 28, 27), np.uint8)}, "x_train"),
    ({"x_test": np.zeros((4, 28, 28), np.float32)}, "x_test"),
    ({"y_train": np.zeros(5, np.uint8)}, "y_train"),
    ({"y_test": np.full(4, 11, np.int64)}, "0..9"),
    ({"y_test": np.array([object()] * 4, dtype=object)}, "y_test"),
    ({"y_train": np.zeros((6, 1), np.uint8)}, "y_train"),
])
def test_bad_files_raise_value_error(home, override, match):
    body, _ = fake_npz(**override)
    _write(home, body)
    with pytest.raises(ValueError, match=match):
        mnist.load_data()


def test_missing_array_and_not_a_zip(home):
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((1, 28, 28), np.uint8))
    _write(home, buf.getvalue())
    with pytest.raises(ValueError, match="missing"):
        mnist.load_data()
    _write(home, b"this is not a zip file")
    with pytest.raises(ValueError, match="npz"):
        mnist.load_data()
    _write(home, fake_npz()[0][:200])
    with pytest.raises(ValueError, match="npz"):
        mnist.load_data()


def test_header_claiming_huge_array_is_rejected_before_allocating(home):
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "|u1", "fortran_order": False,
                                               "shape": (2**40, 28, 28)})
    body, arrays = fake_npz()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in arrays.items():
            if k == "x_train":
                z.writestr(k + ".npy", hdr.getvalue() + b"\0" * 100)
            else:
                b = io.BytesIO()
                np.save(b, v)
                z.writestr(k + ".npy", b.getvalue())
    _write(home, buf.getvalue())
    with pytest.raises(ValueError, match="x_train"):
        mnist.load_data()


def test_cache_entry_that_is_a_directory(home):
    (home / "mnist.npz").mkdir(parents=True)
    with pytest.raises(ValueError, match="regular file"):
        mnist.load_data()


def test_real_keras_file_if_present():
    p = os.path.join(os.path.expanduser("~"), ".keras", "datasets", "mnist.npz")
    if not os.path.isfile(p):
        pytest.skip("no Keras mnist.npz on this machine")
    assert _download.sha256_of(p) == mnist.SHA256
    (x_tr, y_tr), (x_te, y_te) = mnist.load_data(path=p)
    assert x_tr.shape == (60000, 28, 28) and x_tr.dtype == np.uint8
    assert y_tr.shape == (60000,) and x_te.shape == (10000, 28, 28) and y_te.shape == (10000,)
