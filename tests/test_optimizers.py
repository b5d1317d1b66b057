"""fastnn.optimizers: Keras 3 optimizers over a flat arena vs float64 NumPy reference
trajectories (Keras 3 formulas), PyTorch, clipping modes, exact resume via
get_state/set_state, learning-rate setter, config round trips, validation."""
import json
import tracemalloc

import numpy as np
import pytest

from fastnn import optimizers
from fastnn.optimizers import SGD, RMSprop, Adam, Adagrad, Adadelta

from helpers import compare, same_bits, threads

SLOTS = [(0, 6), (6, 13)]  # two variables: a (2, 3) kernel and a 13-vector
N = 19
STEPS = 6


# ------------------------------------------------------------ float64 reference
class KerasRef:
    """Keras 3 update rules in float64, one variable list at a time (clarity first)."""

    def __init__(self, kind, hp, p0, slots):
        self.kind, self.hp, self.slots = kind, dict(hp), slots
        self.p = np.array(p0, np.float64)
        n = self.p.size
        self.it = 0
        init = hp.get("initial_accumulator_value", 0.1)
        self.s = {"m": np.zeros(n), "v": np.zeros(n), "acc": np.full(n, init)}

    def clip(self, g):
        hp = self.hp
        g = g.copy()
        if hp.get("clipnorm"):
            c = hp["clipnorm"]
            for off, size in self.slots:
                part = g[off:off + size]
                g[off:off + size] = part * c / max(np.sqrt(np.sum(part ** 2)), c)
        elif hp.get("global_clipnorm"):
            c = hp["global_clipnorm"]
            g = g * c / max(np.sqrt(np.sum(g ** 2)), c)
        elif hp.get("clipvalue"):
            g = np.clip(g, -hp["clipvalue"], hp["clipvalue"])
        return g

    def step(self, g32):
        hp, s = self.hp, self.s
        g = self.clip(np.asarray(g32, np.float64))
        lr = hp.get("learning_rate", 0.001)
        if hp.get("weight_decay"):
            self.p = self.p - self.p * hp["weight_decay"] * lr
        p = self.p
        if self.kind == "sgd":
            mom = hp.get("momentum", 0.0)
            if mom == 0:
                p = p - lr * g
            else:
                s["m"] = mom * s["m"] - lr * g
                p = p + (mom * s["m"] - lr * g if hp.get("nesterov") else s["m"])
        elif self.kind == "rmsprop":
            rho, eps = hp.get("rho", 0.9), hp.get("epsilon", 1e-7)
            s["v"] = rho * s["v"] + (1 - rho) * g * g
            p = p - lr * g / np.sqrt(s["v"] + eps)
        elif self.kind == "adam":
            b1, b2, eps = hp.get("beta_1", 0.9), hp.get("beta_2", 0.999), hp.get("epsilon", 1e-7)
            t = self.it + 1
            s["m"] = s["m"] + (g - s["m"]) * (1 - b1)
            s["v"] = s["v"] + (g * g - s["v"]) * (1 - b2)
            alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            p = p - s["m"] * alpha / (np.sqrt(s["v"]) + eps)
        elif self.kind == "adagrad":
            eps = hp.get("epsilon", 1e-7)
            s["acc"] = s["acc"] + g * g
            p = p - lr * g / np.sqrt(s["acc"] + eps)
        elif self.kind == "adadelta":
            rho, eps = hp.get("rho", 0.95), hp.get("epsilon", 1e-7)
            s["m"] = rho * s["m"] + (1 - rho) * g * g                 # accumulated grad
            delta = -np.sqrt(s["v"] + eps) / np.sqrt(s["m"] + eps) * g
            s["v"] = rho * s["v"] + (1 - rho) * delta * delta         # accumulated delta
            p = p + lr * delta
        self.p = p
        self.it += 1


CLASSES = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adagrad": Adagrad, "adadelta": Adadelta}

CASES = [
    ("sgd", {}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.1}),
    ("rmsprop", {}),
    ("rmsprop", {"learning_rate": 0.01, "rho": 0.5, "epsilon": 1e-3}),
    ("rmsprop", {"learning_rate": 0.01, "clipnorm": 0.5}),
    ("adam", {}),
    ("adam", {"learning_rate": 0.02, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-4}),
    ("adam", {"learning_rate": 0.01, "weight_decay": 0.05, "global_clipnorm": 1.0}),
    ("adagrad", {}),
    ("adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "clipvalue": 0.3}),
    ("adadelta", {}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6}),
    ("sgd", {"learning_rate": 0.1, "clipnorm": 0.7}),
    ("sgd", {"learning_rate": 0.1, "global_clipnorm": 0.7}),
    ("sgd", {"learning_rate": 0.1, "clipvalue": 0.2}),
]


def make(kind, hp, p):
    opt = CLASSES[kind](**hp)
    opt.build(p, SLOTS)
    return opt


def grads_seq(seed, steps=STEPS, n=N):
    rs = np.random.default_rng(seed)
    # the second variable's gradients are larger, so per-variable and global clipping differ
    scale = np.concatenate([np.full(6, 0.3), np.full(n - 6, 2.0)])
    return [(rs.standard_normal(n) * scale).astype(np.float32) for _ in range(steps)]


def run(opt, p, gs):
    out = []
    for g in gs:
        opt.apply(p, g.copy())  # apply clips its grads argument in place
        out.append(p.copy())
    return out


@pytest.mark.parametrize("kind,hp", CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_trajectory_vs_keras_reference(kind, hp):
    rs = np.random.default_rng(7)
    p = rs.standard_normal(N).astype(np.float32)
    opt = make(kind, hp, p)
    cfg = opt.get_config()  # the class defaults, e.g. SGD's learning_rate 0.01
    assert all(cfg[k] == v for k, v in hp.items())
    ref = KerasRef(kind, cfg, p, SLOTS)
    p0 = p.astype(np.float64)
    for i, g in enumerate(grads_seq(11)):
        opt.apply(p, g.copy())
        ref.step(g)
        # compare the displacement from the start: 1e-4 of its size plus float32
        # rounding of the parameters themselves (a few ulp per step)
        moved = ref.p - p0
        tol = 1e-4 * np.max(np.abs(moved)) + 2.4e-7 * np.max(np.abs(p0)) * (i + 1)
        err = np.max(np.abs(p.astype(np.float64) - ref.p))
        assert err <= tol, f"{kind} step {i + 1}: error {err:.3e} > {tol:.3e}"
        assert np.max(np.abs(moved)) > 2 * tol  # the comparison is meaningful
    assert opt.iterations == STEPS


@pytest.mark.parametrize("kind", list(CLASSES))
def test_defaults_are_keras(kind):
    opt = optimizers.get(kind.upper())
    expected = {
        "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
        "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7},
        "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
        "adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
        "adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
    }[kind]
    cfg = opt.get_config()
    for k, v in expected.items():
        assert cfg[k] == v, k
    for k in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
        assert cfg[k] is None
    assert isinstance(opt, CLASSES[kind])


def test_adagrad_initial_accumulator():
    p = np.zeros(N, np.float32)
    opt = Adagrad(initial_accumulator_value=0.25)
    opt.build(p, SLOTS)
    st = opt.get_state()
    assert st["accumulator"].dtype == np.float32 and np.all(st["accumulator"] == np.float32(0.25))


# ------------------------------------------------------------ clipping
def _clipped(hp, g):
    """The gradient an SGD(lr=1) step with clipping actually applied."""
    p = np.zeros(N, np.float32)
    opt = SGD(learning_rate=1.0, **hp)
    opt.build(p, SLOTS)
    gg = g.copy()
    opt.apply(p, gg)
    return -p.astype(np.float64), gg


def test_clipnorm_is_per_variable_clipvalue_elementwise_global_over_all():
    g = grads_seq(3, steps=1)[0]
    g64 = g.astype(np.float64)
    n1, n2 = np.linalg.norm(g64[:6]), np.linalg.norm(g64[6:])
    c = 0.5 * (n1 + n2) / 2
    assert n1 < c < n2  # one variable is clipped, the other is not

    step, g_after = _clipped({"clipnorm": c}, g)
    compare(step[:6], g64[:6], name="small variable untouched")
    compare(step[6:], g64[6:] * c / n2, name="large variable scaled")
    assert np.linalg.norm(step[6:]) == pytest.approx(c, rel=1e-5)
    compare(g_after, step, name="clipping happens in place on grads")

    total = np.sqrt(n1 ** 2 + n2 ** 2)
    step, _ = _clipped({"global_clipnorm": c}, g)
    compare(step, g64 * c / total, name="global clipnorm")
    assert np.linalg.norm(step) == pytest.approx(c, rel=1e-5)

    step, _ = _clipped({"clipvalue": 0.4}, g)
    compare(step, np.clip(g64, -0.4, 0.4), name="clipvalue")
    assert np.max(np.abs(step)) <= 0.4 + 1e-7

    step, _ = _clipped({}, g)
    compare(step, g64, name="no clipping")


def test_clipnorm_below_threshold_is_untouched_bitwise():
    g = grads_seq(4, steps=1)[0]
    _, after = _clipped({"clipnorm": 1e6}, g)
    same_bits(after, g)


@pytest.mark.parametrize("kw", [{"clipnorm": 1.0, "clipvalue": 1.0},
                                {"clipnorm": 1.0, "global_clipnorm": 1.0},
                                {"clipvalue": 1.0, "global_clipnorm": 2.0}])
def test_only_one_clip_argument(kw):
    with pytest.raises(ValueError, match="Only one of"):
        Adam(**kw)


# ------------------------------------------------------------ PyTorch
@pytest.mark.torch
@pytest.mark.parametrize("kind,hp,tcls,thp", [
    ("sgd", {"learning_rate": 0.1}, "SGD", {"lr": 0.1}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, "SGD",
     {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    # eps placement differs between Keras 3 and torch for RMSprop/Adam/Adagrad: compare at eps=0
    ("rmsprop", {"learning_rate": 0.01, "epsilon": 0.0}, "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 0.0}),
    ("adam", {"learning_rate": 0.01, "epsilon": 0.0}, "Adam", {"lr": 0.01, "eps": 0.0}),
    ("adam", {"learning_rate": 0.01, "epsilon": 0.0, "weight_decay": 0.1}, "AdamW",
     {"lr": 0.01, "eps": 0.0, "weight_decay": 0.1}),
    ("adagrad", {"learning_rate": 0.1, "epsilon": 0.0, "initial_accumulator_value": 0.1}, "Adagrad",
     {"lr": 0.1, "eps": 0.0, "initial_accumulator_value": 0.1}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6}, "Adadelta",
     {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
])
def test_vs_torch(kind, hp, tcls, thp):
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(5)
    p = rs.standard_normal(N).astype(np.float32)
    tp = [torch.nn.Parameter(torch.tensor(p[o:o + s].astype(np.float64))) for o, s in SLOTS]
    topt = getattr(torch.optim, tcls)(tp, **thp)
    opt = make(kind, hp, p)
    for g in grads_seq(9):
        opt.apply(p, g.copy())
        for (o, s), t in zip(SLOTS, tp):
            t.grad = torch.tensor(g[o:o + s].astype(np.float64))
        topt.step()
    ref = np.concatenate([t.detach().numpy() for t in tp])
    compare(p, ref, name=f"{kind} vs torch.optim.{tcls}")


@pytest.mark.torch
def test_clipnorm_vs_torch_clip_grad_norm():
    torch = pytest.importorskip("torch")
    g = grads_seq(2, steps=1)[0]
    step, _ = _clipped({"clipnorm": 1.0}, g)
    ref = []
    for o, s in SLOTS:
        t = torch.nn.Parameter(torch.zeros(s, dtype=torch.float64))
        t.grad = torch.tensor(g[o:o + s].astype(np.float64))
        torch.nn.utils.clip_grad_norm_([t], 1.0)
        ref.append(t.grad.numpy())
    compare(step, np.concatenate(ref), name="clipnorm vs clip_grad_norm_")


# ------------------------------------------------------------ state / resume
@pytest.mark.parametrize("kind,hp", [c for c in CASES if c[0] != "sgd" or c[1]],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_get_set_state_resume_is_bitwise(kind, hp):
    gs = grads_seq(21, steps=8)
    p = np.random.default_rng(1).standard_normal(N).astype(np.float32)
    p_full = p.copy()
    full = make(kind, hp, p_full)
    run(full, p_full, gs)

    p_a = p.copy()
    a = make(kind, hp, p_a)
    run(a, p_a, gs[:3])
    state = a.get_state()
    config = json.loads(json.dumps(a.get_config()))
    saved_params = p_a.copy()
    run(a, p_a, gs[3:5])  # the original goes on: the saved state must be a copy

    p_b = saved_params.copy()
    b = optimizers.from_config(config)
    b.build(p_b, SLOTS)
    b.set_state(state)
    assert b.iterations == 3
    run(b, p_b, gs[3:])
    same_bits(p_b, p_full, name="resumed trajectory")
    for k, v in b.get_state().items():
        same_bits(v, full.get_state()[k], name=k)


def test_get_state_names_and_iterations():
    p = np.zeros(N, np.float32)
    names = {SGD(): [], SGD(momentum=0.9): ["momentum"], RMSprop(): ["velocity"],
             Adam(): ["momentum", "velocity"], Adagrad(): ["accumulator"],
             Adadelta(): ["accumulated_grad", "accumulated_delta_var"]}
    for opt, expect in names.items():
        opt.build(p.copy(), SLOTS)
        st = opt.get_state()
        assert sorted(st) == sorted(expect + ["iterations"])
        assert st["iterations"].shape == () and st["iterations"].dtype == np.int64
        for k in expect:
            assert st[k].shape == (N,) and st[k].dtype == np.float32


def test_set_state_checks():
    p = np.zeros(N, np.float32)
    opt = Adam()
    with pytest.raises(ValueError, match="not built"):
        opt.set_state({})
    opt.build(p, SLOTS)
    good = opt.get_state()
    bad = dict(good)
    bad["momentum"] = np.zeros(N + 1, np.float32)
    with pytest.raises(ValueError, match="momentum"):
        opt.set_state(bad)
    bad = dict(good)
    del bad["velocity"]
    with pytest.raises(ValueError, match="keys"):
        opt.set_state(bad)
    bad = dict(good)
    bad["extra"] = np.zeros(N, np.float32)
    with pytest.raises(ValueError, match="keys"):
        opt.set_state(bad)
    bad = dict(good)
    bad["iterations"] = np.array(-1)
    with pytest.raises(ValueError, match="iterations"):
        opt.set_state(bad)
    bad["iterations"] = np.array([1, 2])
    with pytest.raises(ValueError, match="iterations"):
        opt.set_state(bad)
    bad["iterations"] = np.array(1.0)
    with pytest.raises(ValueError, match="iterations"):
        opt.set_state(bad)
    good["iterations"] = np.array(5, np.int64)
    opt.set_state(good)
    assert opt.iterations == 5
    good["iterations"] = np.array([7], np.int32)  # a size-1 array (as read back from a file) is fine
    opt.set_state(good)
    assert opt.iterations == 7 and type(opt.iterations) is int


# ------------------------------------------------------------ learning rate
def test_learning_rate_setter_takes_effect():
    p = np.zeros(N, np.float32)
    g = np.ones(N, np.float32)
    opt = SGD(learning_rate=0.5)
    opt.build(p, SLOTS)
    opt.apply(p, g.copy())
    assert np.all(p == np.float32(-0.5))
    opt.learning_rate = 0.25
    assert opt.learning_rate == 0.25 and isinstance(opt.learning_rate, float)
    opt.apply(p, g.copy())
    assert np.all(p == np.float32(-0.75))
    opt.learning_rate = np.float32(0.125)
    assert opt.learning_rate == 0.125
    for bad in (-1e-3, float("nan"), float("inf"), True, "0.1", None):
        with pytest.raises(ValueError, match="learning_rate"):
            opt.learning_rate = bad
    assert opt.learning_rate == 0.125


def test_iterations_and_auto_build():
    p = np.zeros(5, np.float32)
    opt = Adam(0.1)
    opt.apply(p, np.ones(5, np.float32))  # builds with one slot
    opt.apply(p, np.ones(5, np.float32))
    assert opt.built and opt.iterations == 2
    opt.build(p, [(0, 2), (2, 3)])
    assert opt.iterations == 0


# ------------------------------------------------------------ config / lookup
@pytest.mark.parametrize("kind,hp", CASES[::2], ids=lambda v: v if isinstance(v, str) else "")
def test_config_round_trip(kind, hp):
    opt = CLASSES[kind](**hp)
    cfg = opt.get_config()
    assert cfg["class_name"] == CLASSES[kind].__name__
    text = json.dumps(cfg)
    again = optimizers.from_config(json.loads(text))
    assert type(again) is type(opt) and again.get_config() == cfg
    ser = optimizers.serialize(opt)
    assert set(ser) == {"class_name", "config"}
    assert optimizers.deserialize(ser).get_config() == cfg
    assert CLASSES[kind].from_config(cfg).get_config() == cfg


def test_get():
    a = Adam(0.5)
    assert optimizers.get(a) is a
    for name in ("sgd", "RMSprop", "ADAM", "adagrad", "Adadelta"):
        assert type(optimizers.get(name)).__name__.lower() == name.lower()
    assert optimizers.get("adam") is not optimizers.get("adam")
    with pytest.raises(ValueError, match="adadelta.*adagrad.*adam.*rmsprop.*sgd"):
        optimizers.get("nadam")
    with pytest.raises(ValueError):
        optimizers.get(3)
    with pytest.raises(ValueError, match="class_name"):
        optimizers.from_config({"class_name": "Nope"})


# ------------------------------------------------------------ validation
@pytest.mark.parametrize("ctor,arg", [
    (lambda: SGD(learning_rate=-0.1), "learning_rate"),
    (lambda: SGD(learning_rate=float("nan")), "learning_rate"),
    (lambda: SGD(learning_rate="fast"), "learning_rate"),
    (lambda: SGD(momentum=1.5), "momentum"),
    (lambda: SGD(momentum=-0.1), "momentum"),
    (lambda: SGD(nesterov="yes"), "nesterov"),
    (lambda: RMSprop(rho=1.0), "rho"),
    (lambda: RMSprop(rho=-0.5), "rho"),
    (lambda: RMSprop(momentum=0.9), "momentum"),
    (lambda: RMSprop(centered=True), "centered"),
    (lambda: RMSprop(epsilon=-1e-7), "epsilon"),
    (lambda: Adam(beta_1=1.0), "beta_1"),
    (lambda: Adam(beta_2=2.0), "beta_2"),
    (lambda: Adam(amsgrad=True), "amsgrad"),
    (lambda: Adagrad(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (lambda: Adadelta(rho=1.2), "rho"),
    (lambda: Adam(clipnorm=0.0), "clipnorm"),
    (lambda: Adam(clipvalue=-1.0), "clipvalue"),
    (lambda: Adam(global_clipnorm=float("inf")), "global_clipnorm"),
    (lambda: Adam(weight_decay=-0.1), "weight_decay"),
    (lambda: Adam(decay=0.1), "decay"),
    (lambda: Adam(foo=1), "not recognized"),
])
def test_bad_arguments(ctor, arg):
    with pytest.raises(ValueError, match=arg):
        ctor()


def test_lr_alias_and_zero_decay():
    with pytest.warns(DeprecationWarning):
        opt = RMSprop(lr=0.01, rho=0.9, epsilon=1e-8, decay=0.0)
    assert opt.learning_rate == 0.01 and opt.epsilon == 1e-8


def test_build_and_apply_checks():
    p = np.zeros(N, np.float32)
    opt = SGD()
    with pytest.raises(ValueError, match="slots\\[1\\]"):
        opt.build(p, [(0, 6), (6, 14)])
    with pytest.raises(ValueError, match="overlap"):
        opt.build(p, [(0, 7), (6, 13)])
    with pytest.raises(ValueError, match="slots\\[0\\]"):
        opt.build(p, [(-1, 3)])
    with pytest.raises(ValueError, match="slots\\[0\\]"):
        opt.build(p, [(0.5, 3)])
    with pytest.raises(TypeError, match="params"):
        opt.build(p.astype(np.float64), SLOTS)
    with pytest.raises(ValueError, match="params"):
        opt.build(p.reshape(1, N), SLOTS)
    opt.build(p, SLOTS)
    with pytest.raises(ValueError, match="grads"):
        opt.apply(p, np.zeros(N + 1, np.float32))
    with pytest.raises(TypeError, match="grads"):
        opt.apply(p, np.zeros(N, np.float64))
    with pytest.raises(ValueError, match="params"):
        opt.apply(np.zeros(N - 1, np.float32), np.zeros(N, np.float32))
    with pytest.raises(ValueError, match="grads"):
        opt.apply(p, np.zeros(2 * N, np.float32)[::2])


def test_empty_arena_and_empty_slot():
    p = np.zeros(0, np.float32)
    opt = Adam(clipnorm=1.0)
    opt.build(p, [(0, 0)])
    opt.apply(p, np.zeros(0, np.float32))
    assert opt.iterations == 1


# ------------------------------------------------------------ performance contracts
@pytest.mark.parametrize("kind,hp", [("adam", {"clipnorm": 0.1}), ("rmsprop", {"global_clipnorm": 0.1}),
                                     ("sgd", {"momentum": 0.9, "clipvalue": 0.01})])
def test_apply_allocates_no_arena_sized_temporaries(kind, hp):
    n = 200_000
    rs = np.random.default_rng(0)
    p = rs.standard_normal(n).astype(np.float32)
    g = rs.standard_normal(n).astype(np.float32)
    opt = CLASSES[kind](**hp)
    opt.build(p, [(0, 1000), (1000, n - 1000)])
    opt.apply(p, g)  # warm up
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.apply(p, g)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 4 // 8, f"apply allocated {peak} bytes (arena is {n * 4})"


@pytest.mark.parametrize("kind,hp", [("adam", {"clipnorm": 0.5}), ("adadelta", {"global_clipnorm": 0.5})])
def test_threads_bitwise(kind, hp):
    n = 70_000  # several parallel chunks
    rs = np.random.default_rng(2)
    p0 = rs.standard_normal(n).astype(np.float32)
    gs = [rs.standard_normal(n).astype(np.float32) for _ in range(3)]
    out = []
    for t in (1, 2):
        with threads(t):
            p = p0.copy()
            opt = CLASSES[kind](**hp)
            opt.build(p, [(0, 30_000), (30_000, 40_000)])
            run(opt, p, gs)
            out.append(p)
    same_bits(out[0], out[1])
