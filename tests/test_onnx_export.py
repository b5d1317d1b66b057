"""ONNX export, run by ONNX Runtime against fastnn's predict."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastnn as fnn  # noqa: E402
from fastnn import Sequential, layers  # noqa: E402
from fastnn.interop import onnx_export  # noqa: E402

RNG = np.random.default_rng(3)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-6))


def _run(path, feeds):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _export(model, tmp_path):
    p = tmp_path / "m.onnx"
    if hasattr(model, "export"):
        model.export(p, format="onnx")
    else:
        onnx_export.export_onnx(model, p)
    proto = onnx.load(str(p))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == onnx_export.OPSET
    return p


def _randomize_bn(model):
    ws = model.get_weights()
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            for spec in layer.weights:
                spec.value[...] = RNG.random(spec.shape, np.float32) + 0.5
    return ws


def test_workbook_cnn(tmp_path):
    m = Sequential([
        layers.Conv2D(32, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"), layers.MaxPool2D(2), layers.Dropout(0.25),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPool2D(2, strides=2), layers.Dropout(0.25), layers.Flatten(),
        layers.Dense(256, activation="relu"), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
    x = RNG.random((5, 28, 28, 1), np.float32)
    assert _rel(_run(_export(m, tmp_path), {"input": x})[0], m.predict(x)) <= 1e-5


def test_stock_lstm(tmp_path):
    m = Sequential([layers.LSTM(20, input_shape=(15, 1)), layers.Dense(1)])
    x = RNG.random((9, 15, 1), np.float32)
    assert _rel(_run(_export(m, tmp_path), {"input": x})[0], m.predict(x)) <= 1e-5


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("seq", [True, False])
def test_bidirectional_gru(tmp_path, mode, seq):
    m = Sequential([layers.Bidirectional(layers.GRU(6, return_sequences=seq), merge_mode=mode, input_shape=(8, 3))]
                   + ([layers.SimpleRNN(4, go_backwards=True)] if seq else []) + [layers.Dense(2)])
    x = RNG.random((4, 8, 3), np.float32)
    assert _rel(_run(_export(m, tmp_path), {"input": x})[0], m.predict(x)) <= 1e-5


def test_pools_batchnorm_paddings(tmp_path):
    m = Sequential([layers.Conv2D(5, (3, 2), strides=(2, 1), padding="same", input_shape=(13, 11, 2)),
                    layers.BatchNormalization(), layers.AveragePooling2D(3, strides=2, padding="same"),
                    layers.MaxPool2D(2, padding="same"), layers.Activation("tanh"), layers.Flatten(),
                    layers.Dense(4, activation="sigmoid")])
    _randomize_bn(m)
    x = RNG.random((3, 13, 11, 2), np.float32)
    assert _rel(_run(_export(m, tmp_path), {"input": x})[0], m.predict(x)) <= 1e-5


def test_unexportable_layer_is_named(tmp_path):
    class Odd(layers.Layer):
        def forward(self, x, training=False):
            return x
    m = Sequential([layers.Dense(3, input_shape=(4,)), Odd(name="odd")])
    with pytest.raises(ValueError, match="odd"):
        onnx_export.to_onnx(m)


def test_model_export_method(tmp_path):
    m = Sequential([layers.Dense(3, activation="tanh", input_shape=(4,))])
    x = RNG.random((2, 4), np.float32)
    m.export(tmp_path / "d.onnx", format="onnx")
    assert _rel(_run(tmp_path / "d.onnx", {"input": x})[0], m.predict(x)) <= 1e-5
    with pytest.raises(ValueError, match="format"):
        m.export(tmp_path / "d.tf", format="tf_saved_model")
