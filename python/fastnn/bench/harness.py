"""Verify, then time: the run loop, interleaved timing and the reports (JSON, Markdown,
PNG). Problem strings are defined in problems.py, fastnn's side in ours.py, each peer's
in peer_*.py, and the peer processes in worker.py."""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

import fastnn
from fastnn import _core

from . import ours
from .problems import Problem, make_data, max_rel_err, parse_problem, tolerance  # noqa: F401
from .worker import FRAMEWORKS, PeerWorker

PEER_LABELS = {"torch": "PyTorch", "tf": "TF/Keras", "jax": "JAX"}

SQUARE_GEMMS = [f"gemm:m{n}n{n}k{n}" for n in (256, 512, 1024, 2048)]
#: GEMM shapes the layers produce: the workbook convs as im2col (M = N*P*Q, N = C_out,
#: K = R*S*C_in), conv 2's weight gradient, the Dense layer, the workbook LSTM's h*U, and
#: the large LSTM's input projection (all steps at once) and one recurrent step.
SKINNY_GEMMS = ["gemm:m67424n32k25", "gemm:m67424n32k800", "gemm:m16856n64k288", "gemm:m16856n64k576",
                "gemm:m800n32k67424", "gemm:m86n256k3136", "gemm:m32n80k20", "gemm:m6400n2048k512",
                "gemm:m64n2048k512"]
WORKBOOK_CONVS = [
    "conv:mb86_ih28iw28_ic1oc32_kh5kw5_sh1_ph2_dx0",   # first layer: the input needs no gradient
    "conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2",
    "conv:mb86_ih14iw14_ic32oc64_kh3kw3_sh1_ph1",
    "conv:mb86_ih14iw14_ic64oc64_kh3kw3_sh1_ph1",
]
CONV56 = "conv:mb32_ih56iw56_ic64oc64_kh3kw3_sh1_ph1"


def _directions(text):
    kind, body = text.split(":")
    out = [text] + [f"{kind}:{d}_{body}" for d in ("fwd", "bwdw")]
    if not body.endswith("_dx0"):
        out.append(f"{kind}:bwdd_{body}")
    return out


CONV_PROBLEMS = [t for c in WORKBOOK_CONVS + [CONV56] for t in _directions(c)]
POOL_PROBLEMS = ["pool:max_mb86_ih28iw28_ic32_kh2_sh2", "pool:max_mb86_ih14iw14_ic64_kh2_sh2",
                 "pool:avg_mb86_ih28iw28_ic32_kh2_sh2"]
LSTM_PROBLEMS = ["lstm:fwd_mb64_t100_i512_h512", "lstm:fwdbwd_mb64_t100_i512_h512"]
MODEL_PROBLEMS = ["cnn_train:mb86", "cnn_predict:mb86", "cnn_predict:mb1", "lstm_train:mb32_t15_i1_h20",
                  "lstm_predict:mb1_t15_i1_h20", "augment:mb86_ih28iw28_ic1"]
FULL = SQUARE_GEMMS + SKINNY_GEMMS + CONV_PROBLEMS + POOL_PROBLEMS + LSTM_PROBLEMS + MODEL_PROBLEMS
#: --quick: one of each family, the training steps over 2 batches per timed call and the
#: large LSTM over 20 steps instead of 100, so that it stays under 2 minutes.
QUICK = ["gemm:m1024n1024k1024", "conv:mb86_ih28iw28_ic32oc32_kh5kw5_sh1_ph2", CONV56,
         "pool:max_mb86_ih28iw28_ic32_kh2_sh2", "lstm:fwdbwd_mb64_t20_i512_h512", "cnn_train:mb86_nb2",
         "cnn_predict:mb86", "cnn_predict:mb1", "lstm_train:mb32_t15_i1_h20_nb5", "lstm_predict:mb1_t15_i1_h20",
         "augment:mb86_ih28iw28_ic1"]
KERNEL_KINDS = ("gemm", "conv", "pool", "lstm")
SUITES = {"kernels": [t for t in FULL if t.split(":")[0] in KERNEL_KINDS], "models": MODEL_PROBLEMS}


@dataclass
class Result:
    problem: str
    threads: int
    times: dict = field(default_factory=dict)    # impl -> (median, min, max) seconds per unit
    errors: dict = field(default_factory=dict)   # peer variant -> max relative error vs fastnn
    notes: list = field(default_factory=list)    # skipped peers, verification failures
    flops: float | None = None                   # per unit
    gflops: float | None = None                  # fastnn's
    rounds: int = 0
    verify_failed: bool = False
    wall: float = 0.0                             # seconds this row took (set-up, verify, timing)

    def peer_best(self, framework=None):
        """(variant, median) of the fastest peer variant (of one framework), or None."""
        cands = [(k, v[0]) for k, v in self.times.items()
                 if k != "fastnn" and (framework is None or framework_of(k) == framework)]
        return min(cands, key=lambda kv: kv[1]) if cands else None

    def ratio(self, framework=None):
        best = self.peer_best(framework)
        return best[1] / self.times["fastnn"][0] if best and "fastnn" in self.times else None


def framework_of(variant):
    if variant.startswith("torch"):
        return "torch"
    if variant.startswith(("tf", "keras")):
        return "tf"
    return variant.split("_")[0]


# ---------------------------------------------------------------------------
# timing


def time_interleaved(timers: dict, rounds: int, min_time: float = 0.02, budget: float | None = None,
                     min_rounds: int = 3, settle: float = 0.01):
    """Median/min/max seconds per call for each timer, interleaved A B C A B C ...

    timers: name -> run(reps) returning the mean seconds per call over reps calls.
    Each is first called once as a warm-up (JIT compilation, caches, allocations) and,
    unless that call alone took 50 x min_time or more (then reps = 1), once more to
    choose reps so one sample lasts >= min_time; then `rounds` rounds, each
    taking one sample of every timer in turn. With a budget (seconds), the rounds are cut
    to fit it, but never below min_rounds; each sample starts after a pause of `settle`
    seconds and one untimed call. Returns ({name: (median, min, max)}, rounds)."""
    reps = {}
    for name, run in timers.items():
        dt = run(1)
        if dt < 50 * min_time:
            dt = run(1)
        reps[name] = max(1, math.ceil(min_time / max(dt, 1e-7))) if dt == dt else 1   # NaN: a failed peer
    samples = {name: [] for name in timers}
    t_start = time.perf_counter()
    done = 0
    while done < rounds:
        for name, run in timers.items():
            # Let the previous framework's worker threads stop spinning (XLA's and TF's
            # pools busy-wait after each call), then one untimed call so that every
            # framework starts its sample warm (threads awake, caches, clocks).
            time.sleep(settle)
            run(1)
            samples[name].append(run(reps[name]))
        done += 1
        if budget is not None and done >= min_rounds:
            elapsed = time.perf_counter() - t_start
            if elapsed / done * (done + 1) > budget:
                break
    return {name: (statistics.median(s), min(s), max(s)) for name, s in samples.items()}, done


# ---------------------------------------------------------------------------
# the run


def run(problems, threads=(1, 2), rounds=15, frameworks=FRAMEWORKS, seed=0, verbose=True, min_time=0.02,
        budget=None, workers=None):
    """Verify and time each problem at each thread count against every installed peer.

    Returns a list of Result. A peer whose result disagrees with fastnn beyond the
    problem's tolerance is not timed; the row records the error and verify_failed."""
    for text in problems:
        parse_problem(text)              # fail early on a typo, before any process starts
    results = []
    with tempfile.TemporaryDirectory(prefix="fastnn-bench-") as tmp:
        for nt in threads:
            fastnn.set_num_threads(nt)
            pool = workers if workers is not None else {fw: PeerWorker(fw, nt, tmp) for fw in frameworks}
            try:
                for fw, w in pool.items():
                    if not w.available() and verbose:
                        print(f"[{PEER_LABELS.get(fw, fw)} skipped at {nt} thread(s): {w.unavailable}]", flush=True)
                for text in problems:
                    res = run_one(text, nt, pool, tmp, rounds=rounds, seed=seed, min_time=min_time, budget=budget)
                    results.append(res)
                    if verbose:
                        print(format_line(res), flush=True)
            finally:
                if workers is None:
                    for w in pool.values():
                        w.close()
    return results


def run_one(text, nt, pool, tmp, rounds=15, seed=0, min_time=0.02, budget=None):
    t_row = time.perf_counter()
    prob = parse_problem(text)
    data = make_data(prob, seed)
    step, check, weights = ours.build(prob, data)
    res = Result(text, nt, flops=prob.flops)
    wpath = None
    if weights is not None:
        wpath = os.path.join(tmp, "weights.npz")
        np.savez(wpath, *weights, none=np.zeros(0, np.int64))
    reference = check()
    timers = {"fastnn": _local_timer(step)}
    for fw, w in pool.items():
        if not w.available():
            continue
        try:
            variants = w.setup(text, seed, wpath)
        except RuntimeError as e:
            res.notes.append(f"{fw}: setup failed: {str(e).splitlines()[0]}")
            continue
        if not variants:
            res.notes.append(f"{PEER_LABELS.get(fw, fw)}: no equivalent of this problem")
        for v in variants:
            try:
                err = max_rel_err(reference, w.check(v))
            except (RuntimeError, ValueError) as e:
                res.notes.append(f"{v}: check failed: {str(e).splitlines()[0]}")
                continue
            res.errors[v] = err
            if not err <= tolerance(prob):
                res.verify_failed = True
                res.notes.append(f"VERIFY FAILED: fastnn vs {v}: max rel err {err:.2e} > {tolerance(prob):.0e}; "
                                 f"{v} not timed")
                continue
            timers[v] = _guarded(w.timer(v), v, res.notes)
    times, res.rounds = time_interleaved(timers, rounds, min_time=min_time, budget=budget)
    for k in [k for k, v in times.items() if not all(math.isfinite(x) for x in v)]:
        del times[k]
    per = prob.per_call
    res.times = {k: tuple(x / per for x in v) for k, v in times.items()}
    if res.flops:
        res.gflops = res.flops / res.times["fastnn"][0] / 1e9
    if prob.kind == "augment":
        res.notes.append(f"fastnn {prob.params['mb'] / res.times['fastnn'][0]:,.0f} images/s")
    for w in pool.values():
        if w.available():
            try:
                w.call(cmd="release")
            except RuntimeError:
                pass
    res.wall = time.perf_counter() - t_row
    return res


def _guarded(timer, variant, notes):
    """A peer's timer that turns a failure (a worker that died or raised) into NaN
    samples and one note, so the row and the rest of the run go on without that peer."""
    def run(reps):
        try:
            return timer(reps)
        except RuntimeError as e:
            msg = f"{variant}: timing failed: {str(e).splitlines()[0]}"
            if msg not in notes:
                notes.append(msg)
            return float("nan")
    return run


def _local_timer(fn):
    def run(reps):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps
    return run


# ---------------------------------------------------------------------------
# reports


def fmt_time(s):
    if s is None:
        return "–"
    if s >= 1.0:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _cell(t):
    med, lo, hi = t
    return f"{fmt_time(med)} ({fmt_time(lo)}–{fmt_time(hi)})"


def format_line(r):
    line = f"{r.problem:<46} t={r.threads} fastnn {fmt_time(r.times['fastnn'][0]):>9}"
    if r.gflops:
        line += f" {r.gflops:6.1f} GF/s"
    for k, v in r.times.items():
        if k != "fastnn":
            line += f" | {k} {fmt_time(v[0])} (x{v[0] / r.times['fastnn'][0]:.2f})"
    for n in r.notes:
        line += f"  [{n}]"
    return line + f"  ({r.wall:.1f} s)"


def markdown(results, peaks):
    head = ("| problem | threads | fastnn median (min–max) | GFLOP/s | % FMA peak | PyTorch | TF/Keras | JAX "
            "| PyTorch / fastnn | best peer / fastnn | notes |")
    lines = [head, "|" + "---|" * 11]
    for r in results:
        peak = peaks.get(str(r.threads)) or peaks.get(r.threads)
        gf = f"{r.gflops:.1f}" if r.gflops else "–"
        pct = f"{100 * r.gflops / peak:.0f}%" if r.gflops and peak else "–"
        cells = []
        for fw in FRAMEWORKS:
            best = r.peer_best(fw)
            if best is None:
                cells.append("–")
            else:
                tag = best[0].replace("torch_", "").replace("channels_last", "cl")
                cells.append(_cell(r.times[best[0]]) + (f" {tag}" if tag not in ("torch", "tf", "jax") else ""))
        rt, rb = r.ratio("torch"), r.ratio()
        best = r.peer_best()
        rts = f"{rt:.2f}×" if rt else "–"
        rbs = f"{rb:.2f}× ({best[0]})" if rb else "–"
        notes = "; ".join(r.notes).replace("|", "/")
        lines.append(f"| `{r.problem}` | {r.threads} | {_cell(r.times['fastnn'])} | {gf} | {pct} | "
                     + " | ".join(cells) + f" | {rts} | {rbs} | {notes} |")
    return "\n".join(lines)


def summaries(results, threads):
    """Derived lines: the workbook conv layers summed, and thread scaling of the CNN step."""
    out = []
    for nt in threads:
        rows = [r for r in results if r.problem in WORKBOOK_CONVS and r.threads == nt]
        if len(rows) == len(WORKBOOK_CONVS):
            s = f"workbook CNN conv layers, forward+backward, {nt} thread(s): fastnn " \
                f"{fmt_time(sum(r.times['fastnn'][0] for r in rows))}"
            for v in sorted({k for r in rows for k in r.times if k != "fastnn"}):
                if all(v in r.times for r in rows):
                    s += f" | {v} {fmt_time(sum(r.times[v][0] for r in rows))}"
            out.append(s)
    if len(threads) > 1:
        lo, hi = min(threads), max(threads)
        for text in ("cnn_train:mb86",):
            a = next((r for r in results if r.problem == text and r.threads == lo), None)
            b = next((r for r in results if r.problem == text and r.threads == hi), None)
            if a and b:
                parts = [f"{k} {a.times[k][0] / b.times[k][0]:.2f}×" for k in a.times if k in b.times]
                out.append(f"{text} scaling {lo} -> {hi} threads: " + ", ".join(parts))
    return out


def plot(results, path):
    """A PNG bar chart of peer / fastnn (PyTorch and best peer) per row; False when
    matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in results if r.ratio() is not None]
    if not rows:
        return False
    labels = [f"{r.problem} t{r.threads}" for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(rows) + 1.5))
    ax.barh(y - 0.2, [r.ratio("torch") or 0 for r in rows], 0.4, label="PyTorch / fastnn")
    ax.barh(y + 0.2, [r.ratio() for r in rows], 0.4, label="best peer / fastnn")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time ratio (> 1: fastnn is faster)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def machine_info(peaks, versions):
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": _cpu_name(),
            "cores": os.cpu_count(), "fastnn": fastnn.build_info(), "fma_peak_gflops": peaks, "peers": versions}


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _peer_versions(frameworks):
    """Installed peer versions, read from package metadata (nothing is imported here)."""
    from importlib import metadata
    dists = {"torch": ["torch"], "tf": ["tensorflow", "tensorflow-cpu"], "jax": ["jax"]}
    out = {}
    for fw in frameworks:
        for d in dists[fw]:
            try:
                out[fw] = metadata.version(d)
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            out[fw] = None
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="fastnn bench", description="Verify fastnn against PyTorch, TensorFlow/Keras "
                                 "and JAX (those installed), then time them interleaved.")
    ap.add_argument("--quick", action="store_true", help="a short subset with fewer rounds (under 2 minutes)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per problem (default 15; 3 with --quick)")
    ap.add_argument("--problems", nargs="+", default=None,
                    help="problem strings, e.g. gemm:m512n512k512 conv:bwdw_mb8_ih28_ic32oc32_kh5_ph2 lstm:fwd_mb8_t20_i16_h32")
    ap.add_argument("--suite", choices=("all", "kernels", "models"), default="all",
                    help="kernels (GEMM, conv, pool, large LSTM), models (workbook CNN / LSTM, augmentation) or all")
    ap.add_argument("--peers", default=",".join(FRAMEWORKS),
                    help=f"comma-separated peers to try (default {','.join(FRAMEWORKS)}); '' for none")
    ap.add_argument("--out", default=os.path.join("bench", "results"), help="directory for JSON / Markdown / PNG")
    args = ap.parse_args(argv)
    try:
        threads = tuple(int(t) for t in args.threads.split(","))
    except ValueError:
        ap.error(f"--threads: expected comma-separated integers, got {args.threads!r}")
    if any(t < 1 for t in threads):
        ap.error("--threads: expected positive integers")
    frameworks = tuple(f for f in args.peers.split(",") if f)
    bad = [f for f in frameworks if f not in FRAMEWORKS]
    if bad:
        ap.error(f"--peers: unknown {bad} (expected some of {', '.join(FRAMEWORKS)})")
    if args.problems is not None:
        problems = args.problems
        for text in problems:
            try:
                parse_problem(text)
            except ValueError as e:
                ap.error(str(e))
    elif args.quick:
        problems = [t for t in QUICK if args.suite == "all"
                    or (t.split(":")[0] in KERNEL_KINDS) == (args.suite == "kernels")]
    else:
        problems = FULL if args.suite == "all" else SUITES[args.suite]
    rounds = args.rounds or (3 if args.quick else 15)
    budget = 2.0 if args.quick else 8.0          # seconds of timed rounds per row (never < 3 rounds)
    min_time = 0.01 if args.quick else 0.02
    t_start = time.perf_counter()
    peaks = {str(t): _core.measure_fma_peak(t, 0.2) for t in threads}
    versions = _peer_versions(frameworks)
    print("machine:", _cpu_name(), "| fastnn", fastnn.__version__, fastnn.build_info()["isa"],
          "| FMA peak GFLOP/s:", {k: round(v, 1) for k, v in peaks.items()},
          "| peers:", ", ".join(f"{PEER_LABELS[k]} {v or 'not installed'}" for k, v in versions.items()) or "none",
          flush=True)
    results = run(problems, threads=threads, rounds=rounds, frameworks=frameworks, min_time=min_time,
                  budget=budget)
    md = markdown(results, peaks)
    extra = summaries(results, threads)
    print()
    print(md)
    for s in extra:
        print("\n" + s)
    elapsed = time.perf_counter() - t_start
    os.makedirs(args.out, exist_ok=True)
    payload = {"machine": machine_info(peaks, versions), "command": "fastnn bench " + " ".join(argv),
               "seconds": elapsed, "settings": {"threads": threads, "rounds": rounds, "min_time_s": min_time,
                                                "budget_s_per_row": budget, "peers": frameworks},
               "results": [r.__dict__ for r in results], "summaries": extra}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (os.path.join(args.out, f"bench-{stamp}.json"), os.path.join(args.out, "bench-latest.json")):
        _write(path, json.dumps(payload, indent=1))
    _write(os.path.join(args.out, "bench-latest.md"), md + "\n" + "".join(f"\n{s}\n" for s in extra))
    wrote = ["bench-latest.json", "bench-latest.md"]
    if plot(results, os.path.join(args.out, "bench-latest.png")):
        wrote.append("bench-latest.png")
    print(f"\nwrote {', '.join(os.path.join(args.out, w) for w in wrote)} ({elapsed:.0f} s)")
    failed = [r.problem for r in results if r.verify_failed]
    if failed:
        print(f"VERIFICATION FAILED for {len(failed)} row(s): {', '.join(sorted(set(failed)))}", file=sys.stderr)
        return 1
    return 0


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
