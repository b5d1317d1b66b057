"""Problem strings, their arithmetic and their data (NumPy only: the peer worker
processes import this module too, so it must not run fastnn kernels).

Format, as oneDNN's benchdnn: ``kind:tokens`` where tokens are ``_``-separated runs of
``name<int>`` pairs, optionally led by one word that picks a direction or algorithm::

    gemm:m1024n1024k1024                        C = A B, A (m, k), B (k, n)
    conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2  forward + backward (weights, bias, data)
    conv:fwd_mb32_ih56_ic64oc64_kh3_ph1         forward only; also bwdd (data), bwdw (weights)
    conv:..._dx0                                forward + backward without the data gradient
    pool:max_mb86_ih28iw28_ic32_kh2_sh2         max (or avg) pooling forward + backward
    lstm:fwdbwd_mb64_t100_i512_h512             ops.lstm_forward (+ lstm_backward); also fwd
    cnn_train:mb86   cnn_predict:mb86           the workbook CNN: one training step, predict
                                                (a timed call fits nb batches: nb10 by default)
    lstm_train:mb32_t15_i1_h20                  the workbook LSTM: one training step (nb20)
    lstm_predict:mb1_t15_i1_h20                 the workbook LSTM: predict
    augment:mb86_ih28iw28_ic1                   ImageDataGenerator.flow, one batch

Omitted sizes default as benchdnn's do: iw = ih, kw = kh, sw = sh, pw = ph, mb = 1,
sh = 1 (pool: sh = kh), ph = 0.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# kind -> (allowed keys, required keys, allowed leading words, default word)
_KINDS = {
    "gemm": ({"m", "n", "k"}, {"m", "n", "k"}, (), None),
    "conv": ({"mb", "ih", "iw", "ic", "oc", "kh", "kw", "sh", "sw", "ph", "pw", "dx"},
             {"ih", "ic", "oc", "kh"}, ("fwdbwd", "fwd", "bwdd", "bwdw"), "fwdbwd"),
    "pool": ({"mb", "ih", "iw", "ic", "kh", "kw", "sh", "sw", "ph", "pw"}, {"ih", "ic", "kh"}, ("max", "avg"), "max"),
    "lstm": ({"mb", "t", "i", "h"}, {"t", "i", "h"}, ("fwdbwd", "fwd"), "fwdbwd"),
    "cnn_train": ({"mb", "nb"}, {"mb"}, (), None),
    "cnn_predict": ({"mb"}, {"mb"}, (), None),
    "lstm_train": ({"mb", "t", "i", "h", "nb"}, {"mb", "t", "i", "h"}, (), None),
    "lstm_predict": ({"mb", "t", "i", "h"}, {"mb", "t", "i", "h"}, (), None),
    "augment": ({"mb", "ih", "iw", "ic"}, {"mb", "ih", "ic"}, (), None),
}

#: the workbook models' fixed architecture (see fastnn.demo.build_mnist_cnn and
#: fastnn.bench.workloads.build_fastnn_lstm); the problem string only sets the batch.
CNN_BATCHES_PER_STEP = 10      # a timed cnn_train call is fit over this many batches
LSTM_BATCHES_PER_STEP = 20


@dataclass
class Problem:
    kind: str
    params: dict
    name: str
    word: str | None = None          # direction / algorithm (conv, pool, lstm)

    @property
    def flops(self) -> float | None:
        """Floating-point operations of one timed unit (one call, or one batch for the
        training steps and augmentation), counting a multiply-add as 2; None where the
        work is not arithmetic (pooling, augmentation)."""
        p, w = self.params, self.word
        if self.kind == "gemm":
            return 2.0 * p["m"] * p["n"] * p["k"]
        if self.kind == "conv":
            fwd = conv_fwd_flops(p)
            if w == "fwdbwd":
                return fwd * (2 + (1 if p["dx"] else 0))
            return fwd
        if self.kind == "lstm":
            fwd = lstm_fwd_flops(p["mb"], p["t"], p["i"], p["h"])
            return fwd * (3 if w == "fwdbwd" else 1)
        if self.kind in ("cnn_train", "cnn_predict"):
            fwd, first_dx = cnn_fwd_flops(p["mb"])
            return fwd if self.kind == "cnn_predict" else 3 * fwd - first_dx
        if self.kind in ("lstm_train", "lstm_predict"):
            fwd = lstm_fwd_flops(p["mb"], p["t"], p["i"], p["h"]) + 2.0 * p["mb"] * p["h"]
            return fwd if self.kind == "lstm_predict" else 3 * fwd
        return None

    @property
    def per_call(self) -> int:
        """How many units one timed call performs (times are reported per unit)."""
        if self.kind == "cnn_train":
            return self.params.get("nb", CNN_BATCHES_PER_STEP)
        if self.kind == "lstm_train":
            return self.params.get("nb", LSTM_BATCHES_PER_STEP)
        return 1


def conv_out(p):
    P = (p["ih"] + 2 * p["ph"] - p["kh"]) // p["sh"] + 1
    Q = (p["iw"] + 2 * p["pw"] - p["kw"]) // p["sw"] + 1
    return P, Q


def conv_fwd_flops(p):
    P, Q = conv_out(p)
    return 2.0 * p["mb"] * P * Q * p["oc"] * p["kh"] * p["kw"] * p["ic"]


def lstm_fwd_flops(mb, t, i, h):
    return 2.0 * mb * t * (i + h) * 4 * h


#: the workbook CNN's layers as conv problem parameters (28x28x1 input, 'same' padding)
WORKBOOK_CNN_CONVS = [dict(ih=28, iw=28, ic=1, oc=32, kh=5, kw=5, sh=1, sw=1, ph=2, pw=2, dx=0),
                      dict(ih=28, iw=28, ic=32, oc=32, kh=5, kw=5, sh=1, sw=1, ph=2, pw=2, dx=1),
                      dict(ih=14, iw=14, ic=32, oc=64, kh=3, kw=3, sh=1, sw=1, ph=1, pw=1, dx=1),
                      dict(ih=14, iw=14, ic=64, oc=64, kh=3, kw=3, sh=1, sw=1, ph=1, pw=1, dx=1)]


def cnn_fwd_flops(mb):
    """(forward flops, the first layer's data-gradient flops that training skips)."""
    convs = [conv_fwd_flops(dict(c, mb=mb)) for c in WORKBOOK_CNN_CONVS]
    dense = 2.0 * mb * (7 * 7 * 64 * 256 + 256 * 10)
    return sum(convs) + dense, convs[0]


_TOKEN = re.compile(r"(?:[a-z]+\d+)+")


def parse_problem(text: str) -> Problem:
    """Parse a problem string (see the module docstring); ValueError naming the problem
    and what is wrong when it does not parse."""
    if not isinstance(text, str):
        raise TypeError(f"problem: expected a string, got {type(text).__name__}")
    kind, sep, body = text.partition(":")
    if not sep or kind not in _KINDS:
        raise ValueError(f"problem: unknown kind {kind!r} in {text!r} (expected one of {', '.join(_KINDS)})")
    allowed, required, words, default_word = _KINDS[kind]
    tokens = body.split("_") if body else []
    word = default_word
    if tokens and tokens[0].isalpha():
        if tokens[0] not in words:
            raise ValueError(f"problem: {kind} takes {'one of ' + ', '.join(words) if words else 'no word'} "
                             f"before the sizes, got {tokens[0]!r} in {text!r}")
        word = tokens.pop(0)
    params = {}
    for tok in tokens:
        if not _TOKEN.fullmatch(tok):
            raise ValueError(f"problem: cannot parse {tok!r} in {text!r} (expected name<int> pairs like mb86)")
        for k, v in re.findall(r"([a-z]+)(\d+)", tok):
            if k not in allowed:
                raise ValueError(f"problem: unknown {kind} key {k!r} in {text!r} (allowed: {', '.join(sorted(allowed))})")
            if k in params:
                raise ValueError(f"problem: key {k!r} given twice in {text!r}")
            params[k] = int(v)
    missing = required - set(params)
    if missing:
        raise ValueError(f"problem: {kind} needs {', '.join(sorted(missing))} in {text!r}")
    if kind in ("conv", "pool"):
        params.setdefault("mb", 1)
        params.setdefault("iw", params["ih"])
        params.setdefault("kw", params["kh"])
        if "sh" in params:
            params.setdefault("sw", params["sh"])
        params.setdefault("sh", 1 if kind == "conv" else params["kh"])
        params.setdefault("sw", 1 if kind == "conv" else params["kw"])
        params.setdefault("ph", 0)
        params.setdefault("pw", params["ph"])
        if kind == "conv":
            params.setdefault("dx", 1)
            if params["dx"] not in (0, 1):
                raise ValueError(f"problem: dx must be 0 or 1, got {params['dx']} in {text!r}")
            if word == "bwdd" and params["dx"] == 0:
                raise ValueError(f"problem: bwdd computes the data gradient, dx0 contradicts it in {text!r}")
    if kind == "lstm":
        params.setdefault("mb", 1)
    if kind == "augment":
        params.setdefault("iw", params["ih"])
    if any(v < 1 for k, v in params.items() if k not in ("ph", "pw", "dx")):
        raise ValueError(f"problem: sizes must be >= 1 in {text!r}")
    if kind in ("conv", "pool"):
        P, Q = conv_out(params)
        if P < 1 or Q < 1:
            raise ValueError(f"problem: empty output ({P}x{Q}) in {text!r}")
    return Problem(kind, params, text, word)


# ---------------------------------------------------------------------------
# data: a deterministic function of (problem, seed) so every process builds the same


def make_data(prob: Problem, seed: int = 0) -> dict:
    rs = np.random.default_rng([seed, sum(map(ord, prob.name))])
    p = prob.params
    f32 = np.float32
    if prob.kind == "gemm":
        return {"a": rs.standard_normal((p["m"], p["k"]), dtype=f32),
                "b": rs.standard_normal((p["k"], p["n"]), dtype=f32)}
    if prob.kind == "conv":
        P, Q = conv_out(p)
        return {"x": rs.standard_normal((p["mb"], p["ih"], p["iw"], p["ic"]), dtype=f32),
                "w": (rs.standard_normal((p["kh"], p["kw"], p["ic"], p["oc"]), dtype=f32)
                      / np.sqrt(p["kh"] * p["kw"] * p["ic"])).astype(f32),
                "b": rs.standard_normal(p["oc"], dtype=f32),
                "dy": rs.standard_normal((p["mb"], P, Q, p["oc"]), dtype=f32)}
    if prob.kind == "pool":
        P, Q = conv_out(p)
        return {"x": rs.standard_normal((p["mb"], p["ih"], p["iw"], p["ic"]), dtype=f32),
                "dy": rs.standard_normal((p["mb"], P, Q, p["ic"]), dtype=f32)}
    if prob.kind == "lstm":
        i, h = p["i"], p["h"]
        s = 1.0 / np.sqrt(h)
        return {"x": rs.standard_normal((p["mb"], p["t"], i), dtype=f32),
                "kernel": (rs.uniform(-s, s, (i, 4 * h))).astype(f32),
                "recurrent_kernel": (rs.uniform(-s, s, (h, 4 * h))).astype(f32),
                "bias": (rs.uniform(-s, s, 4 * h)).astype(f32),
                "dh": rs.standard_normal((p["mb"], p["t"], h), dtype=f32)}
    if prob.kind in ("cnn_train", "cnn_predict"):
        n = p["mb"] * prob.per_call
        labels = rs.integers(0, 10, n)
        return {"x": rs.random((n, 28, 28, 1), dtype=f32), "labels": labels,
                "y": np.eye(10, dtype=f32)[labels]}
    if prob.kind in ("lstm_train", "lstm_predict"):
        n = p["mb"] * prob.per_call
        return {"x": rs.random((n, p["t"], p["i"]), dtype=f32), "y": rs.random((n, 1), dtype=f32)}
    if prob.kind == "augment":
        return {"x": rs.random((max(2000, p["mb"]), p["ih"], p["iw"], p["ic"]), dtype=f32)}
    raise ValueError(prob.kind)


def max_rel_err(ours, theirs) -> float:
    """max |a - b| / max |b| over the pairs of arrays (None entries skipped)."""
    errs = []
    if len(ours) != len(theirs):
        raise ValueError(f"verify: {len(ours)} arrays against {len(theirs)}")
    for u, v in zip(ours, theirs):
        if u is None or v is None:
            continue
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        if u.shape != v.shape:
            return float("inf")
        if u.size == 0:
            continue
        errs.append(float(np.max(np.abs(u - v)) / max(float(np.max(np.abs(v))), 1e-30)))
    return max(errs) if errs else 0.0


def tolerance(prob: Problem) -> float:
    """Relative tolerance of the verification (float32 results of different orders)."""
    if prob.kind == "gemm":
        return 1e-4 * max(1.0, np.sqrt(prob.params["k"] / 256))
    if prob.kind == "lstm":
        return 1e-3
    return 2e-4 if prob.kind in ("cnn_train", "cnn_predict", "lstm_train", "lstm_predict") else 1e-3
