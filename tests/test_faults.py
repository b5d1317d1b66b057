"""Training and saving faults: a NaN/Inf loss with the last good weights restored
(TerminateOnNaN(restore_last_good=True)), ModelCheckpoint(save_best_only) on validation
metrics in a real fit, a save killed or failing mid-write leaving the old file intact,
and the archive's format version checked on load."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastnn as fnn
from fastnn import callbacks, layers, optimizers
from helpers import same_bits


def cnn(seed=0, optimizer="adam"):
    fnn.set_seed(seed)
    m = fnn.Sequential([
        layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
        layers.BatchNormalization(),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def blobs(n=80, seed=0):
    rs = np.random.default_rng(seed)
    y = rs.integers(0, 3, n).astype(np.uint8)
    x = rs.uniform(0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 1 + 2 * c:3 + 2 * c, 1 + 2 * c:3 + 2 * c] += 0.7
    return x, y


# ------------------------------------------------------------------ NaN / Inf loss
@pytest.mark.parametrize("raise_error", [False, True])
def test_nan_in_data_restores_the_weights_from_before_the_bad_batch(raise_error):
    x, y = blobs(80)
    bs, bad_batch = 8, 5
    x_bad = x.copy()
    x_bad[bad_batch * bs + 3, 2, 2, 0] = np.nan
    model = cnn()
    cb = callbacks.TerminateOnNaN(raise_error=raise_error, restore_last_good=True)
    if raise_error:
        with pytest.raises(RuntimeError, match="Restored the last good weights"):
            model.fit(x_bad, y, batch_size=bs, epochs=3, shuffle=False, verbose=0, callbacks=[cb])
    else:
        model.fit(x_bad, y, batch_size=bs, epochs=3, shuffle=False, verbose=0, callbacks=[cb])
    assert cb.restored
    # the same model trained on exactly the batches before the bad one
    ref = cnn()
    ref.fit(x[:bad_batch * bs], y[:bad_batch * bs], batch_size=bs, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), ref.get_weights()):   # incl. batch-norm moving statistics
        same_bits(a, b, "weights")
    sa, sb = model.optimizer.get_state(), ref.optimizer.get_state()
    assert int(sa["iterations"]) == int(sb["iterations"]) == bad_batch
    for k in sb:
        same_bits(sa[k], sb[k], f"optimizer {k}")
    assert np.all(np.isfinite(model.predict(x)))
    model.fit(x, y, batch_size=bs, epochs=1, verbose=0)     # still trainable
    assert np.all(np.isfinite(model.predict(x)))


def test_diverging_learning_rate_keeps_finite_weights():
    x, y = blobs(80)
    model = cnn(optimizer=optimizers.SGD(learning_rate=1e25))
    cb = callbacks.TerminateOnNaN(restore_last_good=True)
    h = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[cb])
    assert len(h.history["loss"]) == 1 and not np.isfinite(h.history["loss"][0])
    assert cb.restored
    for w in model.get_weights():
        assert np.all(np.isfinite(w))
    assert all(np.all(np.isfinite(v)) for v in model.optimizer.get_state().values())
    # without the option the weights are left as the bad batch made them
    model2 = cnn(optimizer=optimizers.SGD(learning_rate=1e25))
    model2.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert not all(np.all(np.isfinite(w)) for w in model2.get_weights())


def test_terminate_on_nan_argument_defaults():
    cb = callbacks.TerminateOnNaN()
    assert cb.restore_last_good is False and cb.raise_error is False


# ------------------------------------------------------------------ ModelCheckpoint(save_best_only)
class _Weights(callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.per_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append([w.copy() for w in self.model.get_weights()])


@pytest.mark.parametrize("monitor,best", [("val_loss", np.argmin), ("val_accuracy", np.argmax)])
def test_checkpoint_save_best_only_keeps_the_best_validation_epoch(tmp_path, monitor, best):
    x, y = blobs(120)
    model = cnn(optimizer=optimizers.SGD(learning_rate=0.2, momentum=0.9))
    path = tmp_path / "best.fnn"
    rec = _Weights()
    ck = callbacks.ModelCheckpoint(path, monitor=monitor, save_best_only=True)
    h = model.fit(x[:80], y[:80], batch_size=8, epochs=6, verbose=0, validation_data=(x[80:], y[80:]),
                  callbacks=[ck, rec])
    vals = np.array(h.history[monitor])
    k = int(best(vals))           # first occurrence: later ties are not improvements
    assert ck.best == pytest.approx(vals[k])
    loaded = fnn.models.load(path)
    for a, b in zip(loaded.get_weights(), rec.per_epoch[k]):
        same_bits(a, b, f"weights of epoch {k}")
    res = loaded.evaluate(x[80:], y[80:], return_dict=True)
    assert res[monitor.removeprefix("val_")] == pytest.approx(vals[k], rel=1e-6)


# ------------------------------------------------------------------ crash mid-save
CHILD = r"""
import os, sys, shutil, time, zipfile, numpy as np, fastnn as fnn
from fastnn import layers
path = sys.argv[1]
m = fnn.Sequential([layers.Dense(300, input_shape=(200,)), layers.Dense(3)])
m.compile("adam", "mse")
m.save(path)
shutil.copy(path, path + ".copy")
orig = zipfile.ZipFile.writestr
count = [0]
def slow_writestr(self, name, data, *a, **k):
    orig(self, name, data, *a, **k)
    count[0] += 1
    if count[0] == 2:                      # part of the new archive is on disk
        self.fp.flush()
        print("WRITING", flush=True)
        time.sleep(120)
zipfile.ZipFile.writestr = slow_writestr
m.set_weights([w + 1 for w in m.get_weights()])
m.save(path)
print("NOT KILLED", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_save_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    path = str(tmp_path / "m.fnn")
    p = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "WRITING", (line, p.stderr.read() if p.poll() is not None else "")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    with open(path, "rb") as f, open(path + ".copy", "rb") as g:
        assert f.read() == g.read(), "the target was touched by the interrupted save"
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".fastnn-")]
    assert len(leftovers) == 1, os.listdir(tmp_path)   # the partial temporary file, never the target
    m = fnn.models.load(path)
    assert m.get_weights()[0].shape == (200, 300)
    with pytest.raises(ValueError):
        fnn.models.load(str(tmp_path / leftovers[0]))   # the partial archive is refused, not half-loaded


def test_save_failing_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.fnn"
    model = cnn()
    model.save(path)
    before = path.read_bytes()
    orig = zipfile.ZipFile.writestr
    calls = [0]

    def failing(self, name, data, *a, **k):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(28, "No space left on device")
        return orig(self, name, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    model.set_weights([w + 1 for w in model.get_weights()])
    with pytest.raises(OSError, match="No space"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.fnn"], "the temporary file is removed"
    fnn.models.load(path)


# ------------------------------------------------------------------ format version
def _with_meta(src, dst, **changes):
    with zipfile.ZipFile(src) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    meta = json.loads(members.pop("model.json"))
    meta.update(changes)
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


def test_archive_carries_format_version_and_refuses_others(tmp_path):
    good = tmp_path / "m.fnn"
    cnn().save(good)
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read("model.json"))
        assert meta["format"] == "fastnn-model" and meta["version"] == fnn.models.FORMAT_VERSION == 1
        for name, digest in meta["checksums"].items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
    fnn.models.load(_with_meta(good, tmp_path / "same.fnn"))   # the rewrite itself is fine
    for v in [2, 0, 99, "1", None, 1.5, 1.0, True]:
        with pytest.raises(ValueError, match="version"):
            fnn.models.load(_with_meta(good, tmp_path / "v.fnn", version=v))
    with pytest.raises(ValueError, match="not a fastnn model"):
        fnn.models.load(_with_meta(good, tmp_path / "f.fnn", format="keras"))
