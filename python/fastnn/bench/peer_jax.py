"""JAX (jit, XLA:CPU) as a benchmark peer, in plain jax (no flax / optax): the workbook
models and their optimizers are written out here with the same semantics as fastnn's
(Keras 3 RMSprop and Adam, inverted dropout). Runs inside a peer worker process; every
timed call ends in block_until_ready()."""
from __future__ import annotations

import os

from .workloads import CNN_RMSPROP, LSTM_ADAM

NAME = "jax"


def env(threads):
    """Environment for the worker process, set before jax is imported. XLA:CPU has no
    supported thread-count option, so besides the usual flags the worker restricts its
    CPU affinity to `threads` cores when that is fewer than the machine has."""
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1 else ""
    return {"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}


def setup(threads):
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cpus and threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])
    import jax
    return jax.__version__


def build(prob, data, weights):
    import jax
    import jax.numpy as jnp
    from jax import lax
    p, w = prob.params, prob.word
    dev = {k: jnp.asarray(v) for k, v in data.items() if k not in ("labels",)}
    ready = lambda out: jax.block_until_ready(out)  # noqa: E731
    np_ = lambda out: [None if o is None else jax.device_get(o) for o in out]  # noqa: E731
    if prob.kind == "gemm":
        f = jax.jit(jnp.dot)
        step = lambda: ready(f(dev["a"], dev["b"]))  # noqa: E731
        return {"jax": (step, lambda: np_([step()]))}
    if prob.kind == "conv":
        dn = ("NHWC", "HWIO", "NHWC")
        strides, pads = (p["sh"], p["sw"]), ((p["ph"], p["ph"]), (p["pw"], p["pw"]))

        def conv(x, wt, b):
            return lax.conv_general_dilated(x, wt, strides, pads, dimension_numbers=dn) + b
        x, wt, b, dy = dev["x"], dev["w"], dev["b"], dev["dy"]
        if w == "fwd":
            f = jax.jit(conv)
            step = lambda: ready(f(x, wt, b))  # noqa: E731
            return {"jax": (step, lambda: np_([step()]))}
        if w == "bwdd":
            f = jax.jit(lambda x, wt, dy: jax.vjp(lambda v: conv(v, wt, 0.0), x)[1](dy)[0])
            step = lambda: ready(f(x, wt, dy))  # noqa: E731
            return {"jax": (step, lambda: np_([step()]))}
        if w == "bwdw":
            f = jax.jit(lambda x, wt, dy: jax.vjp(lambda v: conv(x, v, 0.0), wt)[1](dy)[0])
            step = lambda: ready(f(x, wt, dy))  # noqa: E731
            return {"jax": (step, lambda: np_([step()]))}
        if p["dx"]:
            def fb(x, wt, b, dy):
                y, vjp = jax.vjp(conv, x, wt, b)
                return (y,) + vjp(dy)
        else:
            def fb(x, wt, b, dy):
                y, vjp = jax.vjp(lambda v, c: conv(x, v, c), wt, b)
                return (y, None) + vjp(dy)
        f = jax.jit(fb)
        step = lambda: ready(f(x, wt, b, dy))  # noqa: E731
        return {"jax": (step, lambda: np_(step()))}
    if prob.kind == "pool":
        win, st = (1, p["kh"], p["kw"], 1), (1, p["sh"], p["sw"], 1)
        pads = ((0, 0), (p["ph"], p["ph"]), (p["pw"], p["pw"]), (0, 0))
        if w == "max":
            pool = lambda v: lax.reduce_window(v, -jnp.inf, lax.max, win, st, pads)  # noqa: E731
        else:
            def pool(v):
                s = lax.reduce_window(v, 0.0, lax.add, win, st, pads)
                n = lax.reduce_window(jnp.ones(v.shape[1:3], v.dtype)[None, :, :, None], 0.0, lax.add, win, st, pads)
                return s / n

        def fb(x, dy):
            y, vjp = jax.vjp(pool, x)
            return (y,) + vjp(dy)
        f = jax.jit(fb)
        step = lambda: ready(f(dev["x"], dev["dy"]))  # noqa: E731
        return {"jax": (step, lambda: np_(step()))}
    if prob.kind == "lstm":
        args = (dev["x"], dev["kernel"], dev["recurrent_kernel"], dev["bias"])
        if w == "fwd":
            f = jax.jit(_lstm_seq)
            step = lambda: ready(f(*args))  # noqa: E731
            return {"jax": (step, lambda: np_([step()]))}

        def fb(x, k, rk, b, dh):
            hs, vjp = jax.vjp(_lstm_seq, x, k, rk, b)
            return (hs,) + vjp(dh)
        f = jax.jit(fb)
        step = lambda: ready(f(*args, dev["dh"]))  # noqa: E731
        return {"jax": (step, lambda: np_(step()))}
    if prob.kind in ("cnn_train", "cnn_predict"):
        return {"jax": _cnn(jax, jnp, lax, prob, dev, weights)}
    if prob.kind in ("lstm_train", "lstm_predict"):
        return {"jax": _lstm_model(jax, jnp, prob, dev, weights)}
    return {}


def _lstm_seq(x, k, rk, b):
    """Keras LSTM (gates i f c o), batch-first x (N, T, I) -> h_seq (N, T, H)."""
    import jax
    import jax.numpy as jnp
    n, h = x.shape[0], rk.shape[0]
    zx = jnp.einsum("nti,ig->tng", x, k) + b        # input projection for every step at once

    def cell(carry, z):
        hp, cp = carry
        z = z + hp @ rk
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * cp + jax.nn.sigmoid(i) * jnp.tanh(g)
        hn = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (hn, c), hn
    zeros = jnp.zeros((n, h), x.dtype)
    _, hs = jax.lax.scan(cell, (zeros, zeros), zx)
    return jnp.swapaxes(hs, 0, 1)


def _cnn(jax, jnp, lax, prob, dev, weights):
    mb = prob.params["mb"]
    params = [jnp.asarray(v) for v in weights]
    dn = ("NHWC", "HWIO", "NHWC")

    def conv(v, wt, b, pad):
        return jax.nn.relu(lax.conv_general_dilated(v, wt, (1, 1), ((pad, pad), (pad, pad)), dimension_numbers=dn) + b)

    def pool(v):
        return lax.reduce_window(v, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    def drop(v, rate, key):
        if key is None:
            return v
        keep = jax.random.bernoulli(key, 1.0 - rate, v.shape)
        return jnp.where(keep, v / (1.0 - rate), 0.0)

    def logits(ps, v, key=None):
        keys = [None] * 3 if key is None else list(jax.random.split(key, 3))
        v = conv(v, ps[0], ps[1], 2)
        v = drop(pool(conv(v, ps[2], ps[3], 2)), 0.25, keys[0])
        v = conv(v, ps[4], ps[5], 1)
        v = drop(pool(conv(v, ps[6], ps[7], 1)), 0.25, keys[1])
        v = v.reshape(v.shape[0], -1)          # (h, w, c) order, as Keras's Flatten
        v = drop(jax.nn.relu(v @ ps[8] + ps[9]), 0.5, keys[2])
        return v @ ps[10] + ps[11]

    predict = jax.jit(lambda ps, v: jax.nn.softmax(logits(ps, v)))
    xv = dev["x"][:min(mb, 64)]
    check = lambda: [jax.device_get(predict(params, xv))]  # noqa: E731
    if prob.kind == "cnn_predict":
        xb = dev["x"][:mb]
        return (lambda: jax.block_until_ready(predict(params, xb))), check

    def loss_fn(ps, v, y, key):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits(ps, v, key)), axis=-1))
    lr, rho, eps = CNN_RMSPROP["learning_rate"], CNN_RMSPROP["rho"], CNN_RMSPROP["epsilon"]

    @jax.jit
    def step(ps, vel, key, v, y):
        key, sub = jax.random.split(key)
        loss, g = jax.value_and_grad(loss_fn)(ps, v, y, sub)
        vel = [rho * a + (1 - rho) * gi * gi for a, gi in zip(vel, g)]
        ps = [pi - lr * gi / jnp.sqrt(a + eps) for pi, gi, a in zip(ps, g, vel)]
        return ps, vel, key, loss
    xs = [dev["x"][b * mb:(b + 1) * mb] for b in range(prob.per_call)]
    ys = [dev["y"][b * mb:(b + 1) * mb] for b in range(prob.per_call)]
    state = {"ps": params, "vel": [jnp.zeros_like(a) for a in params], "key": jax.random.PRNGKey(0)}

    def train():
        ps, vel, key = state["ps"], state["vel"], state["key"]
        for v, y in zip(xs, ys):
            ps, vel, key, loss = step(ps, vel, key, v, y)
        jax.block_until_ready(ps)
        state.update(ps=ps, vel=vel, key=key)
    return train, check


def _lstm_model(jax, jnp, prob, dev, weights):
    p = prob.params
    mb = p["mb"]
    params = [jnp.asarray(v) for v in weights]

    def forward(ps, v):
        return _lstm_seq(v, ps[0], ps[1], ps[2])[:, -1] @ ps[3] + ps[4]
    predict = jax.jit(forward)
    xv = dev["x"][:64]
    check = lambda: [jax.device_get(predict(params, xv))]  # noqa: E731
    if prob.kind == "lstm_predict":
        xb = dev["x"][:mb]
        return (lambda: jax.block_until_ready(predict(params, xb))), check
    lr, b1, b2, eps = (LSTM_ADAM[k] for k in ("learning_rate", "beta_1", "beta_2", "epsilon"))

    @jax.jit
    def step(ps, m, s, t, v, y):
        g = jax.grad(lambda q: jnp.mean((forward(q, v) - y) ** 2))(ps)
        t = t + 1
        a = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        s = [b2 * si + (1 - b2) * gi * gi for si, gi in zip(s, g)]
        ps = [pi - a * mi / (jnp.sqrt(si) + eps) for pi, mi, si in zip(ps, m, s)]
        return ps, m, s, t
    xs = [dev["x"][b * mb:(b + 1) * mb] for b in range(prob.per_call)]
    ys = [dev["y"][b * mb:(b + 1) * mb] for b in range(prob.per_call)]
    zeros = [jnp.zeros_like(a) for a in params]
    state = {"ps": params, "m": zeros, "s": zeros, "t": jnp.float32(0)}

    def train():
        ps, m, s, t = state["ps"], state["m"], state["s"], state["t"]
        for v, y in zip(xs, ys):
            ps, m, s, t = step(ps, m, s, t, v, y)
        jax.block_until_ready(ps)
        state.update(ps=ps, m=m, s=s, t=t)
    return train, check
