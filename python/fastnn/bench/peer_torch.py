"""PyTorch (eager) as a benchmark peer: NCHW and channels_last variants where the
layout matters. Runs inside a peer worker process (see worker.py); check() results are
returned in fastnn's layouts (NHWC, HWIO, (in, out), gates i f c o)."""
from __future__ import annotations

import numpy as np

from .workloads import CNN_RMSPROP, LSTM_ADAM

NAME = "torch"


def setup(threads):
    import torch
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    return torch.__version__


def build(prob, data, weights):
    import torch
    p, w = prob.params, prob.word
    F = torch.nn.functional
    t = torch.from_numpy
    if prob.kind == "gemm":
        a, b = t(data["a"]), t(data["b"])
        step = lambda: torch.mm(a, b)  # noqa: E731
        return {"torch": (step, lambda: [step().numpy()])}
    out = {}
    if prob.kind in ("conv", "pool"):
        for fmt in ("nchw", "channels_last"):
            mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            nchw = lambda a, mf=mf: t(a).permute(0, 3, 1, 2).contiguous(memory_format=mf)  # noqa: E731
            out["torch_" + fmt] = (_conv if prob.kind == "conv" else _pool)(torch, F, p, w, data, nchw, mf)
        return out
    if prob.kind == "lstm":
        return {"torch": _lstm_op(torch, p, w, data)}
    if prob.kind in ("cnn_train", "cnn_predict"):
        for fmt in ("nchw", "channels_last"):
            out["torch_" + fmt] = _cnn(torch, prob, data, weights, fmt == "channels_last")
        return out
    if prob.kind in ("lstm_train", "lstm_predict"):
        return {"torch": _lstm_model(torch, prob, data, weights)}
    return {}


def _conv(torch, F, p, w, data, nchw, mf):
    stride, pad = (p["sh"], p["sw"]), (p["ph"], p["pw"])
    x = nchw(data["x"])
    wt = torch.from_numpy(data["w"]).permute(3, 2, 0, 1).contiguous(memory_format=mf)
    b = torch.from_numpy(data["b"])
    dy = nchw(data["dy"])
    nhwc = lambda a: a.detach().permute(0, 2, 3, 1).numpy()  # noqa: E731
    hwio = lambda a: a.detach().permute(2, 3, 1, 0).numpy()  # noqa: E731
    if w == "fwd":
        def step():
            with torch.inference_mode():
                return F.conv2d(x, wt, b, stride=stride, padding=pad)
        return step, lambda: [nhwc(step())]
    if w == "bwdd":
        shape = tuple(x.shape)

        def step():
            return torch.nn.grad.conv2d_input(shape, wt, dy, stride=stride, padding=pad)
        return step, lambda: [nhwc(step())]
    if w == "bwdw":
        shape = tuple(wt.shape)

        def step():
            return torch.nn.grad.conv2d_weight(x, shape, dy, stride=stride, padding=pad)
        return step, lambda: [hwio(step())]
    xg = x.clone(memory_format=mf).requires_grad_(bool(p["dx"]))
    wg = wt.clone(memory_format=mf).requires_grad_(True)
    bg = b.clone().requires_grad_(True)

    def step():
        xg.grad = wg.grad = bg.grad = None
        y = F.conv2d(xg, wg, bg, stride=stride, padding=pad)
        y.backward(dy)
        return y

    def check():
        y = step()
        return [nhwc(y), None if xg.grad is None else nhwc(xg.grad), hwio(wg.grad), bg.grad.numpy()]
    return step, check


def _pool(torch, F, p, w, data, nchw, mf):
    k, s, pad = (p["kh"], p["kw"]), (p["sh"], p["sw"]), (p["ph"], p["pw"])
    x = nchw(data["x"]).requires_grad_(True)
    dy = nchw(data["dy"])
    fn = F.max_pool2d if w == "max" else (lambda v, k, s, pad: F.avg_pool2d(v, k, s, pad, count_include_pad=False))
    nhwc = lambda a: a.detach().permute(0, 2, 3, 1).numpy()  # noqa: E731

    def step():
        x.grad = None
        y = fn(x, k, s, pad)
        y.backward(dy)
        return y
    return step, lambda: [nhwc(step()), nhwc(x.grad)]


def _lstm_op(torch, p, w, data):
    i, h = p["i"], p["h"]
    net = torch.nn.LSTM(i, h, batch_first=True)
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(data["kernel"]).T)
        net.weight_hh_l0.copy_(torch.from_numpy(data["recurrent_kernel"]).T)
        net.bias_ih_l0.copy_(torch.from_numpy(data["bias"]))
        net.bias_hh_l0.zero_()
    x = torch.from_numpy(data["x"])
    if w == "fwd":
        def step():
            with torch.inference_mode():
                return net(x)[0]
        return step, lambda: [step().numpy()]
    xg = x.clone().requires_grad_(True)
    dh = torch.from_numpy(data["dh"])

    def step():
        xg.grad = None
        net.zero_grad(set_to_none=True)
        hs = net(xg)[0]
        hs.backward(dh)
        return hs

    def check():
        hs = step()
        return [hs.detach().numpy(), xg.grad.numpy(), net.weight_ih_l0.grad.T.numpy(),
                net.weight_hh_l0.grad.T.numpy(), net.bias_ih_l0.grad.numpy()]
    return step, check


def build_cnn(torch, weights=None, channels_last=False):
    nn = torch.nn
    F = torch.nn.functional

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
            x = self.d1(F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2))
            x = self.d2(F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2))
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras flatten order (h, w, c)
            return self.f2(self.d3(F.relu(self.f1(x))))

    net = Net()
    if weights is not None:
        with torch.no_grad():
            for i, conv in enumerate([net.c1, net.c2, net.c3, net.c4]):
                conv.weight.copy_(torch.from_numpy(weights[2 * i]).permute(3, 2, 0, 1))
                conv.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
            net.f1.weight.copy_(torch.from_numpy(weights[8]).T)
            net.f1.bias.copy_(torch.from_numpy(weights[9]))
            net.f2.weight.copy_(torch.from_numpy(weights[10]).T)
            net.f2.bias.copy_(torch.from_numpy(weights[11]))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def _cnn(torch, prob, data, weights, channels_last):
    mb = prob.params["mb"]
    mf = torch.channels_last if channels_last else torch.contiguous_format
    net = build_cnn(torch, weights, channels_last)
    x = torch.from_numpy(data["x"]).permute(0, 3, 1, 2).contiguous(memory_format=mf)
    xv = x[:min(mb, 64)].clone(memory_format=mf)

    def predict(v):
        net.eval()
        with torch.inference_mode():
            return torch.softmax(net(v), 1).numpy()
    check = lambda: [predict(xv)]  # noqa: E731
    if prob.kind == "cnn_predict":
        xb = x[:mb].clone(memory_format=mf)
        return (lambda: predict(xb)), check
    opt = torch.optim.RMSprop(net.parameters(), lr=CNN_RMSPROP["learning_rate"], alpha=CNN_RMSPROP["rho"],
                              eps=CNN_RMSPROP["epsilon"])
    labels = torch.from_numpy(data["labels"])
    lossf = torch.nn.CrossEntropyLoss()

    def train():
        net.train()
        for b in range(prob.per_call):
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(x[b * mb:(b + 1) * mb]), labels[b * mb:(b + 1) * mb])
            loss.backward()
            opt.step()
    return train, check


def _lstm_model(torch, prob, data, weights):
    p = prob.params
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(p["i"], p["h"], batch_first=True)
            self.fc = nn.Linear(p["h"], 1)

        def forward(self, v):
            return self.fc(self.lstm(v)[0][:, -1])

    net = Net()
    with torch.no_grad():
        net.lstm.weight_ih_l0.copy_(torch.from_numpy(weights[0]).T)
        net.lstm.weight_hh_l0.copy_(torch.from_numpy(weights[1]).T)
        net.lstm.bias_ih_l0.copy_(torch.from_numpy(weights[2]))
        net.lstm.bias_hh_l0.zero_()
        net.fc.weight.copy_(torch.from_numpy(weights[3]).T)
        net.fc.bias.copy_(torch.from_numpy(weights[4]))
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    xv = x[:64].clone()

    def predict(v):
        with torch.inference_mode():
            return net(v).numpy()
    check = lambda: [predict(xv)]  # noqa: E731
    mb = p["mb"]
    if prob.kind == "lstm_predict":
        xb = x[:mb].clone()
        return (lambda: predict(xb)), check
    opt = torch.optim.Adam(net.parameters(), lr=LSTM_ADAM["learning_rate"],
                           betas=(LSTM_ADAM["beta_1"], LSTM_ADAM["beta_2"]), eps=LSTM_ADAM["epsilon"])
    lossf = nn.MSELoss()

    def train():
        for b in range(prob.per_call):
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(x[b * mb:(b + 1) * mb]), y[b * mb:(b + 1) * mb])
            loss.backward()
            opt.step()
    return train, check
