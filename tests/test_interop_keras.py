"""Keras 3 .keras files in and out: Keras (on its PyTorch backend) is the reference."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

import fastnn as fnn  # noqa: E402
from fastnn.interop import keras_format  # noqa: E402

RNG = np.random.default_rng(7)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-6))


def _randomize(model):
    """Non-trivial weights everywhere (BN statistics included), the same for both sides."""
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([(RNG.random(w.shape, np.float32) * 0.6 + 0.2).astype(np.float32) for w in ws])


K = keras.layers
# (id, input shape, list of Keras layer factories)
CASES = [
    ("conv_same_relu", (10, 9, 3), lambda: [K.Conv2D(4, 3, padding="same", activation="relu")]),
    ("conv_valid_stride", (11, 10, 2), lambda: [K.Conv2D(3, (3, 2), strides=(2, 1), use_bias=False)]),
    ("maxpool", (8, 8, 2), lambda: [K.MaxPooling2D(2)]),
    ("maxpool_same", (7, 9, 2), lambda: [K.MaxPooling2D(3, strides=2, padding="same")]),
    ("avgpool_same", (7, 9, 2), lambda: [K.AveragePooling2D(2, padding="same")]),
    ("batchnorm", (6, 6, 3), lambda: [K.BatchNormalization()]),
    ("flatten_dense", (4, 3, 2), lambda: [K.Flatten(), K.Dense(5, activation="tanh")]),
    ("dense_sigmoid", (7,), lambda: [K.Dense(3, activation="sigmoid")]),
    ("dropout_activation", (5,), lambda: [K.Dropout(0.5), K.Activation("softmax")]),
    ("reshape", (12,), lambda: [K.Reshape((3, 4)), K.Flatten()]),
    ("lstm", (6, 3), lambda: [K.LSTM(5)]),
    ("lstm_seq", (6, 3), lambda: [K.LSTM(4, return_sequences=True)]),
    ("gru", (6, 3), lambda: [K.GRU(4)]),
    ("simple_rnn_back", (6, 3), lambda: [K.SimpleRNN(4, go_backwards=True, return_sequences=True)]),
    ("bidirectional_lstm", (6, 3), lambda: [K.Bidirectional(K.LSTM(3, return_sequences=True))]),
    ("bidirectional_gru_sum", (6, 3), lambda: [K.Bidirectional(K.GRU(3), merge_mode="sum")]),
]


def _keras_model(shape, factories):
    m = keras.Sequential([keras.Input(shape)] + factories())
    _randomize(m)
    return m


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_keras_file_into_fastnn_and_back(tmp_path, case):
    _, shape, factories = case
    km = _keras_model(shape, factories)
    x = RNG.random((4,) + shape, np.float32)
    ref = np.asarray(km.predict(x, verbose=0))
    path = tmp_path / "k.keras"
    km.save(path)
    fm = fnn.models.load_keras(path) if hasattr(fnn.models, "load_keras") else keras_format.load_keras(path)
    assert _rel(fm.predict(x), ref) <= 1e-5
    back = tmp_path / "f.keras"
    keras_format.save_keras(fm, back)
    k2 = keras.saving.load_model(back)
    assert _rel(np.asarray(k2.predict(x, verbose=0)), ref) <= 1e-5


def test_workbook_cnn_and_lstm_round_trip(tmp_path):
    cnn = keras.Sequential([
        keras.Input((28, 28, 1)),
        K.Conv2D(32, 5, padding="same", activation="relu"), K.Conv2D(32, 5, padding="same", activation="relu"),
        K.MaxPooling2D(2), K.Dropout(0.25),
        K.Conv2D(64, 3, padding="same", activation="relu"), K.Conv2D(64, 3, padding="same", activation="relu"),
        K.MaxPooling2D(2, strides=2), K.Dropout(0.25), K.Flatten(),
        K.Dense(256, activation="relu"), K.Dropout(0.5), K.Dense(10, activation="softmax")])
    lstm = keras.Sequential([keras.Input((15, 1)), K.LSTM(20), K.Dense(1)])
    for km, shape in ((cnn, (28, 28, 1)), (lstm, (15, 1))):
        x = RNG.random((6,) + shape, np.float32)
        ref = np.asarray(km.predict(x, verbose=0))
        km.save(tmp_path / "w.keras")
        fm = keras_format.load_keras(tmp_path / "w.keras")
        assert _rel(fm.predict(x), ref) <= 1e-5
        keras_format.save_keras(fm, tmp_path / "w2.keras")
        assert _rel(np.asarray(keras.saving.load_model(tmp_path / "w2.keras").predict(x, verbose=0)), ref) <= 1e-5


def _archive(tmp_path, members, name="bad.keras"):
    p = tmp_path / name
    with zipfile.ZipFile(p, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return p


def _good_members(tmp_path):
    km = _keras_model((5,), lambda: [K.Dense(3)])
    km.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_crafted_archives_are_refused(tmp_path):
    good = _good_members(tmp_path)
    cases = {
        "odd member": dict(good, **{"../evil.txt": b"x"}),
        "assets": dict(good, **{"assets/a.bin": b"x"}),
        "no config": {k: v for k, v in good.items() if k != "config.json"},
        "no weights": {k: v for k, v in good.items() if k != "model.weights.h5"},
        "bad json": dict(good, **{"config.json": b"{not json"}),
        "not h5": dict(good, **{"model.weights.h5": b"plain bytes"}),
    }
    for what, members in cases.items():
        with pytest.raises(ValueError):
            keras_format.load_keras(_archive(tmp_path, members))
    cfg = json.loads(good["config.json"])
    cfg["config"]["layers"][1]["class_name"] = "FancyLayer"
    with pytest.raises(ValueError, match="FancyLayer"):
        keras_format.load_keras(_archive(tmp_path, dict(good, **{"config.json": json.dumps(cfg)})))
    cfg = json.loads(good["config.json"])
    cfg["config"]["layers"][1]["config"]["units"] = 4        # the stored kernel is (5, 3)
    with pytest.raises(ValueError, match="shape"):
        keras_format.load_keras(_archive(tmp_path, dict(good, **{"config.json": json.dumps(cfg)})))
    cfg = json.loads(good["config.json"])
    cfg["config"]["layers"][1]["config"]["kernel_constraint"] = {"class_name": "NonNeg", "config": {}}
    with pytest.raises(ValueError, match="kernel_constraint"):
        keras_format.load_keras(_archive(tmp_path, dict(good, **{"config.json": json.dumps(cfg)})))
    with pytest.raises(ValueError):
        keras_format.load_keras(tmp_path)                      # a directory
    with pytest.raises(ValueError):
        keras_format.load_keras(tmp_path / "missing.keras")


def test_unsupported_argument_is_named(tmp_path):
    km = keras.Sequential([keras.Input((8, 8, 2)), K.Conv2D(2, 3, dilation_rate=2)])
    km.save(tmp_path / "d.keras")
    with pytest.raises(ValueError, match="dilation_rate"):
        keras_format.load_keras(tmp_path / "d.keras")


def test_bomb_member_refused(tmp_path):
    good = _good_members(tmp_path)
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for k, v in good.items():
            zf.writestr(k, v)
        zf.writestr("metadata.json", b" " * (64 << 20))        # replaces nothing: a duplicate name
    with pytest.raises(ValueError):
        keras_format.load_keras(p)


def test_model_save_and_load_dispatch_on_the_keras_suffix(tmp_path):
    m = fnn.Sequential([fnn.layers.Dense(3, activation="relu", input_shape=(4,)), fnn.layers.Dense(2)])
    x = RNG.random((5, 4), np.float32)
    m.save(tmp_path / "m.keras")
    assert zipfile.ZipFile(tmp_path / "m.keras").namelist() == ["metadata.json", "config.json", "model.weights.h5"]
    np.testing.assert_array_equal(fnn.models.load(tmp_path / "m.keras").predict(x), m.predict(x))
    np.testing.assert_array_equal(fnn.models.load_model(str(tmp_path / "m.keras")).predict(x), m.predict(x))
    assert _rel(np.asarray(keras.saving.load_model(tmp_path / "m.keras").predict(x, verbose=0)), m.predict(x)) <= 1e-5
