"""Max pooling: the public op against the MaxPooling2D layer's private forms, CPU time.

    python bench/maxpool_forms.py [--threads 1] [--reps 200] [--old-core PATH] [--clock wall]

For the workbook CNN's two max pools (batch 86, 2x2 windows, stride 2) it times, as
medians of time.process_time() over --reps calls interleaved round-robin (so a busy
neighbour slows every variant alike):
  public fwd / bwd   ops.max_pool2d (y, int64 idx) / ops.max_pool2d_backward
  window fwd / bwd   ops._max_pool2d_window (y, uint8 offsets) / its backward (training)
  inference          ops._max_pool2d_inference (y only; predict / evaluate)
--old-core PATH loads another build's _core extension (e.g. a copy of main's) and times
its public max_pool2d / max_pool2d_backward beside them, for an old-vs-new comparison
in one process. process_time counts the CPU time of every thread of the process, so
use it with --threads 1; --clock wall times with perf_counter instead (for --threads 2
on a quiet machine).
"""
import argparse
import importlib.util
import time

import numpy as np

import fastnn
from fastnn import ops

SHAPES = [(86, 28, 28, 32), (86, 14, 14, 64)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--old-core", default=None, help="path of another build's _core*.so")
    ap.add_argument("--clock", choices=["process", "wall"], default="process")
    args = ap.parse_args()
    clock = time.process_time if args.clock == "process" else time.perf_counter
    fastnn.set_num_threads(args.threads)
    old = None
    if args.old_core:
        spec = importlib.util.spec_from_file_location("_core", args.old_core)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        old.set_num_threads(args.threads)
    rs = np.random.default_rng(0)
    print(f"threads {args.threads}, reps {args.reps}, median {args.clock} time in microseconds")
    for shape in SHAPES:
        x = rs.standard_normal(shape).astype(np.float32)
        y, idx = ops.max_pool2d(x, 2)
        _, win = ops._max_pool2d_window(x, 2)
        dy = rs.standard_normal(y.shape).astype(np.float32)
        cases = {
            "public fwd": lambda: ops.max_pool2d(x, 2),
            "public bwd": lambda: ops.max_pool2d_backward(dy, idx, x.shape),
            "window fwd": lambda: ops._max_pool2d_window(x, 2),
            "window bwd": lambda: ops._max_pool2d_window_backward(dy, win, x.shape, 2),
            "inference": lambda: ops._max_pool2d_inference(x, 2),
        }
        if old is not None:
            cases["old public fwd"] = lambda: old.max_pool2d(x, 2)
            cases["old public bwd"] = lambda: old.max_pool2d_backward(dy, idx, x.shape)
        times = {k: [] for k in cases}
        for f in cases.values():  # warm up (allocator, caches)
            f()
        for _ in range(args.reps):
            for k, f in cases.items():
                t = clock()
                f()
                times[k].append(clock() - t)
        med = {k: float(np.median(v)) * 1e6 for k, v in times.items()}
        print(f"x {shape}:")
        for k, v in med.items():
            print(f"  {k:15s} {v:8.0f}")
        print(f"  layer training (fwd+bwd): public {med['public fwd'] + med['public bwd']:.0f}, "
              f"window {med['window fwd'] + med['window bwd']:.0f}"
              + (f", old public {med['old public fwd'] + med['old public bwd']:.0f}" if old else ""))


if __name__ == "__main__":
    main()
