"""Problem descriptors, peers, interleaved timing and reports."""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import fastnn
from fastnn import _core, ops

# ---------------------------------------------------------------------------
# problem descriptors


@dataclass
class Problem:
    kind: str
    params: dict
    name: str = ""

    @property
    def flops(self) -> float:
        p = self.params
        if self.kind == "gemm":
            return 2.0 * p["m"] * p["n"] * p["k"]
        if self.kind == "conv":
            P, Q = conv_out(p)
            fwd = 2.0 * p["mb"] * P * Q * p["oc"] * p["kh"] * p["kw"] * p["ic"]
            # forward + backward-weight (+ backward-data unless the input needs no gradient)
            return fwd * (2 + (1 if p.get("dx", 1) else 0))
        raise ValueError(self.kind)


_CONV_KEYS = {"mb", "ih", "iw", "ic", "oc", "kh", "kw", "sh", "sw", "ph", "pw", "dx"}


def parse_problem(text: str) -> Problem:
    """Parse 'gemm:m1024n1024k1024' or 'conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2'."""
    kind, _, body = text.partition(":")
    pairs = re.findall(r"([a-z]+)(\d+)", body)
    if not body or not pairs:
        raise ValueError(f"problem: cannot parse {text!r}")
    params = {k: int(v) for k, v in pairs}
    if kind == "gemm":
        if set(params) != {"m", "n", "k"}:
            raise ValueError(f"problem: gemm needs m, n, k, got {text!r}")
    elif kind == "conv":
        unknown = set(params) - _CONV_KEYS
        if unknown:
            raise ValueError(f"problem: unknown conv keys {sorted(unknown)} in {text!r}")
        params.setdefault("mb", 1)
        params.setdefault("iw", params.get("ih"))
        params.setdefault("kw", params.get("kh"))
        params.setdefault("sh", 1)
        params.setdefault("sw", params["sh"])
        params.setdefault("ph", 0)
        params.setdefault("pw", params["ph"])
        params.setdefault("dx", 1)
    else:
        raise ValueError(f"problem: unknown kind {kind!r} (expected gemm or conv)")
    return Problem(kind, params, text)


def conv_out(p):
    P = (p["ih"] + 2 * p["ph"] - p["kh"]) // p["sh"] + 1
    Q = (p["iw"] + 2 * p["pw"] - p["kw"]) // p["sw"] + 1
    return P, Q


# ---------------------------------------------------------------------------
# implementations: each returns (setup(): state, run(state) -> result arrays (numpy))


def _fastnn_impl(prob: Problem, data):
    p = prob.params
    if prob.kind == "gemm":
        a, b = data
        return lambda: _core.matmul(a, b), lambda out: out
    x, w, b, dy = data
    stride, pad = (p["sh"], p["sw"]), (p["ph"], p["pw"])
    need_dx = bool(p["dx"])

    def step():
        y = ops.conv2d(x, w, b, stride=stride, padding=pad)
        dx, dw, db = ops.conv2d_backward(dy, x, w, stride=stride, padding=pad, need_dx=need_dx)
        return y, dx, dw, db

    def canon(out):
        return out
    return step, canon


def _torch_impls(prob: Problem, data):
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(fastnn.get_num_threads())
    p = prob.params
    impls = {}
    if prob.kind == "gemm":
        a, b = (torch.from_numpy(v) for v in data)
        impls["torch"] = (lambda: torch.mm(a, b), lambda out: out.numpy())
        return impls
    x, w, b, dy = data
    stride, pad = (p["sh"], p["sw"]), (p["ph"], p["pw"])
    for fmt in ("nchw", "channels_last"):
        mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=mf)
        xt.requires_grad_(bool(p["dx"]))
        wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=mf).requires_grad_(True)
        bt = torch.from_numpy(b).requires_grad_(True)
        dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=mf)

        def step(xt=xt, wt=wt, bt=bt, dyt=dyt):
            xt.grad = wt.grad = bt.grad = None
            y = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
            y.backward(dyt)
            return y, xt.grad, wt.grad, bt.grad

        def canon(out):
            y, dx, dw, db = out
            return (y.detach().permute(0, 2, 3, 1).numpy(),
                    None if dx is None else dx.permute(0, 2, 3, 1).numpy(),
                    dw.permute(2, 3, 1, 0).numpy(), db.numpy())
        impls["torch_" + fmt] = (step, canon)
    return impls


def _make_data(prob: Problem, rs):
    p = prob.params
    if prob.kind == "gemm":
        return (rs.standard_normal((p["m"], p["k"]), dtype=np.float32),
                rs.standard_normal((p["k"], p["n"]), dtype=np.float32))
    P, Q = conv_out(p)
    x = rs.standard_normal((p["mb"], p["ih"], p["iw"], p["ic"]), dtype=np.float32)
    w = (rs.standard_normal((p["kh"], p["kw"], p["ic"], p["oc"]), dtype=np.float32)
         / np.sqrt(p["kh"] * p["kw"] * p["ic"])).astype(np.float32)
    b = rs.standard_normal(p["oc"], dtype=np.float32)
    dy = rs.standard_normal((p["mb"], P, Q, p["oc"]), dtype=np.float32)
    return x, w, b, dy


def _max_rel_err(a, b):
    errs = []
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        if u is None or v is None:
            continue
        u = np.asarray(u, np.float64)
        v = np.asarray(v, np.float64)
        errs.append(float(np.max(np.abs(u - v)) / max(np.max(np.abs(v)), 1e-30)))
    return max(errs) if errs else 0.0


def _time_interleaved(fns: dict, rounds: int, min_time: float = 0.02):
    """Median/min/max seconds per call, impls interleaved A B A B ..."""
    # warm-up and per-impl repeat count so one sample takes >= min_time
    reps = {}
    for name, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        reps[name] = max(1, int(min_time / max(dt, 1e-7)))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            r = reps[name]
            t0 = time.perf_counter()
            for _ in range(r):
                fn()
            samples[name].append((time.perf_counter() - t0) / r)
    return {name: (statistics.median(s), min(s), max(s)) for name, s in samples.items()}


# ---------------------------------------------------------------------------

GEMM_PROBLEMS = [f"gemm:m{n}n{n}k{n}" for n in (256, 512, 1024, 2048)]
WORKBOOK_CONVS = [
    "conv:mb86_ih28iw28_ic1oc32_kh5kw5_sh1_ph2_dx0",   # first layer: the input needs no gradient
    "conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2",
    "conv:mb86_ih14iw14_ic32oc64_kh3kw3_sh1_ph1",
    "conv:mb86_ih14iw14_ic64oc64_kh3kw3_sh1_ph1",
]


@dataclass
class Result:
    problem: str
    threads: int
    times: dict = field(default_factory=dict)   # impl -> (median, min, max) seconds
    errors: dict = field(default_factory=dict)  # peer -> max relative error vs fastnn
    gflops: float = 0.0


def run(problems, threads=(1, 2), rounds=15, verbose=True, seed=0):
    results = []
    rs = np.random.default_rng(seed)
    for text in problems:
        prob = parse_problem(text)
        data = _make_data(prob, rs)
        for nt in threads:
            fastnn.set_num_threads(nt)
            impls = {"fastnn": _fastnn_impl(prob, data)}
            impls.update(_torch_impls(prob, data))
            res = Result(text, nt)
            ours = impls["fastnn"][1](impls["fastnn"][0]())
            for name, (fn, canon) in impls.items():
                if name == "fastnn":
                    continue
                err = _max_rel_err(ours, canon(fn()))
                res.errors[name] = err
                if err > 1e-3:
                    raise RuntimeError(f"{text}: fastnn and {name} disagree (max rel err {err:.2e})")
            res.times = _time_interleaved({k: v[0] for k, v in impls.items()}, rounds)
            res.gflops = prob.flops / res.times["fastnn"][0] / 1e9
            results.append(res)
            if verbose:
                line = f"{text:<52} t={nt} fastnn {res.times['fastnn'][0] * 1e3:8.2f} ms {res.gflops:7.1f} GF/s"
                for k, v in res.times.items():
                    if k != "fastnn":
                        line += f" | {k} {v[0] * 1e3:.2f} ms (x{v[0] / res.times['fastnn'][0]:.2f})"
                print(line, flush=True)
    return results


def machine_info(peaks):
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": _cpu_name(), "cores": os.cpu_count(), "fastnn": fastnn.build_info(),
            "fma_peak_gflops": peaks}
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(results, peaks):
    lines = ["| problem | threads | fastnn ms (min–max) | GFLOP/s | % FMA peak | PyTorch best ms | PyTorch/fastnn |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        med, lo, hi = r.times["fastnn"]
        peers = {k: v for k, v in r.times.items() if k != "fastnn"}
        best = min(peers.items(), key=lambda kv: kv[1][0]) if peers else None
        peak = peaks.get(str(r.threads)) or peaks.get(r.threads)
        pct = f"{100 * r.gflops / peak:.0f}%" if peak else "–"
        pb = f"{best[1][0] * 1e3:.2f} ({best[0].replace('torch_', '')})" if best else "–"
        ratio = f"{best[1][0] / med:.2f}×" if best else "–"
        lines.append(f"| `{r.problem}` | {r.threads} | {med * 1e3:.2f} ({lo * 1e3:.2f}–{hi * 1e3:.2f}) | "
                     f"{r.gflops:.1f} | {pct} | {pb} | {ratio} |")
    return "\n".join(lines)


def markdown_models(results):
    lines = ["| workload | threads | fastnn | PyTorch (NCHW) | PyTorch channels_last | best PyTorch / fastnn |",
             "|---|---|---|---|---|---|"]
    for r in results:
        t = r["times"]
        if "images_per_s" in r:
            lines.append(f"| `{r['problem']}` | {r['threads']} | {r['images_per_s']:,.0f} images/s "
                         f"({t['fastnn'][0] * 1e3:.2f} ms/batch) | – | – | – |")
            continue
        ours = t["fastnn"][0]
        keys = ("torch_nchw", "torch_channels_last") if "torch_nchw" in t else ("torch", "torch_channels_last")
        cells = [f"{t[k][0] * 1e3:.3f} ms" if k in t else "–" for k in keys]
        peers = [t[k][0] for k in keys if k in t]
        ratio = f"{min(peers) / ours:.2f}×" if peers else "–"
        lines.append(f"| `{r['problem']}` | {r['threads']} | {ours * 1e3:.3f} ms | {cells[0]} | {cells[1]} | {ratio} |")
    return "\n".join(lines)


def conv_summary(results, threads):
    rows = [r for r in results if r.problem in WORKBOOK_CONVS and r.threads == threads]
    if len(rows) != len(WORKBOOK_CONVS):
        return None
    ours = sum(r.times["fastnn"][0] for r in rows)
    out = {"threads": threads, "fastnn_ms": ours * 1e3}
    for fmt in ("torch_nchw", "torch_channels_last"):
        if all(fmt in r.times for r in rows):
            out[fmt + "_ms"] = sum(r.times[fmt][0] for r in rows) * 1e3
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="fastnn bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer problems and rounds (< 2 min)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per problem")
    ap.add_argument("--problems", nargs="*", default=None,
                    help="problem strings, e.g. gemm:m512n512k512 conv:mb8_ih28_ic32oc32_kh5_ph2")
    ap.add_argument("--suite", choices=("all", "kernels", "models"), default="all",
                    help="kernels (GEMM, conv layers), models (workbook CNN step, inference, augmentation) or all")
    ap.add_argument("--out", default=os.path.join("bench", "results"), help="directory for JSON / Markdown")
    args = ap.parse_args(argv)
    threads = tuple(int(t) for t in args.threads.split(","))
    if any(t < 1 for t in threads):
        ap.error("--threads: expected positive integers")
    problems = args.problems
    if problems is None:
        problems = (GEMM_PROBLEMS[:3] + WORKBOOK_CONVS) if args.quick else (GEMM_PROBLEMS + WORKBOOK_CONVS)
    rounds = args.rounds or (5 if args.quick else 15)
    peaks = {str(t): _core.measure_fma_peak(t, 0.2) for t in threads}
    print("machine:", _cpu_name(), "| fastnn", fastnn.build_info()["isa"],
          "| FMA peak GFLOP/s:", {k: round(v, 1) for k, v in peaks.items()})
    results = run(problems, threads=threads, rounds=rounds) if args.suite in ("all", "kernels") else []
    model_results = []
    if args.suite in ("all", "models"):
        from .workloads import cnn_workloads, lstm_workloads
        model_results = cnn_workloads(rounds=rounds, threads=max(threads))
        model_results += lstm_workloads(rounds=rounds, threads=max(threads))
    md = markdown(results, peaks) if results else ""
    if model_results:
        md += ("\n\n" if md else "") + markdown_models(model_results)
    summaries = [s for s in (conv_summary(results, t) for t in threads) if s]
    print()
    print(md)
    for s in summaries:
        print(f"\nworkbook CNN conv layers, forward+backward, {s['threads']} thread(s): fastnn {s['fastnn_ms']:.1f} ms"
              + "".join(f" | {k[:-3]} {v:.1f} ms" for k, v in s.items() if k.startswith("torch")))
    os.makedirs(args.out, exist_ok=True)
    payload = {"machine": machine_info(peaks), "command": "fastnn bench " + " ".join(argv or sys.argv[1:]),
               "results": [r.__dict__ for r in results], "conv_summary": summaries, "models": model_results}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (os.path.join(args.out, f"kernels-{stamp}.json"), os.path.join(args.out, "kernels-latest.json")):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, path)
    with open(os.path.join(args.out, "kernels-latest.md.tmp"), "w") as f:
        f.write(md + "\n")
    os.replace(os.path.join(args.out, "kernels-latest.md.tmp"), os.path.join(args.out, "kernels-latest.md"))
    print(f"\nwrote {args.out}/kernels-latest.json and kernels-latest.md")
    return 0
