"""fastnn.Sequential end to end: summary, get/set_weights, forward against a float64
NumPy model, gradients of whole models by finite differences, save/load (bitwise, exact
resume, atomic, corrupt files), predict batching, fit (callbacks, History, progress
output, generators, validation_split), training on the bundled MNIST sample, and
determinism of a whole fit (same seed; 1 vs 2 threads)."""
import io
import json
import os
import re
import time
import zipfile

import numpy as np
import pytest

import reference as ref
from helpers import compare, same_bits, threads

import fastnn as fnn
from fastnn.demo import build_mnist_cnn
from fastnn import callbacks, layers, optimizers
from fastnn.data import ImageDataGenerator, to_categorical


# ---------------------------------------------------------------- helpers
def workbook_cnn():
    return build_mnist_cnn()


def small_cnn(seed=0, optimizer="adam", loss="categorical_crossentropy", bn=True, dropout=0.3):
    """A quick CNN on (8, 8, 1) inputs with every kind of state: BN statistics,
    dropout streams, optimizer slots."""
    fnn.set_seed(seed)
    model = fnn.Sequential([
        layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
        *([layers.BatchNormalization()] if bn else []),
        layers.MaxPool2D(2),
        layers.Dropout(dropout),
        layers.Flatten(),
        layers.Dense(12, activation="tanh", kernel_regularizer=fnn.regularizers.l2(1e-3)),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def blobs(n=60, seed=0, shape=(8, 8, 1), classes=3):
    """Images whose class is where a bright square sits (learnable, not trivial)."""
    rs = np.random.default_rng(seed)
    labels = rs.integers(0, classes, n).astype(np.uint8)
    x = rs.uniform(0, 0.3, (n,) + shape).astype(np.float32)
    for i, c in enumerate(labels):
        r = 1 + 2 * int(c)
        x[i, r:r + 2, r:r + 2, :] += 0.7
    return x, labels


def keras_pool(x, pool, strides, padding, kind):
    """Keras/TF pooling in float64: 'same' pads bottom/right first; padding is ignored."""
    kh, kw = (pool, pool) if np.isscalar(pool) else pool
    st = (kh, kw) if strides is None else ((strides, strides) if np.isscalar(strides) else strides)
    t, b, l, r = ref.conv_padding(x.shape[1], x.shape[2], kh, kw, st, padding)
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (t, b), (l, r), (0, 0)), constant_values=np.nan)
    P = (xp.shape[1] - kh) // st[0] + 1
    Q = (xp.shape[2] - kw) // st[1] + 1
    y = np.zeros((x.shape[0], P, Q, x.shape[3]))
    for p in range(P):
        for q in range(Q):
            win = xp[:, p * st[0]:p * st[0] + kh, q * st[1]:q * st[1] + kw, :]
            y[:, p, q] = np.nanmax(win, axis=(1, 2)) if kind == "max" else np.nanmean(win, axis=(1, 2))
    return y


class BatchCounter(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


# ---------------------------------------------------------------- summary
def test_summary_workbook_cnn():
    lines = []
    workbook_cnn().summary(print_fn=lines.append)
    text = "\n".join(lines)
    for row in [("conv2d (Conv2D)", "(None, 28, 28, 32)", "832"),
                ("conv2d_1 (Conv2D)", "(None, 28, 28, 32)", "25,632"),
                ("max_pooling2d (MaxPooling2D)", "(None, 14, 14, 32)", "0"),
                ("conv2d_3 (Conv2D)", "(None, 14, 14, 64)", "36,928"),
                ("flatten (Flatten)", "(None, 3136)", "0"),
                ("dense (Dense)", "(None, 256)", "803,072"),
                ("dense_1 (Dense)", "(None, 10)", "2,570")]:
        assert any(all(cell in line for cell in row) for line in lines), row
    assert "Total params: 887,530" in text
    assert "Trainable params: 887,530" in text
    assert "Non-trainable params: 0" in text
    assert sum("(None," in line for line in lines) == 12


def test_summary_prints_to_stdout(capsys):
    fnn.Sequential([layers.Dense(3, input_shape=(4,))]).summary()
    out = capsys.readouterr().out
    assert "Total params: 15" in out and "(None, 3)" in out


# ---------------------------------------------------------------- get/set_weights
def test_get_set_weights_round_trip():
    model = small_cnn()
    rs = np.random.default_rng(0)
    ws = [rs.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(ws)
    for a, b in zip(model.get_weights(), ws):
        same_bits(a, b)
    got = model.get_weights()
    got[0][...] = 7.0                       # copies: editing them leaves the model alone
    assert not (model.get_weights()[0] == 7.0).any()
    # float64 input is converted; the result is float32
    model.set_weights([w.astype(np.float64) for w in ws])
    assert all(w.dtype == np.float32 for w in model.get_weights())
    same_bits(model.get_weights()[0], ws[0])


def test_set_weights_bad_input():
    model = small_cnn()
    ws = model.get_weights()
    with pytest.raises(ValueError, match="expected"):
        model.set_weights(ws[:-1])
    with pytest.raises(ValueError):
        model.set_weights(ws + [np.zeros(3, np.float32)])
    bad = list(ws)
    bad[0] = np.zeros((3, 3, 1, 5), np.float32)
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(bad)
    bad = list(ws)
    bad[-2] = bad[-2].T          # Dense kernel in PyTorch's (out, in) layout
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(bad)
    bad = list(ws)
    bad[1] = np.ones(4, bool)
    with pytest.raises(TypeError):
        model.set_weights(bad)
    # a failed set_weights changes nothing
    for a, b in zip(model.get_weights(), ws):
        same_bits(a, b)


# ---------------------------------------------------------------- forward vs float64 NumPy
def test_forward_matches_numpy_reference():
    rs = np.random.default_rng(5)
    fnn.set_seed(3)
    model = fnn.Sequential([
        layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(10, 9, 2)),
        layers.BatchNormalization(),
        layers.MaxPool2D(2),                                                     # -> (5, 4, 4)
        layers.Conv2D(6, (2, 3), strides=2, padding="same", activation="tanh"),  # -> (3, 2, 6)
        layers.AveragePooling2D(2, padding="same"),                              # -> (2, 1, 6)
        layers.Flatten(),
        layers.Dense(8, activation="sigmoid"),
        layers.Dropout(0.5),
        layers.Dense(3, activation="softmax"),
    ])
    ws = model.get_weights()
    ws[1] = rs.standard_normal(4).astype(np.float32)                    # conv bias
    ws[2:6] = [rs.uniform(0.5, 2, 4), rs.standard_normal(4), rs.standard_normal(4) * 0.1, rs.uniform(0.5, 2, 4)]
    model.set_weights(ws)
    k1, b1, g, be, mu, var, k2, b2, k3, b3, k4, b4 = model.get_weights()
    x = rs.standard_normal((5, 10, 9, 2)).astype(np.float32)

    h = ref.relu(ref.conv2d(x, k1, b1, stride=1, padding="same"))
    h, _, _ = ref.batch_norm(h, g, be, mu, var, training=False, epsilon=1e-3)
    h, _ = ref.max_pool2d(h, 2)
    h = np.tanh(ref.conv2d(h, k2, b2, stride=2, padding="same"))
    h = keras_pool(h, 2, None, "same", "avg")
    h = h.reshape(len(x), -1)
    h = ref.sigmoid(ref.dense(h, k3, b3))
    expected = ref.softmax(ref.dense(h, k4, b4))

    compare(model.predict(x), expected)
    compare(model(x), expected)
    assert model.predict(x).shape == (5, 3)


# ---------------------------------------------------------------- gradients by finite differences
def _train_loss64(model, x, y):
    """The training-mode loss, in float64 from the float32 forward: every layer's
    forward(training=True), the probabilities (never the fused logits), the loss
    written out in NumPy, plus the regularization penalties."""
    last = model.layers[-1]
    saved = getattr(last, "emit_logits", None)
    if saved is not None:
        last.emit_logits = False
    try:
        out = np.asarray(x, np.float32)
        for layer in model.layers:
            out = layer.forward(out, training=True)
    finally:
        if saved is not None:
            last.emit_logits = saved
    p = np.asarray(out, np.float64)
    name = model.loss.name if hasattr(model.loss, "name") else str(model.loss)
    if "crossentropy" in name:
        onehot = y if y.ndim == 2 else np.eye(p.shape[1])[y]
        loss = -np.mean(np.sum(onehot * np.log(p), axis=1))
    else:
        loss = np.mean((p - np.asarray(y, np.float64).reshape(p.shape)) ** 2)
    for layer in model.layers:
        for w in layer.weights:
            if w.regularizer is not None:
                loss += w.regularizer.l2 * np.sum(np.asarray(w.value, np.float64) ** 2)
    return loss


GRAD_MODELS = {
    "conv_maxpool_dense": lambda: [
        layers.Conv2D(3, 3, activation="tanh", input_shape=(7, 7, 2)),        # valid -> (5, 5, 3)
        layers.MaxPool2D(2),                                                   # -> (2, 2, 3)
        layers.Flatten(),
        layers.Dense(4, activation="softmax")],
    "bn_tanh_avgpool_stride2": lambda: [
        layers.Conv2D(4, 3, strides=2, padding="same", input_shape=(9, 9, 2)),  # -> (5, 5, 4)
        layers.BatchNormalization(),
        layers.Activation("tanh"),
        layers.AveragePooling2D(2, padding="same"),                             # asymmetric -> (3, 3, 4)
        layers.Conv2D(3, 2, activation="sigmoid"),                              # valid -> (2, 2, 3)
        layers.Flatten(),
        layers.Dropout(0.0),
        layers.Dense(3, activation="softmax")],
    "relu_samepool": lambda: [
        layers.Conv2D(3, (3, 2), padding="same", activation="relu", input_shape=(6, 5, 1)),
        layers.MaxPool2D(3, strides=2, padding="same"),                         # -> (3, 3, 3)
        layers.AveragePooling2D(2, strides=1),                                  # -> (2, 2, 3)
        layers.Flatten(),
        layers.Dense(5, activation="sigmoid", kernel_regularizer=fnn.regularizers.l2(0.05)),
        layers.Dense(3, activation="softmax")],
    "dense_mse": lambda: [
        layers.Dense(6, activation="tanh", input_shape=(4,), kernel_regularizer=fnn.regularizers.l2(0.01)),
        layers.BatchNormalization(),
        layers.Dense(2)],
}


@pytest.mark.parametrize("name", sorted(GRAD_MODELS))
def test_model_gradients_finite_differences(name):
    rs = np.random.default_rng(7)
    fnn.set_seed(11)
    model = fnn.Sequential(GRAD_MODELS[name]())
    n = 6
    x = rs.standard_normal((n,) + model.input_shape[1:]).astype(np.float32)
    if name == "dense_mse":
        loss, y = "mse", rs.standard_normal((n, 2)).astype(np.float32)
    elif name == "bn_tanh_avgpool_stride2":
        loss, y = "sparse_categorical_crossentropy", rs.integers(0, 3, n).astype(np.int64)
    else:
        k = model.output_shape[-1]
        loss, y = "categorical_crossentropy", to_categorical(rs.integers(0, k, n), k)
    # non-trivial BN affine parameters and biases
    ws = [w + rs.uniform(-0.3, 0.3, w.shape).astype(np.float32) if w.ndim == 1 else w
          for w in model.get_weights()]
    model.set_weights(ws)
    # analytic gradients exactly as fit computes them: one full batch, learning rate 0
    model.compile(optimizer=optimizers.SGD(learning_rate=0.0), loss=loss)
    model.fit(x, y, batch_size=n, epochs=1, shuffle=False, verbose=0)
    all_specs = [w for layer in model.layers for w in layer.weights]
    specs = [w for w in all_specs if w.trainable]
    for spec, b in zip(all_specs, ws):
        if spec.trainable:
            same_bits(spec.value, b, "learning rate 0 leaves the weights alone")
    analytic = [np.array(w.grad, np.float64) for w in specs]

    eps = 2e-3
    pick = np.random.default_rng(0)
    for spec, g in zip(specs, analytic):
        flat = spec.value.reshape(-1)
        coords = pick.choice(flat.size, size=min(6, flat.size), replace=False)
        num = np.zeros(len(coords))
        for j, c in enumerate(coords):
            old = flat[c]
            hi, lo = np.float32(old + eps), np.float32(old - eps)
            flat[c] = hi
            fp = _train_loss64(model, x, y)
            flat[c] = lo
            fm = _train_loss64(model, x, y)
            flat[c] = old
            num[j] = (fp - fm) / (float(hi) - float(lo))
        ana = g.reshape(-1)[coords]
        scale = max(np.abs(num).max(), np.abs(ana).max(), 1e-3)
        err = np.abs(num - ana).max()
        assert err <= 2e-2 * scale, f"{name}: {spec.name} {spec.shape}: |fd - analytic| {err:.2e} vs {scale:.2e}"


# ---------------------------------------------------------------- save / load
def _fit_blobs(model, x, y, epochs, initial_epoch=0, cbs=None):
    return model.fit(x, to_categorical(y, 3), batch_size=16, epochs=epochs, initial_epoch=initial_epoch,
                     validation_split=0.2, callbacks=cbs, verbose=0)


def test_save_load_round_trip_and_exact_resume(tmp_path):
    x, y = blobs(60)
    model = small_cnn(seed=1, optimizer=optimizers.Adam(2e-3))
    _fit_blobs(model, x, y, 2)
    path = tmp_path / "m.fnn"
    model.save(path)
    loaded = fnn.models.load(path)

    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        same_bits(a, b, "weights")
    same_bits(model.predict(x), loaded.predict(x), "predictions")
    sa, sb = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert sorted(sa) == sorted(sb) and int(sb["iterations"]) == 6
    for k in sa:
        same_bits(sa[k], sb[k], f"optimizer state {k}")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert type(loaded.optimizer) is optimizers.Adam
    la, lb = [], []
    model.summary(print_fn=la.append)
    loaded.summary(print_fn=lb.append)
    assert la == lb
    assert loaded.evaluate(x, to_categorical(y, 3)) == model.evaluate(x, to_categorical(y, 3))

    # resume: one more epoch on both is bitwise the same, and equals an uninterrupted run
    _fit_blobs(model, x, y, 3, initial_epoch=2)
    _fit_blobs(loaded, x, y, 3, initial_epoch=2)
    straight = small_cnn(seed=1, optimizer=optimizers.Adam(2e-3))
    _fit_blobs(straight, x, y, 3)
    for a, b, c in zip(model.get_weights(), loaded.get_weights(), straight.get_weights()):
        same_bits(a, b, "resumed (original) vs resumed (loaded)")
        same_bits(a, c, "resumed vs uninterrupted")


def test_resume_restores_callback_state(tmp_path):
    """ReduceLROnPlateau's wait counter survives save/load: the reduction happens on the
    same epoch as in an uninterrupted run."""
    x, y = blobs(48, seed=2)

    def rlrop():   # loss falls, so with mode='max' it never "improves": reduce every 2 epochs
        return callbacks.ReduceLROnPlateau(monitor="loss", mode="max", patience=2, factor=0.5, min_lr=1e-5)

    straight = small_cnn(seed=4, optimizer=optimizers.RMSprop(1e-3))
    h = _fit_blobs(straight, x, y, 5, cbs=[rlrop()])
    assert h.history["learning_rate"] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 5e-4])

    part = small_cnn(seed=4, optimizer=optimizers.RMSprop(1e-3))
    _fit_blobs(part, x, y, 2, cbs=[rlrop()])
    part.save(tmp_path / "part.fnn")
    resumed = fnn.models.load(tmp_path / "part.fnn")
    h2 = _fit_blobs(resumed, x, y, 5, initial_epoch=2, cbs=[rlrop()])
    assert h2.history["learning_rate"] == h.history["learning_rate"][2:]
    assert resumed.optimizer.learning_rate == straight.optimizer.learning_rate
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        same_bits(a, b, "resumed with callbacks vs uninterrupted")


def test_saved_file_is_zip_of_json_and_npy_without_pickle(tmp_path):
    model = small_cnn()
    x, y = blobs(20)
    model.fit(x, to_categorical(y, 3), batch_size=10, epochs=1, verbose=0,
              callbacks=[callbacks.EarlyStopping(monitor="loss", restore_best_weights=True)])
    path = tmp_path / "m.fnn"
    model.save(str(path))
    assert zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert "model.json" in names
        meta = json.loads(zf.read("model.json"))
        assert isinstance(meta, dict) and meta.get("config")
        npys = [n for n in names if n.endswith(".npy")]
        assert set(names) == set(npys) | {"model.json"}
        assert len(npys) >= len(model.get_weights())
        for n in npys:
            a = np.load(io.BytesIO(zf.read(n)), allow_pickle=False)
            assert a.dtype != object
    json.dumps(meta)      # plain JSON all the way down


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.fnn"
    small_cnn(seed=1).save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fnn.models.json, "dumps", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        small_cnn(seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.fnn"], "no temporary file left behind"
    fnn.models.load(path)


def test_load_bad_files_raise_value_error(tmp_path):
    good = tmp_path / "good.fnn"
    model = small_cnn()
    model.save(good)
    data = good.read_bytes()
    cases = {
        "empty": b"",
        "garbage": b"this is not a zip file at all" * 10,
        "npy": b"\x93NUMPY" + b"\x00" * 100,
        **{f"truncated{k}": data[:len(data) * k // 8] for k in range(1, 8)},
        "truncated_tail": data[:-1],
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weights/00000.npy", b"")
    cases["no_model_json"] = buf.getvalue()
    for name, meta in [("bad_json", b"{not json"), ("json_list", b"[1, 2]"),
                       ("other_format", json.dumps({"format": "keras", "version": 1}).encode()),
                       ("no_config", json.dumps({"format": "fastnn-model", "version": 1}).encode()),
                       ("future", json.dumps({"format": "fastnn-model", "version": 99}).encode())]:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("model.json", meta)
        cases[name] = buf.getvalue()
    for name, blob in cases.items():
        p = tmp_path / f"{name}.fnn"
        p.write_bytes(blob)
        with pytest.raises(ValueError):
            fnn.models.load(p)
    # a weight member missing / replaced by a wrongly shaped array
    with zipfile.ZipFile(good) as src:
        members = {n: src.read(n) for n in src.namelist()}
    for name, edit in [("missing_weight", lambda m: m.pop("weights/00000.npy")),
                       ("wrong_shape", lambda m: m.__setitem__("weights/00000.npy", _npy(np.zeros(3, np.float32))))]:
        m = dict(members)
        edit(m)
        p = tmp_path / f"{name}.fnn"
        with zipfile.ZipFile(p, "w") as zf:
            for k, v in m.items():
                zf.writestr(k, v)
        with pytest.raises(ValueError):
            fnn.models.load(p)


def _npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def test_load_flipped_bytes_never_crash(tmp_path):
    """Any single corrupted byte either loads or raises ValueError, never anything else."""
    good = tmp_path / "good.fnn"
    fnn.Sequential([layers.Dense(2, input_shape=(3,))]).save(good)
    data = bytearray(good.read_bytes())
    p = tmp_path / "bad.fnn"
    step = max(1, len(data) // 300)
    for i in range(0, len(data), step):
        d = bytearray(data)
        d[i] ^= 0x5A
        p.write_bytes(bytes(d))
        try:
            fnn.models.load(p)
        except ValueError:
            pass


# ---------------------------------------------------------------- predict
def test_predict_batching_is_bitwise_invariant():
    fnn.set_seed(0)
    model = workbook_cnn()
    x = np.random.default_rng(1).uniform(0, 1, (11, 28, 28, 1)).astype(np.float32)
    full = model.predict(x, batch_size=64)
    for bs in (1, 4, 10):
        same_bits(model.predict(x, batch_size=bs), full, f"batch_size={bs}")
    for i in range(len(x)):
        same_bits(model.predict(x[i:i + 1])[0], full[i], f"sample {i} alone")
    assert full.shape == (11, 10) and full.dtype == np.float32
    np.testing.assert_allclose(full.sum(1), 1.0, rtol=1e-5)


def test_predict_input_handling():
    model = small_cnn(bn=False)
    x = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 1))
    same_bits(model.predict(x), model.predict(x.astype(np.float32)))          # float64 is converted
    same_bits(model.predict(np.asfortranarray(x)), model.predict(x.astype(np.float32)))
    assert model.predict(np.zeros((0, 8, 8, 1), np.float32)).shape == (0, 3)
    with pytest.raises(ValueError, match="x"):
        model.predict(np.zeros((4, 8, 7, 1), np.float32))
    with pytest.raises(TypeError):
        model.predict(np.zeros((4, 8, 8, 1), bool))
    with pytest.raises(ValueError):
        model.predict(x, batch_size=0)


# ---------------------------------------------------------------- fit: API and errors
def test_fit_before_compile_raises():
    model = fnn.Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0)
    with pytest.raises(RuntimeError):
        model.evaluate(np.zeros((4, 3)), np.zeros((4, 2)))


def test_fit_argument_checks():
    model = small_cnn(bn=False)
    x, y = blobs(10)
    y1h = to_categorical(y, 3)
    with pytest.raises(ValueError):
        model.fit(x, y1h[:9], verbose=0)
    with pytest.raises(ValueError):
        model.fit(x, y1h, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError):
        model.fit(x, y1h, verbose=3)
    with pytest.raises(ValueError):
        model.fit(x, y1h, batch_size=0, verbose=0)
    with pytest.raises(ValueError):
        model.fit(x, y1h, epochs=-1, verbose=0)
    with pytest.raises(ValueError):
        model.fit(iter([(x, y1h)]), epochs=1, verbose=0)    # generator without steps_per_epoch
    with pytest.raises(ValueError, match="loss"):
        fnn.Sequential([layers.Dense(2, input_shape=(3,))]).compile(optimizer="sgd")
    with pytest.raises(ValueError):
        fnn.Sequential([layers.Dense(2, input_shape=(3,))]).compile(optimizer="sgd", loss="hinge-ish")


def test_history_keys_and_lengths():
    x, y = blobs(40)
    model = small_cnn()
    h = model.fit(x, to_categorical(y, 3), batch_size=8, epochs=3, validation_data=(x[:10], to_categorical(y[:10], 3)),
                  verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert all(len(v) == 3 for v in h.history.values())
    assert h.epoch == [0, 1, 2]
    assert model.history is h
    assert all(isinstance(v, float) for vs in h.history.values() for v in vs)
    assert h.history["learning_rate"] == pytest.approx([1e-3] * 3)
    h2 = model.fit(x, to_categorical(y, 3), batch_size=8, epochs=1, verbose=0)
    assert set(h2.history) == {"loss", "accuracy", "learning_rate"}


def test_validation_split_takes_the_last_fraction():
    x, y = blobs(40, seed=3)
    y1h = to_categorical(y, 3)
    a = small_cnn(seed=5)
    counter = BatchCounter()
    ha = a.fit(x, y1h, batch_size=10, epochs=2, validation_split=0.25, callbacks=[counter], verbose=0)
    assert counter.per_epoch == [3, 3]                  # 30 training samples
    b = small_cnn(seed=5)
    hb = b.fit(x[:30], y1h[:30], batch_size=10, epochs=2, validation_data=(x[30:], y1h[30:]), verbose=0)
    for k in ("loss", "val_loss", "val_accuracy"):
        assert ha.history[k] == hb.history[k], k
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        same_bits(wa, wb)
    assert ha.history["val_loss"][-1] == a.evaluate(x[30:], y1h[30:], batch_size=10)[0]


def test_loss_and_metric_logs_are_sample_weighted_means():
    x, y = blobs(25, seed=4)
    model = small_cnn(bn=False, dropout=0.0, optimizer=optimizers.SGD(0.0))
    h = model.fit(x, to_categorical(y, 3), batch_size=10, epochs=1, shuffle=False, verbose=0)
    loss, acc = model.evaluate(x, to_categorical(y, 3), batch_size=7)
    # learning rate 0 and no dropout: the training loss is the evaluation loss (+ penalty)
    penalty = sum(1e-3 * float(np.sum(np.asarray(w, np.float64) ** 2)) for w in [model.get_weights()[2]])
    assert h.history["loss"][0] == pytest.approx(loss + penalty, rel=1e-5)
    assert h.history["accuracy"][0] == pytest.approx(acc)


# ---------------------------------------------------------------- callbacks in a real fit
def test_reduce_lr_on_plateau_in_fit():
    x, y = blobs(30)
    model = small_cnn(optimizer=optimizers.RMSprop(1e-3))
    cb = callbacks.ReduceLROnPlateau(monitor="loss", mode="max", patience=1, factor=0.5, min_lr=2e-4)
    h = model.fit(x, to_categorical(y, 3), batch_size=10, epochs=5, callbacks=[cb], verbose=0)
    assert h.history["learning_rate"] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4, 2e-4])
    assert model.optimizer.learning_rate == pytest.approx(2e-4)


def test_early_stopping_in_fit_restores_best():
    x, y = blobs(30)
    model = small_cnn()
    seen = []

    class Snap(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(model.get_weights())

    es = callbacks.EarlyStopping(monitor="loss", mode="max", patience=2, restore_best_weights=True)
    h = model.fit(x, to_categorical(y, 3), batch_size=10, epochs=20, callbacks=[Snap(), es], verbose=0)
    assert len(h.history["loss"]) == 3 and len(seen) == 3
    for a, b in zip(model.get_weights(), seen[0]):     # the best "max loss" epoch is the first
        same_bits(a, b)


def test_csv_logger_in_fit(tmp_path):
    x, y = blobs(30)
    path = tmp_path / "log.csv"
    model = small_cnn()
    h = model.fit(x, to_categorical(y, 3), batch_size=10, epochs=3, validation_split=0.2,
                  callbacks=[callbacks.CSVLogger(str(path))], verbose=0)
    rows = path.read_text().splitlines()
    assert len(rows) == 4
    header = rows[0].split(",")
    assert header[0] == "epoch"
    assert set(header[1:]) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    last = dict(zip(header, rows[3].split(",")))
    assert int(last["epoch"]) == 2
    assert float(last["val_loss"]) == pytest.approx(h.history["val_loss"][2])


def test_model_checkpoint_in_fit(tmp_path):
    x, y = blobs(30)
    model = small_cnn()
    pattern = str(tmp_path / "ck-{epoch:02d}.fnn")
    model.fit(x, to_categorical(y, 3), batch_size=10, epochs=2, callbacks=[callbacks.ModelCheckpoint(pattern)],
              verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["ck-01.fnn", "ck-02.fnn"]
    last = fnn.models.load(tmp_path / "ck-02.fnn")
    same_bits(last.predict(x), model.predict(x))
    first = fnn.models.load(tmp_path / "ck-01.fnn")
    assert not np.array_equal(first.get_weights()[0], model.get_weights()[0])
    best = str(tmp_path / "best.fnn")
    model.fit(x, to_categorical(y, 3), batch_size=10, epochs=2, validation_split=0.2, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(best, monitor="val_loss", save_best_only=True)])
    assert os.path.exists(best)


def test_terminate_on_nan_in_fit():
    x, y = blobs(30)
    model = small_cnn(optimizer=optimizers.SGD(1e30))
    h = model.fit(x, to_categorical(y, 3), batch_size=10, epochs=5, callbacks=[callbacks.TerminateOnNaN()],
                  verbose=0)
    assert len(h.history["loss"]) <= 2


# ---------------------------------------------------------------- progress output
def test_progress_output_verbosity(capsys):
    x, y = blobs(30)
    y1h = to_categorical(y, 3)
    model = small_cnn()
    model.fit(x, y1h, batch_size=10, epochs=2, verbose=0, validation_split=0.2)
    assert capsys.readouterr().out == ""
    model.fit(x, y1h, batch_size=10, epochs=2, verbose=2, validation_split=0.2)
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines[0] == "Epoch 1/2" and "Epoch 2/2" in lines
    summaries = [l for l in lines if re.match(r"3/3 - ", l)]
    assert len(summaries) == 2
    for key in ("loss: ", "accuracy: ", "val_loss: ", "val_accuracy: ", "learning_rate: ", "/step"):
        assert all(key in l for l in summaries), key
    model.fit(x, y1h, batch_size=10, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert len(re.findall(r"3/3 .*loss: \d\.\d{4}", out)) == 2
    model.fit(x, y1h, batch_size=10, epochs=1)            # verbose='auto' is 1; no Epoch header for 1 epoch
    out = capsys.readouterr().out
    assert "Epoch" not in out and "3/3" in out


# ---------------------------------------------------------------- generators
def test_generator_runs_steps_per_epoch_every_epoch():
    """Keras 3 runs a single step on every second epoch here; fastnn runs them all."""
    x, y = blobs(40)
    flow = ImageDataGenerator(rotation_range=5, width_shift_range=0.1, seed=1).flow(
        x, to_categorical(y, 3), batch_size=6)
    assert len(flow) == 7
    model = small_cnn()
    counter = BatchCounter()
    h = model.fit(flow, steps_per_epoch=5, epochs=3, callbacks=[counter], verbose=0)
    assert counter.per_epoch == [5, 5, 5]
    assert flow.epoch * len(flow) + flow.batch_index == 15      # exactly 15 batches drawn
    assert len(h.history["loss"]) == 3
    counter = BatchCounter()
    model.fit(flow, epochs=3, callbacks=[counter], verbose=0)   # default: len(flow) steps
    assert counter.per_epoch == [7, 7, 7]


def test_generator_fit_with_validation_and_plain_python_generator():
    x, y = blobs(40)
    y1h = to_categorical(y, 3)

    def batches():
        while True:
            for i in range(0, 40, 8):
                yield x[i:i + 8], y1h[i:i + 8]

    model = small_cnn()
    counter = BatchCounter()
    h = model.fit(batches(), steps_per_epoch=4, epochs=2, validation_data=(x, y1h), callbacks=[counter], verbose=0)
    assert counter.per_epoch == [4, 4]
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}


# ---------------------------------------------------------------- losses end to end
def test_sparse_categorical_crossentropy_integer_labels():
    x, y = blobs(90, seed=6)
    a = small_cnn(seed=3, loss="sparse_categorical_crossentropy", optimizer=optimizers.Adam(1e-2), dropout=0.0)
    b = small_cnn(seed=3, loss="categorical_crossentropy", optimizer=optimizers.Adam(1e-2), dropout=0.0)
    ha = a.fit(x, y, batch_size=16, epochs=6, verbose=0)                 # uint8 labels
    hb = b.fit(x, to_categorical(y, 3), batch_size=16, epochs=6, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-4)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-3, atol=1e-5)
    assert ha.history["loss"][-1] < 0.5 * ha.history["loss"][0]
    loss, acc = a.evaluate(x, y.astype(np.int32))
    assert acc > 0.9
    with pytest.raises(ValueError):
        a.fit(x, np.full(90, 3, np.int64), verbose=0)                    # label out of range


def test_mse_regression_dense1():
    rs = np.random.default_rng(8)
    x = rs.standard_normal((256, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    fnn.set_seed(0)
    model = fnn.Sequential([layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    h = model.fit(x, y, batch_size=32, epochs=30, verbose=0)            # y (N,) against (N, 1)
    assert h.history["loss"][-1] < 1e-6 < h.history["loss"][0]
    k, b = model.get_weights()
    np.testing.assert_allclose(k[:, 0], [1.0, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(b, [0.3], atol=1e-3)
    assert model.predict(x).shape == (256, 1)
    loss, mae = model.evaluate(x, y[:, None])
    assert loss < 1e-6 and mae < 1e-3


# ---------------------------------------------------------------- training on real data
def test_mnist_sample_trains():
    (x_tr, y_tr), (x_te, y_te) = fnn.datasets.load_mnist()
    x_tr = (x_tr[:2000].astype(np.float32) / 255)[..., None]
    y_tr = y_tr[:2000]
    x_te = (x_te.astype(np.float32) / 255)[..., None]
    fnn.set_seed(0)
    model = fnn.Sequential([
        layers.Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPool2D(2),
        layers.Conv2D(16, 3, activation="relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss0, acc0 = model.evaluate(x_te, y_te, batch_size=500)
    t0 = time.perf_counter()
    h = model.fit(x_tr, y_tr, batch_size=32, epochs=2, verbose=0)
    assert time.perf_counter() - t0 < 60
    loss, acc = model.evaluate(x_te, y_te, batch_size=500)
    assert h.history["loss"][1] < h.history["loss"][0]
    assert loss < 0.5 * loss0
    assert acc0 < 0.3 and acc > 0.8, (acc0, acc)
    assert h.history["accuracy"][1] > 0.8


# ---------------------------------------------------------------- determinism
def _full_fit(seed, n_threads):
    x, y = blobs(50, seed=9)
    with threads(n_threads):
        model = small_cnn(seed=seed)
        flow = ImageDataGenerator(rotation_range=10, zoom_range=0.1, seed=seed).flow(x, to_categorical(y, 3),
                                                                                      batch_size=8)
        model.fit(flow, steps_per_epoch=4, epochs=2, verbose=0)
        model.fit(x, to_categorical(y, 3), batch_size=7, epochs=2, validation_split=0.2, verbose=0)
    return model.get_weights()


def test_fit_deterministic_same_seed_and_threads():
    a = _full_fit(seed=3, n_threads=2)
    b = _full_fit(seed=3, n_threads=2)
    c = _full_fit(seed=3, n_threads=1)
    for wa, wb, wc in zip(a, b, c):
        same_bits(wa, wb, "same seed")
        same_bits(wa, wc, "1 vs 2 threads")
    d = _full_fit(seed=4, n_threads=2)
    assert not np.array_equal(a[0], d[0]), "a different seed gives different weights"


def test_workbook_cnn_step_deterministic_across_threads():
    x = np.random.default_rng(0).uniform(0, 1, (43, 28, 28, 1)).astype(np.float32)
    y = to_categorical(np.arange(43) % 10, 10)
    out = []
    for n in (1, 2):
        with threads(n):
            fnn.set_seed(1)
            model = workbook_cnn()
            model.compile(optimizer=optimizers.RMSprop(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
            model.fit(x, y, batch_size=20, epochs=1, verbose=0)
            out.append(model.get_weights())
    for a, b in zip(*out):
        same_bits(a, b, "workbook CNN, 1 vs 2 threads")
