"""Keras-3-shaped training callbacks.

The model drives a ``CallbackList``::

    cbs = callbacks.CallbackList(user_callbacks, add_history=True, add_progbar=verbose != 0,
                                 model=model, verbose=verbose, epochs=epochs, steps=steps)
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        for step in range(steps):
            cbs.on_train_batch_begin(step)
            ...
            cbs.on_train_batch_end(step, {"loss": running_mean_loss, "accuracy": ...})
        logs = {"loss": ..., "accuracy": ..., "val_loss": ..., "val_accuracy": ...}
        cbs.on_epoch_end(epoch, logs)          # callbacks may add logs["learning_rate"]
        if model.stop_training: break
    cbs.on_train_end(logs)
    history = cbs.history                     # the History callback

What a callback may use on the model: ``model.stop_training`` (bool attribute),
``model.optimizer.learning_rate`` (float, settable), ``model.get_weights()`` /
``model.set_weights(list)``, ``model.save(path)``, ``model.save_weights(path)``;
optionally ``model.metrics`` (callables whose ``__name__``/``direction`` tell
EarlyStopping/ModelCheckpoint which way a metric improves) and
``model.metrics_names`` (CSVLogger adds missing ``val_`` columns).

Decisions:

- Semantics follow Keras 3 (ReduceLROnPlateau, EarlyStopping, ModelCheckpoint,
  CSVLogger, TerminateOnNaN, History). Callbacks given by the user run first, then
  History, then the progress logger (Keras' order), so History records
  ``learning_rate`` when ReduceLROnPlateau wrote it. To have ``learning_rate`` in
  every History (DESIGN.md), the model should put it in the epoch logs itself.
- Batch logs (``on_train_batch_end``) hold the running means since the start of
  the epoch (Keras 3); the progress bar shows them as given, without averaging.
- mode="auto": ReduceLROnPlateau uses Keras' rule (max when "acc" is in the monitor
  name, else min). EarlyStopping and ModelCheckpoint use Keras 3's rule: "loss" and
  "val_loss" are minimised; otherwise the direction of the model's metric of that
  name (``direction`` attribute: "up"/"down"), else a name table (accuracy/acc -> max;
  mae/mse/rmse/*_error/*loss/*crossentropy -> min); an unknown name raises
  ValueError at the first epoch end (pass mode="min"/"max").
- An unknown ``mode`` raises ValueError at construction (Keras only warns).
- Messages of verbose callbacks go to ``sys.stdout`` (like Keras' print_msg).
- ModelCheckpoint does not require a file extension (fastnn saves its own archive);
  the path is ``filepath.format(epoch=epoch + 1, **logs)``; parent directories are
  created. It calls ``model.save(path)`` or ``model.save_weights(path)``.
- CSVLogger: columns "epoch" then the sorted log keys of the first epoch (Keras);
  rows end with "\\n" (Keras' csv dialect writes "\\r\\n"); flushed every epoch.
- State for an exact resume: every callback has ``get_state() -> dict`` (strict JSON:
  non-finite floats are stored as the strings "inf", "-inf", "nan"),
  ``get_state_arrays() -> {name: ndarray}`` (EarlyStopping's best weights as
  "best_weights/0", "best_weights/1", ...; {} for the others) and
  ``set_state(state, arrays=None)`` (EarlyStopping given a state that kept best weights
  but ``arrays=None`` warns and drops them). A restored callback keeps its restored state
  through the next ``on_train_begin`` (which otherwise resets it, as Keras does), so
  ``set_state`` may be called before or after ``on_train_begin``.
- Progress output (``ProgressLogger`` / ``Progbar``): verbose=1 on a TTY redraws one
  line with '\\r' at most every 0.1 s (``step/steps [=====>....] - ETA: 4s - loss: ...``)
  and ends with the epoch summary ``step/steps - 12s 140ms/step - accuracy: ... -
  loss: ... - val_...``; on a non-TTY stream only the summary is printed. verbose=2
  prints ``step/steps - 12s - 140ms/step - ...`` once per epoch. The ``Epoch 3/8``
  header is printed before each epoch when epochs > 1 (Keras 3). Values print as
  ``%.4f`` (``%.4e`` when |v| < 1e-3 and v != 0). verbose=0 prints nothing.
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings

import numpy as np

__all__ = [
    "Callback", "CallbackList", "History", "ReduceLROnPlateau", "EarlyStopping",
    "ModelCheckpoint", "CSVLogger", "TerminateOnNaN", "LearningRateWarmup", "ProgressLogger",
    "ProgbarLogger", "Progbar",
]


# ------------------------------------------------------------------ helpers
def _enc(x):
    """A float (or None) as strict-JSON-able: non-finite -> 'inf' / '-inf' / 'nan'."""
    if x is None:
        return None
    v = float(x)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _dec(x):
    return None if x is None else float(x)


def _int_arg(value, name, minimum=0):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _float_arg(value, name, minimum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    v = float(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value!r}")
    return v


def _check_mode(mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
    return mode


_UP_NAMES = ("accuracy", "acc")
_DOWN_SUFFIXES = ("loss", "error", "crossentropy", "mae", "mse", "rmse", "mape", "msle")


def _auto_direction(monitor, model):
    """'min' or 'max' for mode='auto' (Keras 3 MonitorCallback rule, see module doc)."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss":
        return "min"
    for m in getattr(model, "metrics", None) or []:
        mname = getattr(m, "name", None) or getattr(m, "__name__", None)
        d = getattr(m, "direction", None) or getattr(m, "_direction", None)
        if mname == name and d in ("up", "down"):
            return "max" if d == "up" else "min"
    low = name.lower()
    if low in _UP_NAMES or low.endswith("accuracy") or low.endswith("_acc"):
        return "max"
    if low.endswith(_DOWN_SUFFIXES):
        return "min"
    raise ValueError(f"monitor={monitor!r}: cannot tell whether it should be maximized or "
                     "minimized; pass mode='max' or mode='min'")


def _as_float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------ base
class Callback:
    """Base class: every hook is a no-op. ``model`` and ``params`` are set by the
    model (``set_model``/``set_params``) before training."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params) if params else {}

    # batch hooks: the train variants call the legacy on_batch_* (as Keras does)
    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    # state for save / exact resume
    def get_state(self) -> dict:
        """JSON-able state (empty for stateless callbacks)."""
        return {}

    def get_state_arrays(self) -> dict:
        """{name: ndarray} state that is not JSON (empty unless overridden)."""
        return {}

    def set_state(self, state, arrays=None):
        """Restore what ``get_state``/``get_state_arrays`` returned."""
        if state:
            raise ValueError(f"{type(self).__name__} has no state; got keys {sorted(state)}")


class _Stateful(Callback):
    """Callbacks whose state survives the next on_train_begin after set_state."""

    _state_keys = ()

    def __init__(self):
        super().__init__()
        self._restored = False

    def _take_restored(self):
        r = self._restored
        self._restored = False
        return r

    def _check_state(self, state):
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict, got {type(state).__name__}")
        missing = [k for k in self._state_keys if k not in state]
        if missing:
            raise ValueError(f"state: {type(self).__name__} state lacks {missing}")


# ------------------------------------------------------------------ History
class History(Callback):
    """Records the epoch logs: ``history`` {key: [value per epoch]}, ``epoch`` [indices]."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            try:
                self.model.history = self
            except AttributeError:
                pass


# ------------------------------------------------------------------ ReduceLROnPlateau
class ReduceLROnPlateau(_Stateful):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without an
    improvement of ``monitor`` by more than ``min_delta`` (Keras 3 semantics)."""

    _state_keys = ("wait", "cooldown_counter", "best")

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        if not isinstance(monitor, str):
            raise ValueError(f"monitor: expected a string, got {monitor!r}")
        self.monitor = monitor
        factor = _float_arg(factor, "factor", 0.0)
        if factor >= 1.0:
            raise ValueError(f"factor: ReduceLROnPlateau does not support a factor >= 1.0, "
                             f"got {factor!r}")
        self.factor = factor
        self.patience = _int_arg(patience, "patience")
        self.verbose = _int_arg(verbose, "verbose")
        self.mode = _check_mode(mode)
        self.min_delta = _float_arg(min_delta, "min_delta")
        self.cooldown = _int_arg(cooldown, "cooldown")
        self.min_lr = _float_arg(min_lr, "min_lr", 0.0)
        self._reset()

    @property
    def _maximize(self):
        return self.mode == "max" or (self.mode == "auto" and "acc" in self.monitor)

    def _improved(self, current, best):
        if self._maximize:
            return current > best + self.min_delta
        return current < best - self.min_delta

    def _reset(self):
        self.best = -math.inf if self._maximize else math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        if not self._take_restored():
            self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = _as_float(logs.get(self.monitor))
        if current is None:
            warnings.warn(f"ReduceLROnPlateau: monitor {self.monitor!r} is not in the logs; "
                          f"available: {', '.join(logs)}", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        old_lr = float(opt.learning_rate)
        # Keras holds the rate in float32: compare at that precision.
        if np.float32(old_lr) > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            opt.learning_rate = new_lr
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def get_state(self):
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter,
                "best": _enc(self.best)}

    def set_state(self, state, arrays=None):
        self._check_state(state)
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.best = _dec(state["best"])
        self._restored = True


# ------------------------------------------------------------------ monitor base
class _MonitorCallback(_Stateful):
    def __init__(self, monitor, mode, min_delta):
        super().__init__()
        if not isinstance(monitor, str):
            raise ValueError(f"monitor: expected a string, got {monitor!r}")
        self.monitor = monitor
        self.mode = _check_mode(mode)
        self.min_delta = abs(_float_arg(min_delta, "min_delta"))
        self.direction = None if mode == "auto" else mode  # 'min' | 'max', resolved lazily

    def _resolve_direction(self):
        if self.direction is None:
            self.direction = _auto_direction(self.monitor, self.model)
        return self.direction

    def _is_improvement(self, current, reference):
        if reference is None:
            return True
        if self._resolve_direction() == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference


# ------------------------------------------------------------------ EarlyStopping
class EarlyStopping(_MonitorCallback):
    """Stop training when ``monitor`` stops improving (Keras 3 semantics).

    ``restore_best_weights=True`` keeps a copy of the weights (``model.get_weights()``)
    of the best epoch and sets them back at the end of training, whether or not the
    training stopped early (Keras 3)."""

    _state_keys = ("wait", "stopped_epoch", "best", "best_epoch")

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = _int_arg(patience, "patience")
        self.verbose = _int_arg(verbose, "verbose")
        self.baseline = None if baseline is None else _float_arg(baseline, "baseline")
        if not isinstance(restore_best_weights, (bool, np.bool_)):
            raise ValueError(f"restore_best_weights: expected a bool, got {restore_best_weights!r}")
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _int_arg(start_from_epoch, "start_from_epoch")
        self._clear()

    def _clear(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        if not self._take_restored():
            self._clear()

    def _snapshot(self):
        return [np.array(w, copy=True) for w in self.model.get_weights()]

    def on_epoch_end(self, epoch, logs=None):
        self._resolve_direction()
        logs = logs or {}
        current = _as_float(logs.get(self.monitor))
        if current is None:
            warnings.warn(f"EarlyStopping: monitor {self.monitor!r} is not in the logs; "
                          f"available: {', '.join(logs)}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self._snapshot()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self._snapshot()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_state(self):
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": _enc(self.best),
                "best_epoch": self.best_epoch, "direction": self.direction,
                "has_best_weights": self.best_weights is not None}

    def get_state_arrays(self):
        if self.best_weights is None:
            return {}
        return {f"best_weights/{i}": np.array(w, copy=True) for i, w in enumerate(self.best_weights)}

    def set_state(self, state, arrays=None):
        self._check_state(state)
        if arrays is None and state.get("has_best_weights"):
            warnings.warn("EarlyStopping.set_state: the best weights were not passed "
                          "(get_state_arrays); restore_best_weights starts from the next epoch",
                          RuntimeWarning, stacklevel=2)
            state = dict(state, has_best_weights=False)
        arrays = arrays or {}
        n = len([k for k in arrays if k.startswith("best_weights/")])
        weights = None
        if state.get("has_best_weights", n > 0):
            try:
                weights = [np.array(arrays[f"best_weights/{i}"], copy=True) for i in range(n)]
            except KeyError as e:
                raise ValueError(f"arrays: best weights are not numbered 0..{n - 1}: missing {e}") from None
            if not weights:
                raise ValueError("arrays: the state says best weights were kept, but none were given")
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = _dec(state["best"])
        self.best_epoch = int(state["best_epoch"])
        if state.get("direction") in ("min", "max"):
            self.direction = state["direction"]
        self.best_weights = weights
        self._restored = True


# ------------------------------------------------------------------ ModelCheckpoint
class ModelCheckpoint(_MonitorCallback):
    """Save the model (``model.save``) or its weights (``model.save_weights``) every
    epoch or every ``save_freq`` batches; with ``save_best_only`` only when ``monitor``
    improved. ``filepath`` may hold ``{epoch:02d}`` and log fields like ``{val_loss:.2f}``."""

    _state_keys = ("best",)

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, 0)
        if isinstance(filepath, os.PathLike):
            filepath = os.fspath(filepath)
        if not isinstance(filepath, str) or not filepath:
            raise ValueError(f"filepath: expected a non-empty path, got {filepath!r}")
        self.filepath = filepath
        self.verbose = _int_arg(verbose, "verbose")
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch" and (isinstance(save_freq, (bool, np.bool_)) or
                                     not isinstance(save_freq, (int, np.integer)) or save_freq < 1):
            raise ValueError(f"save_freq: expected 'epoch' or an integer >= 1, got {save_freq!r}")
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.best = None if initial_value_threshold is None else _float_arg(
            initial_value_threshold, "initial_value_threshold")
        self._batches_since_save = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        if batch <= self._last_batch_seen:  # a new epoch started
            self._batches_since_save += batch + 1
        else:
            self._batches_since_save += batch - self._last_batch_seen
        self._last_batch_seen = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            self._resolve_direction()
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _path(self, epoch, batch, logs):
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as e:
            raise KeyError(f"ModelCheckpoint: cannot format filepath {self.filepath!r}: "
                           f"no value for {e} in the logs") from None

    def _should_save(self, epoch, logs, path):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {path}")
            return True
        current = _as_float((logs or {}).get(self.monitor))
        if current is None:
            warnings.warn(f"ModelCheckpoint: can save best model only with {self.monitor!r} "
                          "available; saving anyway", stacklevel=3)
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save(self, epoch, batch, logs):
        path = self._path(epoch, batch, logs)
        if not self._should_save(epoch, logs, path):
            return
        if os.path.isdir(path):
            raise IOError(f"ModelCheckpoint: filepath {path!r} is an existing directory; "
                          "give a file path")
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def get_state(self):
        return {"best": _enc(self.best), "direction": self.direction,
                "batches_since_save": self._batches_since_save,
                "last_batch_seen": self._last_batch_seen}

    def set_state(self, state, arrays=None):
        self._check_state(state)
        self.best = _dec(state["best"])
        if state.get("direction") in ("min", "max"):
            self.direction = state["direction"]
        self._batches_since_save = int(state.get("batches_since_save", 0))
        self._last_batch_seen = int(state.get("last_batch_seen", 0))
        self._restored = True


# ------------------------------------------------------------------ CSVLogger
class CSVLogger(Callback):
    """Stream the epoch logs to a CSV file: column "epoch", then the first epoch's log
    keys (sorted). ``append=True`` continues an existing file (no second header)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if isinstance(filename, os.PathLike):
            filename = os.fspath(filename)
        if not isinstance(filename, str) or not filename:
            raise ValueError(f"filename: expected a non-empty path, got {filename!r}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator: expected a one-character string, got {separator!r}")
        self.filename = filename
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self._file = None
        self._writer = None
        self._header = True

    def on_train_begin(self, logs=None):
        if self.append and os.path.exists(self.filename):
            with open(self.filename, "r", encoding="utf-8") as f:
                self._header = not bool(f.readline())
            mode = "a"
        else:
            self._header = True
            mode = "a" if self.append else "w"
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = open(self.filename, mode, newline="", encoding="utf-8")
        self._writer = None
        self.keys = None

    @staticmethod
    def _cell(v):
        if isinstance(v, str):
            return v
        if isinstance(v, np.ndarray) and v.ndim == 0:
            return v.item()
        if isinstance(v, (list, tuple, np.ndarray)):
            return "[" + ", ".join(map(str, v)) + "]"
        if isinstance(v, np.generic):
            return v.item()
        return v

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._file is None:
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs)
            for name in getattr(self.model, "metrics_names", None) or []:
                if isinstance(name, str) and name.startswith("val_") and name not in self.keys:
                    self.keys.append(name)
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.sep, lineterminator="\n")
            if self._header:
                self._writer.writerow(["epoch"] + self.keys)
        self._writer.writerow([epoch] + [self._cell(logs.get(k, "NA")) for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = None
        self._writer = None


# ------------------------------------------------------------------ TerminateOnNaN
class TerminateOnNaN(Callback):
    """Stop training (``model.stop_training = True``) as soon as a batch loss is NaN or
    Inf; with ``raise_error=True`` raise RuntimeError instead (Keras 3).

    ``restore_last_good=True`` (a fastnn extension) first puts back the last good
    weights (including batch-norm moving statistics) and optimizer state: those from
    before the batch whose loss was not finite when they are all finite, otherwise those
    from before the last batch with a finite loss. It costs one copy of the weights and
    optimizer state per batch."""

    def __init__(self, raise_error=False, restore_last_good=False):
        super().__init__()
        self.raise_error = bool(raise_error)
        self.restore_last_good = bool(restore_last_good)
        self._current = None   # (weights, optimizer state) before this batch
        self._good = None      # the same before the last batch with a finite loss
        self.restored = False  # whether the last run restored a snapshot

    def on_train_begin(self, logs=None):
        self._current = self._good = None
        self.restored = False

    def _snapshot(self):
        opt = getattr(self.model, "optimizer", None)
        state = opt.get_state() if opt is not None and hasattr(opt, "get_state") else None
        return self.model.get_weights(), state

    @staticmethod
    def _finite(snap):
        ws, state = snap
        arrays = list(ws) + (list(state.values()) if state else [])
        return all(np.all(np.isfinite(a)) for a in arrays if np.asarray(a).dtype.kind == "f")

    def on_train_batch_begin(self, batch, logs=None):
        if self.restore_last_good:
            self._current = self._snapshot()
        super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        loss = _as_float((logs or {}).get("loss"))
        if self.restore_last_good and loss is not None and math.isfinite(loss):
            self._good, self._current = self._current, None
        super().on_train_batch_end(batch, logs)

    def _restore(self):
        for snap in (self._current, self._good):
            if snap is not None and self._finite(snap):
                ws, state = snap
                self.model.set_weights(ws)
                if state is not None:
                    self.model.optimizer.set_state(state)
                self.restored = True
                return True
        return False

    def on_batch_end(self, batch, logs=None):
        loss = _as_float((logs or {}).get("loss"))
        if loss is not None and not math.isfinite(loss):
            note = ""
            if self.restore_last_good:
                note = (" Restored the last good weights and optimizer state." if self._restore() else
                        " No finite weights to restore.")
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                                   f"Loss value: {loss}. Terminating training immediately.{note}")
            print(f"Batch {batch}: Invalid loss, terminating training.{note}")
            self.model.stop_training = True


# ------------------------------------------------------------------ LearningRateWarmup
class LearningRateWarmup(_Stateful):
    """Linear learning-rate warm-up, for training with a large global batch (e.g.
    data-parallel on R ranks, where the compiled rate is usually the single-process rate
    times R). Over the first ``warmup_epochs`` epochs (or ``warmup_steps`` batches when
    given) the rate rises linearly, batch by batch, from ``initial_factor`` times the
    compiled rate to the compiled rate; from then on the callback leaves it alone, so
    ReduceLROnPlateau can act (during the warm-up the warm-up sets the rate at every batch).

    initial_factor: None means 1 / fastnn.distributed.size() when fastnn.distributed has
    been initialized, else 1 (no warm-up). The rate at batch t < T of the warm-up is
    target * (f + (1 - f) * t / T); batches are counted from epoch 0, so a resumed fit
    (``initial_epoch``) continues the ramp. State (get_state/set_state): the target rate
    and whether the warm-up is over."""

    _state_keys = ("target", "done")

    def __init__(self, warmup_epochs=5, warmup_steps=None, initial_factor=None, verbose=0):
        super().__init__()
        self.warmup_epochs = _int_arg(warmup_epochs, "warmup_epochs")
        self.warmup_steps = None if warmup_steps is None else _int_arg(warmup_steps, "warmup_steps")
        if initial_factor is not None:
            initial_factor = _float_arg(initial_factor, "initial_factor", 0.0)
            if initial_factor > 1.0:
                raise ValueError(f"initial_factor: expected a number in [0, 1], got {initial_factor!r}")
        self.initial_factor = initial_factor
        self.verbose = _int_arg(verbose, "verbose")
        self.target = None
        self.done = False
        self._epoch = 0

    def _factor(self):
        if self.initial_factor is not None:
            return self.initial_factor
        dist = sys.modules.get("fastnn.distributed")
        if dist is not None and dist.is_initialized():
            return 1.0 / dist.size()
        return 1.0

    def on_train_begin(self, logs=None):
        if not self._take_restored():
            self.target = None
            self.done = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.done:
            return
        opt = self.model.optimizer
        if self.target is None:
            self.target = float(opt.learning_rate)
        total = self.warmup_steps if self.warmup_steps is not None else \
            self.warmup_epochs * int(self.params.get("steps") or 0)
        t = self._epoch * int(self.params.get("steps") or 0) + batch
        if t >= total:
            opt.learning_rate = self.target
            self.done = True
            if self.verbose > 0:
                print(f"\nEpoch {self._epoch + 1}: LearningRateWarmup reached learning rate {self.target}.")
            return
        f = self._factor()
        opt.learning_rate = self.target * (f + (1.0 - f) * t / total)

    def get_state(self):
        return {"target": _enc(self.target), "done": bool(self.done)}

    def set_state(self, state, arrays=None):
        self._check_state(state)
        self.target = _dec(state["target"])
        self.done = bool(state["done"])
        self._restored = True


# ------------------------------------------------------------------ progress output
def _fmt_value(v):
    f = _as_float(v)
    if f is None:
        return str(v)
    if f != f:
        return "nan"
    if f == 0 or abs(f) >= 1e-3:
        return f"{f:.4f}"
    return f"{f:.4e}"


def _fmt_eta(seconds):
    if seconds >= 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds >= 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def _fmt_per_unit(seconds, unit):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def _is_tty(stream):
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return "ipykernel" in sys.modules


class Progbar:
    """A Keras-like progress bar over ``target`` steps (None: unknown).

    ``update(current, values, finalize=False)``: ``values`` is a dict or a list of
    (name, value) pairs shown as given. verbose=1: redraw in place on a TTY (at most
    every ``interval`` seconds), only the final summary line elsewhere; verbose=2: only
    the final line; verbose=0: nothing."""

    def __init__(self, target, verbose=1, stream=None, width=30, interval=0.1,
                 unit_name="step", dynamic=None):
        if target is not None:
            target = _int_arg(target, "target")
        self.target = target
        self.verbose = verbose
        self.stream = stream
        self.width = width
        self.interval = interval
        self.unit_name = unit_name
        self._dynamic = dynamic
        self._start = time.perf_counter()
        self._after_first = None
        self._last_draw = None
        self._prev_width = 0
        self._seen = 0
        self._values = {}
        self.finished = False

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def _per_unit(self, current, now):
        if not current:
            return 0.0
        if self._after_first is not None and current > 1:
            return (now - self._after_first) / (current - 1)
        return (now - self._start) / current

    def _count(self, current):
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(self.target))
        return f"{current:{digits}d}/{self.target}"

    def _metrics(self):
        return "".join(f" - {k}: {_fmt_value(v)}" for k, v in self._values.items())

    def update(self, current, values=None, finalize=False):
        if values:
            items = list(values.items() if isinstance(values, dict) else values)
            if finalize:  # the final line shows the epoch logs, in their order
                self._values = {}
            for k, v in items:
                self._values[k] = v
        now = time.perf_counter()
        per_unit = self._per_unit(current, now)
        if current == 1 and self._after_first is None:
            self._after_first = now
        self._seen = current
        if self.verbose not in (1, 2) or self.finished:
            return
        out = self._out()
        dynamic = self._dynamic if self._dynamic is not None else _is_tty(out)
        elapsed = now - self._start
        if finalize:
            self.finished = True
            if self.verbose == 1:
                line = (f"{self._count(current)} - {elapsed:.0f}s "
                        f"{_fmt_per_unit(per_unit, self.unit_name)}{self._metrics()}")
            else:
                line = (f"{self._count(current)} - {elapsed:.0f}s - "
                        f"{_fmt_per_unit(per_unit, self.unit_name)}{self._metrics()}")
            if dynamic and self.verbose == 1 and self._prev_width:
                pad = " " * max(self._prev_width - len(line), 0)
                out.write("\r" + line + pad + "\n")
            else:
                out.write(line + "\n")
            out.flush()
            return
        if self.verbose != 1 or not dynamic:
            return
        if self._last_draw is not None and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        line = self._count(current)
        if self.target:
            filled = int(self.width * min(current / self.target, 1.0))
            bar = ""
            if filled > 0:
                bar = "=" * (filled - 1) + (">" if current < self.target else "=")
            bar += "." * (self.width - filled)
            line += f" [{bar}]"
            eta = per_unit * (self.target - current)
            line += f" - ETA: {_fmt_eta(eta)}"
        else:
            line += f" - {elapsed:.0f}s"
        line += self._metrics()
        pad = " " * max(self._prev_width - len(line), 0)
        out.write("\r" + line + pad)
        out.flush()
        self._prev_width = len(line)


class ProgressLogger(Callback):
    """Prints Keras-like progress during fit / evaluate / predict (see module doc).

    ``verbose``: 0, 1 or 2; None takes ``params['verbose']`` (default 1). The model adds
    one automatically when fit(verbose=1|2). ``params``: 'epochs' and 'steps' (steps
    per epoch; None if unknown)."""

    def __init__(self, verbose=None, stream=None):
        super().__init__()
        if verbose is not None and verbose not in (0, 1, 2):
            raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
        self._verbose_arg = verbose
        self.verbose = 1 if verbose is None else verbose
        self.stream = stream
        self.epochs = 1
        self.target = None
        self.progbar = None
        self._in_fit = False

    def set_params(self, params):
        super().set_params(params)
        if self._verbose_arg is None:
            v = self.params.get("verbose", 1)
            self.verbose = 1 if v == "auto" else int(v)
        self.epochs = int(self.params.get("epochs", 1) or 1)
        self.target = self.params.get("steps")

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def _new_bar(self):
        self.progbar = Progbar(self.target, verbose=self.verbose, stream=self.stream)

    def _finish(self, logs):
        if self.progbar is None:
            self._new_bar()
        current = self.progbar._seen
        if self.progbar.target is None:
            self.progbar.target = current
        else:
            current = self.progbar.target
        self.progbar.update(current, logs or {}, finalize=True)

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._new_bar()
        if self.verbose and self.epochs > 1:
            out = self._out()
            out.write(f"Epoch {epoch + 1}/{self.epochs}\n")
            out.flush()

    def on_train_batch_end(self, batch, logs=None):
        if self.progbar is None:
            self._new_bar()
        if self.verbose == 1:
            self.progbar.update(batch + 1, logs)
        else:
            self.progbar._seen = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs)

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._new_bar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            if self.verbose == 1:
                self.progbar.update(batch + 1, logs)
            else:
                self.progbar._seen = batch + 1

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs=None):
        self._new_bar()

    def on_predict_batch_end(self, batch, logs=None):
        if self.verbose == 1:
            self.progbar.update(batch + 1, None)
        else:
            self.progbar._seen = batch + 1

    def on_predict_end(self, logs=None):
        self._finish(None)


ProgbarLogger = ProgressLogger  # Keras' name


# ------------------------------------------------------------------ CallbackList
class CallbackList(Callback):
    """Calls every hook on each callback in order. ``add_history`` / ``add_progbar``
    append a History / ProgressLogger unless one is already present (Keras' order:
    user callbacks first). ``params`` (e.g. verbose, epochs, steps) go to set_params."""

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 stream=None, **params):
        super().__init__()
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}]: expected a fastnn.callbacks.Callback, got "
                                f"{type(cb).__name__}")
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgressLogger)), None)
        if add_history and self._history is None:
            self._history = History()
            self.callbacks.append(self._history)
        if add_progbar and self._progbar is None:
            self._progbar = ProgressLogger(stream=stream)
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    @property
    def history(self):
        return self._history

    @property
    def progbar(self):
        return self._progbar

    def append(self, callback):
        if not isinstance(callback, Callback):
            raise TypeError(f"callback: expected a Callback, got {type(callback).__name__}")
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            try:
                model.history = self._history
            except AttributeError:
                pass
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs if logs is not None else {})

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs if logs is not None else {})

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs if logs is not None else {})

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs if logs is not None else {})

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs if logs is not None else {})

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs if logs is not None else {})

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs if logs is not None else {})

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs if logs is not None else {})

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs if logs is not None else {})

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs if logs is not None else {})

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs if logs is not None else {})

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs if logs is not None else {})

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs if logs is not None else {})

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs if logs is not None else {})

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs if logs is not None else {})

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs if logs is not None else {})

    def get_state(self):
        """[{'class_name': ..., 'state': {...}}] for every callback, in order."""
        return [{"class_name": type(cb).__name__, "state": cb.get_state()} for cb in self.callbacks]

    def get_state_arrays(self):
        """{'<index>/<name>': ndarray} over all callbacks."""
        out = {}
        for i, cb in enumerate(self.callbacks):
            for k, v in cb.get_state_arrays().items():
                out[f"{i}/{k}"] = v
        return out
