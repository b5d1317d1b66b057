"""fastnn.callbacks on scripted log sequences with a FakeModel: ReduceLROnPlateau,
EarlyStopping, ModelCheckpoint, CSVLogger, TerminateOnNaN, History, CallbackList,
state round trips (exact resume) and progress output at each verbosity."""
import csv
import io
import os
import json
import math
import re

import numpy as np
import pytest

from fastnn import callbacks, optimizers
from fastnn.callbacks import (CallbackList, CSVLogger, EarlyStopping, History, ModelCheckpoint,
                              Progbar, ProgressLogger, ReduceLROnPlateau, TerminateOnNaN)


class FakeModel:
    """What callbacks may touch: stop_training, optimizer.learning_rate, get/set_weights,
    save/save_weights. Weights change every epoch so restores are visible."""

    def __init__(self, lr=0.1, metrics=None):
        self.stop_training = False
        self.optimizer = optimizers.SGD(learning_rate=lr)
        self.weights = [np.zeros((2, 2), np.float32), np.zeros(3, np.float32)]
        self.saved = []
        if metrics is not None:
            self.metrics = metrics

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, ws):
        self.weights = [np.array(w, copy=True) for w in ws]

    def train_epoch(self, epoch):
        self.weights = [w + (epoch + 1) for w in self.weights]

    def save(self, path):
        self.saved.append(("model", str(path)))
        with open(path, "w") as f:
            f.write("model")

    def save_weights(self, path):
        self.saved.append(("weights", str(path)))
        with open(path, "w") as f:
            f.write("weights")


def fit(cbs, model, seq, key="val_loss", steps=2, initial_epoch=0, extra=None):
    """Drive callbacks through epochs initial_epoch.. with logs[key] = seq[epoch - initial_epoch].
    Returns the epoch logs actually produced (after callbacks edited them)."""
    cl = cbs if isinstance(cbs, CallbackList) else CallbackList(
        cbs, add_history=True, model=model, verbose=0, epochs=initial_epoch + len(seq), steps=steps)
    model.stop_training = False
    cl.on_train_begin()
    out = []
    for i, value in enumerate(seq):
        epoch = initial_epoch + i
        cl.on_epoch_begin(epoch)
        for b in range(steps):
            cl.on_train_batch_begin(b)
            cl.on_train_batch_end(b, {"loss": 1.0})
        model.train_epoch(epoch)
        logs = {"loss": 1.0, key: value}
        if extra:
            logs.update(extra)
        cl.on_epoch_end(epoch, logs)
        out.append(logs)
        if model.stop_training:
            break
    cl.on_train_end()
    return out


def lrs(logs):
    return [round(l["learning_rate"], 12) for l in logs]


# ------------------------------------------------------------ ReduceLROnPlateau
def test_rlrop_patience():
    m = FakeModel(0.1)
    cb = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0)
    logs = fit([cb], m, [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.9, 0.9])
    # logs carry the rate used during the epoch; drops after epochs 3 and 6 (0-based)
    assert lrs(logs) == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    assert m.optimizer.learning_rate == pytest.approx(0.025)


def test_rlrop_cooldown():
    m = FakeModel(0.1)
    cb = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_delta=0)
    logs = fit([cb], m, [1.0] * 8)
    # drops at epochs 1, 3, 5, 7: each drop is followed by cooldown, then one epoch of waiting
    assert lrs(logs) == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]
    assert m.optimizer.learning_rate == pytest.approx(0.00625)


def test_rlrop_min_lr():
    m = FakeModel(0.1)
    cb = ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.002)
    logs = fit([cb], m, [1.0] * 6)
    assert lrs(logs) == [0.1, 0.1, 0.01, 0.002, 0.002, 0.002]
    assert cb.wait == 3  # at min_lr nothing resets the wait counter (Keras)


def test_rlrop_min_delta():
    m = FakeModel(0.1)
    cb = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.1)
    # 0.95 and 0.92 are improvements smaller than min_delta; 0.85 beats 1.0 - 0.1
    logs = fit([cb], m, [1.0, 0.95, 0.92, 0.85, 0.84, 0.83])
    assert lrs(logs) == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05]
    assert m.optimizer.learning_rate == pytest.approx(0.025)
    m2 = FakeModel(0.1)
    logs = fit([ReduceLROnPlateau(factor=0.5, patience=2)], m2, [1.0, 0.95, 0.92, 0.85])
    assert m2.optimizer.learning_rate == 0.1  # default min_delta 1e-4: all improvements


def test_rlrop_mode_max_for_accuracy():
    m = FakeModel(0.1)
    cb = ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=2)
    logs = fit([cb], m, [0.5, 0.6, 0.6, 0.6, 0.7, 0.7], key="val_accuracy")
    assert lrs(logs) == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05]
    # mode="min" on the same sequence: 0.6 is worse than 0.5, drop after epoch 2
    m = FakeModel(0.1)
    logs = fit([ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=2, mode="min")],
               m, [0.5, 0.6, 0.6, 0.6], key="val_accuracy")
    assert lrs(logs) == [0.1, 0.1, 0.1, 0.05]
    # mode="max" forced on a name without "acc"
    m = FakeModel(0.1)
    fit([ReduceLROnPlateau(monitor="f1", factor=0.5, patience=1, mode="max")], m, [0.5, 0.6, 0.55],
        key="f1")
    assert m.optimizer.learning_rate == 0.05


def test_rlrop_missing_monitor_and_verbose(capsys):
    m = FakeModel(0.1)
    with pytest.warns(UserWarning, match="val_loss"):
        logs = fit([ReduceLROnPlateau()], m, [1.0, 2.0], key="loss_only")
    assert lrs(logs) == [0.1, 0.1]
    m = FakeModel(0.1)
    fit([ReduceLROnPlateau(patience=1, factor=0.5, verbose=1)], m, [1.0, 1.0])
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05." in capsys.readouterr().out


@pytest.mark.parametrize("kw,arg", [({"factor": 1.0}, "factor"), ({"factor": -0.5}, "factor"),
                                    ({"patience": -1}, "patience"), ({"mode": "up"}, "mode"),
                                    ({"cooldown": 1.5}, "cooldown"), ({"min_lr": -1.0}, "min_lr")])
def test_rlrop_bad_args(kw, arg):
    with pytest.raises(ValueError, match=arg):
        ReduceLROnPlateau(**kw)


def test_rlrop_resume_is_exact():
    seq = [1.0, 0.9, 0.95, 0.95, 0.96, 0.8, 0.85, 0.9, 0.9, 0.91]
    kw = dict(factor=0.5, patience=2, cooldown=1)
    full = fit([ReduceLROnPlateau(**kw)], FakeModel(0.1), seq)
    for k in range(1, len(seq)):
        m = FakeModel(0.1)
        a = ReduceLROnPlateau(**kw)
        first = fit([a], m, seq[:k])
        state = json.loads(json.dumps(a.get_state()))
        b = ReduceLROnPlateau(**kw)
        b.set_state(state)
        m2 = FakeModel(m.optimizer.learning_rate)
        second = fit([b], m2, seq[k:], initial_epoch=k)
        assert lrs(first + second) == lrs(full), k


# ------------------------------------------------------------ EarlyStopping
def test_early_stopping_patience():
    m = FakeModel()
    cb = EarlyStopping(patience=2)
    logs = fit([cb], m, [1.0, 0.8, 0.9, 0.85, 0.7, 0.6])
    assert len(logs) == 4 and cb.stopped_epoch == 3 and m.stop_training
    m = FakeModel()
    cb = EarlyStopping()  # patience 0: the first non-improvement stops
    logs = fit([cb], m, [1.0, 0.9, 1.1, 0.5])
    assert len(logs) == 3 and cb.stopped_epoch == 2


def test_early_stopping_min_delta_and_mode():
    m = FakeModel()
    cb = EarlyStopping(min_delta=0.15, patience=1)
    logs = fit([cb], m, [1.0, 0.9, 0.8])
    assert len(logs) == 2
    m = FakeModel()
    cb = EarlyStopping(monitor="val_accuracy", patience=1)  # auto -> max
    logs = fit([cb], m, [0.5, 0.6, 0.7, 0.65, 0.9], key="val_accuracy")
    assert len(logs) == 4 and cb.best == 0.7
    m = FakeModel()
    cb = EarlyStopping(monitor="val_accuracy", patience=1, mode="min")
    logs = fit([cb], m, [0.5, 0.6, 0.7], key="val_accuracy")
    assert len(logs) == 2


def test_early_stopping_auto_direction_from_model_metrics():
    def f1(y_true, y_pred):
        return 0.0
    f1.direction = "up"
    m = FakeModel(metrics=[f1])
    logs = fit([EarlyStopping(monitor="val_f1", patience=1)], m, [0.1, 0.2, 0.3, 0.25], key="val_f1")
    assert len(logs) == 4
    with pytest.raises(ValueError, match="mode"):
        fit([EarlyStopping(monitor="val_f1")], FakeModel(), [0.1], key="val_f1")
    logs = fit([EarlyStopping(monitor="val_mae", patience=0)], FakeModel(), [0.3, 0.2, 0.25],
               key="val_mae")
    assert len(logs) == 3


def test_early_stopping_restore_best_weights():
    m = FakeModel()
    cb = EarlyStopping(patience=2, restore_best_weights=True)
    logs = fit([cb], m, [1.0, 0.5, 0.7, 0.8, 0.2])
    assert len(logs) == 4 and cb.best_epoch == 1
    # weights after epoch e hold 1 + 2 + ... + (e + 1); best epoch 1 -> 3
    assert all(np.all(w == 3) for w in m.weights)
    # Keras 3 restores the best weights even when training did not stop early
    m = FakeModel()
    cb = EarlyStopping(patience=5, restore_best_weights=True)
    fit([cb], m, [1.0, 0.4, 0.6])
    assert cb.stopped_epoch == 0 and all(np.all(w == 3) for w in m.weights)
    # without restore_best_weights the last weights stay
    m = FakeModel()
    fit([EarlyStopping(patience=2)], m, [1.0, 0.5, 0.7, 0.8])
    assert all(np.all(w == 10) for w in m.weights)


def test_early_stopping_baseline_and_start_from_epoch():
    m = FakeModel()
    cb = EarlyStopping(baseline=0.5, patience=2)
    logs = fit([cb], m, [0.9, 0.8, 0.7, 0.6, 0.55])
    assert len(logs) == 5  # improving every epoch: never stops, although above baseline
    m = FakeModel()
    cb = EarlyStopping(baseline=0.5, patience=2)
    logs = fit([cb], m, [0.9, 0.95, 0.97])
    assert len(logs) == 2  # the first epoch did not beat the baseline, so wait was not reset
    m = FakeModel()
    cb = EarlyStopping(patience=1, start_from_epoch=2)
    logs = fit([cb], m, [1.0, 2.0, 3.0, 0.5, 0.6, 0.7])
    assert len(logs) == 5 and cb.best == 0.5


def test_early_stopping_instance_reuse_and_verbose(capsys):
    cb = EarlyStopping(patience=0, verbose=1, restore_best_weights=True)
    fit([cb], FakeModel(), [1.0, 2.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out and "best epoch: 1" in out
    logs = fit([cb], FakeModel(), [5.0, 4.0, 3.0])  # on_train_begin resets the state
    assert len(logs) == 3 and cb.best == 3.0


def test_early_stopping_resume_is_exact():
    seq = [1.0, 0.5, 0.7, 0.6, 0.4, 0.45, 0.5, 0.55, 0.3]
    kw = dict(patience=3, restore_best_weights=True)
    mu = FakeModel()
    full = fit([EarlyStopping(**kw)], mu, seq)
    for k in range(1, len(full)):
        m = FakeModel()
        a = EarlyStopping(**kw)
        fit([a], m, seq[:k])
        state = json.loads(json.dumps(a.get_state()))
        arrays = a.get_state_arrays()
        assert all(isinstance(v, np.ndarray) for v in arrays.values())
        b = EarlyStopping(**kw)
        b.set_state(state, arrays)
        # `a` restored its best weights at the end of its fit: put back the weights the
        # uninterrupted run had after epoch k-1 (1 + 2 + ... + k)
        m.weights = [np.full_like(w, k * (k + 1) / 2) for w in m.weights]
        second = fit([b], m, seq[k:], initial_epoch=k)
        assert len(second) == len(full) - k, k
        for w, wu in zip(m.weights, mu.weights):
            np.testing.assert_array_equal(w, wu)


def test_early_stopping_state_checks():
    cb = EarlyStopping(restore_best_weights=True)
    st = cb.get_state()
    assert cb.get_state_arrays() == {}
    cb.set_state(st)
    with pytest.raises(ValueError, match="best"):
        cb.set_state({"wait": 0})
    st = dict(st, has_best_weights=True)
    with pytest.raises(ValueError, match="best weights"):
        cb.set_state(st, {})
    with pytest.raises(ValueError, match="numbered"):
        cb.set_state(st, {"best_weights/1": np.zeros(2)})
    with pytest.warns(RuntimeWarning, match="best weights"):
        cb.set_state(st)  # a caller that does not pass arrays: warn, keep going
    assert cb.best_weights is None


# ------------------------------------------------------------ ModelCheckpoint
def test_checkpoint_every_epoch_with_formatted_names(tmp_path):
    m = FakeModel()
    path = tmp_path / "ck-{epoch:02d}-{val_loss:.2f}.fnn"
    fit([ModelCheckpoint(path)], m, [0.5, 0.25, 0.75])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ck-01-0.50.fnn", "ck-02-0.25.fnn", "ck-03-0.75.fnn"]
    assert [k for k, _ in m.saved] == ["model"] * 3


def test_checkpoint_save_best_only(tmp_path):
    m = FakeModel()
    path = tmp_path / "best-{epoch}.fnn"
    fit([ModelCheckpoint(path, save_best_only=True)], m, [0.5, 0.6, 0.4, 0.4, 0.3])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-1.fnn", "best-3.fnn", "best-5.fnn"]
    m = FakeModel()
    cb = ModelCheckpoint(tmp_path / "acc.fnn", monitor="val_accuracy", save_best_only=True,
                         save_weights_only=True)
    fit([cb], m, [0.5, 0.4, 0.6, 0.55], key="val_accuracy")
    assert m.saved == [("weights", str(tmp_path / "acc.fnn"))] * 2 and cb.best == 0.6
    m = FakeModel()
    fit([ModelCheckpoint(tmp_path / "x.fnn", save_best_only=True, mode="max")], m, [0.5, 0.4, 0.6])
    assert len(m.saved) == 2


def test_checkpoint_batches_dirs_and_errors(tmp_path):
    m = FakeModel()
    cb = ModelCheckpoint(tmp_path / "sub" / "dir" / "e{epoch}b{batch}.fnn", save_freq=3)
    fit([cb], m, [1.0, 1.0, 1.0], steps=2)  # 6 batches in all -> saves after batches 3 and 6
    assert sorted(p.name for p in (tmp_path / "sub" / "dir").iterdir()) == ["e2b1.fnn", "e3b2.fnn"]
    with pytest.raises(KeyError, match="val_acc"):
        fit([ModelCheckpoint(tmp_path / "{val_acc}.fnn")], FakeModel(), [1.0])
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "a", save_freq=0)
    with pytest.raises(ValueError, match="mode"):
        ModelCheckpoint(tmp_path / "a", mode="best")


def test_checkpoint_state_round_trip(tmp_path):
    seq = [0.5, 0.6, 0.4, 0.45, 0.3]
    mu = FakeModel()
    fit([ModelCheckpoint(tmp_path / "u{epoch}", save_best_only=True)], mu, seq)
    a = ModelCheckpoint(tmp_path / "r{epoch}", save_best_only=True)
    m = FakeModel()
    fit([a], m, seq[:3])
    b = ModelCheckpoint(tmp_path / "r{epoch}", save_best_only=True)
    b.set_state(json.loads(json.dumps(a.get_state())))
    fit([b], m, seq[3:], initial_epoch=3)
    assert [os.path.basename(p)[1:] for _, p in m.saved] == [os.path.basename(p)[1:] for _, p in mu.saved]
    assert len(m.saved) == 3


# ------------------------------------------------------------ CSVLogger
def test_csv_logger(tmp_path):
    f = tmp_path / "log.csv"
    m = FakeModel()
    cl = CallbackList([CSVLogger(f)], model=m)
    cl.on_train_begin()
    rows = [{"loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75},
            {"loss": 0.25, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.85}]
    for e, logs in enumerate(rows):
        cl.on_epoch_end(e, dict(logs))
        with open(f) as fh:  # flushed every epoch
            assert len(fh.read().splitlines()) == e + 2
    cl.on_train_end()
    with open(f, newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    for e, logs in enumerate(rows):
        assert int(got[e + 1][0]) == e
        assert [float(x) for x in got[e + 1][1:]] == [logs[k] for k in got[0][1:]]
    # append: no second header; a missing key is written as NA
    cl = CallbackList([CSVLogger(f, separator=";", append=True)], model=m)
    cl.on_train_begin()
    cl.on_epoch_end(2, {"accuracy": 0.95, "loss": 0.1})
    cl.on_train_end()
    lines = open(f).read().splitlines()
    assert len(lines) == 4 and lines[3] == "2;0.95;0.1"
    # overwrite mode starts again
    fit([CSVLogger(f)], FakeModel(), [0.3])
    lines = open(f).read().splitlines()
    assert lines == ["epoch,loss,val_loss", "0,1.0,0.3"]
    with pytest.raises(ValueError, match="separator"):
        CSVLogger(f, separator="::")


# ------------------------------------------------------------ TerminateOnNaN
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_terminate_on_nan(bad, capsys):
    m = FakeModel()
    cl = CallbackList([TerminateOnNaN()], model=m)
    cl.on_train_begin()
    cl.on_train_batch_end(0, {"loss": 0.5})
    assert not m.stop_training
    cl.on_train_batch_end(1, {"loss": bad})
    assert m.stop_training
    assert "Batch 1: Invalid loss" in capsys.readouterr().out
    m = FakeModel()
    cl = CallbackList([TerminateOnNaN(raise_error=True)], model=m)
    with pytest.raises(RuntimeError, match="batch 3"):
        cl.on_train_batch_end(3, {"loss": bad})


# ------------------------------------------------------------ History / CallbackList
def test_history_and_callback_list_order():
    m = FakeModel(0.1)
    order = []

    class Spy(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            order.append(("spy", dict(logs)))

    rl = ReduceLROnPlateau(patience=1, factor=0.5)
    cl = CallbackList([rl, Spy()], add_history=True, add_progbar=True, model=m, verbose=0,
                      epochs=3, steps=2)
    assert isinstance(cl.callbacks[2], History) and isinstance(cl.callbacks[3], ProgressLogger)
    assert cl.history is cl.callbacks[2] and m.history is cl.history
    assert all(c.model is m for c in cl.callbacks)
    assert cl.callbacks[3].params == {"verbose": 0, "epochs": 3, "steps": 2}
    fit(cl, m, [1.0, 1.0, 1.0])
    h = cl.history
    assert h.epoch == [0, 1, 2]
    assert h.history["val_loss"] == [1.0, 1.0, 1.0]
    assert h.history["learning_rate"] == [0.1, 0.1, 0.05]  # recorded after ReduceLROnPlateau
    assert "learning_rate" in order[0][1]
    h2 = History()
    cl2 = CallbackList([h2], add_history=True)
    assert cl2.history is h2 and len(cl2) == 1
    with pytest.raises(TypeError, match="callbacks\\[0\\]"):
        CallbackList([object()])


def test_callback_list_state_helpers():
    es = EarlyStopping(restore_best_weights=True)
    cl = CallbackList([ReduceLROnPlateau(), es, TerminateOnNaN()], add_history=True,
                      model=FakeModel())
    fit(cl, cl.model, [1.0, 0.5])
    st = cl.get_state()
    json.dumps(st)
    assert [s["class_name"] for s in st] == ["ReduceLROnPlateau", "EarlyStopping", "TerminateOnNaN",
                                             "History"]
    arrays = cl.get_state_arrays()
    assert sorted(arrays) == ["1/best_weights/0", "1/best_weights/1"]
    with pytest.raises(ValueError):
        TerminateOnNaN().set_state({"x": 1})


def test_state_is_strict_json():
    cb = ReduceLROnPlateau()
    st = cb.get_state()
    assert st["best"] == "inf"
    json.dumps(st, allow_nan=False)
    cb2 = ReduceLROnPlateau()
    cb2.set_state(st)
    assert cb2.best == math.inf
    es = EarlyStopping()
    json.dumps(es.get_state(), allow_nan=False)


# ------------------------------------------------------------ progress output
class TTY(io.StringIO):
    def isatty(self):
        return True


EPOCH_LOGS = {"accuracy": 0.96125, "loss": 0.12345, "val_accuracy": 0.95, "val_loss": 0.00012,
              "learning_rate": 0.001}


def run_progress(verbose, stream, epochs=2, steps=5):
    cl = CallbackList([ProgressLogger(stream=stream)], verbose=verbose, epochs=epochs, steps=steps)
    cl.on_train_begin()
    for e in range(epochs):
        cl.on_epoch_begin(e)
        for b in range(steps):
            cl.on_train_batch_end(b, {"loss": 0.5 / (b + 1), "accuracy": 0.5})
        cl.on_test_begin()  # validation inside fit is silent
        cl.on_test_batch_end(0, {"loss": 9.0})
        cl.on_test_end({"loss": 9.0})
        cl.on_epoch_end(e, dict(EPOCH_LOGS))
    cl.on_train_end()
    return stream.getvalue()


SUMMARY1 = (r"5/5 - \d+s \d+(us|ms|s)/step - accuracy: 0\.9613 - loss: 0\.1235 - "
            r"val_accuracy: 0\.9500 - val_loss: 1\.2000e-04 - learning_rate: 0\.0010")


def test_progress_verbose1_not_tty():
    out = run_progress(1, io.StringIO())
    lines = out.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[4] == ""
    assert re.fullmatch(SUMMARY1, lines[1]) and re.fullmatch(SUMMARY1, lines[3])
    assert "\r" not in out and "ETA" not in out and "9.0" not in out


def test_progress_verbose1_tty():
    out = run_progress(1, TTY(), epochs=1)
    assert not out.startswith("Epoch")  # Keras prints the header only when epochs > 1
    assert out.startswith("\r1/5 [=====>........................] - ETA: ")
    assert "loss: 0.5000 - accuracy: 0.5000" in out
    final = out.split("\r")[-1]
    assert final.endswith("\n") and re.fullmatch(SUMMARY1, final.rstrip(" \n"))
    # the in-place redraw is rate limited (interval 0.1 s): one draw, then the summary
    assert out.count("\r") == 2


def test_progbar_redraws_and_bar():
    s = TTY()
    bar = Progbar(4, verbose=1, stream=s, interval=0.0)
    for i in range(1, 5):
        bar.update(i, {"loss": 1.0 / i})
    bar.update(4, {"loss": 0.25}, finalize=True)
    draws = s.getvalue().split("\r")[1:]
    assert len(draws) == 5
    assert draws[1].startswith("2/4 [==============>...............] - ETA: ")
    assert draws[3].startswith("4/4 [==============================]")
    assert re.fullmatch(r"4/4 - \d+s \d+(us|ms|s)/step - loss: 0\.2500 *\n", draws[4])
    s = io.StringIO()
    bar = Progbar(None, verbose=1, stream=s)
    bar.update(3, [("loss", 2.5)])
    bar.update(7, [("loss", 2.0)], finalize=True)
    assert re.fullmatch(r"      7/Unknown - \d+s \d+(us|ms|s)/step - loss: 2\.0000\n", s.getvalue())


def test_progress_verbose2():
    out = run_progress(2, TTY())
    summary2 = SUMMARY1.replace(r"\d+s \d+", r"\d+s - \d+")
    lines = out.split("\n")
    assert lines[0] == "Epoch 1/2" and re.fullmatch(summary2, lines[1]), out
    assert lines[2] == "Epoch 2/2" and re.fullmatch(summary2, lines[3])
    assert len(lines) == 5 and "\r" not in out


def test_progress_verbose0():
    assert run_progress(0, TTY()) == ""
    # add_progbar is what the model does for verbose != 0
    cl = CallbackList([], add_progbar=False, verbose=0)
    assert cl.progbar is None


def test_progress_evaluate_and_predict():
    s = io.StringIO()
    cl = CallbackList([], add_progbar=True, stream=s, verbose=1, steps=3)
    cl.on_test_begin()
    for b in range(3):
        cl.on_test_batch_end(b, {"loss": 0.5})
    cl.on_test_end({"accuracy": 0.5, "loss": 0.25})
    assert re.fullmatch(r"3/3 - \d+s \d+(us|ms|s)/step - accuracy: 0\.5000 - loss: 0\.2500\n",
                        s.getvalue())
    s.truncate(0)
    s.seek(0)
    cl.on_predict_begin()
    for b in range(3):
        cl.on_predict_batch_end(b, {"outputs": None})
    cl.on_predict_end()
    assert re.fullmatch(r"3/3 - \d+s \d+(us|ms|s)/step\n", s.getvalue())


def test_progress_logger_args():
    with pytest.raises(ValueError, match="verbose"):
        ProgressLogger(verbose=3)
    assert callbacks.ProgbarLogger is ProgressLogger
