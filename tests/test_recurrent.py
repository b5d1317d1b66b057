"""Recurrent layers (LSTM, GRU, SimpleRNN, Bidirectional) inside Sequential models.

The kernels themselves are tested in test_rnn.py; here: shapes and parameter counts as
Keras prints them, Keras weight layouts and initial values, forward against a float64
NumPy model built from get_weights, gradients of a stacked bidirectional model by finite
differences, save/load, gradient clipping, dropout, return_state and argument checks."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn as fnn
from fastnn import layers, optimizers
from helpers import same_bits


# ------------------------------------------------------------ float64 NumPy models
def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_lstm(x, k, rk, b, h=None, c=None):
    """x (N, T, I) -> h_seq (N, T, H), h_T, c_T; gates i, f, c, o (Keras)."""
    x, k, rk = (np.asarray(a, np.float64) for a in (x, k, rk))
    n, t_len, _ = x.shape
    hid = rk.shape[0]
    b = np.zeros(4 * hid) if b is None else np.asarray(b, np.float64)
    h = np.zeros((n, hid)) if h is None else np.asarray(h, np.float64)
    c = np.zeros((n, hid)) if c is None else np.asarray(c, np.float64)
    out = []
    for t in range(t_len):
        z = x[:, t] @ k + h @ rk + b
        i, f = _sig(z[:, :hid]), _sig(z[:, hid:2 * hid])
        g, o = np.tanh(z[:, 2 * hid:3 * hid]), _sig(z[:, 3 * hid:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, 1), h, c


def np_gru(x, k, rk, b, h=None):
    """Keras GRU with reset_after=True; b (2, 3H); gates z, r, h."""
    x, k, rk = (np.asarray(a, np.float64) for a in (x, k, rk))
    n, t_len, _ = x.shape
    hid = rk.shape[0]
    b = np.zeros((2, 3 * hid)) if b is None else np.asarray(b, np.float64)
    h = np.zeros((n, hid)) if h is None else np.asarray(h, np.float64)
    out = []
    for t in range(t_len):
        a = x[:, t] @ k + b[0]
        r_ = h @ rk + b[1]
        z = _sig(a[:, :hid] + r_[:, :hid])
        r = _sig(a[:, hid:2 * hid] + r_[:, hid:2 * hid])
        cand = np.tanh(a[:, 2 * hid:] + r * r_[:, 2 * hid:])
        h = z * h + (1 - z) * cand
        out.append(h)
    return np.stack(out, 1), h


def np_rnn(x, k, rk, b, h=None):
    x, k, rk = (np.asarray(a, np.float64) for a in (x, k, rk))
    n, t_len, _ = x.shape
    hid = rk.shape[0]
    b = np.zeros(hid) if b is None else np.asarray(b, np.float64)
    h = np.zeros((n, hid)) if h is None else np.asarray(h, np.float64)
    out = []
    for t in range(t_len):
        h = np.tanh(x[:, t] @ k + h @ rk + b)
        out.append(h)
    return np.stack(out, 1), h


def np_layer(kind, x, ws, return_sequences, go_backwards=False, use_bias=True):
    """One recurrent layer in float64 from its Keras weights; pops what it uses off ws."""
    k, rk = ws.pop(0), ws.pop(0)
    b = ws.pop(0) if use_bias else None
    if go_backwards:
        x = x[:, ::-1]
    fn = {"lstm": np_lstm, "gru": np_gru, "rnn": np_rnn}[kind]
    seq, h = fn(x, k, rk, b)[:2]
    return seq if return_sequences else h


def np_bidir(kind, x, ws, return_sequences, merge_mode):
    f = np_layer(kind, x, ws, return_sequences)
    bwd = np_layer(kind, x, ws, return_sequences, go_backwards=True)
    if return_sequences:
        bwd = bwd[:, ::-1]
    return {"concat": lambda: np.concatenate([f, bwd], -1), "sum": lambda: f + bwd,
            "mul": lambda: f * bwd, "ave": lambda: (f + bwd) / 2}[merge_mode]()


def _compare(actual, expected, rtol=2e-5, name="output"):
    actual = np.asarray(actual, np.float64)
    assert actual.shape == expected.shape, f"{name}: {actual.shape} vs {expected.shape}"
    scale = max(np.abs(expected).max(), 1e-6)
    err = np.abs(actual - expected).max()
    assert err <= rtol * scale, f"{name}: max error {err:.3e} > {rtol} x {scale:.3e}"


def _randomize(model, rs, scale=0.5):
    """Non-trivial weights (biases included), so that every term of the formulas counts."""
    ws = [rs.uniform(-scale, scale, w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(ws)
    return ws


RNN_CLASSES = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}


# ------------------------------------------------------------ shapes and counts
@pytest.mark.parametrize("make, input_shape, out_shape, params", [
    (lambda: layers.LSTM(20), (15, 1), (None, 20), 1760),               # the workbook model
    (lambda: layers.LSTM(20, return_sequences=True), (15, 1), (None, 15, 20), 1760),
    (lambda: layers.LSTM(7, use_bias=False), (4, 3), (None, 7), 4 * (3 * 7 + 7 * 7)),
    (lambda: layers.GRU(20), (15, 1), (None, 20), 1380),                # Keras 3 (reset_after=True)
    (lambda: layers.GRU(5, return_sequences=True), (9, 4), (None, 9, 5), 3 * (4 * 5 + 5 * 5 + 2 * 5)),
    (lambda: layers.SimpleRNN(20), (15, 1), (None, 20), 440),
    (lambda: layers.SimpleRNN(3, return_sequences=True), (2, 6), (None, 2, 3), 6 * 3 + 9 + 3),
    (lambda: layers.Bidirectional(layers.LSTM(8, return_sequences=True)), (5, 3), (None, 5, 16), 768),
    (lambda: layers.Bidirectional(layers.LSTM(8), merge_mode="sum"), (5, 3), (None, 8), 768),
    (lambda: layers.Bidirectional(layers.GRU(4), merge_mode="ave"), (5, 3), (None, 4), 2 * 3 * (12 + 16 + 8)),
])
def test_output_shape_and_param_count(make, input_shape, out_shape, params):
    layer = make()
    model = fnn.Sequential([layers.InputLayer(shape=input_shape), layer])
    assert model.output_shape == out_shape
    assert layer.count_params() == params
    assert sum(w.size for w in model.get_weights()) == params
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert f"{params:,}" in text and str(out_shape) in text


def test_workbook_summary_rows():
    model = fnn.Sequential([layers.LSTM(20, input_shape=(15, 1)), layers.Dense(1)])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "lstm (LSTM)" in text and "1,760" in text and "Total params: 1,781" in text
    inner = fnn.Sequential([layers.Bidirectional(layers.LSTM(8, input_shape=(5, 3))), layers.Dense(1)])
    assert inner.built and inner.output_shape == (None, 1) and inner.count_params() == 768 + 17
    names = [l.default_name() for l in (layers.LSTM(2), layers.GRU(2), layers.SimpleRNN(2),
                                        layers.Bidirectional(layers.LSTM(2)))]
    assert names == ["lstm", "gru", "simple_rnn", "bidirectional"]


def test_weight_layouts_and_initial_values():
    fnn.set_seed(3)
    hid, i = 6, 4
    model = fnn.Sequential([layers.LSTM(hid, return_sequences=True, input_shape=(5, i)),
                            layers.GRU(hid, return_sequences=True), layers.SimpleRNN(hid), layers.Dense(1)])
    ws = model.get_weights()
    assert [w.shape for w in ws] == [(i, 4 * hid), (hid, 4 * hid), (4 * hid,),
                                     (hid, 3 * hid), (hid, 3 * hid), (2, 3 * hid),
                                     (hid, hid), (hid, hid), (hid,), (hid, 1), (1,)]
    lstm_bias = ws[2]
    assert np.all(lstm_bias[hid:2 * hid] == 1) and np.all(lstm_bias[:hid] == 0) and np.all(lstm_bias[2 * hid:] == 0)
    assert np.all(ws[5] == 0)
    for rk in (ws[1], ws[4], ws[7]):   # orthogonal recurrent kernels (columns or rows orthonormal)
        g = rk.T @ rk if rk.shape[0] >= rk.shape[1] else rk @ rk.T
        np.testing.assert_allclose(g, np.eye(g.shape[0]), atol=1e-5)
    lim = np.sqrt(6 / (i + 4 * hid))   # glorot_uniform
    assert np.abs(ws[0]).max() <= lim and np.abs(ws[0]).max() > lim / 2
    no_ufb = fnn.Sequential([layers.LSTM(3, unit_forget_bias=False, bias_initializer="ones", input_shape=(2, 2))])
    assert np.all(no_ufb.get_weights()[2] == 1)


def test_get_set_weights_round_trip():
    rs = np.random.default_rng(1)
    model = fnn.Sequential([layers.Bidirectional(layers.GRU(4, return_sequences=True), input_shape=(6, 3)),
                            layers.LSTM(5), layers.Dense(2)])
    ws = _randomize(model, rs)
    for a, b in zip(model.get_weights(), ws):
        same_bits(a, b, "round trip")
    x = rs.standard_normal((3, 6, 3)).astype(np.float32)
    y1 = model.predict(x)
    model.set_weights([w * 0 for w in ws])
    assert not np.allclose(model.predict(x), y1)
    model.set_weights(ws)
    same_bits(model.predict(x), y1, "predictions after set_weights")
    with pytest.raises(ValueError, match="expected shape"):
        model.set_weights([w.T if w.ndim == 2 else w for w in ws])


# ------------------------------------------------------------ forward vs NumPy
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("n, t, i, h", [(4, 7, 3, 5), (1, 1, 1, 1), (5, 15, 1, 20), (2, 3, 17, 33)])
def test_forward_matches_numpy(kind, return_sequences, use_bias, n, t, i, h):
    rs = np.random.default_rng(n * 100 + t + i + h)
    layer = RNN_CLASSES[kind](h, return_sequences=return_sequences, use_bias=use_bias, input_shape=(t, i))
    model = fnn.Sequential([layer])
    ws = _randomize(model, rs)
    x = rs.standard_normal((n, t, i)).astype(np.float32)
    ref = np_layer(kind, x, list(ws), return_sequences, use_bias=use_bias)
    _compare(model.predict(x), ref, name=f"{kind}")
    # the training-mode forward gives the same numbers
    _compare(layer.forward(x, training=True), ref, name=f"{kind} (training)")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_go_backwards_matches_numpy(kind):
    rs = np.random.default_rng(4)
    model = fnn.Sequential([RNN_CLASSES[kind](4, return_sequences=True, go_backwards=True, input_shape=(6, 2))])
    ws = _randomize(model, rs)
    x = rs.standard_normal((3, 6, 2)).astype(np.float32)
    _compare(model.predict(x), np_layer(kind, x, list(ws), True, go_backwards=True))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_forward_matches_numpy(kind, merge_mode, return_sequences):
    rs = np.random.default_rng(5)
    model = fnn.Sequential([layers.Bidirectional(RNN_CLASSES[kind](5, return_sequences=return_sequences),
                                                 merge_mode=merge_mode, input_shape=(7, 3))])
    ws = _randomize(model, rs)
    x = rs.standard_normal((4, 7, 3)).astype(np.float32)
    _compare(model.predict(x), np_bidir(kind, x, list(ws), return_sequences, merge_mode))


def test_stacked_model_matches_numpy_and_empty_batch():
    rs = np.random.default_rng(6)
    model = fnn.Sequential([layers.LSTM(6, return_sequences=True, input_shape=(8, 2)),
                            layers.GRU(5, return_sequences=True), layers.SimpleRNN(4), layers.Dense(1)])
    ws = _randomize(model, rs)
    x = rs.standard_normal((5, 8, 2)).astype(np.float32)
    w = list(ws)
    a = np_layer("lstm", x, w, True)
    a = np_layer("gru", a, w, True)
    a = np_layer("rnn", a, w, False)
    ref = a @ np.asarray(w[0], np.float64) + w[1]
    _compare(model.predict(x), ref)
    assert model.predict(np.zeros((0, 8, 2), np.float32)).shape == (0, 1)


def test_bad_inputs_raise():
    model = fnn.Sequential([layers.LSTM(3, input_shape=(4, 2))])
    with pytest.raises(ValueError):
        model.predict(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(TypeError):
        model.predict(np.zeros((2, 4, 2), bool))
    with pytest.raises(ValueError, match="timesteps"):
        fnn.Sequential([layers.LSTM(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="timesteps"):
        fnn.Sequential([layers.Dense(3, input_shape=(4, 2)), layers.Flatten(), layers.GRU(2)])


# ------------------------------------------------------------ gradients
def _loss64(model, x, y):
    out = np.asarray(x, np.float32)
    for layer in model.layers:
        out = layer.forward(out, training=True)
    return float(np.mean((out.astype(np.float64) - y) ** 2))


def _analytic_grads(model, x, y):
    model.compile(optimizer=optimizers.SGD(learning_rate=0.0), loss="mse")
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return [w for layer in model.layers for w in layer.weights if w.trainable]


@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
def test_stacked_bidirectional_gradients_finite_differences(merge_mode):
    rs = np.random.default_rng(7)
    fnn.set_seed(5)
    model = fnn.Sequential([
        layers.Bidirectional(layers.LSTM(4, return_sequences=True), merge_mode=merge_mode, input_shape=(5, 3)),
        layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="sum"),
        layers.Bidirectional(layers.SimpleRNN(3)),
        layers.Dense(2)])
    _randomize(model, rs, 0.6)
    x = rs.standard_normal((4, 5, 3)).astype(np.float32)
    y = rs.standard_normal((4, 2))
    specs = _analytic_grads(model, x, y.astype(np.float32))
    assert len(specs) == 3 * 2 * 3 + 2
    eps = 2e-3
    pick = np.random.default_rng(0)
    for spec in specs:
        g = np.array(spec.grad, np.float64).reshape(-1)
        flat = spec.value.reshape(-1)
        coords = pick.choice(flat.size, size=min(5, flat.size), replace=False)
        num = np.zeros(len(coords))
        for j, c in enumerate(coords):
            old = flat[c]
            hi, lo = np.float32(old + eps), np.float32(old - eps)
            flat[c] = hi
            fp = _loss64(model, x, y)
            flat[c] = lo
            fm = _loss64(model, x, y)
            flat[c] = old
            num[j] = (fp - fm) / (float(hi) - float(lo))
        ana = g[coords]
        scale = max(np.abs(num).max(), np.abs(ana).max(), 1e-3)
        assert np.abs(num - ana).max() <= 2e-2 * scale, f"{spec.name} {spec.shape}: fd {num} vs analytic {ana}"


def test_input_gradient_of_go_backwards_and_bidirectional():
    """dx of the layers' backward by finite differences (the reversal is undone)."""
    rs = np.random.default_rng(8)
    for layer in (layers.GRU(3, go_backwards=True, return_sequences=True),
                  layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode="ave")):
        model = fnn.Sequential([layer], name="m")
        model.build((None, 4, 2))
        _randomize(model, rs)
        x = rs.standard_normal((2, 4, 2)).astype(np.float32)
        y = layer.forward(x, training=True)
        dy = rs.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dy, need_dx=True)
        eps = 1e-2
        num = np.zeros(x.size)
        for c in range(x.size):
            xp, xm = x.copy(), x.copy()
            xp.reshape(-1)[c] += eps
            xm.reshape(-1)[c] -= eps
            num[c] = (np.sum(layer.forward(xp, training=True) * dy, dtype=np.float64)
                      - np.sum(layer.forward(xm, training=True) * dy, dtype=np.float64)) / (2 * eps)
        scale = max(np.abs(num).max(), 1e-3)
        assert np.abs(num - dx.reshape(-1)).max() <= 2e-2 * scale


@pytest.mark.parametrize("clip", [{"clipnorm": 0.05}, {"clipvalue": 0.01}])
def test_gradient_clipping_on_recurrent_model(clip):
    """The update actually applied by one SGD step equals -lr x the clipped gradient."""
    rs = np.random.default_rng(9)
    fnn.set_seed(2)

    def make():
        m = fnn.Sequential([layers.LSTM(6, return_sequences=True, input_shape=(10, 2)), layers.SimpleRNN(4),
                            layers.Dense(1)])
        m.set_weights(ws)
        return m

    ws = [rs.uniform(-1.5, 1.5, w.shape).astype(np.float32)
          for w in fnn.Sequential([layers.LSTM(6, return_sequences=True, input_shape=(10, 2)),
                                   layers.SimpleRNN(4), layers.Dense(1)]).get_weights()]
    x = rs.standard_normal((8, 10, 2)).astype(np.float32) * 3
    y = (rs.standard_normal((8, 1)) * 10).astype(np.float32)
    raw = [np.array(s.grad, np.float64) for s in _analytic_grads(make(), x, y)]
    if "clipnorm" in clip:
        norms = [np.sqrt((g ** 2).sum()) for g in raw]
        assert max(norms) > clip["clipnorm"] * 10, "the test needs gradients large enough to clip"
        expected = [g * min(1.0, clip["clipnorm"] / n) for g, n in zip(raw, norms)]
    else:
        assert max(np.abs(g).max() for g in raw) > clip["clipvalue"] * 10
        expected = [np.clip(g, -clip["clipvalue"], clip["clipvalue"]) for g in raw]
    lr = 0.5
    model = make()
    model.compile(optimizer=optimizers.SGD(learning_rate=lr, **clip), loss="mse")
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    for before, after, g in zip(ws, model.get_weights(), expected):
        step = (before.astype(np.float64) - after) / lr
        np.testing.assert_allclose(step, g, rtol=2e-3, atol=2e-6 * max(np.abs(g).max(), 1e-3) + 1e-7)
    if "clipnorm" in clip:
        for before, after in zip(ws, model.get_weights()):
            n = np.sqrt((((before.astype(np.float64) - after) / lr) ** 2).sum())
            assert n <= clip["clipnorm"] * (1 + 1e-4)


# ------------------------------------------------------------ save / load, training
def test_save_load_round_trip_bitwise(tmp_path):
    rs = np.random.default_rng(10)
    fnn.set_seed(4)
    model = fnn.Sequential([
        layers.Bidirectional(layers.LSTM(5, return_sequences=True, kernel_regularizer="l2"), merge_mode="mul",
                             input_shape=(6, 2)),
        layers.GRU(4, return_sequences=True, dropout=0.2, seed=3),
        layers.SimpleRNN(3, use_bias=False), layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(1e-2), loss="mse")
    x = rs.standard_normal((20, 6, 2)).astype(np.float32)
    y = rs.standard_normal((20, 1)).astype(np.float32)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "rnn.fnn"
    model.save(path)
    loaded = fnn.models.load(path)
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert [l.get_config() for l in loaded.layers] == [l.get_config() for l in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        same_bits(a, b, "weights")
    same_bits(model.predict(x), loaded.predict(x), "predictions")
    la, lb = [], []
    model.summary(print_fn=la.append)
    loaded.summary(print_fn=lb.append)
    assert la == lb


@pytest.mark.parametrize("opt", ["sgd", "rmsprop", "adam", "adagrad", "adadelta",
                                 lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True)])
@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_trains_with_every_optimizer_and_loss(opt, loss):
    rs = np.random.default_rng(11)
    fnn.set_seed(1)
    x = rs.uniform(0, 1, (64, 8, 1)).astype(np.float32)
    y = x[:, -1] * 0.8 + 0.1
    model = fnn.Sequential([layers.GRU(8, input_shape=(8, 1)), layers.Dense(1)])
    model.compile(optimizer=opt() if callable(opt) else opt, loss=loss)
    hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.25)
    assert all(np.isfinite(hist.history["loss"])) and all(np.isfinite(hist.history["val_loss"]))


def test_learns_last_value_and_callbacks(tmp_path):
    """A small LSTM learns to copy the last input; EarlyStopping, ReduceLROnPlateau,
    CSVLogger and ModelCheckpoint run with it."""
    from fastnn import callbacks
    rs = np.random.default_rng(12)
    fnn.set_seed(0)
    x = rs.uniform(0, 1, (256, 6, 1)).astype(np.float32)
    y = x[:, -1].copy()
    model = fnn.Sequential([layers.LSTM(12, input_shape=(6, 1)), layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(1e-2), loss="mse")
    first = model.evaluate(x, y)
    cbs = [callbacks.EarlyStopping(patience=2, restore_best_weights=True), callbacks.ReduceLROnPlateau(patience=1),
           callbacks.CSVLogger(str(tmp_path / "log.csv")), callbacks.ModelCheckpoint(str(tmp_path / "best.fnn"))]
    model.fit(x, y, batch_size=32, epochs=12, verbose=0, validation_split=0.2, callbacks=cbs)
    last = model.evaluate(x, y)
    assert last < first * 0.2
    assert (tmp_path / "log.csv").exists() and (tmp_path / "best.fnn").exists()


def test_fit_is_deterministic_and_thread_invariant():
    from helpers import threads
    rs = np.random.default_rng(13)
    x = rs.standard_normal((40, 5, 3)).astype(np.float32)
    y = rs.standard_normal((40, 2)).astype(np.float32)
    outs = []
    for n in (1, 2, 2):
        with threads(n):
            fnn.set_seed(7)
            model = fnn.Sequential([layers.Bidirectional(layers.LSTM(4, dropout=0.3), input_shape=(5, 3)),
                                    layers.Dense(2)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(x, y, batch_size=8, epochs=2, verbose=0)
            outs.append(model.get_weights())
    for a, b in zip(outs[0], outs[1]):
        same_bits(a, b, "1 vs 2 threads")
    for a, b in zip(outs[1], outs[2]):
        same_bits(a, b, "repeated run")


# ------------------------------------------------------------ dropout
def test_input_dropout_mask_shared_over_time_and_keyed_by_sample():
    rs = np.random.default_rng(14)
    layer = layers.SimpleRNN(3, dropout=0.5, seed=11, return_sequences=True)
    model = fnn.Sequential([layer])
    model.build((None, 6, 8))
    x = rs.uniform(1, 2, (10, 6, 8)).astype(np.float32)
    # inference: no dropout
    same_bits(layer.forward(x, training=False), model.predict(x), "inference")
    layer.epoch, layer.sample_offset = 0, 0
    layer.forward(x, training=True)
    scale = layer._scale
    assert scale.shape == (10, 8)
    assert set(np.unique(scale)) <= {0.0, 2.0} and 0 < (scale == 0).mean() < 1
    # the same mask for a sample whatever batch it is in (keyed by global sample index)
    layer.sample_offset = 4
    layer.forward(x[4:], training=True)
    same_bits(layer._scale, scale[4:], "mask keyed by sample index")
    # a new epoch gives a new mask
    layer.epoch, layer.sample_offset = 1, 0
    layer.forward(x, training=True)
    assert not np.array_equal(layer._scale, scale)
    # the forward equals the layer on the masked input, the same mask at every step
    layer.epoch = 0
    ws = model.get_weights()
    y = layer.forward(x, training=True)
    ref = np_layer("rnn", x * scale[:, None, :], list(ws), True)
    _compare(y, ref)


def test_dropout_gradient_finite_differences():
    rs = np.random.default_rng(15)
    layer = layers.LSTM(3, dropout=0.4, seed=2)
    model = fnn.Sequential([layer])
    model.build((None, 4, 5))
    _randomize(model, rs)
    x = rs.standard_normal((3, 4, 5)).astype(np.float32)
    dy = rs.standard_normal((3, 3)).astype(np.float32)
    layer.forward(x, training=True)
    dx = layer.backward(dy)
    assert np.any(layer._scale == 0)
    eps = 1e-2
    num = np.zeros(x.size)
    for c in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.reshape(-1)[c] += eps
        xm.reshape(-1)[c] -= eps
        num[c] = (np.sum(layer.forward(xp, training=True) * dy, dtype=np.float64)
                  - np.sum(layer.forward(xm, training=True) * dy, dtype=np.float64)) / (2 * eps)
    assert np.abs(num - dx.reshape(-1)).max() <= 2e-2 * max(np.abs(num).max(), 1e-3)


# ------------------------------------------------------------ return_state, arguments
def test_return_state_in_sequential_raises():
    with pytest.raises(ValueError, match="return_state"):
        fnn.Sequential([layers.LSTM(3, return_state=True, input_shape=(4, 2))])
    with pytest.raises(ValueError, match="return_state"):
        layers.Bidirectional(layers.GRU(3, return_state=True))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_return_state_standalone(kind):
    rs = np.random.default_rng(16)
    layer = RNN_CLASSES[kind](4, return_sequences=True, return_state=True)
    x = rs.standard_normal((3, 5, 2)).astype(np.float32)
    out = layer(x)
    assert len(out) == (3 if kind == "lstm" else 2)
    ws = [rs.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(ws)
    h0 = rs.standard_normal((3, 4)).astype(np.float32)
    c0 = rs.standard_normal((3, 4)).astype(np.float32)
    init = [h0, c0] if kind == "lstm" else [h0]
    out = layer(x, initial_state=init)
    fn = {"lstm": np_lstm, "gru": np_gru, "rnn": np_rnn}[kind]
    ref = fn(x, *ws, *init)
    for a, b in zip(out, ref):
        _compare(a, b)
    # gradients of the initial state through the standalone backward
    layer(x, initial_state=init, training=True)
    dy = rs.standard_normal((3, 5, 4)).astype(np.float32)
    layer.backward(dy)
    dh0 = layer.initial_state_grads[0]
    eps = 1e-2
    num = np.zeros(h0.size)
    for c in range(h0.size):
        hp, hm = h0.copy(), h0.copy()
        hp.reshape(-1)[c] += eps
        hm.reshape(-1)[c] -= eps
        fp = np.sum(layer(x, initial_state=[hp] + init[1:])[0] * dy, dtype=np.float64)
        fm = np.sum(layer(x, initial_state=[hm] + init[1:])[0] * dy, dtype=np.float64)
        num[c] = (fp - fm) / (2 * eps)
    assert np.abs(num - dh0.reshape(-1)).max() <= 2e-2 * max(np.abs(num).max(), 1e-3)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: layers.LSTM(0), ValueError, "units"),
    (lambda: layers.LSTM(-2), ValueError, "units"),
    (lambda: layers.GRU(2.5), TypeError, "units"),
    (lambda: layers.LSTM(4, activation="relu"), ValueError, "activation"),
    (lambda: layers.LSTM(4, recurrent_activation="hard_sigmoid"), ValueError, "recurrent_activation"),
    (lambda: layers.SimpleRNN(4, activation="sigmoid"), ValueError, "activation"),
    (lambda: layers.GRU(4, reset_after=False), ValueError, "reset_after"),
    (lambda: layers.LSTM(4, dropout=1.0), ValueError, "dropout"),
    (lambda: layers.LSTM(4, dropout=-0.1), ValueError, "dropout"),
    (lambda: layers.LSTM(4, recurrent_dropout=0.2), ValueError, "recurrent_dropout"),
    (lambda: layers.LSTM(4, stateful=True), ValueError, "stateful"),
    (lambda: layers.LSTM(4, kernel_initializer="nope"), ValueError, "initializer"),
    (lambda: layers.LSTM(4, bogus=1), TypeError, "bogus"),
    (lambda: layers.Bidirectional(layers.Dense(3)), TypeError, "layer"),
    (lambda: layers.Bidirectional(layers.LSTM(3), merge_mode="max"), ValueError, "merge_mode"),
])
def test_constructor_checks(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.skipif(not hasattr(fnn.models, "_uses_dropout_stream"),
                    reason="needs models.py to hand epoch/sample_offset to the recurrent layers "
                           "(the _uses_dropout_stream patch)")
def test_dropout_keys_set_by_fit_and_exact_resume(tmp_path):
    """fit hands the recurrent layers (and Bidirectional) the epoch and the sample offset
    of each batch, as it does for Dropout, and save/load keeps their mask streams, so a
    resumed run equals an uninterrupted one bitwise."""
    rs = np.random.default_rng(17)
    x = rs.standard_normal((24, 5, 3)).astype(np.float32)
    y = rs.standard_normal((24, 1)).astype(np.float32)

    def make():
        fnn.set_seed(21)
        m = fnn.Sequential([layers.Bidirectional(layers.GRU(4, dropout=0.3, return_sequences=True),
                                                 input_shape=(5, 3)),
                            layers.LSTM(3, dropout=0.2), layers.Dense(1)])
        m.compile(optimizer=optimizers.Adam(1e-2), loss="mse")
        return m

    model = make()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for layer in (model.layers[0].forward_layer, model.layers[0].backward_layer, model.layers[1]):
        assert layer.epoch == 1 and layer.sample_offset == 16 and layer.stream_seed != 0
    assert model.layers[0].forward_layer.stream_seed != model.layers[0].backward_layer.stream_seed
    model.save(tmp_path / "m.fnn")
    loaded = fnn.models.load(tmp_path / "m.fnn")
    model.fit(x, y, batch_size=8, epochs=3, initial_epoch=2, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=3, initial_epoch=2, verbose=0)
    straight = make()
    straight.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    straight.fit(x, y, batch_size=8, epochs=3, initial_epoch=2, verbose=0)
    for a, b, c in zip(model.get_weights(), loaded.get_weights(), straight.get_weights()):
        same_bits(a, b, "resumed (original) vs resumed (loaded)")
        same_bits(a, c, "resumed vs uninterrupted")
