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
