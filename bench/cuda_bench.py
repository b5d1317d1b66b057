"""GPU benchmarks: fastnn's CUDA kernels vs PyTorch (cuBLAS / cuDNN) on the same GPU.

    python bench/cuda_bench.py [--out results.json] [--quick]

Workloads (median of timed repeats after warm-up, each side synchronised):
- sgemm M=N=K=4096 (and the workbook's dense shapes), torch with TF32 off;
- conv2d forward and forward+backward of the workbook's second layer
  (5x5, 32 -> 32 channels, 28x28) at batch 86 and 512, torch channels_last/cuDNN;
- the workbook CNN training step (conv x4, pools, dropout, dense x2, softmax
  cross-entropy, RMSprop) at batch 86 and 512, written with fastnn.ops on GPU
  arrays (model.to("cuda") does not exist yet), vs the same net in torch.
The LSTM workloads are not here: the CUDA LSTM/GRU kernels are not written yet.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def timed(fn, sync, warmup=3, repeats=20):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cnn_params(rs):
    """Workbook CNN weights in Keras layouts (HWIO conv kernels, (in, out) dense)."""
    shapes = [(5, 5, 1, 32), (32,), (5, 5, 32, 32), (32,), (3, 3, 32, 64), (64,), (3, 3, 64, 64), (64,),
              (3136, 256), (256,), (256, 10), (10,)]
    out = []
    for s in shapes:
        fan_in = int(np.prod(s[:-1])) if len(s) > 1 else 1
        out.append((rs.standard_normal(s) * (np.sqrt(2.0 / fan_in) if len(s) > 1 else 0.0)).astype(np.float32))
    return out


def fastnn_cnn_step(fc, ops):
    """One RMSprop training step of the workbook CNN with fastnn.ops on GPU arrays."""
    def step(params, states, x, labels, seed):
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5, w6, b6 = params
        a1 = ops.conv2d(x, w1, b1, padding="same", relu=True)
        a2 = ops.conv2d(a1, w2, b2, padding="same", relu=True)
        p2, i2 = ops.max_pool2d(a2, 2)
        d2, m2 = ops.dropout(p2, 0.25, seed)
        a3 = ops.conv2d(d2, w3, b3, padding="same", relu=True)
        a4 = ops.conv2d(a3, w4, b4, padding="same", relu=True)
        p4, i4 = ops.max_pool2d(a4, 2)
        d4, m4 = ops.dropout(p4, 0.25, seed + 1)
        f = d4.reshape(d4.shape[0], -1)
        h = ops.relu(ops.dense(f, w5, b5))
        dh, mh = ops.dropout(h, 0.5, seed + 2)
        logits = ops.dense(dh, w6, b6)
        loss, g = ops.softmax_cross_entropy(logits, labels)
        g, gw6, gb6 = ops.dense_backward(g, dh, w6)
        g = ops.relu_backward(ops.dropout_backward(g, mh, 0.5), h)
        g, gw5, gb5 = ops.dense_backward(g, f, w5)
        g = ops.dropout_backward(g.reshape(*p4.shape), m4, 0.25)
        g = ops.relu_backward(ops.max_pool2d_backward(g, i4, a4.shape), a4)
        g, gw4, gb4 = ops.conv2d_backward(g, a3, w4, padding="same")
        g = ops.relu_backward(g, a3)
        g, gw3, gb3 = ops.conv2d_backward(g, d2, w3, padding="same")
        g = ops.dropout_backward(g, m2, 0.25)
        g = ops.relu_backward(ops.max_pool2d_backward(g, i2, a2.shape), a2)
        g, gw2, gb2 = ops.conv2d_backward(g, a1, w2, padding="same")
        g = ops.relu_backward(g, a1)
        _, gw1, gb1 = ops.conv2d_backward(g, x, w1, padding="same", need_dx=False)
        grads = [gw1, gb1, gw2, gb2, gw3, gb3, gw4, gb4, gw5, gb5, gw6, gb6]
        for p, gr, s in zip(params, grads, states):
            ops.rmsprop_update(p, gr, s, lr=1e-3)
        return loss
    return step


def torch_cnn(torch):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 32, 5, padding=2), nn.Conv2d(32, 32, 5, padding=2)
            self.c3, self.c4 = nn.Conv2d(32, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1)
            self.f1, self.f2 = nn.Linear(3136, 256), nn.Linear(256, 10)

        def forward(self, x):
            x = F.dropout(F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2), 0.25, self.training)
            x = F.dropout(F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2), 0.25, self.training)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            return self.f2(F.dropout(F.relu(self.f1(x)), 0.5, self.training))
    return Net


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else 20

    import fastnn
    import fastnn.cuda as fc
    from fastnn import ops

    if not fc.is_available():
        print("no CUDA device: nothing to benchmark")
        return 1
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    rs = np.random.default_rng(0)
    info = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
            "fastnn": fastnn.build_info()["cuda"], "rows": []}
    rows = info["rows"]

    def add(name, ours, theirs, flops=None):
        row = {"workload": name, "fastnn_ms": ours * 1e3, "torch_ms": theirs * 1e3, "torch_over_fastnn": theirs / ours}
        if flops:
            row["fastnn_gflops"] = flops / ours / 1e9
            row["torch_gflops"] = flops / theirs / 1e9
        rows.append(row)
        print(f"{name:40s} fastnn {ours * 1e3:9.3f} ms   torch {theirs * 1e3:9.3f} ms   torch/fastnn {theirs / ours:6.2f}"
              + (f"   {row['fastnn_gflops']:8.0f} vs {row['torch_gflops']:8.0f} GFLOP/s" if flops else ""), flush=True)

    for m, n, k in [(4096, 4096, 4096), (86, 256, 3136), (3136, 256, 86), (512, 256, 3136)]:
        a, b = rs.standard_normal((m, k)).astype(np.float32), rs.standard_normal((k, n)).astype(np.float32)
        ga, gb = fc.asarray(a), fc.asarray(b)
        ta, tb = torch.from_dlpack(ga), torch.from_dlpack(gb)
        ours = timed(lambda: fc.matmul(ga, gb), fc.synchronize, repeats=repeats)
        theirs = timed(lambda: ta @ tb, sync, repeats=repeats)
        add(f"sgemm {m}x{n}x{k}", ours, theirs, 2.0 * m * n * k)

    for batch in (86, 512):
        x = fc.asarray(rs.standard_normal((batch, 28, 28, 32)).astype(np.float32))
        w = fc.asarray((rs.standard_normal((5, 5, 32, 32)) * 0.05).astype(np.float32))
        y = ops.conv2d(x, w, padding="same")
        dy = fc.asarray(rs.standard_normal(y.shape).astype(np.float32))
        tx = torch.from_dlpack(x).permute(0, 3, 1, 2).requires_grad_(True)  # NCHW view of NHWC = channels_last
        tw = torch.from_dlpack(w).permute(3, 2, 0, 1).contiguous().to(memory_format=torch.channels_last)
        tw.requires_grad_(True)
        tdy = torch.from_dlpack(dy).permute(0, 3, 1, 2)
        flops = 2.0 * batch * 28 * 28 * 32 * 25 * 32
        ours = timed(lambda: ops.conv2d(x, w, padding="same"), fc.synchronize, repeats=repeats)
        theirs = timed(lambda: torch.nn.functional.conv2d(tx, tw, padding=2), sync, repeats=repeats)
        add(f"conv2d fwd 5x5 32->32 28x28 b{batch}", ours, theirs, flops)

        def t_fb():
            out = torch.nn.functional.conv2d(tx, tw, padding=2)
            torch.autograd.grad(out, (tx, tw), tdy)
        ours = timed(lambda: (ops.conv2d(x, w, padding="same"),
                              ops.conv2d_backward(dy, x, w, padding="same", need_db=False)), fc.synchronize,
                     repeats=repeats)
        theirs = timed(t_fb, sync, repeats=repeats)
        add(f"conv2d fwd+bwd 5x5 32->32 28x28 b{batch}", ours, theirs, 3 * flops)

    step = fastnn_cnn_step(fc, ops)
    Net = torch_cnn(torch)
    for batch in (86, 512):
        host = cnn_params(rs)
        params = [fc.asarray(p) for p in host]
        states = [fc.zeros(p.shape) for p in host]
        x = fc.asarray(rs.random((batch, 28, 28, 1)).astype(np.float32))
        labels = fc.asarray(rs.integers(0, 10, batch).astype(np.int32))
        losses = [step(params, states, x, labels, 7 + i) for i in range(5)]
        print(f"fastnn CNN step b{batch}: losses {['%.4f' % v for v in losses]}", flush=True)
        ours = timed(lambda: step(params, states, x, labels, 11), fc.synchronize, repeats=repeats)
        net = Net().to(dev).to(memory_format=torch.channels_last)
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        tx = torch.from_dlpack(x).permute(0, 3, 1, 2)
        tl = torch.from_dlpack(labels).long()

        def t_step():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(tx), tl)
            loss.backward()
            opt.step()
            return loss.item()  # fastnn's step also returns the loss to the host
        theirs = timed(t_step, sync, repeats=repeats)
        add(f"workbook CNN train step b{batch}", ours, theirs)

    if args.out:
        with open(args.out, "w") as f:
            json.dump(info, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
