"""Peak memory (RSS) of training, fastnn beside PyTorch, each measured in a fresh process.

    python bench/memory.py [--steps 20] [--threads 2] [--no-torch]

Workloads:
  cnn   the workbook digit CNN (demo.build_mnist_cnn, RMSprop, categorical cross-entropy)
        trained at batch 86 on random 28x28x1 images for --steps steps;
  lstm  one LSTM layer, I = H = 512, T = 100, batch 64: forward + backward (twice).
PyTorch runs the same layers (NCHW for the CNN; nn.LSTM for the LSTM) when it is
installed. Each (library, workload) pair runs in its own child process, which reports
  base  RSS after importing the library and creating the input data,
  peak  the process's peak RSS (VmHWM) after the work,
  work  peak - base: what the model, its state and the training itself added.
Prints a table and writes bench/results/memory-latest.json.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _child(lib, workload, steps, threads):
    import numpy as np

    rs = np.random.default_rng(0)
    if lib == "fastnn":
        import fastnn
        fastnn.set_num_threads(threads)
        fastnn.set_seed(0)
    else:
        import torch
        torch.set_num_threads(threads)
        torch.manual_seed(0)
    if workload == "cnn":
        n = 86 * steps
        x = rs.random((n, 28, 28, 1), dtype=np.float32)
        labels = rs.integers(0, 10, n)
        y = np.eye(10, dtype=np.float32)[labels]
    else:
        x = rs.standard_normal((64, 100, 512)).astype(np.float32)
        dh = rs.standard_normal((64, 100, 512)).astype(np.float32)
        k = (rs.standard_normal((512, 2048)) * 0.03).astype(np.float32)
        rk = (rs.standard_normal((512, 2048)) * 0.03).astype(np.float32)
        b = np.zeros(2048, np.float32)
    base = _status_mb("VmRSS")
    t0 = time.perf_counter()
    if lib == "fastnn" and workload == "cnn":
        from fastnn.bench.workloads import build_fastnn_cnn
        model = build_fastnn_cnn()
        model.fit(x, y, batch_size=86, epochs=1, verbose=0, shuffle=True)
    elif lib == "fastnn":
        from fastnn import ops
        for _ in range(2):
            _, _, _, cache = ops.lstm_forward(x, k, rk, b)
            grads = ops.lstm_backward(dh, cache)
            del cache, grads
    elif workload == "cnn":
        import torch
        from fastnn.bench.peer_torch import build_cnn
        net = build_cnn(torch)
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-8)
        lossf = torch.nn.CrossEntropyLoss()
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        yt = torch.from_numpy(labels)
        perm = torch.randperm(n)
        net.train()
        for s in range(steps):
            idx = perm[s * 86:(s + 1) * 86]
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    else:
        import torch
        lstm = torch.nn.LSTM(512, 512, batch_first=True)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(k).T)
            lstm.weight_hh_l0.copy_(torch.from_numpy(rk).T)
            lstm.bias_ih_l0.copy_(torch.from_numpy(b))
            lstm.bias_hh_l0.zero_()
        xt = torch.from_numpy(x).requires_grad_(True)
        dht = torch.from_numpy(dh)
        for _ in range(2):
            xt.grad = None
            lstm.zero_grad(set_to_none=True)
            out = lstm(xt)[0]
            out.backward(dht)
            del out
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    print(json.dumps({"lib": lib, "workload": workload, "base_mb": round(base, 1), "peak_mb": round(peak, 1),
                      "work_mb": round(peak - base, 1), "seconds": round(seconds, 2)}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="CNN training steps (batch 86)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "memory-latest.json"),
                    help="where to write the JSON (default bench/results/memory-latest.json)")
    ap.add_argument("--child", nargs=2, metavar=("LIB", "WORKLOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.steps < 1 or args.threads < 1:
        ap.error("--steps and --threads must be >= 1")
    if args.child:
        _child(args.child[0], args.child[1], args.steps, args.threads)
        return 0
    libs = ["fastnn"]
    if not args.no_torch:
        try:
            import importlib.util
            if importlib.util.find_spec("torch") is not None:
                libs.append("torch")
        except (ImportError, ValueError):
            pass
    rows = []
    for workload in ("cnn", "lstm"):
        for lib in libs:
            res = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", lib, workload,
                                  "--steps", str(args.steps), "--threads", str(args.threads)],
                                 capture_output=True, text=True, timeout=1800)
            if res.returncode != 0:
                print(f"{lib} {workload}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    names = {"cnn": f"workbook CNN train, batch 86, {args.steps} steps", "lstm": "LSTM I=H=512 T=100 b64 fwd+bwd"}
    print(f"{'workload':44s} {'library':8s} {'base MB':>8s} {'peak MB':>8s} {'work MB':>8s} {'time s':>7s}")
    for r in rows:
        print(f"{names[r['workload']]:44s} {r['lib']:8s} {r['base_mb']:8.1f} {r['peak_mb']:8.1f} "
              f"{r['work_mb']:8.1f} {r['seconds']:7.2f}")
    out = {"threads": args.threads, "steps": args.steps, "machine": platform.machine(),
           "python": platform.python_version(), "results": rows,
           "note": "peak = VmHWM of a fresh process; base = RSS after imports and input data; work = peak - base"}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
