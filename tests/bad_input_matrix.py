"""The bad-input matrix: every fastnn.ops function, every array argument replaced in
turn by a malformed variant; then (bad_input_api.py) the ops' scalar arguments and
element-count overflow, every layer constructor, models, data helpers, dataset loaders,
fastnn.models.load and the command line. Run in a child process by test_bad_input_matrix.py so a
crash fails the test instead of killing the run.

Each call must either return (possibly NaN/empty results) or raise TypeError,
ValueError or MemoryError. Prints "cases N crashes 0 unexpected K".
"""
import sys
import warnings

import numpy as np

from fastnn import ops

F = np.float32


def _valid_calls():
    rs = np.random.default_rng(0)
    r = lambda *s: rs.standard_normal(s).astype(F)  # noqa: E731
    x4, w4 = r(2, 6, 5, 3), r(3, 3, 3, 4)
    y4 = ops.conv2d(x4, w4, padding=1)
    p, idx = ops.max_pool2d(x4, 2)
    _, win = ops._max_pool2d_window(x4, 2)
    lx, lk, lrk, lb = r(2, 4, 3), r(3, 20), r(5, 20), r(20)
    _, _, _, lcache = ops.lstm_forward(lx, lk, lrk, lb)
    gk, grk, gb = r(3, 15), r(5, 15), r(2, 15)
    _, _, gcache = ops.gru_forward(lx, gk, grk, gb)
    rk, rrk, rb = r(3, 5), r(5, 5), r(5)
    _, _, rcache = ops.rnn_forward(lx, rk, rrk, rb)
    bx = r(8, 4)
    calls = [
        ("conv2d", ops.conv2d, [x4, w4], dict(padding=1)),
        ("conv2d_backward", ops.conv2d_backward, [y4, x4, w4], dict(padding=1)),
        ("max_pool2d", ops.max_pool2d, [x4], {}),
        ("max_pool2d_backward", ops.max_pool2d_backward, [p, idx, x4.shape], {}),
        ("_max_pool2d_inference", ops._max_pool2d_inference, [x4], {}),
        ("_max_pool2d_window", ops._max_pool2d_window, [x4], {}),
        ("_max_pool2d_window_backward", ops._max_pool2d_window_backward, [p, win, x4.shape, 2], {}),
        ("avg_pool2d", ops.avg_pool2d, [x4], {}),
        ("avg_pool2d_backward", ops.avg_pool2d_backward, [p, x4.shape], {}),
        ("dense", ops.dense, [bx, r(4, 3), r(3)], {}),
        ("dense_backward", ops.dense_backward, [r(8, 3), bx, r(4, 3)], {}),
        ("relu", ops.relu, [bx], {}), ("sigmoid", ops.sigmoid, [bx], {}), ("tanh", ops.tanh, [bx], {}),
        ("softmax", ops.softmax, [bx], {}),
        ("relu_backward", ops.relu_backward, [bx, bx], {}),
        ("sigmoid_backward", ops.sigmoid_backward, [bx, bx], {}),
        ("tanh_backward", ops.tanh_backward, [bx, bx], {}),
        ("softmax_backward", ops.softmax_backward, [bx, ops.softmax(bx)], {}),
        ("dropout", ops.dropout, [bx, 0.5, 3], {}),
        ("dropout_backward", ops.dropout_backward, [bx, np.ones((8, 4), np.uint8), 0.5], {}),
        ("batch_norm", ops.batch_norm, [bx, r(4), r(4), np.zeros(4, F), np.ones(4, F)], dict(training=False)),
        ("softmax_cross_entropy", ops.softmax_cross_entropy, [bx, np.arange(8) % 4], {}),
        ("mse", ops.mse, [bx, bx], {}), ("mae", ops.mae, [bx, bx], {}),
        ("lstm_forward", ops.lstm_forward, [lx, lk, lrk, lb], {}),
        ("lstm_backward", ops.lstm_backward, [r(2, 4, 5), lcache], {}),
        ("gru_forward", ops.gru_forward, [lx, gk, grk, gb], {}),
        ("gru_backward", ops.gru_backward, [r(2, 4, 5), gcache], {}),
        ("rnn_forward", ops.rnn_forward, [lx, rk, rrk, rb], {}),
        ("rnn_backward", ops.rnn_backward, [r(2, 4, 5), rcache], {}),
        ("sgd_update", ops.sgd_update, [r(10), r(10), np.zeros(10, F)], dict(lr=0.1, momentum=0.9)),
        ("adam_update", ops.adam_update, [r(10), r(10), np.zeros(10, F), np.zeros(10, F)], dict(lr=0.1, step=1)),
        ("rmsprop_update", ops.rmsprop_update, [r(10), r(10), np.zeros(10, F)], dict(lr=0.1)),
        ("global_norm", ops.global_norm, [[r(10), r(3, 3)]], {}),
    ]
    return calls


def _variants(a):
    """Malformed versions of one array argument."""
    if not isinstance(a, np.ndarray):
        return [None, "abc", 1.5, [1, 2], (), np.zeros(3, object)]
    out = [a.astype(bool), a.astype(complex), a.astype(object), a.astype(np.float64), a.astype(np.int32),
           a[..., None], a.reshape(-1), np.zeros((0,) + a.shape[1:], a.dtype), np.zeros(a.shape[:-1] + (0,), a.dtype),
           np.full(a.shape, np.nan, a.dtype), np.full(a.shape, np.inf, a.dtype), np.asfortranarray(a),
           a[::-1], np.float32(1.0), np.zeros((), a.dtype)]
    if a.ndim >= 1 and a.shape[0] > 1:
        out.append(a[::2])
    ro = a.copy()
    ro.setflags(write=False)
    out.append(ro)
    if a.ndim >= 2 and _overcommit_heuristic():
        # a 2**31-row view whose copy cannot fit in memory: must be MemoryError/ValueError
        out.append(np.lib.stride_tricks.as_strided(a, shape=(2**31,) + a.shape[1:], strides=(0,) + a.strides[1:],
                                                   writeable=False))
    return out


def _overcommit_heuristic():
    """Only where the kernel refuses impossible allocations (Linux default), so the
    huge-view cases fail fast instead of touching memory."""
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            return f.read().strip() in ("0", "2")
    except OSError:
        return False


def run():
    cases = crashes = unexpected = 0
    notes = []
    print("section ops-arrays", flush=True)
    for name, fn, args, kw in _valid_calls():
        for i, a in enumerate(args):
            for v in _variants(a):
                cases += 1
                call = list(args)
                call[i] = v if not isinstance(a, np.ndarray) else (v.copy() if isinstance(v, np.ndarray) and v.flags.writeable and v.size < 10**6 else v)
                try:
                    fn(*call, **kw)
                except (TypeError, ValueError, MemoryError):
                    pass
                except Exception as exc:  # anything else is a defect worth seeing
                    unexpected += 1
                    notes.append(f"{name} arg {i}: {type(exc).__name__}: {exc}")
    per_section = {"ops-arrays": cases}
    returned = {}
    import bad_input_api
    for section, label, thunk, allowed in bad_input_api.cases():
        if section not in per_section:
            print(f"section {section}", flush=True)  # a crash shows where it happened
        per_section[section] = per_section.get(section, 0) + 1
        cases += 1
        try:
            thunk()
            returned[section] = returned.get(section, 0) + 1
        except allowed:
            pass
        except Exception as exc:
            unexpected += 1
            notes.append(f"{section}: {label}: {type(exc).__name__}: {str(exc)[:300]}")
    import shutil
    for d in bad_input_api._TMP:
        shutil.rmtree(d, ignore_errors=True)
    print("cases per section (returned normally):",
          " ".join(f"{k}={v}({returned.get(k, '-')})" for k, v in per_section.items()))
    print(f"cases {cases} crashes {crashes} unexpected {unexpected}")
    for n in notes[:200]:
        print(n)
    return unexpected


if __name__ == "__main__":
    warnings.simplefilter("ignore", RuntimeWarning)  # NaN casts while building variants
    sys.exit(1 if run() else 0)
