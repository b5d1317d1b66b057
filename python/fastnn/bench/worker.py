"""Peer frameworks run in their own worker process, one per (framework, thread count).

Why: TensorFlow's thread pools and XLA's flags are fixed when the library starts, so a
thread count can only be set reliably in a fresh process; keeping every peer out of
fastnn's process also keeps their OpenMP / Eigen runtimes from sharing one process.

Protocol: the parent writes one JSON object per line to the worker's stdin and reads one
JSON reply per line from a private copy of the worker's stdout (the worker points fd 1 at
stderr so library chatter cannot corrupt the stream). Arrays travel as .npz files
(``allow_pickle=False``) in a temporary directory. Commands:

  {"cmd": "setup", "problem": s, "seed": n, "weights": path|null} -> {"variants": [...]}
  {"cmd": "check", "variant": v, "out": path}                   -> {"n": count}; path holds arr_0..
  {"cmd": "time", "variant": v, "reps": r}                       -> {"dt": seconds per call}
  {"cmd": "release"}  drops the problem;  {"cmd": "quit"}

The parent interleaves rounds: fastnn r calls, then each peer variant r calls (each in
its own process, the others idle, waiting on a pipe), and so on for every round.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import traceback

import numpy as np

FRAMEWORKS = ("torch", "tf", "jax")
MODULES = {"torch": "fastnn.bench.peer_torch", "tf": "fastnn.bench.peer_tf", "jax": "fastnn.bench.peer_jax"}
IMPORT_NAMES = {"torch": "torch", "tf": "tensorflow", "jax": "jax"}


def _env(framework, threads):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2",
               TF_ENABLE_ONEDNN_OPTS="1", KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1")
    if framework == "jax":
        from .peer_jax import env as jax_env
        env.update(jax_env(threads))
    return env


def _save(path, arrays):
    # None entries become empty float32 arrays tagged by the 'none' index list
    none = [i for i, a in enumerate(arrays) if a is None]
    np.savez(path, *[np.zeros(0, np.float32) if a is None else np.asarray(a) for a in arrays],
             none=np.asarray(none, np.int64))


def load_arrays(path):
    with np.load(path, allow_pickle=False) as z:
        none = set(z["none"].tolist())
        n = len(z.files) - 1
        return [None if i in none else z[f"arr_{i}"] for i in range(n)]


def serve(framework, threads):
    """The worker's main loop (``python -m fastnn.bench.worker FRAMEWORK THREADS``)."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def reply(**kw):
        out.write(json.dumps(kw) + "\n")
        out.flush()
    import importlib.util
    if importlib.util.find_spec(IMPORT_NAMES[framework]) is None:
        reply(unavailable=f"{IMPORT_NAMES[framework]} is not installed")
        return
    from .problems import make_data, parse_problem
    try:
        mod = importlib.import_module(MODULES[framework])
        version = mod.setup(threads)
    except Exception as e:
        reply(unavailable=f"setup failed: {type(e).__name__}: {e}".splitlines()[0][:200])
        return
    reply(ready=True, version=version)
    impls = {}
    for line in sys.stdin:
        try:
            req = json.loads(line)
            cmd = req["cmd"]
            if cmd == "quit":
                break
            if cmd == "release":
                impls = {}
                reply(ok=True)
            elif cmd == "setup":
                impls = {}
                prob = parse_problem(req["problem"])
                data = make_data(prob, req["seed"])
                weights = load_arrays(req["weights"]) if req.get("weights") else None
                impls = mod.build(prob, data, weights)
                reply(variants=list(impls))
            elif cmd == "check":
                arrays = impls[req["variant"]][1]()
                _save(req["out"], arrays)
                reply(n=len(arrays))
            elif cmd == "time":
                fn, reps = impls[req["variant"]][0], int(req["reps"])
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn()
                reply(dt=(time.perf_counter() - t0) / reps)
            else:
                reply(error=f"unknown command {cmd!r}")
        except Exception as e:
            reply(error=f"{type(e).__name__}: {e}", trace=traceback.format_exc()[-2000:])


class PeerWorker:
    """The parent's handle on one worker process."""

    def __init__(self, framework, threads, tmpdir):
        self.framework, self.threads, self.tmpdir = framework, threads, tmpdir
        self.version = None
        self.unavailable = None
        self._log = open(os.path.join(tmpdir, f"{framework}-t{threads}.log"), "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "fastnn.bench.worker", framework, str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, bufsize=1, env=_env(framework, threads))
        self._started = False

    def _wait_ready(self):
        if self._started:
            return
        self._started = True
        msg = self._read()
        if "unavailable" in msg:
            self.unavailable = msg["unavailable"]
            self.close()
        else:
            self.version = msg.get("version")

    def available(self):
        self._wait_ready()
        return self.unavailable is None

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self._log.flush()
            tail = open(self._log.name).read()[-1500:]
            raise RuntimeError(f"{self.framework} worker (threads={self.threads}) exited "
                               f"with code {self.proc.returncode}:\n{tail}")
        return json.loads(line)

    def call(self, **req):
        self._wait_ready()
        if self.unavailable:
            raise RuntimeError(f"{self.framework}: {self.unavailable}")
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        msg = self._read()
        if "error" in msg:
            raise RuntimeError(f"{self.framework}: {msg['error']}\n{msg.get('trace', '')}")
        return msg

    def setup(self, problem, seed, weights_path):
        return self.call(cmd="setup", problem=problem, seed=seed, weights=weights_path)["variants"]

    def check(self, variant):
        path = os.path.join(self.tmpdir, f"check-{self.framework}.npz")
        self.call(cmd="check", variant=variant, out=path)
        arrays = load_arrays(path)
        os.remove(path)
        return arrays

    def timer(self, variant):
        return lambda reps: self.call(cmd="time", variant=variant, reps=reps)["dt"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
