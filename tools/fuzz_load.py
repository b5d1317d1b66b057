"""Coverage-guided fuzzer (atheris) over everything that reads a file fastnn did not write:
``models.load``, ``Sequential.load_weights``, checkpoint resume (load of a compiled model
with optimizer and callback state), the MNIST IDX / CSV readers and the price CSV reader.

    python tools/fuzz_load.py --seconds 180            # time-boxed run (CI: a few minutes)
    python tools/fuzz_load.py --seconds 60 --corpus DIR # keep the corpus it grows

The seed corpus is real small files, written at start-up (``make_corpus``). The first
input byte picks the target; the rest is the file. Any exception but ValueError /
FileNotFoundError, or a run over 5 s, is a finding: the input is written to
tests/fuzz_findings/ and the fuzzer stops (atheris reports it). Each finding becomes a
case in tests/test_fuzz_regressions.py. Without atheris the same harness runs a
deterministic mutation loop (``--no-atheris``).
"""
from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ("load", "load_weights", "checkpoint", "idx1", "idx3", "mnist_csv", "stock_csv")


def make_corpus(directory):
    """Real small files for every target; returns [(target index, bytes)]."""
    import gzip

    import numpy as np

    import fastnn as fnn
    L = fnn.layers
    os.makedirs(directory, exist_ok=True)
    out = []
    m = fnn.Sequential([L.Conv2D(2, 3, activation="relu", input_shape=(5, 5, 1)), L.BatchNormalization(),
                        L.Flatten(), L.Dropout(0.2, seed=1), L.Dense(2)])
    m.build()
    p = os.path.join(directory, "cnn.fnn")
    m.save(p)
    out.append((0, open(p, "rb").read()))
    r = fnn.Sequential([L.LSTM(2, input_shape=(3, 2)), L.Dense(1)])
    r.build()
    r.save(p)
    out.append((0, open(p, "rb").read()))
    m.save_weights(p)
    out.append((1, open(p, "rb").read()))
    c = fnn.Sequential([L.Dense(3, activation="relu", input_shape=(2,)), L.Dense(2)])
    c.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((6, 2), dtype=np.float32)
    c.fit(x, np.arange(6) % 2, epochs=1, verbose=0,
          callbacks=[fnn.callbacks.EarlyStopping(monitor="loss"), fnn.callbacks.ReduceLROnPlateau(monitor="loss")])
    c.save(p)
    out.append((2, open(p, "rb").read()))
    labels = (0x801).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    out.append((3, labels))
    out.append((3, gzip.compress(labels)))
    img = (0x803).to_bytes(4, "big") + (1).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(784)
    out.append((4, gzip.compress(img)))
    csv = "label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + "3," + ",".join(["0"] * 784) + "\n"
    out.append((5, csv.encode()))
    out.append((6, b"Date,Close\n2020-01-02,1.5\n2020-01-03,1.75\n"))
    for i, (t, data) in enumerate(out):
        with open(os.path.join(directory, f"seed{i:02d}"), "wb") as f:
            f.write(bytes([t]) + data)
    return out


class Harness:
    def __init__(self, workdir):
        import fastnn as fnn
        from fastnn import models
        from fastnn.datasets import _mnist, _stocks
        self.fnn, self.models, self.mnist, self.stocks = fnn, models, _mnist, _stocks
        self.path = os.path.join(workdir, "input")
        L = fnn.layers
        self.wmodel = fnn.Sequential([L.Conv2D(2, 3, activation="relu", input_shape=(5, 5, 1)),
                                      L.BatchNormalization(), L.Flatten(), L.Dropout(0.2, seed=1), L.Dense(2)])
        self.wmodel.build()
        self.execs = 0

    def run(self, data):
        self.execs += 1
        if not data:
            return
        target = TARGETS[data[0] % len(TARGETS)]
        body = data[1:]
        path = self.path + (".csv" if target.endswith("csv") else "")
        with open(path, "wb") as f:
            f.write(body)
        t0 = time.perf_counter()
        try:
            if target in ("load", "checkpoint"):
                m = self.models.load(path)
                if target == "checkpoint" and m.optimizer is not None:
                    m._restore_callback_state([])
            elif target == "load_weights":
                self.wmodel.load_weights(path)
            elif target == "idx1":
                self.mnist._read_idx(path, 1)
            elif target == "idx3":
                self.mnist._read_idx(path, 3)
            elif target == "mnist_csv":
                self.mnist._load_csv(path)
            else:
                self.stocks.load_stock_prices(path=path)
        except (ValueError, FileNotFoundError):
            pass
        finally:
            if time.perf_counter() - t0 > 5:
                raise RuntimeError(f"{target}: {time.perf_counter() - t0:.1f} s on one input (a hang?)")


def _save_finding(data):
    d = os.path.join(os.path.dirname(HERE), "tests", "fuzz_findings")
    os.makedirs(d, exist_ok=True)
    import hashlib
    p = os.path.join(d, hashlib.sha256(data).hexdigest()[:16])
    with open(p, "wb") as f:
        f.write(data)
    return p


def _mutate(rng, data, seeds):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 64)]
        elif op == 2:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 3 and b:
            i = rng.randrange(len(b))
            b[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\x7f\xff\xff\xff", b"9999"])
        elif op == 4:
            other = rng.choice(seeds)
            i = rng.randrange(len(other) + 1)
            b[rng.randrange(len(b) + 1):] = other[i:]
        elif op == 5 and b:  # numbers in JSON text
            i = rng.randrange(len(b))
            b[i:i] = rng.choice([b"1e999", b"-1", b"true", b"null", b"\"x\"", b"[]", b"1099511627776"])
    return bytes(b)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--corpus", default=None, help="corpus directory (default: a temporary one)")
    ap.add_argument("--no-atheris", action="store_true", help="deterministic mutation loop instead")
    ap.add_argument("--seed", type=int, default=0)
    args, rest = ap.parse_known_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = tempfile.mkdtemp(prefix="fastnn-fuzz-")
    corpus = args.corpus or os.path.join(work, "corpus")
    seeds = [bytes([t]) + d for t, d in make_corpus(corpus)]
    h = Harness(work)
    t_end = time.time() + args.seconds
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is None or args.no_atheris:
        rng = random.Random(args.seed)
        pool = list(seeds)
        while time.time() < t_end:
            data = _mutate(rng, rng.choice(pool), seeds)
            try:
                h.run(data)
            except Exception:
                print("FINDING", _save_finding(data), file=sys.stderr)
                raise
        print(f"executions: {h.execs} in {args.seconds} s (mutation loop)")
        return 0

    def one(data):
        if time.time() > t_end:
            print(f"executions: {h.execs} in {args.seconds} s (atheris)", flush=True)
            os._exit(0)
        try:
            h.run(data)
        except Exception:
            print("FINDING", _save_finding(data), file=sys.stderr, flush=True)
            raise

    atheris.instrument_all()  # fastnn is already imported (the corpus): instrument loaded code
    atheris.Setup([sys.argv[0], corpus, "-rss_limit_mb=2048", "-timeout=10"] + rest, one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
