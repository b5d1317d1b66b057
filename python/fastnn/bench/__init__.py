"""fastnn's benchmark harness (``fastnn bench``): verify, then time.

Every problem is named by a readable string in one format, as oneDNN's benchdnn
does (see fastnn/bench/problems.py)::

    gemm:m1024n1024k1024
    conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2        (forward + backward; fwd, bwdd, bwdw)
    lstm:fwdbwd_mb64_t100_i512_h512    cnn_train:mb86    lstm_predict:mb1_t15_i1_h20

For each problem the harness first checks fastnn's result against each peer framework
that is installed (PyTorch, TensorFlow/Keras, JAX; each in its own worker process with
the same thread count), then times all of them in interleaved rounds (A B C A B C ...)
after a warm-up, and reports the median with min/max, the ratio peer/fastnn against
PyTorch and against the best peer, the achieved GFLOP/s and its share of the FMA peak
measured on this machine.
"""
from __future__ import annotations

from .harness import Result, main, run, time_interleaved  # noqa: F401
from .problems import Problem, parse_problem  # noqa: F401
