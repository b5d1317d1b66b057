"""One schema for model.json, checked before anything is built.

``validate(meta, arrays, label)`` checks every field of a model file's model.json
(the archive reader has already made the member set canonical): type and range of each
layer config field (a table per layer class below, following the constructors'
arguments), no unknown, missing or extra fields, `trainable` a bool, ints that are not
bools, finite numbers. Then it derives, without allocating anything, the weight shapes
the config implies (layers are constructed and their ``build`` declares weight specs;
no initializer runs) and compares them with the stored arrays, and bounds the total
parameter count and every per-sample activation size. Errors are ``ValueError`` naming
the field path, e.g. ``config.layers[1].config.use_bias: expected a bool, got -1``.

Graph models: ``CONFIG_SCHEMAS`` maps a model class name to its config validator;
"Sequential" is complete. HOOK (Functional): add ``CONFIG_SCHEMAS["Functional"] =
_functional_config`` that validates "layers" entries carrying "inbound_nodes" the same
way per layer (``_layer_entry``) and walks the graph for shapes.
"""
from __future__ import annotations

import math

import numpy as np

MAX_PARAMS = 1 << 31          # total weight elements a config may imply
MAX_ACTIVATION = 1 << 31      # elements per sample of any layer output
MAX_DIM = 1 << 31
MAX_LAYERS = 10000
MAX_STR = 200
_I63 = (1 << 63) - 1
_I64 = (1 << 64) - 1


class SchemaError(ValueError):
    pass


def _fail(path, msg):
    raise SchemaError(f"{path}: {msg}")


def _show(v):
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


# ----------------------------------------------------------------------------- field checkers
# Each checker is f(value, path) -> None, raising SchemaError.

def BOOL(v, path):
    if type(v) is not bool:
        _fail(path, f"expected a bool, got {_show(v)}")


def INT(lo=None, hi=None):
    def check(v, path):
        if type(v) is not int:
            _fail(path, f"expected an int, got {_show(v)}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            _fail(path, f"expected an int in [{lo}, {hi}], got {_show(v)}")
    return check


def FLOAT(lo=None, hi=None, lo_open=False, hi_open=False):
    def check(v, path):
        if type(v) not in (int, float):
            _fail(path, f"expected a number, got {_show(v)}")
        if not math.isfinite(v):
            _fail(path, f"expected a finite number, got {_show(v)}")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            _fail(path, f"expected a number {'>' if lo_open else '>='} {lo}, got {_show(v)}")
        if hi is not None and (v > hi or (hi_open and v == hi)):
            _fail(path, f"expected a number {'<' if hi_open else '<='} {hi}, got {_show(v)}")
    return check


def STR(maxlen=MAX_STR):
    def check(v, path):
        if type(v) is not str:
            _fail(path, f"expected a string, got {_show(v)}")
        if len(v) > maxlen or "\x00" in v:
            _fail(path, f"expected a string of at most {maxlen} characters without NUL, got {_show(v)}")
    return check


def ENUM(*choices):
    def check(v, path):
        if type(v) is not str and v is not None or v not in choices:
            _fail(path, f"expected one of {list(choices)}, got {_show(v)}")
    return check


def OPT(inner):
    def check(v, path):
        if v is not None:
            inner(v, path)
    return check


def LIST(inner, min_len=0, max_len=None):
    def check(v, path):
        if not isinstance(v, list):
            _fail(path, f"expected a list, got {_show(v)}")
        if len(v) < min_len or (max_len is not None and len(v) > max_len):
            _fail(path, f"expected a list of {min_len}..{max_len} items, got {len(v)}")
        for i, x in enumerate(v):
            inner(x, f"{path}[{i}]")
    return check


def PAIR(lo, hi):
    return LIST(INT(lo, hi), 2, 2)


SHAPE = LIST(INT(1, MAX_DIM), 1, 8)
NAME = OPT(STR())
SEED = OPT(INT(0, _I63))


def SCALAR(v, path):
    """A JSON scalar of a free-form config: None, bool, finite number, short string."""
    if v is None or type(v) is bool:
        return
    if type(v) in (int, float):
        FLOAT()(v, path)
        return
    if type(v) is str:
        STR()(v, path)
        return
    _fail(path, f"expected a number, string, bool or null, got {_show(v)}")


def FLAT_DICT(v, path, depth=0):
    """A free-form config object of scalars (and nested objects, 3 levels at most)."""
    if not isinstance(v, dict):
        _fail(path, f"expected an object, got {_show(v)}")
    if len(v) > 64:
        _fail(path, "too many fields")
    for k, x in v.items():
        STR()(k, f"{path} (key)")
        if isinstance(x, dict) and depth < 3:
            FLAT_DICT(x, f"{path}.{k}", depth + 1)
        elif isinstance(x, list) and depth < 3:
            if len(x) > 64:
                _fail(f"{path}.{k}", "list too long")
            for i, y in enumerate(x):
                SCALAR(y, f"{path}.{k}[{i}]")
        else:
            SCALAR(x, f"{path}.{k}")


def INITIALIZER(v, path):
    if type(v) is str:
        STR(64)(v, path)
    else:
        FLAT_DICT(v, path)
        if type(v.get("class_name")) is not str:
            _fail(f"{path}.class_name", f"expected a string, got {_show(v.get('class_name'))}")
        if "gain" in v:
            FLOAT(0, 1e6)(v["gain"], f"{path}.gain")
        if "seed" in v:
            SEED(v["seed"], f"{path}.seed")
    from . import initializers
    try:
        init = initializers.get(v)
    except (ValueError, TypeError) as exc:
        _fail(path, f"not a valid initializer ({exc})")
    _same_fields(v, init, path)


def REGULARIZER(v, path):
    if v is None:
        return
    FLAT_DICT(v, path)
    for k, x in (v.get("config") or {}).items() if isinstance(v.get("config"), dict) else ():
        if type(x) in (int, float):
            FLOAT(0, 1e6)(x, f"{path}.config.{k}")
    from . import regularizers
    try:
        regularizers.get(v)
    except (ValueError, TypeError, KeyError) as exc:
        _fail(path, f"not a valid regularizer ({exc})")


def _same_fields(cfg, obj, path):
    """A config object must carry exactly the fields the object it builds records."""
    if not isinstance(cfg, dict) or not hasattr(obj, "get_config"):
        return
    try:
        want = set(obj.get_config())
    except Exception:  # noqa: BLE001 - an object without a usable config: nothing to compare
        return
    for k in sorted(set(cfg) - want):
        _fail(f"{path}.{k}", f"unknown field (expected {sorted(want)})")
    for k in sorted(want - set(cfg)):
        _fail(f"{path}.{k}", "missing")


ACTIVATION = STR(64)

# ----------------------------------------------------------------------------- layer schemas
# class name -> {field: (checker, required)}

_BASE = {"name": (NAME, True), "trainable": (BOOL, True), "input_shape": (SHAPE, False),
         "dtype": (OPT(ENUM("float32")), False)}

_DENSE = {"units": (INT(1, MAX_DIM), True), "activation": (ACTIVATION, True), "use_bias": (BOOL, True),
          "kernel_initializer": (INITIALIZER, True), "bias_initializer": (INITIALIZER, True),
          "kernel_regularizer": (REGULARIZER, True), "bias_regularizer": (REGULARIZER, True)}

_POOL = {"pool_size": (PAIR(1, 1 << 16), True), "strides": (PAIR(1, 1 << 16), True),
         "padding": (ENUM("valid", "same"), True)}

_RNN = {"units": (INT(1, MAX_DIM), True), "activation": (ACTIVATION, True), "use_bias": (BOOL, True),
        "kernel_initializer": (INITIALIZER, True), "recurrent_initializer": (INITIALIZER, True),
        "bias_initializer": (INITIALIZER, True), "kernel_regularizer": (REGULARIZER, True),
        "recurrent_regularizer": (REGULARIZER, True), "bias_regularizer": (REGULARIZER, True),
        "dropout": (FLOAT(0, 1, hi_open=True), True), "return_sequences": (BOOL, True),
        "return_state": (BOOL, True), "go_backwards": (BOOL, True), "unroll": (BOOL, True),
        "seed": (SEED, True)}

LAYER_SCHEMAS = {
    "InputLayer": {"shape": (OPT(SHAPE), True)},
    "Dense": _DENSE,
    "Activation": {"activation": (ACTIVATION, True)},
    "Flatten": {},
    "Reshape": {"target_shape": (LIST(INT(-1, MAX_DIM), 1, 8), True)},
    "Dropout": {"rate": (FLOAT(0, 1, hi_open=True), True), "seed": (SEED, True)},
    "Conv2D": dict(_DENSE, units=None, filters=(INT(1, MAX_DIM), True), kernel_size=(PAIR(1, 1 << 16), True),
                   strides=(PAIR(1, 1 << 16), True), padding=(ENUM("valid", "same"), True),
                   algorithm=(STR(32), False)),
    "MaxPooling2D": _POOL,
    "AveragePooling2D": _POOL,
    "BatchNormalization": {"axis": (INT(-8, 8), True), "momentum": (FLOAT(0, 1), True),
                           "epsilon": (FLOAT(0, 1e3, lo_open=True), True), "center": (BOOL, True),
                           "scale": (BOOL, True)},
    "SimpleRNN": _RNN,
    "LSTM": dict(_RNN, recurrent_activation=(ACTIVATION, True), unit_forget_bias=(BOOL, True)),
    "GRU": dict(_RNN, recurrent_activation=(ACTIVATION, True), reset_after=(BOOL, True)),
    "Bidirectional": {"layer": (None, True),  # checked by _layer_entry (a recurrent layer)
                      "merge_mode": (ENUM("concat", "sum", "mul", "ave", None), True)},
}
for _k in ("MaxPool2D", "AvgPool2D"):
    LAYER_SCHEMAS[_k] = _POOL
LAYER_SCHEMAS["Conv2D"].pop("units")


def _layer_config(cls_name, cfg, path):
    if not isinstance(cfg, dict):
        _fail(path, f"expected an object, got {_show(cfg)}")
    fields = dict(_BASE)
    fields.update(LAYER_SCHEMAS[cls_name])
    for k in cfg:
        if k not in fields:
            _fail(f"{path}.{k}", f"unknown field for {cls_name} (expected {sorted(fields)})")
    for k, (check, required) in fields.items():
        if k not in cfg:
            if required:
                _fail(f"{path}.{k}", f"missing (required for {cls_name})")
            continue
        if k == "layer" and cls_name == "Bidirectional":
            _layer_entry(cfg[k], f"{path}.layer", allowed=("LSTM", "GRU", "SimpleRNN"))
        else:
            check(cfg[k], f"{path}.{k}")


def _layer_entry(entry, path, allowed=None):
    if not isinstance(entry, dict):
        _fail(path, f"expected an object, got {_show(entry)}")
    extra = set(entry) - {"class_name", "config"}
    if extra:
        _fail(f"{path}.{sorted(extra)[0]}", "unknown field")
    name = entry.get("class_name")
    if type(name) is not str or name not in LAYER_SCHEMAS or (allowed and name not in allowed):
        _fail(f"{path}.class_name", f"expected a layer class of {sorted(allowed or LAYER_SCHEMAS)}, got {_show(name)}")
    if "config" not in entry:
        _fail(f"{path}.config", "missing")
    _layer_config(name, entry["config"], f"{path}.config")


def _sequential_config(cfg, path):
    if not isinstance(cfg, dict):
        _fail(path, f"expected an object, got {_show(cfg)}")
    allowed = {"name", "layers", "build_input_shape"}
    for k in cfg:
        if k not in allowed:
            _fail(f"{path}.{k}", "unknown field")
    for k in ("name", "layers", "build_input_shape"):
        if k not in cfg:
            _fail(f"{path}.{k}", "missing")
    NAME(cfg["name"], f"{path}.name")
    layers = cfg["layers"]
    LIST(lambda e, p: None, 0, MAX_LAYERS)(layers, f"{path}.layers")
    for i, entry in enumerate(layers):
        _layer_entry(entry, f"{path}.layers[{i}]")
    bis = cfg["build_input_shape"]
    if True:
        if not isinstance(bis, list) or not 2 <= len(bis) <= 9 or bis[0] is not None:
            _fail(f"{path}.build_input_shape", f"expected [null, d1, ...], got {_show(bis)}")
        SHAPE(bis[1:], f"{path}.build_input_shape[1:]")


# model class -> validator of meta["config"]. HOOK: add "Functional" here (see the module doc).
CONFIG_SCHEMAS = {"Sequential": _sequential_config}


# ----------------------------------------------------------------------------- the rest of model.json

_CB_INT = {"wait", "cooldown_counter", "stopped_epoch", "best_epoch", "batches_since_save", "epoch"}


_CB_KEYS = {  # the built-in callbacks' saved state: exactly these keys
    "ReduceLROnPlateau": {"wait", "cooldown_counter", "best"},
    "EarlyStopping": {"wait", "stopped_epoch", "best", "best_epoch", "direction", "has_best_weights"},
    "ModelCheckpoint": {"best", "direction", "batches_since_save", "last_batch_seen"},
    "LearningRateWarmup": {"target", "done"},
}


def _callback_state(st, path, cls=None):
    FLAT_DICT(st, path)
    keys = _CB_KEYS.get(cls)
    if keys is not None:
        for k in st:
            if k not in keys:
                _fail(f"{path}.{k}", f"unknown field for {cls} (expected {sorted(keys)})")
        for k in sorted(keys - set(st)):
            _fail(f"{path}.{k}", f"missing (required for {cls})")
    for k, v in st.items():
        p = f"{path}.{k}"
        if k in _CB_INT:
            INT(0, 1 << 53)(v, p)
        elif k == "last_batch_seen":
            INT(-1, 1 << 53)(v, p)
        elif k in ("best", "target"):
            if not (v is None or v in ("inf", "-inf", "nan")):
                FLOAT()(v, p)
        elif k in ("done", "has_best_weights"):
            BOOL(v, p)
        elif k == "direction":
            ENUM("min", "max", "auto", None)(v, p)


def _compile(c, path):
    if not isinstance(c, dict):
        _fail(path, f"expected an object, got {_show(c)}")
    for k in c:
        if k not in ("optimizer", "loss", "metrics"):
            _fail(f"{path}.{k}", "unknown field")
    for k in ("optimizer", "loss", "metrics"):
        if k not in c:
            _fail(f"{path}.{k}", "missing")
    FLAT_DICT(c["optimizer"], f"{path}.optimizer")
    opt = c["optimizer"]
    if type(opt.get("class_name")) is not str:
        _fail(f"{path}.optimizer.class_name", f"expected a string, got {_show(opt.get('class_name'))}")
    lr = opt.get("learning_rate")
    if type(lr) in (int, float, bool):
        FLOAT(0, 1e6)(lr, f"{path}.optimizer.learning_rate")
    for k, v in opt.items():
        if k in ("beta_1", "beta_2", "rho", "momentum"):
            FLOAT(0, 1)(v, f"{path}.optimizer.{k}")
        elif k in ("epsilon",):
            FLOAT(0, 1e3)(v, f"{path}.optimizer.{k}")
        elif k in ("amsgrad", "nesterov", "centered"):
            BOOL(v, f"{path}.optimizer.{k}")
        elif k in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
            OPT(FLOAT(0))(v, f"{path}.optimizer.{k}")
    from . import optimizers
    try:
        o = optimizers.from_config(dict(opt))
    except (ValueError, TypeError, KeyError) as exc:
        _fail(f"{path}.optimizer", f"not a valid optimizer config ({exc})")
    _same_fields(opt, o, f"{path}.optimizer")
    loss = c["loss"]
    if isinstance(loss, dict):
        FLAT_DICT(loss, f"{path}.loss")
    else:
        STR()(loss, f"{path}.loss")
    from . import losses
    try:
        lo = losses.get(loss)
    except (ValueError, TypeError, KeyError) as exc:
        _fail(f"{path}.loss", f"not a valid loss ({exc})")
    if isinstance(loss, dict):
        _same_fields(loss, lo, f"{path}.loss")
    m = c["metrics"]
    LIST(lambda v, p: (FLAT_DICT(v, p) if isinstance(v, dict) else STR()(v, p)), 0, 64)(m, f"{path}.metrics")


_TOP = {"format": True, "version": True, "config": True, "weights": True, "seed": True, "epoch": True,
        "dropout_streams": True, "compile": False, "optimizer_state": False, "callbacks": True,
        "checksums": True}
_TOP_WEIGHTS = {"format": True, "version": True, "weights": True, "checksums": True}


def validate_meta(meta, label="model.json"):
    """Field-by-field check of a model file's model.json (no arrays needed)."""
    if not isinstance(meta, dict):
        _fail(label, "expected an object")
    fmt = meta.get("format")
    top = _TOP_WEIGHTS if fmt == "fastnn-model-weights" else _TOP
    for k in meta:
        if k not in top:
            _fail(k, "unknown field")
    for k, req in top.items():
        if req and k not in meta:
            _fail(k, "missing")
    LIST(STR(), 0, 1 << 16)(meta["weights"], "weights")
    if fmt == "fastnn-model-weights":
        return
    cls = meta.get("class_name", "Sequential") if isinstance(meta.get("config"), dict) else "Sequential"
    CONFIG_SCHEMAS[cls](meta["config"], "config")
    if "seed" in meta:
        INT(0, _I64)(meta["seed"], "seed")
    if "epoch" in meta:
        INT(0, 1 << 31)(meta["epoch"], "epoch")
    if "dropout_streams" in meta:
        LIST(INT(0, _I64), 0, MAX_LAYERS)(meta["dropout_streams"], "dropout_streams")
    if "compile" in meta:
        _compile(meta["compile"], "compile")
    if "optimizer_state" in meta:
        LIST(STR(), 0, 1 << 16)(meta["optimizer_state"], "optimizer_state")
        if "compile" not in meta:
            _fail("optimizer_state", "optimizer state without a compiled optimizer")
    elif "compile" in meta:
        _fail("optimizer_state", "missing (required with compile)")
    if "callbacks" in meta:
        cbs = meta["callbacks"]
        LIST(lambda v, p: None, 0, 1024)(cbs, "callbacks")
        for i, st in enumerate(cbs):
            p = f"callbacks[{i}]"
            if not isinstance(st, dict):
                _fail(p, f"expected an object, got {_show(st)}")
            for k in st:
                if k not in ("class_name", "index", "state", "arrays"):
                    _fail(f"{p}.{k}", "unknown field")
            for k in ("class_name", "index", "state", "arrays"):
                if k not in st:
                    _fail(f"{p}.{k}", "missing")
            STR()(st["class_name"], f"{p}.class_name")
            INT(0, 1024)(st["index"], f"{p}.index")
            _callback_state(st["state"], f"{p}.state", st["class_name"])
            LIST(STR(), 0, 1 << 16)(st["arrays"], f"{p}.arrays")


# ----------------------------------------------------------------------------- shapes before allocation

def _declared_shapes(cfg):
    """[(layer path, weight name, shape)] the Sequential config implies, computed with
    Python ints by the layers' own build (which only declares weights: nothing is
    allocated, no initializer runs); also bounds every per-sample output size."""
    from . import layers as _layers

    out = []
    bis = cfg.get("build_input_shape")
    if not bis:
        return None
    shape = tuple(bis[1:])
    total = 0
    streams = 0
    for i, entry in enumerate(cfg["layers"]):
        path = f"config.layers[{i}]"
        try:
            layer = _layers.get_class(entry["class_name"]).from_config(dict(entry["config"]))
        except (ValueError, TypeError, KeyError) as exc:
            _fail(path, f"cannot be constructed ({exc})")
        if isinstance(layer, _layers.Dropout) or hasattr(layer, "sample_offset"):
            streams += 1  # layers that draw dropout masks from a saved stream seed
        # per-layer lower bound first (no input shape needed): refuses 2^40 units at once
        units = entry["config"].get("units") or entry["config"].get("filters") or 0
        if units > MAX_PARAMS:
            _fail(f"{path}.config", f"{units} units/filters exceed the {MAX_PARAMS}-parameter bound")
        in_elems = math.prod(shape)
        if type(units) is int and units and in_elems * units > MAX_PARAMS and entry["class_name"] == "Dense":
            _fail(path, f"a Dense of {units} units on {in_elems} inputs implies {in_elems * units} "
                        f"parameters (more than {MAX_PARAMS})")
        try:
            layer.build(shape)
        except (ValueError, TypeError, IndexError, OverflowError) as exc:
            _fail(path, f"does not apply to input {(None,) + tuple(shape)} ({exc})")
        for w in _all_specs(layer):
            n = math.prod(w.shape)
            total += n
            if total > MAX_PARAMS:
                _fail(path, f"the config implies more than {MAX_PARAMS} parameters")
            out.append((path, w.name, tuple(w.shape)))
        shape = tuple(layer.output_shape)
        if math.prod(shape) > MAX_ACTIVATION:
            _fail(path, f"output shape {(None,) + shape} has {math.prod(shape)} elements per sample "
                        f"(more than {MAX_ACTIVATION})")
    if "dropout_streams" in _META_CTX and len(_META_CTX["dropout_streams"]) != streams:
        _fail("dropout_streams", f"expected {streams} stream seeds (one per dropout-drawing layer), "
                                 f"got {len(_META_CTX['dropout_streams'])}")
    return out


_META_CTX = {}


def _all_specs(layer):
    return list(layer.weights)


def validate(meta, arrays, label="model.json"):
    """Checks model.json field by field, then the weight shapes the config implies against
    the stored arrays, before any layer is built for real or any initializer runs."""
    try:
        validate_meta(meta, label)
        if meta.get("format") == "fastnn-model-weights":
            return
        _META_CTX.clear()
        _META_CTX.update({k: meta[k] for k in ("dropout_streams",) if k in meta})
        try:
            shapes = _declared_shapes(meta["config"])
        finally:
            _META_CTX.clear()
    except SchemaError as exc:
        raise SchemaError(f"load: {label}: {exc}") from None
    if shapes is None:
        return
    ws = meta["weights"]
    if len(shapes) != len(ws):
        raise SchemaError(f"load: {label}: weights: the config implies {len(shapes)} weight arrays, "
                          f"the file lists {len(ws)}")
    for i, (path, wname, shp) in enumerate(shapes):
        arr = arrays.get(f"weights/{i:05d}.npy")
        if arr is None:
            raise SchemaError(f"load: {label}: missing weights/{i:05d}.npy")
        if tuple(arr.shape) != shp:
            raise SchemaError(f"load: {label}: {path}: weight {wname!r} should be {shp} by the config, "
                              f"the stored array is {tuple(arr.shape)}")
        if arr.dtype.kind != "f":
            raise SchemaError(f"load: {label}: weights/{i:05d}.npy: expected a float array, got {arr.dtype}")
