"""Sequential models: build, compile, fit, evaluate, predict, summary, save/load.

Parameter memory: one flat float32 arena for every trainable weight (and one of
the same size for their gradients, followed by 16 spare floats that carry a step's
loss and metric sums through the one Allreduce of distributed training), one for
non-trainable state (batch-norm moving statistics). Layers see views into these
arenas, so an optimizer step is one fused kernel over the whole model. Offsets are
aligned to 64 bytes.

Saved file format (``model.save(path)``, conventionally ``*.fnn``): a ZIP archive
with ``model.json`` (format tag, layer configs, compile settings, weight names,
training state) and one ``.npy`` member per array (weights, optimizer state,
callback arrays). It is loaded with ``allow_pickle=False`` and written to a
temporary file in the same directory, then renamed over the target.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import signal
import struct
import sys
import tempfile
import threading
import zipfile
import zlib

import numpy as np

from . import _archive, _runtime, _schema, initializers
from . import layers as _layers
from .layers.base import Layer

FORMAT = "fastnn-model"
FORMAT_VERSION = 1
_ALIGN = 16  # floats (64 bytes)


def _align(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _unique_name(base, taken):
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


class Sequential:
    """A linear stack of layers, Keras style."""

    def __init__(self, layers=None, name=None):
        self.name = name or "sequential"
        self.layers: list[Layer] = []
        self.built = False
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False
        self.history = None
        self._seed = _runtime.get_seed()
        self._pending_callback_state = []
        self._active_callbacks = []
        self._epoch = 0
        self._fit_lock = threading.Lock()
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ build
    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}")
        if self.built and isinstance(layer, _layers.InputLayer):
            raise ValueError("Sequential.add: an Input layer can only come first")
        taken = {l.name for l in self.layers}
        if layer.name is None:
            layer.name = _unique_name(layer.default_name(), taken)
        elif layer.name in taken:
            raise ValueError(f"Sequential.add: duplicate layer name {layer.name!r}")
        self.layers.append(layer)
        if len(self.layers) == 1 and layer.input_shape_arg is not None:
            self.build((None,) + layer.input_shape_arg)
        elif self.built:
            self._build_from(len(self.layers) - 1)
            self._allocate()

    @property
    def input_shape(self):
        return None if not self.layers or self.layers[0].input_shape is None else (None,) + self.layers[0].input_shape

    @property
    def output_shape(self):
        return None if not self.built else (None,) + self.layers[-1].output_shape

    def build(self, input_shape=None):
        if input_shape is None:
            first = self.layers[0] if self.layers else None
            if first is None or first.input_shape_arg is None:
                raise ValueError("Sequential.build: the input shape is unknown: give input_shape to the first layer "
                                 "or call build((None, ...))")
            input_shape = (None,) + first.input_shape_arg
        shape = tuple(input_shape)[1:]
        if any(d is None for d in shape):
            raise ValueError(f"Sequential.build: every dimension but the batch must be known, got {input_shape}")
        self._input_shape = shape
        for layer in self.layers:
            layer.built = False
            layer.weights = []
        self._build_from(0)
        self._allocate()
        self.built = True

    def _build_from(self, start):
        shape = self._input_shape if start == 0 else self.layers[start - 1].output_shape
        for layer in self.layers[start:]:
            try:
                layer.build(shape)
            except ValueError as exc:
                raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) on input {(None,) + tuple(shape)}: {exc}") from None
            shape = layer.output_shape
        for i, layer in enumerate(self.layers):
            if _uses_dropout_stream(layer) and layer.stream_seed == 0:
                layer.stream_seed = (layer.seed if layer.seed is not None else
                                     int(initializers.new_stream().integers(1, 2**62)))

    def _allocate(self):
        """(Re)creates the arenas; existing weight values are kept, new ones initialized."""
        specs = [w for layer in self.layers for w in layer.weights]
        n_train = sum(_align(math.prod(w.shape)) for w in specs if w.trainable)
        n_state = sum(_align(math.prod(w.shape)) for w in specs if not w.trainable)
        params = np.zeros(max(n_train, 1), np.float32)
        grad_arena = np.zeros(max(n_train, 1) + _ALIGN, np.float32)  # gradients + spare floats
        grads = grad_arena[:max(n_train, 1)]
        state = np.zeros(max(n_state, 1), np.float32)
        slots = []
        ot = os_ = 0
        for w in specs:
            size = math.prod(w.shape)
            old = w.value
            if w.trainable:
                w.value = params[ot:ot + size].reshape(w.shape)
                w.grad = grads[ot:ot + size].reshape(w.shape)
                slots.append((ot, size))
                ot += _align(size)
            else:
                w.value = state[os_:os_ + size].reshape(w.shape)
                w.grad = None
                os_ += _align(size)
            if old is not None and old.shape == w.value.shape:
                np.copyto(w.value, old)
            else:
                w.value[...] = w.initializer(w.shape, initializers.new_stream())
        self._params, self._grads, self._state, self._slots = params, grads, state, slots
        self._grad_arena = grad_arena
        self._specs = specs
        self._first_trainable = next((i for i, l in enumerate(self.layers) if any(w.trainable for w in l.weights)),
                                     len(self.layers))
        if self.optimizer is not None:
            self.optimizer.build(self._params, self._slots)

    # ---------------------------------------------------------------- weights
    @property
    def weights(self):
        return [w.value for w in self._specs] if self.built else []

    def get_weights(self):
        """Copies of every weight in Keras order and layouts."""
        self._require_built("get_weights")
        return [w.value.copy() for w in self._specs]

    def set_weights(self, weights):
        self._require_built("set_weights")
        weights = list(weights)
        if len(weights) != len(self._specs):
            raise ValueError(f"set_weights: expected {len(self._specs)} arrays, got {len(weights)}")
        arrays = []
        for spec, value in zip(self._specs, weights):
            a = np.asarray(value)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"set_weights: {spec.name}: expected a real array, got dtype {a.dtype}")
            if a.shape != spec.shape:
                raise ValueError(f"set_weights: {spec.name}: expected shape {spec.shape}, got {a.shape}")
            arrays.append(a)
        for spec, a in zip(self._specs, arrays):
            np.copyto(spec.value, a, casting="unsafe")

    def count_params(self):
        return int(sum(l.count_params() for l in self.layers))

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{what}: the model is not built yet: give input_shape to the first layer or call build()")

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        from . import losses as _losses, metrics as _metrics, optimizers as _optimizers

        if loss is None:
            raise ValueError("compile: loss: expected a loss name or object, got None")
        self.optimizer = _optimizers.get(optimizer)
        self.loss = _losses.get(loss)
        names = [] if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
        self.compiled_metrics = [_metrics.get(m) for m in names]
        self._metric_specs = names
        if self.built:
            self.optimizer.build(self._params, self._slots)
        self._configure_fusion()

    def _configure_fusion(self):
        last = self.layers[-1] if self.layers else None
        fused = bool(getattr(self.loss, "fused_softmax", False) and last is not None
                     and getattr(last, "activation", None) == "softmax")
        for layer in self.layers:
            if hasattr(layer, "emit_logits"):
                layer.emit_logits = False
        if fused:
            last.emit_logits = True
        self._fused = fused

    # ------------------------------------------------------------- computation
    def _check_x(self, x, what):
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"{what}: x: expected a real-valued array, got dtype {x.dtype}")
        if not self.built:
            self.build((None,) + x.shape[1:])
        if x.shape[1:] != self._input_shape:
            raise ValueError(f"{what}: x: expected shape (N,) + {self._input_shape}, got {x.shape}")
        return x

    def _forward(self, x, training):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def __call__(self, x, training=False):
        return self._forward(np.ascontiguousarray(x, dtype=np.float32), training)

    def predict(self, x, batch_size=32, verbose=0):
        self._require_built("predict") if not self.layers else None
        x = self._check_x(x, "predict")
        n = x.shape[0]
        batch_size = _batch_size(batch_size)
        if n <= batch_size:
            return np.ascontiguousarray(self._forward(np.ascontiguousarray(x, dtype=np.float32), False))
        out = None
        for b0 in range(0, n, batch_size):
            yb = self._forward(np.ascontiguousarray(x[b0:b0 + batch_size], dtype=np.float32), False)
            if out is None:
                out = np.empty((n,) + yb.shape[1:], np.float32)
            out[b0:b0 + yb.shape[0]] = yb
        return out

    def _backprop(self, xb, yb):
        """Forward, loss and backward: the gradient arena holds d(mean loss)/d(params)."""
        out = self._forward(xb, True)
        if self._fused:
            loss, dy = self.loss.value_and_grad_from_logits(yb, out)
        else:
            loss, dy = self.loss.value_and_grad(yb, out)
        for i in range(len(self.layers) - 1, self._first_trainable - 1, -1):
            dy = self.layers[i].backward(dy, need_dx=i > self._first_trainable)
        return loss, out

    def _regularize_and_apply(self, loss):
        if self._has_regularizers:
            for layer in self.layers:
                loss += layer.regularization_loss()
                layer.add_regularization_gradients()
        self.optimizer.apply(self._params, self._grads)
        return float(loss)

    def _train_step(self, xb, yb):
        loss, out = self._backprop(xb, yb)
        return self._regularize_and_apply(loss), out

    def _train_step_distributed(self, dp, xb, yb, n_global):
        """One data-parallel step: this rank's mean gradient over its part of the global
        batch, weighted by part / global size, summed over ranks by one Allreduce that
        also carries the loss and metric sums; then regularizers and the update, the
        same on every rank. Returns the global batch's (loss, {metric: value})."""
        from . import _sharding, ops

        names = [m.__name__ for m in self.compiled_metrics]
        arena = self._grad_arena
        n = self._grads.size
        spare = arena[n:]
        extra = None if 1 + len(names) <= spare.size else np.zeros(1 + len(names), np.float32)
        sums = spare if extra is None else extra
        nb = len(xb)
        if nb:
            loss, out = self._backprop(xb, yb)
            w = _sharding.gradient_weight(nb, n_global)
            if w != 1.0:
                ops.scale_(self._grads, w)
            values = {}
            self._batch_metrics(yb, out, values, 1)
            spare.fill(0)
            sums[0] = np.float32(loss) * np.float32(w)
            for j, k in enumerate(names):
                sums[1 + j] = np.float32(values[k]) * np.float32(w)
        else:  # a tail global batch smaller than the number of ranks: nothing here
            arena.fill(0)
            if extra is not None:
                extra.fill(0)
        dp.allreduce(arena if extra is None else arena[:n], extra)
        loss = self._regularize_and_apply(sums[0])
        return loss, {k: float(sums[1 + j]) for j, k in enumerate(names)}

    def _batch_metrics(self, yb, out, logs_sum, n):
        if self.compiled_metrics:
            pred = out
            if self._fused and any(m.__name__ != "accuracy" for m in self.compiled_metrics):
                from . import ops
                pred = ops.softmax(out)
            for m in self.compiled_metrics:
                logs_sum[m.__name__] = logs_sum.get(m.__name__, 0.0) + float(m(yb, pred)) * n

    # ------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, distributed=False):
        """Keras' fit. ``distributed=True`` (after ``fastnn.distributed.init()``, on every
        rank of an MPI job, with the same data and arguments) trains data-parallel:
        ``batch_size`` is per rank; see ``fastnn.distributed`` and the README."""
        if self.optimizer is None or self.loss is None:
            raise RuntimeError("fit: the model must be compiled first: call model.compile(optimizer, loss, metrics)")
        if not self._fit_lock.acquire(blocking=False):
            raise RuntimeError("fit: this model is already being trained (in another thread); "
                               "training one model from two threads at once is not supported")
        try:
            return self._fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                             shuffle, initial_epoch, steps_per_epoch, validation_steps, distributed)
        finally:
            self._fit_lock.release()

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
             initial_epoch, steps_per_epoch, validation_steps, distributed=False):
        from . import callbacks as _callbacks
        from .data import ImageFlow

        dp = None
        if distributed:
            from . import distributed as _dist  # ImportError naming what to install
            dp = _dist._DataParallel(self)
        ranks, rank = (dp.size, dp.rank) if dp is not None else (1, 0)
        epochs = _nonneg_int(epochs, "epochs")
        initial_epoch = _nonneg_int(initial_epoch, "initial_epoch")
        verbose = 1 if verbose == "auto" else verbose
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose: expected 0, 1, 2 or 'auto', got {verbose!r}")
        generator = x is not None and not isinstance(x, np.ndarray) and hasattr(x, "__next__")
        # distributed fit of an ImageDataGenerator flow: the flow's batch size is per rank
        # and the ranks share out the global batches of the flow's shuffled order
        flow = x if generator and dp is not None and isinstance(x, ImageFlow) else None
        if generator:
            if steps_per_epoch is None and flow is not None:
                steps_per_epoch = -(-flow.n // (flow.batch_size * ranks))
            if steps_per_epoch is None:
                steps_per_epoch = len(x) if hasattr(x, "__len__") else None
            if steps_per_epoch is None:
                raise ValueError("fit: steps_per_epoch: required when x is a generator without len()")
            steps_per_epoch = _nonneg_int(steps_per_epoch, "steps_per_epoch", 1)
            if validation_split:
                raise ValueError("fit: validation_split is not supported with a generator; pass validation_data")
            if not self.built:
                raise ValueError("fit: build the model (input_shape) before fitting a generator")
            n_train = None
        else:
            if x is None or y is None:
                raise ValueError("fit: x and y are required (or a generator as x)")
            x = self._check_x(x, "fit")
            y = np.asarray(y)
            if len(y) != len(x):
                raise ValueError(f"fit: x and y hold different numbers of samples ({len(x)} and {len(y)})")
            if not 0.0 <= float(validation_split) < 1.0:
                raise ValueError(f"fit: validation_split: expected a float in [0, 1), got {validation_split}")
            if validation_split and validation_data is None:
                n_val = int(len(x) * float(validation_split))
                if n_val:
                    validation_data = (x[len(x) - n_val:], y[len(y) - n_val:])
                    x, y = x[:len(x) - n_val], y[:len(y) - n_val]
            x = np.ascontiguousarray(x, dtype=np.float32)
            y = _as_targets(y)
            n_train = len(x)
        batch_size = _batch_size(32 if batch_size is None else batch_size)
        global_batch = batch_size * ranks
        if n_train is not None:
            steps = max(1, math.ceil(n_train / global_batch)) if n_train else 0
            if steps_per_epoch is not None:
                steps = _nonneg_int(steps_per_epoch, "steps_per_epoch", 1)
        else:
            steps = steps_per_epoch
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data: expected a tuple (x_val, y_val)")
            vx = self._check_x(validation_data[0], "fit (validation_data)")
            vy = np.asarray(validation_data[1])
            if len(vx) != len(vy):
                raise ValueError("fit: validation_data: x and y hold different numbers of samples")
        self._has_regularizers = any(w.regularizer is not None for w in self._specs)
        dropouts = [l for l in self.layers if _uses_dropout_stream(l)]
        if dp is not None:
            dp.check_same(samples=-1 if n_train is None else n_train, steps=steps, epochs=epochs,
                          initial_epoch=initial_epoch, batch_size=flow.batch_size if flow is not None else batch_size,
                          flow_samples=-1 if flow is None else flow.n, shuffle=bool(shuffle),
                          validation=-1 if validation_data is None else len(vx), parameters=self._params.size,
                          metrics=len(self.compiled_metrics), generator=generator)
            dp.broadcast_start(dropouts, flow)

        history = _callbacks.History()
        if isinstance(callbacks, _callbacks.Callback):
            callbacks = [callbacks]
        elif callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"fit: callbacks: expected a list of Callback objects, got {type(callbacks).__name__}")
        cbs = list(callbacks or [])
        for i, c in enumerate(cbs):
            if not isinstance(c, _callbacks.Callback):
                raise TypeError(f"fit: callbacks[{i}]: expected a fastnn.callbacks.Callback, got {type(c).__name__}")
        if verbose:
            cbs.append(_callbacks.ProgressLogger(verbose))
        cbs.append(history)
        muted = []
        if dp is not None:
            cbs, muted = dp.callbacks(cbs)
        self._active_callbacks = [c for c in cbs if c is not history]
        self._restore_callback_state(self._active_callbacks)
        params = {"epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": batch_size}
        for c in cbs:
            c.set_model(self)
            c.set_params(params)
        self.stop_training = False
        guard = _DeferredInterrupt() if dp is None else _AbortOnError(dp)
        try:
            with guard as interrupt:
                self._fit_epochs(x, y, n_train, generator, flow, dp, ranks, rank, batch_size, global_batch, steps,
                                 epochs, initial_epoch, shuffle, vx if validation_data is not None else None,
                                 vy if validation_data is not None else None, dropouts, cbs, interrupt)
        finally:
            if dp is not None:
                dp.restore(muted)
                dp.finish()
        self.history = history
        return history

    def _fit_epochs(self, x, y, n_train, generator, flow, dp, ranks, rank, batch_size, global_batch, steps,
                    epochs, initial_epoch, shuffle, vx, vy, dropouts, cbs, interrupt):
        from . import _sharding

        for c in cbs:
            c.on_train_begin({})
        # Only the callbacks that override a batch hook are called per batch (the base
        # class's hooks do nothing), and the batch logs are built only when one needs them.
        begin_cbs = [c for c in cbs if _overrides_hook(c, "on_train_batch_begin", "on_batch_begin")]
        end_cbs = [c for c in cbs if _overrides_hook(c, "on_train_batch_end", "on_batch_end")]
        rng_seed = self._seed
        xbuf = None
        for epoch in range(initial_epoch, epochs):
            self._epoch = epoch
            for d in dropouts:
                d.epoch = epoch
            for c in cbs:
                c.on_epoch_begin(epoch, {})
            sums, seen = {}, 0
            order = None
            if n_train is not None and shuffle and n_train:
                order = initializers.generator(rng_seed, 0x5EED, epoch).permutation(n_train)
            for step in range(steps):
                for c in begin_cbs:
                    c.on_train_batch_begin(step, {})
                # xb, yb: this rank's samples; offset: the position of its first sample in
                # the epoch (keys dropout); n_step: samples in the step over all ranks
                if flow is not None:
                    xb, yb, first, n_step = flow._next_part(ranks, rank)
                    if yb is None:
                        raise ValueError("fit: the ImageDataGenerator flow has no targets: use flow(x, y)")
                    xb = np.ascontiguousarray(xb, dtype=np.float32)
                    yb = _as_targets(np.asarray(yb))
                    offset = seen + first
                elif generator:
                    batch = next(x)
                    xb, yb = batch[0], batch[1]
                    xb = np.ascontiguousarray(xb, dtype=np.float32)
                    yb = _as_targets(np.asarray(yb))
                    n_step, before = (len(xb), 0) if dp is None else dp.counts(len(xb))
                    offset = seen + before
                else:
                    b0, b1 = _sharding.global_batch(step, global_batch, max(n_train, 1))
                    n_step = b1 - b0
                    if dp is not None:
                        b0, b1 = dp.part(b0, b1)
                    if order is None:
                        xb, yb = x[b0:b1], y[b0:b1]
                    else:
                        idx = order[b0:b1]
                        if xbuf is None or xbuf.shape[0] != len(idx):
                            xbuf = np.empty((len(idx),) + x.shape[1:], np.float32)
                        np.take(x, idx, axis=0, out=xbuf)
                        xb, yb = xbuf, y[idx]
                    offset = b0
                for d in dropouts:
                    d.sample_offset = offset
                if dp is None:
                    loss, out = self._train_step(xb, yb)
                    nb = len(xb)
                    sums["loss"] = sums.get("loss", 0.0) + loss * nb
                    self._batch_metrics(yb, out, sums, nb)
                else:
                    loss, values = self._train_step_distributed(dp, xb, yb, n_step)
                    nb = n_step
                    sums["loss"] = sums.get("loss", 0.0) + loss * nb
                    for k, v in values.items():
                        sums[k] = sums.get(k, 0.0) + v * nb
                seen += nb
                if end_cbs:
                    logs = {k: v / seen for k, v in sums.items()}
                    for c in end_cbs:
                        c.on_train_batch_end(step, logs)
                interrupt.check()
                if self.stop_training:
                    break
            logs = {k: v / max(seen, 1) for k, v in sums.items()}
            if dp is not None:
                dp.average_state()
            if vx is not None:
                if dp is None:
                    val = self.evaluate(vx, vy, batch_size=batch_size, verbose=0, return_dict=True)
                else:
                    val = dp.evaluate(vx, vy, batch_size)
                logs.update({"val_" + k: v for k, v in val.items()})
            logs["learning_rate"] = float(self.optimizer.learning_rate)
            for c in cbs:
                c.on_epoch_end(epoch, logs)
            if dp is not None:
                self.stop_training = dp.epoch_end(self.stop_training)
            if self.stop_training:
                break
        for c in cbs:
            c.on_train_end({})

    def _evaluate_sums(self, x, y, batch_size):
        """({'loss': sum, metric: sum} over the samples, sample count)."""
        y = _as_targets(np.asarray(y))
        sums, n = {}, len(x)
        for b0 in range(0, n, batch_size):
            xb = np.ascontiguousarray(x[b0:b0 + batch_size], dtype=np.float32)
            yb = y[b0:b0 + batch_size]
            pred = self._forward(xb, False)
            nb = len(xb)
            sums["loss"] = sums.get("loss", 0.0) + float(self.loss(yb, pred)) * nb
            for m in self.compiled_metrics:
                sums[m.__name__] = sums.get(m.__name__, 0.0) + float(m(yb, pred)) * nb
        return sums, n

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False):
        if self.loss is None:
            raise RuntimeError("evaluate: the model must be compiled first")
        x = self._check_x(x, "evaluate")
        y = _as_targets(np.asarray(y))
        if len(x) != len(y):
            raise ValueError(f"evaluate: x and y hold different numbers of samples ({len(x)} and {len(y)})")
        batch_size = _batch_size(batch_size)
        if len(x) == 0:
            raise ValueError(f"evaluate: x: expected at least one sample, got shape {x.shape}")
        sums, n = self._evaluate_sums(x, y, batch_size)
        result = {k: v / max(n, 1) for k, v in sums.items()}
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        return result["loss"] if len(result) == 1 else [result["loss"]] + [result[m.__name__] for m in self.compiled_metrics]

    # ---------------------------------------------------------------- summary
    def summary(self, print_fn=None):
        print_fn = print_fn or print
        self._require_built("summary")
        rows = [(f"{l.name} ({type(l).__name__})", str((None,) + tuple(l.output_shape)), f"{l.count_params():,}")
                for l in self.layers if not isinstance(l, _layers.InputLayer)]
        w = [max(len("Layer (type)"), *(len(r[0]) for r in rows)) + 2,
             max(len("Output Shape"), *(len(r[1]) for r in rows)) + 2,
             max(len("Param #"), *(len(r[2]) for r in rows)) + 2]
        line = lambda l, m, r: l + m.join("━" * x for x in w) + r  # noqa: E731
        out = [f'Model: "{self.name}"', line("┏", "┳", "┓"),
               "┃" + " Layer (type)".ljust(w[0]) + "┃" + " Output Shape".ljust(w[1]) + "┃" + "Param # ".rjust(w[2]) + "┃",
               line("┡", "╇", "┩")]
        for i, (a, b, c) in enumerate(rows):
            out.append("│" + (" " + a).ljust(w[0]) + "│" + (" " + b).ljust(w[1]) + "│" + (c + " ").rjust(w[2]) + "│")
            if i < len(rows) - 1:
                out.append("├" + "┼".join("─" * x for x in w) + "┤")
        out.append("└" + "┴".join("─" * x for x in w) + "┘")
        total = self.count_params()
        trainable = sum(math.prod(s.shape) for s in self._specs if s.trainable)
        out += [f" Total params: {total:,} ({_bytes(total * 4)})",
                f" Trainable params: {trainable:,} ({_bytes(trainable * 4)})",
                f" Non-trainable params: {total - trainable:,} ({_bytes((total - trainable) * 4)})"]
        for s in out:
            print_fn(s)

    # -------------------------------------------------------------- save/load
    def get_config(self):
        return {"name": self.name,
                "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers],
                "build_input_shape": None if not self.built else [None] + list(self._input_shape)}

    def save(self, filepath):
        """Writes the model (config, weights, optimizer, RNG and callback state) atomically.
        A path ending in ``.keras`` writes a Keras 3 archive instead (config and weights)."""
        self._require_built("save")
        if isinstance(filepath, (str, os.PathLike)) and os.fspath(filepath).endswith(".keras"):
            from .interop.keras_format import save_keras
            return save_keras(self, filepath)
        arrays = {}
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": self.get_config(),
                "weights": [], "seed": self._seed, "epoch": self._epoch,
                "dropout_streams": [l.stream_seed for l in self.layers if _uses_dropout_stream(l)]}
        for i, spec in enumerate(self._specs):
            arrays[f"weights/{i:05d}.npy"] = spec.value
            meta["weights"].append(spec.name)
        if self.optimizer is not None:
            meta["compile"] = {"optimizer": self.optimizer.get_config(), "loss": _loss_id(self.loss),
                               "metrics": list(self._metric_specs)}
            ostate = self.optimizer.get_state()
            meta["optimizer_state"] = sorted(ostate)
            for k, v in ostate.items():
                arrays[f"optimizer/{k}.npy"] = np.asarray(v)
        cstates = []
        for j, cb in enumerate(self._active_callbacks):
            if not hasattr(cb, "get_state"):
                continue
            names = []
            if hasattr(cb, "get_state_arrays"):
                for k, v in cb.get_state_arrays().items():
                    arrays[f"callbacks/{j}/{k}.npy"] = np.asarray(v)
                    names.append(k)
            cstates.append({"class_name": type(cb).__name__, "index": j, "state": cb.get_state(), "arrays": names})
        meta["callbacks"] = cstates
        _atomic_zip(filepath, meta, arrays)

    def export(self, filepath, format="onnx"):
        """Keras 3's export: ``format="onnx"`` writes an ONNX model (opset 17) that ONNX
        Runtime runs with the same NHWC inputs as predict."""
        self._require_built("export")
        if format != "onnx":
            raise ValueError(f"export: format: expected 'onnx', got {format!r}")
        from .interop.onnx_export import export_onnx
        return export_onnx(self, filepath)

    def save_weights(self, filepath):
        self._require_built("save_weights")
        meta = {"format": FORMAT + "-weights", "version": FORMAT_VERSION, "weights": [s.name for s in self._specs]}
        _atomic_zip(filepath, meta, {f"weights/{i:05d}.npy": s.value for i, s in enumerate(self._specs)})

    def load_weights(self, filepath):
        meta, arrays = _read_zip(filepath)
        try:
            ws = [arrays[f"weights/{i:05d}.npy"] for i in range(len(meta["weights"]))]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"load_weights: {filepath}: malformed weights file ({exc})") from None
        self.set_weights(ws)

    def _restore_callback_state(self, cbs):
        if not self._pending_callback_state:
            return
        pending = list(self._pending_callback_state)
        for cb in cbs:
            for k, st in enumerate(pending):
                if st["class_name"] == type(cb).__name__ and hasattr(cb, "set_state"):
                    cb.set_state(st["state"], st.get("arrays") or None)
                    pending.pop(k)
                    break
        self._pending_callback_state = []


# ---------------------------------------------------------------------------

def load(filepath):
    """Loads a model written by ``model.save`` (no pickle). A missing, truncated or
    damaged file, or one that is not a fastnn model, raises ValueError. A ``.keras``
    path is read as a Keras 3 archive (``load_keras``)."""
    if isinstance(filepath, (str, os.PathLike)) and os.fspath(filepath).endswith(".keras"):
        return load_keras(filepath)
    meta, arrays = _read_zip(filepath)
    if meta.get("format") != FORMAT:
        raise ValueError(f"load: {filepath}: not a fastnn model file (format {meta.get('format')!r})")
    if type(meta.get("version")) is not int or meta["version"] != FORMAT_VERSION:  # not True, not 1.0
        raise ValueError(f"load: {filepath}: unsupported format version {meta.get('version')!r}")
    _schema.validate(meta, arrays, filepath)  # every field, and the implied shapes, before building
    try:
        return _model_from(meta, arrays, filepath)
    except (KeyError, TypeError, IndexError, AttributeError, StopIteration) as exc:
        # a model.json with the right tag but a wrong structure (edited or damaged)
        raise ValueError(f"load: {filepath}: malformed model file ({type(exc).__name__}: {exc})") from None


load_model = load   # Keras's spelling


def load_keras(filepath):
    """A Keras 3 ``.keras`` file -> a fastnn model (see fastnn.interop.keras_format)."""
    from .interop.keras_format import load_keras as _load_keras
    return _load_keras(filepath)


def from_torch_state_dict(model, state_dict, mapping=None):
    """Loads a torch.nn state dict into model (see fastnn.interop.torch_weights)."""
    from .interop.torch_weights import from_torch_state_dict as _from_torch
    return _from_torch(model, state_dict, mapping)


def _model_from(meta, arrays, filepath):
    from . import losses as _losses, optimizers as _optimizers

    cfg = meta["config"]
    model = Sequential(name=cfg.get("name"))
    model._seed = int(meta.get("seed", 0))
    streams = iter(meta.get("dropout_streams", []))
    for entry in cfg["layers"]:
        cls = _layers.get_class(entry["class_name"])
        layer = cls.from_config(dict(entry["config"]))
        if _uses_dropout_stream(layer):
            layer.stream_seed = int(next(streams))
        model.layers.append(layer)
    if cfg.get("build_input_shape"):
        model.build(tuple(cfg["build_input_shape"]))
    ws = []
    for i in range(len(meta["weights"])):
        key = f"weights/{i:05d}.npy"
        if key not in arrays:
            raise ValueError(f"load: {filepath}: missing {key}")
        ws.append(arrays[key])
    model.set_weights(ws)
    if "compile" in meta:
        c = meta["compile"]
        model.compile(optimizer=_optimizers.from_config(c["optimizer"]), loss=_losses.get(c["loss"]),
                      metrics=c["metrics"])
        state = {k: arrays[f"optimizer/{k}.npy"] for k in meta.get("optimizer_state", [])}
        if state:
            model.optimizer.set_state(state)
    model._epoch = int(meta.get("epoch", 0))
    pend = []
    for st in meta.get("callbacks", []):
        j = st["index"]
        arrs = {k: arrays[f"callbacks/{j}/{k}.npy"] for k in st.get("arrays", [])}
        pend.append({"class_name": st["class_name"], "state": st["state"], "arrays": arrs})
    model._pending_callback_state = pend
    return model


def _overrides_hook(cb, hook, legacy):
    """Whether calling cb.<hook> can do anything: the base Callback's batch hooks only
    call the legacy on_batch_* hook, which does nothing."""
    from .callbacks import Callback

    own = getattr(cb, "__dict__", {})
    if hook in own or legacy in own:
        return True
    cls = type(cb)
    return (getattr(cls, hook, None) is not getattr(Callback, hook)
            or getattr(cls, legacy, None) is not getattr(Callback, legacy))


def _uses_dropout_stream(layer):
    """Layers that draw dropout masks keyed by (stream seed, epoch, sample index): Dropout,
    and the recurrent layers (and Bidirectional) with their input dropout. They expose
    stream_seed, seed, epoch and sample_offset."""
    return isinstance(layer, _layers.Dropout) or hasattr(layer, "sample_offset")


class _AbortOnError:
    """Distributed fit on several ranks: an exception on this rank (a failing callback,
    bad data, Ctrl-C) prints its traceback with the rank number and aborts the whole MPI
    job, because the other ranks would otherwise wait for it in the next collective
    forever. On a single rank the exception propagates as usual."""

    def __init__(self, dp):
        self.dp = dp

    def __enter__(self):
        return self

    def check(self):
        pass

    def __exit__(self, kind, value, tb):
        if value is not None and self.dp.size > 1:
            from . import distributed
            distributed.abort(value)
        return False


class _DeferredInterrupt:
    """Ctrl-C during fit stops at the next batch boundary: SIGINT only sets a flag
    (a second Ctrl-C interrupts at once); after the batch, KeyboardInterrupt is raised
    with the weights, optimizer state and callbacks consistent. Main thread only."""

    def __enter__(self):
        self.pending = False
        self.prev = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.prev = signal.signal(signal.SIGINT, self._handler)
            except ValueError:  # not allowed here (e.g. an embedded interpreter)
                self.prev = None
        return self

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def check(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt("fit interrupted: stopped after a complete batch; the model is consistent")

    def __exit__(self, *exc):
        if self.prev is not None:
            signal.signal(signal.SIGINT, self.prev)
        return False


def _loss_id(loss):
    cfg = loss.get_config() if hasattr(loss, "get_config") else None
    return cfg if cfg is not None else getattr(loss, "name", str(loss))


def _atomic_zip(filepath, meta, arrays):
    """Atomic write of the archive (see fastnn._archive)."""
    _archive.write_archive(filepath, meta, arrays)


def _parse_npy(data, name, filepath):
    """A .npy member held in memory -> array, header checked before allocating."""
    return _archive.parse_npy(data, name, filepath)


def _json_default(o):
    return _archive._json_default(o)


def _read_zip(filepath):
    """(meta dict, {member name: array}), bounded and strict (see fastnn._archive);
    any unreadable, damaged or non-canonical file -> ValueError."""
    return _archive.read_archive(filepath)


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _batch_size(b):
    return _nonneg_int(b, "batch_size", 1)


def _nonneg_int(v, name, minimum=0):
    import operator
    try:
        v2 = operator.index(v)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(v).__name__}") from None
    if v2 < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v}")
    return v2


def _as_targets(y):
    if y.dtype.kind == "f":
        return np.ascontiguousarray(y, dtype=np.float32)
    if y.dtype.kind in "iu":
        return np.ascontiguousarray(y)
    raise TypeError(f"y: expected numeric targets, got dtype {y.dtype}")
