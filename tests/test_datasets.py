"""fastnn.datasets: load_mnist (bundled sample, IDX directories, Kaggle CSV, npz) and
load_stock_prices (bundled AAPL, other CSVs), including corrupt inputs."""
import gzip
import os
import struct

import numpy as np
import pytest

from fastnn.datasets import data_dir, load_mnist, load_stock_prices

SHARED_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "shared", "data", "mnist")
FULL = pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="../shared/data/mnist not present")
# The full data's label counts (from ../shared/data/mnist/SOURCE.md, the published ones)
FULL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
FULL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# Label counts of the first 10,000 training / 2,000 test labels of the full data
SAMPLE_TRAIN_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
SAMPLE_TEST_COUNTS = [175, 234, 219, 207, 217, 179, 178, 205, 192, 194]

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(scope="module")
def sample():
    return load_mnist()


def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, np.uint8)
    magic = 0x800 + arr.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def write_idx_dir(d, x_tr, y_tr, x_te=None, y_te=None, gz=False):
    d.mkdir(exist_ok=True)
    arrays = [x_tr, y_tr, x_te, y_te]
    for name, arr in zip(NAMES, arrays):
        if arr is None:
            continue
        data = idx_bytes(arr)
        if gz:
            (d / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (d / name).write_bytes(data)
    return d


# ---------------------------------------------------------------------------
# MNIST: bundled sample

def test_bundled_sample_shapes_and_dtypes(sample):
    (x_tr, y_tr), (x_te, y_te) = sample
    assert x_tr.shape == (10000, 28, 28) and x_te.shape == (2000, 28, 28)
    assert y_tr.shape == (10000,) and y_te.shape == (2000,)
    for a in (x_tr, y_tr, x_te, y_te):
        assert a.dtype == np.uint8 and a.flags.writeable
    assert np.bincount(y_tr, minlength=10).tolist() == SAMPLE_TRAIN_COUNTS
    assert np.bincount(y_te, minlength=10).tolist() == SAMPLE_TEST_COUNTS
    assert 0.1 < x_tr.mean() / 255 < 0.15  # MNIST's mean intensity is about 0.13
    assert x_tr.max() == 255 and x_tr.min() == 0


def test_bundled_files_are_gzip_idx_under_standard_names():
    for name in NAMES:
        with open(os.path.join(data_dir(), name + ".gz"), "rb") as f:
            head = f.read(10)
        assert head[:2] == b"\x1f\x8b"
        assert head[4:8] == b"\0\0\0\0"  # mtime 0: reproducible bytes
    assert os.path.isfile(os.path.join(data_dir(), "AAPL.csv"))


@FULL
def test_bundled_sample_is_the_head_of_the_full_data(sample):
    (x_tr, y_tr), (x_te, y_te) = sample
    (fx_tr, fy_tr), (fx_te, fy_te) = load_mnist(SHARED_MNIST)
    assert np.array_equal(x_tr, fx_tr[:10000]) and np.array_equal(y_tr, fy_tr[:10000])
    assert np.array_equal(x_te, fx_te[:2000]) and np.array_equal(y_te, fy_te[:2000])


@FULL
def test_full_mnist_from_shared(sample):
    (x_tr, y_tr), (x_te, y_te) = load_mnist(SHARED_MNIST)
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert x_tr.dtype == np.uint8 and y_tr.dtype == np.uint8
    assert np.bincount(y_tr, minlength=10).tolist() == FULL_TRAIN_COUNTS
    assert np.bincount(y_te, minlength=10).tolist() == FULL_TEST_COUNTS


# ---------------------------------------------------------------------------
# MNIST: other sources

@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(gz, sample, tmp_path):
    (x_tr, y_tr), (x_te, y_te) = sample
    d = write_idx_dir(tmp_path / "m", x_tr[:300], y_tr[:300], x_te[:50], y_te[:50], gz=gz)
    (a, b), (c, e) = load_mnist(d)
    np.testing.assert_array_equal(a, x_tr[:300])
    np.testing.assert_array_equal(b, y_tr[:300])
    np.testing.assert_array_equal(c, x_te[:50])
    np.testing.assert_array_equal(e, y_te[:50])
    (a2, _), _ = load_mnist(str(d))
    np.testing.assert_array_equal(a2, a)


def test_idx_directory_mixed_and_train_only(sample, tmp_path):
    (x_tr, y_tr), _ = sample
    d = tmp_path / "m"
    d.mkdir()
    (d / (NAMES[0] + ".gz")).write_bytes(gzip.compress(idx_bytes(x_tr[:20])))
    (d / NAMES[1]).write_bytes(idx_bytes(y_tr[:20]))
    (a, b), (c, e) = load_mnist(d)
    np.testing.assert_array_equal(a, x_tr[:20])
    assert c.shape == (0, 28, 28) and e.shape == (0,) and c.dtype == np.uint8
    (d / NAMES[2]).write_bytes(idx_bytes(x_tr[:5]))  # test images without test labels
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        load_mnist(d)


def write_csv(path, x, y, header=True):
    rows = np.concatenate([y.reshape(-1, 1), x.reshape(len(x), -1)], axis=1).astype(int)
    lines = [",".join(["label"] + [f"pixel{i}" for i in range(784)])] if header else []
    lines += [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("header", [True, False])
def test_kaggle_csv(header, sample, tmp_path):
    (x_tr, y_tr), _ = sample
    p = write_csv(tmp_path / "train.csv", x_tr[:7], y_tr[:7], header=header)
    (a, b), (c, e) = load_mnist(p)
    assert a.dtype == np.uint8 and b.dtype == np.uint8
    np.testing.assert_array_equal(a, x_tr[:7])
    np.testing.assert_array_equal(b, y_tr[:7])
    assert c.shape == (0, 28, 28) and e.shape == (0,)
    (a2, _), _ = load_mnist(tmp_path)  # a directory holding Kaggle's train.csv
    np.testing.assert_array_equal(a2, a)


def test_keras_npz(sample, tmp_path):
    (x_tr, y_tr), (x_te, y_te) = sample
    p = tmp_path / "mnist.npz"
    np.savez(p, x_train=x_tr[:10], y_train=y_tr[:10], x_test=x_te[:4], y_test=y_te[:4])
    (a, b), (c, e) = load_mnist(p)
    np.testing.assert_array_equal(a, x_tr[:10])
    np.testing.assert_array_equal(e, y_te[:4])
    q = tmp_path / "bad.npz"
    np.savez(q, x_train=np.array([None], dtype=object), y_train=y_tr[:1], x_test=x_te[:1], y_test=y_te[:1])
    with pytest.raises(ValueError, match="bad.npz"):
        load_mnist(q)


# ---------------------------------------------------------------------------
# MNIST: corrupt input

def _corrupt_cases(x, y):
    good_x, good_y = idx_bytes(x), idx_bytes(y)
    return {
        "bad_magic_images": (idx_bytes(x, magic=0x801), good_y, "train-images"),
        "bad_magic_labels": (good_x, idx_bytes(y, magic=0x803), "train-labels"),
        "not_ubyte": (b"\0\0\x0b\x03" + good_x[4:], good_y, "train-images"),
        "truncated_images": (good_x[:-1], good_y, "train-images"),
        "extra_bytes": (good_x + b"\0", good_y, "train-images"),
        "truncated_header": (good_x[:10], good_y, "train-images"),
        "tiny": (b"\0\0", good_y, "train-images"),
        "empty": (b"", good_y, "train-images"),
        "count_mismatch": (good_x, idx_bytes(y[:-1]), "train-labels"),
        "wrong_image_size": (idx_bytes(x[:, :27]), good_y, "train-images"),
        "corrupt_gzip": (gzip.compress(good_x)[:-20], good_y, "train-images"),
        "garbage_gzip": (b"\x1f\x8b" + b"\xff" * 40, good_y, "train-images"),
    }


@pytest.mark.parametrize("case", list(_corrupt_cases(np.zeros((3, 28, 28)), np.zeros(3))))
def test_corrupt_idx_raises_value_error_naming_file(case, sample, tmp_path):
    (x_tr, y_tr), _ = sample
    images, labels, culprit = _corrupt_cases(x_tr[:3], y_tr[:3])[case]
    d = tmp_path / "m"
    d.mkdir()
    (d / NAMES[0]).write_bytes(images)
    (d / NAMES[1]).write_bytes(labels)
    with pytest.raises(ValueError, match=culprit):
        load_mnist(d)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_mnist(tmp_path / "nope")
    (tmp_path / "x.bin").write_bytes(b"abc")
    with pytest.raises(ValueError, match="x.bin"):
        load_mnist(tmp_path / "x.bin")


def _csv_cases():
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    row = "3," + ",".join(["0"] * 784)
    return {
        "non_numeric": f"{header}\n{row}\n" + "3," + ",".join(["0"] * 783) + ",x\n",
        "short_row": f"{header}\n{row}\n" + "3," + ",".join(["0"] * 783) + "\n",
        "long_row": f"{header}\n{row}\n{row},0\n",
        "out_of_range": f"{header}\n" + "3," + ",".join(["256"] * 784) + "\n",
        "negative_label": f"{header}\n" + "-1," + ",".join(["0"] * 784) + "\n",
        "fractional": f"{header}\n" + "3," + ",".join(["0.5"] * 784) + "\n",
        "header_only": f"{header}\n",
        "empty": "",
        "wrong_header": "lbl,a,b\n1,2,3\n",
        "header_columns": "label,pixel0,pixel1\n1,2,3\n",
        "kaggle_test_csv": ",".join(f"pixel{i}" for i in range(784)) + "\n" + ",".join(["0"] * 784) + "\n",
        "headerless_wrong_width": "1,2,3\n4,5,6\n",
        "binary": "\xff\xfe\x00",
    }


@pytest.mark.parametrize("case", list(_csv_cases()))
def test_bad_kaggle_csv(case, tmp_path):
    p = tmp_path / f"digits_{case}.csv"
    text = _csv_cases()[case]
    if case == "binary":
        p.write_bytes(b"\xff\xfe\x00\x01")
    else:
        p.write_text(text)
    with pytest.raises(ValueError, match=f"digits_{case}.csv"):
        load_mnist(p)


# ---------------------------------------------------------------------------
# stock prices

def test_bundled_aapl():
    dates, close = load_stock_prices()
    assert dates.dtype == np.dtype("datetime64[D]") and close.dtype == np.float32
    assert len(dates) == len(close) == 4610
    assert np.all(np.diff(dates).astype(int) > 0)
    assert dates[0] == np.datetime64("2000-01-03") and dates[-1] == np.datetime64("2018-04-30")
    window = (dates >= np.datetime64("2010-01-04")) & (dates <= np.datetime64("2016-12-30"))
    assert window.sum() == 1762
    assert close[dates == np.datetime64("2010-01-04")][0] == np.float32(30.572857)
    assert close[dates == np.datetime64("2016-12-30")][0] == np.float32(115.82)
    assert close[dates == np.datetime64("2014-06-09")][0] == np.float32(93.699997)
    d2, c2 = load_stock_prices("aapl")
    np.testing.assert_array_equal(c2, close)


def test_bundled_only_aapl():
    with pytest.raises(ValueError, match="AAPL"):
        load_stock_prices("MSFT")


def test_custom_csv_sorted_and_column_names(tmp_path):
    p = tmp_path / "prices.csv"
    p.write_text("when,open,last\n2020-01-03,1,12.5\n2020-01-01, 2 , 10\n\n2020-01-02,3,11.25\n")
    dates, close = load_stock_prices("XYZ", path=p, date_column="when", close_column="last")
    np.testing.assert_array_equal(dates, np.array(["2020-01-01", "2020-01-02", "2020-01-03"], "datetime64[D]"))
    np.testing.assert_array_equal(close, np.float32([10, 11.25, 12.5]))
    # the default names match case-insensitively
    q = tmp_path / "XYZ.csv"
    q.write_text("date,close\n2021-05-04 00:00:00,3.5\n2021-05-03 00:00:00,4\n")
    dates, close = load_stock_prices("XYZ", path=q)
    np.testing.assert_array_equal(close, np.float32([4, 3.5]))
    dates2, _ = load_stock_prices("XYZ", path=tmp_path)  # a directory holding XYZ.csv
    np.testing.assert_array_equal(dates2, dates)


def test_kaggle_nyse_format_filters_symbol(tmp_path):
    p = tmp_path / "prices-split-adjusted.csv"
    p.write_text("date,symbol,open,close,low,high,volume\n"
                 "2016-01-05,AAPL,1,102.7,1,1,1\n2016-01-05,MSFT,1,55.0,1,1,1\n"
                 "2016-01-04,AAPL,1,105.3,1,1,1\n2016-01-04,MSFT,1,54.8,1,1,1\n")
    dates, close = load_stock_prices("AAPL", path=p)
    np.testing.assert_array_equal(dates, np.array(["2016-01-04", "2016-01-05"], "datetime64[D]"))
    np.testing.assert_array_equal(close, np.float32([105.3, 102.7]))
    with pytest.raises(ValueError, match="GOOG"):
        load_stock_prices("GOOG", path=p)


@pytest.mark.parametrize("text,match", [
    ("Date,Open\n2020-01-01,1\n", "Close"),
    ("Day,Close\n2020-01-01,1\n", "Date"),
    ("Date,Close\n2020-01-01,1\n2020-02-30,2\n", "line 3"),
    ("Date,Close\n2020-01-01,1\nyesterday,2\n", "line 3"),
    ("Date,Close\n2020-01-01,1\n,2\n", "line 3"),
    ("Date,Close\n2020-01-01,1\n2020,2\n", "line 3"),
    ("Date,Close\n2020-01-01,null\n", "line 2"),
    ("Date,Close\n2020-01-01,1\n2020-01-02,nan\n", "line 3"),
    ("Date,Close\n2020-01-01,1\n2020-01-02,\n", "line 3"),
    ("Date,Open,Close\n2020-01-01,1,2\n2020-01-02,1\n", "line 3"),
    ("Date,Close\n", "no data"),
    ("", "empty"),
])
def test_bad_stock_csv(text, match, tmp_path):
    p = tmp_path / "bad_prices.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        load_stock_prices("AAPL", path=p)
    assert "bad_prices.csv" in str(e.value)


def test_stock_missing_file_and_bad_symbol(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_stock_prices("AAPL", path=tmp_path / "none.csv")
    with pytest.raises(TypeError, match="symbol"):
        load_stock_prices(None)
