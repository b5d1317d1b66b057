"""Data-parallel throughput of the workbook CNN: 1 rank x T threads vs R ranks x 1 thread.

    python bench/distributed.py [--global-batch 172] [--steps 30] [--ranks 2]

Needs mpi4py and mpirun (Open MPI or MPICH). Trains the workbook CNN
(fastnn.demo.build_mnist_cnn, RMSprop, dropout on) on the bundled MNIST sample with the
same global batch in every configuration, so each optimizer step does the same
arithmetic:

  A  one process, R threads, batch G (plain fit)
  B  R ranks (mpirun, bound to a core each), 1 thread each, batch G / R per rank
     (fit(distributed=True))

and reports images/s over the timed steps (the first 3 are warm-up), the time per
step, the time spent inside the step's Allreduce as fit measured it (which includes
waiting for the slower rank), and a bare Allreduce of the same gradient arena
(median of 50, after a barrier). Results: bench/results/distributed-latest.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WARMUP = 3


def worker(args):
    import fastnn as fnn
    from fastnn import callbacks, optimizers
    from fastnn.data import to_categorical
    from fastnn.datasets import load_mnist
    from fastnn.demo import build_mnist_cnn

    dist = None
    rank, size = 0, 1
    if args.distributed:
        import fastnn.distributed as dist
        rank, size, _ = dist.init(threads_per_rank=args.threads)
    else:
        fnn.set_num_threads(args.threads)
    per_rank = args.global_batch // size
    steps = args.steps + WARMUP
    (x, y), _ = load_mnist()
    n = steps * args.global_batch
    x = (x[:n].astype(np.float32) / np.float32(255.0))[..., None]
    y = to_categorical(y[:n], 10)
    fnn.set_seed(0)
    model = build_mnist_cnn()
    model.compile(optimizer=optimizers.RMSprop(1e-3, rho=0.9, epsilon=1e-8), loss="categorical_crossentropy",
                  metrics=["accuracy"])

    class Clock(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.t = []

        def on_train_batch_end(self, batch, logs=None):
            self.t.append(time.perf_counter())

    clock = Clock()
    model.fit(x, y, batch_size=per_rank, epochs=1, verbose=0, callbacks=[clock], distributed=bool(dist))
    timed = clock.t[WARMUP - 1:]
    seconds = timed[-1] - timed[0]
    out = {"ranks": size, "threads": fnn.get_num_threads(), "batch_per_rank": per_rank,
           "global_batch": args.global_batch, "timed_steps": len(timed) - 1,
           "images_per_s": (len(timed) - 1) * args.global_batch / seconds,
           "ms_per_step": 1e3 * seconds / (len(timed) - 1)}
    if dist is not None:
        from mpi4py import MPI
        stats = dist.last_fit_stats()
        out["fit_allreduce_ms_per_step"] = 1e3 * stats["allreduce_seconds"] / max(stats["steps"], 1)
        out["gradient_bytes"] = stats["gradient_bytes"]
        buf = np.zeros(model._grad_arena.size, np.float32)
        comm = MPI.COMM_WORLD
        times = []
        for _ in range(50):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t0)
        out["bare_allreduce_ms"] = 1e3 * float(np.median(times))
        out["allreduce_bytes"] = int(buf.nbytes)
    if rank == 0:
        with open(args.out, "w") as fh:
            json.dump(out, fh)


def run(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")


def driver(args):
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        sys.exit("bench/distributed.py needs mpirun (e.g. apt-get install openmpi-bin) and mpi4py")
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    openmpi = "Open MPI" in version or "OpenRTE" in version
    flags = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "core"] if openmpi else []
    env = dict(os.environ)
    base = [sys.executable, os.path.abspath(__file__), "--worker", "--global-batch", str(args.global_batch),
            "--steps", str(args.steps)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, cmd, threads in [
            (f"1 rank x {args.ranks} threads", base + ["--threads", str(args.ranks)], args.ranks),
            (f"{args.ranks} ranks x 1 thread", [mpirun] + flags + ["-n", str(args.ranks)] + base +
             ["--threads", "1", "--distributed"], 1),
        ]:
            out = os.path.join(tmp, "r.json")
            env["OMP_NUM_THREADS"] = str(threads)
            run(cmd + ["--out", out], env)
            with open(out) as fh:
                r = json.load(fh)
            r["config"] = label
            results.append(r)
    print(f"workbook CNN, global batch {args.global_batch}, {args.steps} timed steps (after {WARMUP} warm-up), "
          f"{os.cpu_count()} cores")
    print("| configuration | batch per rank | images/s | ms/step | Allreduce in fit, ms/step | bare Allreduce, ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['batch_per_rank']} | {r['images_per_s']:.0f} | {r['ms_per_step']:.1f} | "
              f"{r.get('fit_allreduce_ms_per_step', float('nan')):.2f} | {r.get('bare_allreduce_ms', float('nan')):.2f} |")
    if "allreduce_bytes" in results[-1]:
        print(f"Allreduce buffer: {results[-1]['allreduce_bytes']:,} bytes (gradient arena + 16 spare floats)")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "distributed-latest.json"), "w") as fh:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "results": results}, fh, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--global-batch", type=int, default=172)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.global_batch % args.ranks:
        ap.error("--global-batch must be a multiple of --ranks")
    (worker if args.worker else driver)(args)


if __name__ == "__main__":
    main()
