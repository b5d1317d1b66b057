"""Run under mpirun by tests/test_distributed.py (not a test module itself).

    mpirun -n 2 python tests/distributed_fit.py fit OUT_DIR
        The workbook CNN on the bundled MNIST sample, data-parallel with a per-rank batch
        of 16: 2 epochs on arrays (69 images, so each epoch ends with an uneven global
        batch of 5 split 2/3) with validation and ReduceLROnPlateau, then 3 steps on an
        augmented ImageDataGenerator flow. After every step rank 0 gathers the weights of
        every rank and checks they are bitwise equal; then it trains the same model
        single-process with the global batch (2 x 16) and compares step by step.
        Writes OUT_DIR/result.json and OUT_DIR/final.npz (rank 0).
    mpirun -n 2 python tests/distributed_fit.py fail-in-fit OUT_DIR
        Rank 1 raises in a callback at its third step: the job must abort with the message.
    mpirun -n 2 python tests/distributed_fit.py fail-outside OUT_DIR
        Rank 1 raises outside fit while rank 0 waits in a barrier: the job must abort.
    mpirun -n 2 python tests/distributed_fit.py mismatch OUT_DIR
        The ranks pass different numbers of samples: the same ValueError on every rank.
    mpirun -n 2 python tests/distributed_fit.py features OUT_DIR
        Batch normalization, a plain generator per rank, checkpoints, CSV log, early
        stopping and warm-up (see features()).
    python tests/distributed_fit.py single OUT_DIR
        One process (MPI singleton): fit(distributed=True) equals fit() bitwise.
"""
import json
import os
import sys

import numpy as np

import fastnn as fnn
import fastnn.distributed as dist
from fastnn import callbacks, optimizers
from fastnn.data import ImageDataGenerator, to_categorical
from fastnn.datasets import load_mnist
from fastnn.demo import build_mnist_cnn

SEED = 11
PER_RANK = 16
N_TRAIN = 69


def data():
    (x, y), _ = load_mnist()
    x = (x[:N_TRAIN + 20].astype(np.float32) / np.float32(255.0))[..., None]
    y = to_categorical(y[:N_TRAIN + 20], 10)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def workbook_model():
    fnn.set_seed(SEED)
    model = build_mnist_cnn()
    # The comparison with one process below follows two trajectories step by step, so
    # each step's gradients must differ by a reordering of the same products only:
    # - the implicit-GEMM convolution, not Winograd (whose weight gradients of 2 x 16 and
    #   32 images differ by up to ~5e-6 of the largest element: it sums in the
    #   transformed domain, where values cancel);
    # - SGD with momentum, not the workbook's RMSprop, whose g / sqrt(v) turns a rounding
    #   difference in a near-zero gradient element into a full-size step of either sign.
    # Otherwise a tie flips by chance after a few steps and the trajectories part.
    # (An adaptive optimizer, Adam, is checked bitwise across ranks in "features".)
    for layer in model.layers:
        if isinstance(layer, fnn.layers.Conv2D):
            layer.algorithm = "gemm"
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


class Recorder(callbacks.Callback):
    """Keeps the parameter arena after every step; with comm, also checks that every
    rank holds the same bits (Gather to rank 0)."""

    def __init__(self, comm=None):
        super().__init__()
        self.comm = comm
        self.steps, self.identical, self.batch_logs = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        p = self.model._params
        self.batch_logs.append(dict(logs))
        if self.comm is None:
            self.steps.append(p.copy())
            return
        every = np.empty((self.comm.Get_size(), p.size), np.float32) if self.comm.Get_rank() == 0 else None
        self.comm.Gather(p, every, root=0)
        if self.comm.Get_rank() == 0:
            bits = every.view(np.uint32)
            self.identical.append(bool((bits == bits[0]).all()))
            self.steps.append(p.copy())


def train(distributed, comm=None):
    x, y, vx, vy = data()
    batch = PER_RANK if distributed else PER_RANK * 2
    model = workbook_model()
    rec = Recorder(comm)
    plateau = callbacks.ReduceLROnPlateau(monitor="val_accuracy", patience=1, factor=0.5, min_lr=1e-5)
    h1 = model.fit(x, y, batch_size=batch, epochs=2, validation_data=(vx, vy), callbacks=[rec, plateau],
                   verbose=0, distributed=distributed)
    gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1, height_shift_range=0.1,
                             seed=SEED)
    flow = gen.flow(x, y, batch_size=batch)
    h2 = model.fit(flow, epochs=1, callbacks=[rec], verbose=0, distributed=distributed)
    opt = [v.copy() for v in model.optimizer.variables]
    return model, rec, h1.history, h2.history, opt


def main():
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "single":
        dist.init()
        m1, r1, a1, b1, o1 = train(True)
        m2, r2, a2, b2, o2 = _single_same_batch()
        same = all(np.array_equal(p, q) for p, q in zip(r1.steps, r2.steps)) and len(r1.steps) == len(r2.steps)
        with open(os.path.join(out, "result.json"), "w") as fh:
            json.dump({"steps": len(r1.steps), "bitwise_equal": bool(same), "ranks": dist.size(),
                       "history": [a1, b1], "history_plain": [a2, b2]}, fh)
        return
    rank, size, _ = dist.init()
    comm = dist._comm()
    if mode == "fail-outside":
        if rank == 1:
            raise RuntimeError("boom outside fit on rank 1")
        dist.barrier()
        return
    if mode == "features":
        features(rank, size, comm, out)
        return
    if mode == "mismatch":  # rank 1 passes fewer samples: every rank raises the same ValueError
        x, y, vx, vy = data()
        n = N_TRAIN if rank == 0 else 60
        workbook_model().fit(x[:n], y[:n], batch_size=PER_RANK, verbose=0, distributed=True)
        return
    if mode == "fail-in-fit":
        class Boom(callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if dist.rank() == 1 and batch == 2:
                    raise RuntimeError("boom in a callback on rank 1")
        x, y, vx, vy = data()
        model = workbook_model()
        model.fit(x, y, batch_size=PER_RANK, epochs=50, callbacks=[Boom()], verbose=0, distributed=True)
        return
    assert mode == "fit", mode
    model, rec, h1, h2, opt = train(True, comm)
    # every rank's history and optimizer state must be the same bits too
    opt_flat = np.concatenate(opt)
    every = np.empty((size, opt_flat.size), np.float32) if rank == 0 else None
    comm.Gather(opt_flat, every, root=0)
    logs = np.array([v for h in (h1, h2) for k in sorted(h) for v in h[k]], np.float64)
    every_logs = np.empty((size, logs.size), np.float64) if rank == 0 else None
    comm.Gather(logs, every_logs, root=0)
    stats = dist.last_fit_stats()
    if rank != 0:
        return
    ref_model, ref, s1, s2, _ = train(False)
    diffs = [float(np.abs(p - q).max()) for p, q in zip(rec.steps, ref.steps)]
    scale = [float(np.abs(q).max()) for q in ref.steps]
    result = {
        "ranks": size, "steps": len(rec.steps), "reference_steps": len(ref.steps),
        "identical_every_step": rec.identical,
        "optimizer_state_identical": bool((every.view(np.uint32) == every.view(np.uint32)[0]).all()),
        "logs_identical": bool((every_logs == every_logs[0]).all()),
        "max_abs_diff_vs_single_per_step": diffs, "max_abs_weight_per_step": scale,
        "history": [h1, h2], "history_single": [s1, s2],
        "stats": stats, "threads": fnn.get_num_threads(),
    }
    with open(os.path.join(out, "result.json"), "w") as fh:
        json.dump(result, fh)
    np.savez(os.path.join(out, "final.npz"), params=model._params, optimizer=opt_flat)


def features(rank, size, comm, out):
    """A small model with batch normalization trained from a plain generator (each rank
    draws its own batches of different sizes), with ModelCheckpoint, CSVLogger,
    EarlyStopping and LearningRateWarmup: files come from rank 0 only, and weights,
    batch-norm statistics, learning rate and logs end the same on every rank."""
    from fastnn import layers
    fnn.set_seed(3)
    model = fnn.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)), layers.BatchNormalization(),
                            layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(2e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(100 + rank)  # different data on each rank

    def batches():
        while True:
            x = rng.normal(size=(5 + rank, 4)).astype(np.float32)
            yield x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1)

    vx = np.random.default_rng(7).normal(size=(11, 4)).astype(np.float32)
    vy = (vx[:, 0] > 0).astype(np.int64)
    cbs = [callbacks.LearningRateWarmup(warmup_steps=6),
           callbacks.ModelCheckpoint(os.path.join(out, f"ckpt-rank{rank}-{{epoch}}.fnn")),
           callbacks.CSVLogger(os.path.join(out, f"log-rank{rank}.csv")),
           # an unreachable baseline: stops after `patience` epochs, whatever the values
           callbacks.EarlyStopping(monitor="val_accuracy", patience=3, baseline=1.5, restore_best_weights=True)]
    h = model.fit(batches(), steps_per_epoch=4, epochs=6, validation_data=(vx, vy), callbacks=cbs, verbose=0,
                  distributed=True)
    mine = np.concatenate([model._params, model._state, *model.optimizer.variables,
                           [model.optimizer.learning_rate, len(h.history["loss"])],
                           h.history["loss"], h.history["val_loss"], h.history["learning_rate"]]).astype(np.float64)
    every = np.empty((size, mine.size), np.float64)
    comm.Allgather(mine, every)
    if rank == 0:
        with open(os.path.join(out, "result.json"), "w") as fh:
            json.dump({"identical": bool((every == every[0]).all()), "epochs": len(h.history["loss"]),
                       "files": sorted(os.listdir(out)), "history": h.history,
                       "warmup_target": cbs[0].target}, fh)


def _single_same_batch():
    """Plain fit with the same per-step batch as a 1-rank distributed fit."""
    x, y, vx, vy = data()
    model = workbook_model()
    rec = Recorder()
    plateau = callbacks.ReduceLROnPlateau(monitor="val_accuracy", patience=1, factor=0.5, min_lr=1e-5)
    h1 = model.fit(x, y, batch_size=PER_RANK, epochs=2, validation_data=(vx, vy), callbacks=[rec, plateau],
                   verbose=0)
    gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1, height_shift_range=0.1,
                             seed=SEED)
    h2 = model.fit(gen.flow(x, y, batch_size=PER_RANK), epochs=1, callbacks=[rec], verbose=0)
    return model, rec, h1.history, h2.history, [v.copy() for v in model.optimizer.variables]


if __name__ == "__main__":
    main()
