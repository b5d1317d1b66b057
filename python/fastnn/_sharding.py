"""How data-parallel training splits an epoch across ranks (pure arithmetic, no MPI).

The rule (also in the README, "Distributed training"): with R ranks and a per-rank
batch B, an epoch's shuffled order is cut into global batches of G = R * B positions,
exactly as a single process with batch G would cut it (the last one holds the
remainder). Rank r trains on the r-th contiguous part of each global batch; the parts
differ by at most one sample, the larger parts going to the higher ranks, and a part is
empty only when the global batch holds fewer than R samples. So every sample is used
once per epoch, and the position of a sample in the epoch's order (which keys its
dropout mask) is the same as in the single-process run with batch G.
"""
from __future__ import annotations


def global_batch(step, global_size, n):
    """Positions [start, stop) of global batch ``step`` in an epoch of ``n`` samples
    (wrapping around like a single-process fit with steps_per_epoch > ceil(n / G))."""
    start = (step * global_size) % n
    return start, min(start + global_size, n)


def rank_part(start, stop, ranks, rank):
    """[lo, hi): rank's contiguous part of the positions [start, stop)."""
    q, extra = divmod(stop - start, ranks)
    small = ranks - extra  # ranks [0, small) hold q samples, the last `extra` ranks q + 1
    lo = start + rank * q + max(0, rank - small)
    return lo, lo + q + (rank >= small)


def gradient_weight(part, total):
    """What a rank's mean gradient over ``part`` samples is multiplied by before the sum
    over ranks, so the sum is the mean over the ``total`` samples of the global batch."""
    return part / total if total else 0.0
