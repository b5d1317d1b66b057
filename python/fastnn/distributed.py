"""Data-parallel training over MPI (optional: ``pip install "pyfastnn[mpi]"``).

Needs mpi4py and an MPI library (e.g. Debian's openmpi-bin and libopenmpi-dev).
Without them, importing this module raises an ImportError that says what to install;
nothing else in fastnn depends on it.

    import fastnn.distributed as dist
    rank, size, local_rank = dist.init()      # sizes the OpenMP pool to the cores per rank
    model.fit(x, y, batch_size=86, distributed=True)   # batch_size is per rank

What ``fit(..., distributed=True)`` does (details in the README, "Distributed training"):
rank 0's weights, non-trainable state, optimizer state, learning rate, shuffling seed
and dropout streams are broadcast; each global batch of size * batch_size positions of
the epoch's shuffled order is split into contiguous per-rank parts (``fastnn._sharding``);
each step sums the rank-weighted mean gradients with ONE in-place ``Allreduce`` of the
flat float32 gradient arena, whose 16 spare floats at the end carry the step's loss and
metric sums, so the batch and epoch logs every callback sees are the global ones and are
identical on every rank; validation is split across ranks and its sums reduced once per
epoch; ModelCheckpoint, CSVLogger and the progress output run on rank 0 only. An
exception on any rank while training prints that rank's traceback and calls
``MPI_Abort`` so the other ranks do not hang.

Only buffer-based collectives (Bcast, Allreduce, Allgather on NumPy arrays) are used:
nothing is pickled.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
import zlib

import numpy as np

try:
    from mpi4py import MPI as _MPI
except ImportError as exc:  # pragma: no cover - exercised where mpi4py is absent
    raise ImportError(
        "fastnn.distributed needs mpi4py and an MPI implementation: "
        "pip install \"pyfastnn[mpi]\" (and e.g. apt-get install openmpi-bin libopenmpi-dev)"
    ) from exc

from . import _runtime, _sharding

__all__ = ["init", "is_initialized", "rank", "size", "local_rank", "barrier", "abort", "last_fit_stats"]

_state = {"initialized": False, "local_rank": 0, "local_size": 1, "comm": None, "hook": None}
_last_stats = {}


def _comm():
    return _state["comm"] if _state["comm"] is not None else _MPI.COMM_WORLD


def _cores_per_rank(local_size):
    """Cores this rank may use: its CPU affinity when the launcher bound it to fewer
    cores than the machine has (mpirun/srun binding), else the machine's cores divided
    among the ranks on this host."""
    total = os.cpu_count() or 1
    try:
        mine = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        mine = total
    if mine < total:
        return max(1, mine)
    return max(1, total // max(1, local_size))


def init(threads_per_rank=None, abort_on_error=True):
    """Joins the MPI job and returns (rank, size, local_rank).

    threads_per_rank: OpenMP threads for this rank's kernels. None: OMP_NUM_THREADS when
    it is set, else the cores this rank is bound to (mpirun/srun binding), else the
    host's cores divided by the number of ranks on the host, so ranks sharing a machine
    do not oversubscribe it.
    abort_on_error: an uncaught exception on any rank prints that rank's traceback and
    aborts the whole job (MPI_Abort) instead of leaving the other ranks waiting."""
    comm = _MPI.COMM_WORLD
    local = comm.Split_type(_MPI.COMM_TYPE_SHARED)
    _state["local_rank"] = local.Get_rank()
    _state["local_size"] = local.Get_size()
    local.Free()
    if threads_per_rank is None:
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        threads_per_rank = int(env) if env.isdigit() and int(env) > 0 else _cores_per_rank(_state["local_size"])
    _runtime.set_num_threads(threads_per_rank)
    _state["comm"] = comm
    if abort_on_error and comm.Get_size() > 1 and _state["hook"] is None:
        previous = sys.excepthook

        def hook(kind, value, tb):
            _report(value, tb)
            comm.Abort(1)

        _state["hook"] = (hook, previous)
        sys.excepthook = hook
    _state["initialized"] = True
    return comm.Get_rank(), comm.Get_size(), _state["local_rank"]


def is_initialized() -> bool:
    return _state["initialized"]


def rank() -> int:
    return _comm().Get_rank()


def size() -> int:
    return _comm().Get_size()


def local_rank() -> int:
    return _state["local_rank"]


def barrier() -> None:
    _comm().Barrier()


def _report(exc, tb=None):
    comm = _comm()
    head = f"fastnn.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed"
    lines = traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__)
    text = "".join(f"[rank {comm.Get_rank()}] {line}" for chunk in lines for line in chunk.splitlines(True))
    sys.stderr.write(f"{head}:\n{text}{head}; aborting the MPI job\n")
    sys.stderr.flush()
    try:
        sys.stdout.flush()
    except Exception:  # pragma: no cover
        pass


def abort(exc=None, code=1):
    """Prints ``exc`` (with this rank's number) and aborts every rank of the job."""
    if exc is not None:
        _report(exc)
    _comm().Abort(code)


def last_fit_stats() -> dict:
    """Figures of this rank's last distributed fit: steps, gradient_bytes (the one
    Allreduce per step), allreduce_seconds (total time inside it, including waiting for
    slower ranks), ranks."""
    return dict(_last_stats)


# --------------------------------------------------------------------- training
_RANK0_ONLY = ("ModelCheckpoint", "CSVLogger", "ProgressLogger", "ProgbarLogger")
_SPARE = 16  # floats after the gradient arena (models._ALIGN): the step's loss and metric sums


class _DataParallel:
    """What Sequential.fit(distributed=True) asks of MPI. Every method is collective
    unless it says otherwise: all ranks call it in the same order."""

    def __init__(self, model):
        if not _state["initialized"]:
            raise RuntimeError("fit(distributed=True): call fastnn.distributed.init() first (on every rank)")
        self.comm = _comm()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.model = model
        self.allreduce_seconds = 0.0
        self.steps = 0

    # ---- set-up
    def check_same(self, **values):
        """Raises the same ValueError on every rank when the ranks disagree on a value."""
        names = sorted(values)
        mine = np.array([int(values[k]) for k in names], np.int64)
        every = np.empty((self.size, len(names)), np.int64)
        self.comm.Allgather(mine, every)
        bad = [f"{k}: {every[:, j].tolist()}" for j, k in enumerate(names) if (every[:, j] != every[0, j]).any()]
        if bad:
            raise ValueError("fit(distributed=True): the ranks must pass the same data and arguments; "
                             "they differ in " + "; ".join(bad) + " (by rank)")

    def _bcast(self, array):
        self.comm.Bcast(array, root=0)
        return array

    def broadcast_start(self, dropouts, flow=None):
        """Rank 0's weights, state, optimizer state, learning rate, seeds and data position."""
        m = self.model
        for a in (m._params, m._state):
            self._bcast(a)
        opt = m.optimizer
        if not opt.built:
            opt.build(m._params, m._slots)
        for a in opt.variables:
            self._bcast(a)
        scalars = self._bcast(np.array([opt.iterations, m._seed] + [d.stream_seed for d in dropouts] +
                                       ([flow.seed, flow.epoch, flow.batch_index] if flow is not None else []),
                                       np.int64))
        opt.iterations, m._seed = int(scalars[0]), int(scalars[1])
        for d, s in zip(dropouts, scalars[2:]):
            d.stream_seed = int(s)
        if flow is not None:
            flow.seed, flow.epoch, flow.batch_index = (int(v) for v in scalars[-3:])
            flow._order_epoch = None
        lr = self._bcast(np.array([opt.learning_rate], np.float64))
        opt.learning_rate = float(lr[0])

    def callbacks(self, cbs):
        """The callbacks this rank runs: rank 0 all, the others all but the rank-0-only
        ones (checkpoints, CSV logs, progress). Returns (kept, muted): the verbose flag of
        the muted ones is set to 0 until ``restore``."""
        if self.rank == 0:
            return list(cbs), []
        kept = [c for c in cbs if type(c).__name__ not in _RANK0_ONLY and not getattr(c, "rank_zero_only", False)]
        muted = [(c, c.verbose) for c in kept if isinstance(getattr(c, "verbose", None), int)]
        for c, _ in muted:
            c.verbose = 0
        return kept, muted

    @staticmethod
    def restore(muted):
        for c, v in muted:
            c.verbose = v

    # ---- per step
    def part(self, start, stop):
        return _sharding.rank_part(start, stop, self.size, self.rank)

    def counts(self, n_local):
        """(global batch size, samples on lower ranks) for batches drawn by each rank
        from its own generator (one small Allgather per step)."""
        every = np.empty(self.size, np.int64)
        self.comm.Allgather(np.array([n_local], np.int64), every)
        return int(every.sum()), int(every[:self.rank].sum())

    def allreduce(self, buf, extra=None):
        """The step's one in-place Allreduce (sum) of the gradient arena with its spare
        floats; a second, small one only when ``extra`` did not fit in the spares."""
        t0 = time.perf_counter()
        self.comm.Allreduce(_MPI.IN_PLACE, buf, op=_MPI.SUM)
        if extra is not None:
            self.comm.Allreduce(_MPI.IN_PLACE, extra, op=_MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - t0
        self.steps += 1

    # ---- per epoch
    def average_state(self):
        """Non-trainable state (batch-norm moving statistics), averaged over ranks."""
        st = self.model._state
        if any(not s.trainable for s in self.model._specs):
            self.comm.Allreduce(_MPI.IN_PLACE, st, op=_MPI.SUM)
            st *= np.float32(1.0 / self.size)

    def evaluate(self, vx, vy, batch_size):
        """Validation split into contiguous per-rank parts; the sums reduced once."""
        m = self.model
        lo, hi = self.part(0, len(vx))
        names = ["loss"] + [f.__name__ for f in m.compiled_metrics]
        sums = np.zeros(len(names) + 1, np.float64)
        if hi > lo:
            local, n = m._evaluate_sums(vx[lo:hi], vy[lo:hi], batch_size)
            sums[:-1] = [local[k] for k in names]
            sums[-1] = n
        self.comm.Allreduce(_MPI.IN_PLACE, sums, op=_MPI.SUM)
        n = max(sums[-1], 1.0)
        return {k: float(sums[j] / n) for j, k in enumerate(names)}

    def epoch_end(self, stop):
        """True when any rank wants to stop; checks that every rank holds the same
        weights (CRC-32 of the parameter arena) and re-syncs from rank 0 if not."""
        m = self.model
        mine = np.array([int(bool(stop)), zlib.crc32(memoryview(m._params).cast("B"))], np.int64)
        every = np.empty((self.size, 2), np.int64)
        self.comm.Allgather(mine, every)
        if (every[:, 1] != every[0, 1]).any():
            if self.rank == 0:
                warnings.warn("fit(distributed=True): the ranks' weights differed at the end of an epoch "
                              "(the MPI library's Allreduce did not return the same bits on every rank); "
                              "re-synchronised from rank 0", RuntimeWarning, stacklevel=3)
            for a in [m._params] + m.optimizer.variables:
                self._bcast(a)
        return bool(every[:, 0].any())

    def finish(self):
        _last_stats.clear()
        _last_stats.update(steps=self.steps, allreduce_seconds=self.allreduce_seconds, ranks=self.size,
                           gradient_bytes=int(self.model._params.size * 4))
