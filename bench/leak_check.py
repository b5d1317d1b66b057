"""Leak check: resident memory must stay flat over many training steps and op calls.

    python bench/leak_check.py [--steps 3000]

Trains the workbook CNN at batch 86 on random data and reports RSS at step 500 and at
the last step (issue target: growth under 5 MB), then calls every op a few thousand
times and reports the growth over that loop.
"""
import argparse
import ctypes
import gc
import resource
import sys
import time

import numpy as np

import fastnn as fnn
from fastnn import ops


def rss_mb():
    """Resident memory after returning freed heap to the OS (glibc malloc_trim), so the
    figure follows live memory rather than the allocator's free lists."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--op-calls", type=int, default=2000)
    args = ap.parse_args(argv)
    from fastnn.bench.workloads import build_fastnn_cnn

    rs = np.random.default_rng(0)
    model = build_fastnn_cnn()
    x = rs.random((86 * 20, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rs.integers(0, 10, len(x))]
    t0 = time.perf_counter()
    steps, marks = 0, {}
    while steps < args.steps:
        model.fit(x, y, batch_size=86, epochs=1, verbose=0, shuffle=True)
        steps += 20
        if steps >= 500 and 500 not in marks:
            marks[500] = rss_mb()
    marks[steps] = rss_mb()
    growth = marks[steps] - marks[500]
    print(f"workbook CNN, batch 86: RSS {marks[500]:.1f} MB at step 500, {marks[steps]:.1f} MB at step {steps} "
          f"-> growth {growth:+.1f} MB ({time.perf_counter() - t0:.0f} s)")
    a = rs.standard_normal((32, 14, 14, 16)).astype(np.float32)
    w = rs.standard_normal((3, 3, 16, 16)).astype(np.float32)
    seq = rs.standard_normal((8, 10, 4)).astype(np.float32)
    k, rk, b = (rs.standard_normal(s).astype(np.float32) for s in ((4, 32), (8, 32), (32,)))

    def all_ops():
        y = ops.conv2d(a, w, padding="same")
        ops.conv2d_backward(y, a, w, padding="same")
        p, idx = ops.max_pool2d(a, 2)
        ops.max_pool2d_backward(p, idx, a.shape)
        ops.avg_pool2d_backward(ops.avg_pool2d(a, 2), a.shape, 2)
        f = a.reshape(32, -1)
        ops.dense_backward(ops.dense(f, f.T[:, :8].copy()), f, f.T[:, :8].copy())
        ops.softmax_backward(f, ops.softmax(f))
        ops.relu_backward(f, ops.relu(f))
        yd, mask = ops.dropout(f, 0.3, 1)
        ops.dropout_backward(yd, mask, 0.3)
        ops.softmax_cross_entropy(f[:, :10], np.arange(32) % 10)
        _, _, _, cache = ops.lstm_forward(seq, k, rk, b)
        ops.lstm_backward(None, cache, dh_T=np.ones((8, 8), np.float32))

    for _ in range(50):
        all_ops()
    before = rss_mb()
    for _ in range(args.op_calls):
        all_ops()
    after = rss_mb()
    print(f"ops: {args.op_calls} rounds of every op family: RSS {before:.1f} -> {after:.1f} MB "
          f"-> growth {after - before:+.1f} MB")
    return 0 if growth < 5.0 and after - before < 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
