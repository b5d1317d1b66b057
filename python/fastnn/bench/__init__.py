"""fastnn's benchmark harness (``fastnn bench``): verify, then time.

Every problem is named by a readable string in one format, as oneDNN's benchdnn
does::

    gemm:m1024n1024k1024
    conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2        (forward + backward)

For each problem the harness first checks fastnn's result against each peer
framework that is installed (PyTorch for now), then times all of them in
interleaved rounds (A B A B ...) after a warm-up, and reports the median with
min/max, the ratio peer/fastnn, the achieved GFLOP/s and its share of the FMA
peak measured on this machine.
"""
from __future__ import annotations

from .harness import Problem, parse_problem, run, main  # noqa: F401
