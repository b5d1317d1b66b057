"""Model-level workloads: the workbook CNN's training step, inference, single-image
latency, and augmentation throughput, each against PyTorch when it is installed.

How each is timed (the same for both sides; data already in memory):
- training step: ``model.fit(x, y, batch_size=86, epochs=1, verbose=0, shuffle=False)``
  over 10 batches, divided by 10; PyTorch runs the same model and optimizer
  (RMSprop lr 1e-3, rho/alpha 0.9, eps 1e-8) in a plain loop: zero_grad, forward,
  loss, backward, step.
- inference: ``model.predict(x, batch_size=86)`` on 86 images vs a torch
  ``inference_mode`` forward; predict of one: ``model.predict`` on one image.
- augmentation: ``ImageDataGenerator(rotation 10, zoom .1, shifts .1).flow`` at
  batch 86 on 28x28x1 images, images per second.
Before timing, the CNN's forward pass is verified against PyTorch with the same
weights (fastnn's weights mapped to torch's layouts).
"""
from __future__ import annotations

import time

import numpy as np

import fastnn
from .harness import _time_interleaved

BATCH = 86


def build_fastnn_cnn():
    from fastnn import optimizers
    from fastnn.demo import build_mnist_cnn

    model = build_mnist_cnn()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-8),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_torch_cnn(torch, fastnn_model=None, channels_last=False):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 32, 5, padding=2)
            self.c2 = nn.Conv2d(32, 32, 5, padding=2)
            self.c3 = nn.Conv2d(32, 64, 3, padding=1)
            self.c4 = nn.Conv2d(64, 64, 3, padding=1)
            self.f1 = nn.Linear(64 * 7 * 7, 256)
            self.f2 = nn.Linear(256, 10)
            self.d1, self.d2, self.d3 = nn.Dropout(0.25), nn.Dropout(0.25), nn.Dropout(0.5)

        def forward(self, x):
            F = torch.nn.functional
            x = self.d1(F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2))
            x = self.d2(F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2))
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras flatten order (h, w, c)
            return self.f2(self.d3(F.relu(self.f1(x))))

    net = Net()
    if fastnn_model is not None:
        ws = fastnn_model.get_weights()
        convs = [net.c1, net.c2, net.c3, net.c4]
        with torch.no_grad():
            for i, conv in enumerate(convs):
                conv.weight.copy_(torch.from_numpy(ws[2 * i]).permute(3, 2, 0, 1))
                conv.bias.copy_(torch.from_numpy(ws[2 * i + 1]))
            net.f1.weight.copy_(torch.from_numpy(ws[8]).T)
            net.f1.bias.copy_(torch.from_numpy(ws[9]))
            net.f2.weight.copy_(torch.from_numpy(ws[10]).T)
            net.f2.bias.copy_(torch.from_numpy(ws[11]))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _data(n, seed=0):
    rs = np.random.default_rng(seed)
    x = rs.random((n, 28, 28, 1), dtype=np.float32)
    labels = rs.integers(0, 10, n)
    y = np.eye(10, dtype=np.float32)[labels]
    return x, y, labels


def cnn_workloads(rounds=7, threads=2, verbose=True):
    fastnn.set_num_threads(threads)
    fastnn.set_seed(0)
    results = []
    model = build_fastnn_cnn()
    x, y, labels = _data(10 * BATCH)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None

    peers_train, peers_infer, peers_one = {}, {}, {}
    if torch is not None:
        for fmt in ("nchw", "channels_last"):
            cl = fmt == "channels_last"
            net = build_torch_cnn(torch, model, channels_last=cl)
            mf = torch.channels_last if cl else torch.contiguous_format
            xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=mf)
            # verify: same weights, inference mode -> same probabilities
            net.eval()
            with torch.inference_mode():
                pt = torch.softmax(net(xt[:BATCH]), 1).numpy()
            pf = model.predict(x[:BATCH], batch_size=BATCH)
            err = float(np.max(np.abs(pt - pf)))
            if err > 1e-4:
                raise RuntimeError(f"cnn: fastnn and torch ({fmt}) disagree: max |dp| = {err:.2e}")
            net.train()
            opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-8)
            lt = torch.from_numpy(labels)
            lossf = torch.nn.CrossEntropyLoss()

            def train(net=net, opt=opt, xt=xt):
                for b in range(10):
                    opt.zero_grad(set_to_none=True)
                    loss = lossf(net(xt[b * BATCH:(b + 1) * BATCH]), lt[b * BATCH:(b + 1) * BATCH])
                    loss.backward()
                    opt.step()
            peers_train["torch_" + fmt] = train

            def infer(net=net, xt=xt):
                net.eval()
                with torch.inference_mode():
                    torch.softmax(net(xt[:BATCH]), 1).numpy()
            peers_infer["torch_" + fmt] = infer

            x1 = xt[:1].clone(memory_format=mf)

            def one(net=net, x1=x1):
                net.eval()
                with torch.inference_mode():
                    torch.softmax(net(x1), 1).numpy()
            peers_one["torch_" + fmt] = one

    def ours_train():
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)

    x86 = x[:BATCH].copy()
    x1 = x[:1].copy()
    specs = [("cnn_train_step:mb86", ours_train, peers_train, 10),
             ("cnn_predict:mb86", lambda: model.predict(x86, batch_size=BATCH), peers_infer, 1),
             ("cnn_predict:mb1", lambda: model.predict(x1), peers_one, 1)]
    for name, ours, peers, per in specs:
        t = _time_interleaved({"fastnn": ours, **peers}, rounds, min_time=0.05)
        t = {k: tuple(v / per for v in vals) for k, vals in t.items()}
        results.append({"problem": name, "threads": threads, "times": t})
        if verbose:
            line = f"{name:<24} t={threads} fastnn {t['fastnn'][0] * 1e3:8.3f} ms"
            for k, v in t.items():
                if k != "fastnn":
                    line += f" | {k} {v[0] * 1e3:.3f} ms (x{v[0] / t['fastnn'][0]:.2f})"
            print(line, flush=True)
    results.append(augmentation(threads, verbose=verbose))
    return results


def augmentation(threads=2, batches=300, verbose=True):
    from fastnn.data import ImageDataGenerator

    fastnn.set_num_threads(threads)
    x, y, _ = _data(2000)
    gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1, height_shift_range=0.1,
                             seed=0)
    flow = gen.flow(x, y, batch_size=BATCH)
    for _ in range(10):
        next(flow)
    ts = []
    for _ in range(batches):
        t0 = time.perf_counter()
        next(flow)
        ts.append(time.perf_counter() - t0)
    med = float(np.median(ts))
    res = {"problem": "augment:mb86_ih28iw28_ic1", "threads": threads, "images_per_s": BATCH / med,
           "times": {"fastnn": (med, min(ts), max(ts))}}
    if verbose:
        print(f"{res['problem']:<24} t={threads} fastnn {med * 1e3:8.3f} ms/batch = {res['images_per_s']:,.0f} images/s",
              flush=True)
    return res


# ---------------------------------------------------------------------------
# The stock-price workbook LSTM and a large LSTM (issue 4's workloads).

def build_fastnn_lstm(lookback=15, units=20):
    from fastnn import layers, optimizers

    model = fastnn.Sequential([layers.LSTM(units, input_shape=(lookback, 1)), layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-3), loss="mse")
    return model


def lstm_workloads(rounds=7, threads=2, verbose=True):
    """Workbook LSTM train step (fit over 20 batches of 32 x 15 x 1) and predict of one,
    plus ops.lstm_forward + lstm_backward at N=64, T=100, I=H=512, each vs PyTorch."""
    fastnn.set_num_threads(threads)
    fastnn.set_seed(0)
    from fastnn import ops

    rs = np.random.default_rng(0)
    x = rs.random((20 * 32, 15, 1), dtype=np.float32)
    y = rs.random((20 * 32, 1), dtype=np.float32)
    model = build_fastnn_lstm()
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    peers_train, peers_one, peers_big = {}, {}, {}
    big_x = rs.standard_normal((64, 100, 512), dtype=np.float32)
    bk = (rs.standard_normal((512, 2048)) * 0.04).astype(np.float32)
    brk = (rs.standard_normal((512, 2048)) * 0.04).astype(np.float32)
    bb = (rs.standard_normal(2048) * 0.1).astype(np.float32)
    big_dh = rs.standard_normal((64, 100, 512), dtype=np.float32)
    if torch is not None:
        nn = torch.nn
        ws = model.get_weights()

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(1, 20, batch_first=True)
                self.fc = nn.Linear(20, 1)

            def forward(self, v):
                out, _ = self.lstm(v)
                return self.fc(out[:, -1])

        net = Net()
        with torch.no_grad():
            net.lstm.weight_ih_l0.copy_(torch.from_numpy(ws[0]).T)
            net.lstm.weight_hh_l0.copy_(torch.from_numpy(ws[1]).T)
            net.lstm.bias_ih_l0.copy_(torch.from_numpy(ws[2]))
            net.lstm.bias_hh_l0.zero_()
            net.fc.weight.copy_(torch.from_numpy(ws[3]).T)
            net.fc.bias.copy_(torch.from_numpy(ws[4]))
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        with torch.inference_mode():
            pt = net(xt[:64]).numpy()
        err = float(np.max(np.abs(pt - model.predict(x[:64]))))
        if err > 1e-4:
            raise RuntimeError(f"lstm: fastnn and torch disagree: max |dy| = {err:.2e}")
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        lossf = nn.MSELoss()

        def train():
            for bidx in range(20):
                opt.zero_grad(set_to_none=True)
                loss = lossf(net(xt[bidx * 32:(bidx + 1) * 32]), yt[bidx * 32:(bidx + 1) * 32])
                loss.backward()
                opt.step()
        peers_train["torch"] = train
        x1t = xt[:1].clone()

        def one():
            with torch.inference_mode():
                net(x1t).numpy()
        peers_one["torch"] = one

        big = nn.LSTM(512, 512, batch_first=True)
        with torch.no_grad():
            big.weight_ih_l0.copy_(torch.from_numpy(bk).T)
            big.weight_hh_l0.copy_(torch.from_numpy(brk).T)
            big.bias_ih_l0.copy_(torch.from_numpy(bb))
            big.bias_hh_l0.zero_()
        bxt = torch.from_numpy(big_x).requires_grad_(True)
        bdh = torch.from_numpy(big_dh)
        hs_ours = ops.lstm_forward(big_x, bk, brk, bb)[0]
        with torch.no_grad():
            hs_t = big(torch.from_numpy(big_x))[0].numpy()
        err = float(np.max(np.abs(hs_ours - hs_t)) / np.max(np.abs(hs_t)))
        if err > 1e-4:
            raise RuntimeError(f"lstm large: fastnn and torch disagree: rel err {err:.2e}")

        def big_torch():
            bxt.grad = None
            big.zero_grad(set_to_none=True)
            out = big(bxt)[0]
            out.backward(bdh)
        peers_big["torch"] = big_torch

    def ours_train():
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)

    x1 = x[:1].copy()

    def big_ours():
        _, _, _, cache = ops.lstm_forward(big_x, bk, brk, bb)
        ops.lstm_backward(big_dh, cache)

    results = []
    for name, ours, peers, per, rnds in [("lstm_train_step:mb32_t15_i1_h20", ours_train, peers_train, 20, rounds),
                                         ("lstm_predict:mb1_t15_i1_h20", lambda: model.predict(x1), peers_one, 1, rounds),
                                         ("lstm_fwd_bwd:mb64_t100_i512_h512", big_ours, peers_big, 1, max(3, rounds // 2))]:
        t = _time_interleaved({"fastnn": ours, **peers}, rnds, min_time=0.05)
        t = {k: tuple(v / per for v in vals) for k, vals in t.items()}
        results.append({"problem": name, "threads": threads, "times": t})
        if verbose:
            line = f"{name:<34} t={threads} fastnn {t['fastnn'][0] * 1e3:9.4f} ms"
            for k, v in t.items():
                if k != "fastnn":
                    line += f" | {k} {v[0] * 1e3:.4f} ms (x{v[0] / t['fastnn'][0]:.2f})"
            print(line, flush=True)
    return results
