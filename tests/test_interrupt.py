"""Ctrl-C during fit: stops at a batch boundary, re-raises KeyboardInterrupt, and leaves
the model consistent and usable (checked in a child process that receives SIGINT)."""
import os
import signal
import subprocess
import sys
import time

import pytest

CHILD = r"""
import sys, numpy as np, fastnn as fnn
from fastnn import layers, callbacks
fnn.set_seed(1)
m = fnn.Sequential([layers.Dense(64, activation="relu", input_shape=(32,)), layers.Dense(4)])
m.compile(optimizer="adam", loss="mse")
x = np.random.default_rng(0).random((2000, 32), dtype=np.float32)
y = np.zeros((2000, 4), np.float32)

class Count(callbacks.Callback):
    done = 0
    def on_train_batch_end(self, batch, logs=None):
        Count.done += 1
        if Count.done == 20:
            print("READY", flush=True)

try:
    m.fit(x, y, batch_size=8, epochs=100000, verbose=0, callbacks=[Count()])
    print("NOT INTERRUPTED", flush=True)
except KeyboardInterrupt:
    its = m.optimizer.iterations
    ok = its == Count.done and np.isfinite(m.predict(x[:3])).all()
    m.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0)   # still trainable
    print("INTERRUPTED", its, Count.done, "consistent" if ok else "INCONSISTENT", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_fit_at_a_batch_boundary():
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "READY", (line, p.stderr.read() if p.poll() is not None else "")
        time.sleep(0.05)
        os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert "INTERRUPTED" in out and "consistent" in out and "INCONSISTENT" not in out, (out, err)
