"""Data-parallel helpers over MPI (optional: ``pip install "pyfastnn[mpi]"``).

Needs mpi4py and an MPI library. Without them, importing this module raises an
ImportError that says what to install; nothing else in fastnn depends on it.

This session provides the process-group basics (init, rank, size, local rank,
barrier). ``model.fit(..., distributed=True)`` is not implemented yet.
"""
from __future__ import annotations

import os

try:
    from mpi4py import MPI as _MPI
except ImportError as exc:  # pragma: no cover - exercised where mpi4py is absent
    raise ImportError(
        "fastnn.distributed needs mpi4py and an MPI implementation: "
        "pip install \"pyfastnn[mpi]\" (and e.g. apt-get install openmpi-bin libopenmpi-dev)"
    ) from exc

from . import _runtime

_state = {"initialized": False, "local_rank": 0}


def init(threads_per_rank=None):
    """Joins the MPI job; sizes the OpenMP pool to the cores per rank on this host."""
    comm = _MPI.COMM_WORLD
    local = comm.Split_type(_MPI.COMM_TYPE_SHARED)
    _state["local_rank"] = local.Get_rank()
    if threads_per_rank is None:
        threads_per_rank = max(1, (os.cpu_count() or 1) // max(1, local.Get_size()))
    _runtime.set_num_threads(threads_per_rank)
    _state["initialized"] = True
    return comm.Get_rank(), comm.Get_size(), _state["local_rank"]


def is_initialized() -> bool:
    return _state["initialized"]


def rank() -> int:
    return _MPI.COMM_WORLD.Get_rank()


def size() -> int:
    return _MPI.COMM_WORLD.Get_size()


def local_rank() -> int:
    return _state["local_rank"]


def barrier() -> None:
    _MPI.COMM_WORLD.Barrier()
