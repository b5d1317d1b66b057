"""Keras 3 ``.keras`` archives in and out.

A ``.keras`` file is a ZIP holding ``metadata.json``, ``config.json`` (the model's
class, its layers' configs and, for a functional model, each layer's inbound nodes)
and ``model.weights.h5`` (each layer's variables under ``layers/<path>/vars/<i>``,
where ``<path>`` is the snake-case class name with a counter in ``model.layers``
order; recurrent layers keep theirs under ``.../cell/vars``, Bidirectional under
``forward_layer`` / ``backward_layer``).

Reading trusts nothing: exactly those three members (an ``assets/`` folder is
refused, fastnn has no layer with assets), names and sizes checked before anything
is inflated, a byte budget per member while inflating, the configs translated layer
by layer (an unknown layer class or an argument fastnn does not implement at a value
that would change the model is a ValueError naming the layer and the argument), and
every variable's shape compared with the layer's weight before it is copied. HDF5 is
read through h5py from memory; no pickle and no code are involved.
"""
from __future__ import annotations

import inspect
import io
import json
import os
import zipfile

import numpy as np

from . import _keras_names as names

MEMBERS = ("metadata.json", "config.json", "model.weights.h5")
_JSON_CAP = 16 << 20          # bytes of metadata.json / config.json
_WEIGHTS_CAP = 4 << 30        # bytes of model.weights.h5
_RATIO_CAP = 1000             # inflated / stored size of a member


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("fastnn: reading and writing .keras files needs h5py: "
                          "pip install 'pyfastnn[keras]' (or pip install h5py)") from None
    return h5py


# ------------------------------------------------------------------ reading

def _read_members(path):
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise ValueError(f"load_keras: {p}: cannot read ({exc.strerror})") from None
    import stat
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"load_keras: {p}: not a regular file")
    out = {}
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            seen = [i.filename for i in infos]
            for name in seen:
                if name not in MEMBERS:
                    raise ValueError(f"load_keras: {p}: unexpected archive member {name!r} "
                                     f"(expected exactly {list(MEMBERS)})")
            if len(seen) != len(set(seen)):
                raise ValueError(f"load_keras: {p}: duplicate archive members")
            for name in ("config.json", "model.weights.h5"):
                if name not in seen:
                    raise ValueError(f"load_keras: {p}: no {name} in the archive")
            for info in infos:
                cap = _WEIGHTS_CAP if info.filename.endswith(".h5") else _JSON_CAP
                if info.file_size > cap or info.file_size > _RATIO_CAP * max(info.compress_size, 1) + (1 << 20):
                    raise ValueError(f"load_keras: {p}: member {info.filename} declares {info.file_size} bytes "
                                     f"from {info.compress_size}: refused")
                chunks, total = [], 0
                with zf.open(info) as fh:    # streamed, so a lying header cannot inflate past the cap
                    while True:
                        block = fh.read(1 << 20)
                        if not block:
                            break
                        total += len(block)
                        if total > info.file_size or total > cap:
                            raise ValueError(f"load_keras: {p}: member {info.filename} inflates past its "
                                             f"declared size: refused")
                        chunks.append(block)
                out[info.filename] = b"".join(chunks)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"load_keras: {p}: not a readable .keras archive ({type(exc).__name__}: {exc})") from None
    return out


def _json(data, name, path):
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"load_keras: {path}: malformed {name} ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"load_keras: {path}: {name}: expected a JSON object")
    return value


def _initializer(value, where):
    """A Keras initializer config -> fastnn's form; None when fastnn has no such
    initializer (the weights come from the file, so only a re-initialization differs)."""
    if value is None or isinstance(value, str):
        return value if value is None or value.lower() in names.INITIALIZERS else None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an initializer config, got {value!r}")
    fn = names.KERAS_INITIALIZERS.get(value.get("class_name"))
    if fn is None:
        return None
    cfg = {k: v for k, v in (value.get("config") or {}).items() if v is not None and k in ("gain", "value")}
    return {"class_name": fn, **cfg}


def _regularizer(value, where):
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        raise ValueError(f"{where}: expected a regularizer config, got {value!r}")
    cname = {"L1": "L1", "L2": "L2", "L1L2": "L1L2"}.get(value["class_name"])
    if cname is None:
        raise ValueError(f"{where}: regularizer {value['class_name']!r} is not supported by fastnn")
    return {"class_name": cname, "config": dict(value.get("config") or {})}


def _dtype_ok(value):
    if value is None or value == "float32":
        return True
    if isinstance(value, dict):
        cfg = value.get("config") or {}
        return cfg.get("name", "float32") == "float32"
    return False


def translate_layer(entry, where="config"):
    """One Keras layer entry ({'class_name', 'config', ...}) -> a fastnn layer."""
    from .. import layers as _layers

    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ValueError(f"{where}: expected a layer entry with a class_name")
    cname = entry["class_name"]
    cfg = entry.get("config")
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} ({cname}): expected a config object")
    label = f"{where} ({cname} {cfg.get('name')!r})"
    try:
        cls = _layers.get_class(cname)
    except ValueError:
        raise ValueError(f"{label}: layer class {cname!r} is not supported by fastnn") from None
    cfg = dict(cfg)
    if cname == "InputLayer":
        shape = cfg.pop("batch_shape", None) or cfg.pop("batch_input_shape", None)
        if not isinstance(shape, list) or len(shape) < 2:
            raise ValueError(f"{label}: batch_shape: expected [null, ...], got {shape!r}")
        return cls(shape=tuple(shape[1:]), name=cfg.get("name")), cfg.get("dtype")
    if not _dtype_ok(cfg.pop("dtype", None)):
        raise ValueError(f"{label}: dtype: only float32 is supported")
    for key, allowed in names.NEUTRAL.items():
        if key in cfg:
            value = names.normalize(cfg.pop(key))
            if value not in allowed and not (isinstance(value, tuple) and set(value) == {1} and 1 in allowed):
                raise ValueError(f"{label}: {key}={value!r} is not supported by fastnn")
    if cname == "Bidirectional":
        inner = cfg.pop("layer")
        back = cfg.pop("backward_layer", None)
        fwd, _ = translate_layer(inner, f"{label}.layer")
        if back is not None:
            bcfg, fcfg = dict(back.get("config") or {}), dict(inner.get("config") or {})
            for k in ("name", "go_backwards", *names.INITIALIZER_KEYS):
                bcfg.pop(k, None)
                fcfg.pop(k, None)
            if back.get("class_name") != inner.get("class_name") or names.normalize(bcfg) != names.normalize(fcfg):
                raise ValueError(f"{label}: backward_layer: a backward layer that differs from the forward one "
                                 "is not supported by fastnn")
        cfg.pop("build_config", None)
        return _construct(cls, dict(cfg, layer=fwd), label), None
    if not cfg.get("renorm", False):
        cfg.pop("renorm_clipping", None)
        cfg.pop("renorm_momentum", None)
    sig = _accepted(cls)
    for key in list(cfg):
        if key in names.INITIALIZER_KEYS:
            init = _initializer(cfg[key], f"{label}: {key}")
            if init is None or key not in sig:
                cfg.pop(key)
            else:
                cfg[key] = init
        elif key.endswith("_regularizer"):
            if cfg[key] is None and key not in sig:
                cfg.pop(key)
            else:
                cfg[key] = _regularizer(cfg[key], f"{label}: {key}")
    cfg.pop("build_config", None)
    for key in list(cfg):
        if key not in sig:
            raise ValueError(f"{label}: argument {key}={cfg[key]!r} is not supported by fastnn")
    return _construct(cls, cfg, label), None


def _accepted(cls):
    """The keyword arguments cls's constructor takes, its bases' up to Layer included."""
    from ..layers.base import Layer

    keys = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            keys |= {n for n, p in inspect.signature(klass.__init__).parameters.items()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
        if klass is Layer:
            break
    return keys


def _construct(cls, cfg, label):
    try:
        return cls(**cfg)
    except TypeError as exc:
        raise ValueError(f"{label}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def load_keras(path):
    """Reads a Keras 3 ``.keras`` file of a Sequential or Functional model built from
    layers fastnn has; returns the fastnn model with the same weights (not compiled)."""
    members = _read_members(path)
    config = _json(members["config.json"], "config.json", path)
    if "metadata.json" in members:
        _json(members["metadata.json"], "metadata.json", path)
    cname = config.get("class_name")
    mcfg = config.get("config")
    if not isinstance(mcfg, dict) or not isinstance(mcfg.get("layers"), list):
        raise ValueError(f"load_keras: {path}: config.json: expected a model config with a 'layers' list")
    if cname == "Sequential":
        model, order = _sequential_from(mcfg, path)
    elif cname in ("Functional", "Model"):
        model, order = _functional_from(mcfg, path)
    else:
        raise ValueError(f"load_keras: {path}: model class {cname!r} is not supported "
                         "(expected Sequential or Functional)")
    _load_weights_h5(model, order, members["model.weights.h5"], path)
    return model


def _sequential_from(mcfg, path):
    from .. import models
    from ..layers import InputLayer

    built = []
    for i, entry in enumerate(mcfg["layers"]):
        layer, _ = translate_layer(entry, f"load_keras: {path}: layers[{i}]")
        built.append(layer)
    if not built or not isinstance(built[0], InputLayer):
        shape = mcfg.get("build_input_shape")
        if isinstance(shape, list) and len(shape) >= 2:
            built.insert(0, InputLayer(shape=tuple(shape[1:])))
        else:
            raise ValueError(f"load_keras: {path}: the Sequential model has no input shape")
    model = models.Sequential(built, name=mcfg.get("name"))
    order = [l for l in built if not isinstance(l, InputLayer)]    # Keras's Sequential.layers
    return model, order


def _functional_from(mcfg, path):
    import fastnn as fnn

    tensors = {}          # (layer name, node index, tensor index) -> symbolic tensor
    by_name = {}
    order = []
    for i, entry in enumerate(mcfg["layers"]):
        where = f"load_keras: {path}: layers[{i}]"
        layer, dtype = translate_layer(entry, where)
        name = layer.name
        if name in by_name:
            raise ValueError(f"{where}: duplicate layer name {name!r}")
        by_name[name] = layer
        order.append(layer)
        if entry["class_name"] == "InputLayer":
            shape = layer.input_shape_arg
            t = fnn.Input(shape=shape, dtype=dtype if dtype in ("int32", "float32") else "float32", name=name)
            tensors[(name, 0, 0)] = t
            by_name[name] = t._keras_history_layer if hasattr(t, "_keras_history_layer") else layer
            continue
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise ValueError(f"{where}: inbound_nodes: expected a list")
        for k, node in enumerate(nodes):
            args = node.get("args") if isinstance(node, dict) else None
            if not isinstance(args, list) or not args:
                raise ValueError(f"{where}: inbound_nodes[{k}]: expected args")
            if node.get("kwargs"):
                kw = {a: b for a, b in node["kwargs"].items() if b not in (None, False)}
                if kw:
                    raise ValueError(f"{where}: inbound_nodes[{k}]: call arguments {sorted(kw)} are not supported")
            inputs = _resolve(args[0], tensors, f"{where}: inbound_nodes[{k}]")
            out = layer(inputs)
            outs = out if isinstance(out, (list, tuple)) else [out]
            for j, t in enumerate(outs):
                tensors[(name, k, j)] = t
    ins = [_resolve_ref(r, tensors, f"load_keras: {path}: input_layers") for r in _refs(mcfg.get("input_layers"))]
    outs = [_resolve_ref(r, tensors, f"load_keras: {path}: output_layers") for r in _refs(mcfg.get("output_layers"))]
    model = fnn.Model(inputs=ins if len(ins) > 1 else ins[0], outputs=outs if len(outs) > 1 else outs[0],
                      name=mcfg.get("name"))
    return model, order


def _refs(value):
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    if isinstance(value, list) and value:
        return value
    raise ValueError(f"expected a list of [layer, node, tensor] references, got {value!r}")


def _resolve_ref(ref, tensors, where):
    if not (isinstance(ref, list) and len(ref) == 3):
        raise ValueError(f"{where}: bad tensor reference {ref!r}")
    key = (ref[0], ref[1], ref[2])
    if key not in tensors:
        raise ValueError(f"{where}: reference to an unknown tensor {ref!r}")
    return tensors[key]


def _resolve(arg, tensors, where):
    if isinstance(arg, list):
        return [_resolve(a, tensors, where) for a in arg]
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return _resolve_ref((arg.get("config") or {}).get("keras_history"), tensors, where)
    raise ValueError(f"{where}: unsupported call argument {arg!r}")


def _weight_groups(layer):
    """[(sub-path inside the layer's group, [WeightSpec])] in Keras's variable order."""
    from ..layers.recurrent import Bidirectional, _Recurrent

    if isinstance(layer, Bidirectional):
        return [("forward_layer/cell", list(layer.forward_layer.weights)),
                ("backward_layer/cell", list(layer.backward_layer.weights))]
    if isinstance(layer, _Recurrent):
        return [("cell", list(layer.weights))]
    return [("", list(layer.weights))]


def _paths(order):
    used = {}
    out = []
    for layer in order:
        base = names.snake_case(type(layer).__name__)
        n = used.get(base, 0)
        used[base] = n + 1
        out.append(base if n == 0 else f"{base}_{n}")
    return out


def _load_weights_h5(model, order, data, path):
    h5py = _h5py()
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except (OSError, ValueError) as exc:
        raise ValueError(f"load_keras: {path}: model.weights.h5 is not a readable HDF5 file ({exc})") from None
    values = {}
    with f:
        for layer, p in zip(order, _paths(order)):
            for sub, specs in _weight_groups(layer):
                if not specs:
                    continue
                gpath = "/".join(x for x in ("layers", p, sub, "vars") if x)
                group = f.get(gpath)
                if group is None or not isinstance(group, h5py.Group):
                    raise ValueError(f"load_keras: {path}: no variables for layer {layer.name!r} ({gpath})")
                keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
                if len(keys) != len(specs) or any(not k.isdigit() for k in keys):
                    raise ValueError(f"load_keras: {path}: layer {layer.name!r}: expected {len(specs)} variables "
                                     f"in {gpath}, found {len(keys)}")
                for k, spec in zip(keys, specs):
                    ds = group[k]
                    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
                        raise ValueError(f"load_keras: {path}: {gpath}/{k}: expected a numeric array")
                    if tuple(ds.shape) != tuple(spec.shape):
                        raise ValueError(f"load_keras: {path}: layer {layer.name!r} variable {spec.name}: expected "
                                         f"shape {tuple(spec.shape)}, the file has {tuple(ds.shape)}")
                    values[id(spec)] = np.asarray(ds[()], dtype=np.float32)
    specs = _model_specs(model)
    missing = [s.name for s in specs if id(s) not in values]
    if missing:
        raise ValueError(f"load_keras: {path}: no values for weights {missing[:3]}")
    model.set_weights([values[id(s)] for s in specs])


def _model_specs(model):
    """The model's WeightSpecs in get_weights order."""
    specs = getattr(model, "_specs", None)
    if specs is None:
        specs = [w for layer in model.layers for w in layer.weights]
    return list(specs)


# ------------------------------------------------------------------ writing

def _keras_initializer(init):
    from .. import initializers

    cfg = initializers.get(init).get_config()
    cname = names.INITIALIZERS.get(cfg.pop("class_name"))
    if cname is None:
        return None
    return {"module": "keras.initializers", "class_name": cname, "config": cfg, "registered_name": None}


def _keras_regularizer(reg):
    if reg is None:
        return None
    if isinstance(reg, dict):
        return {"module": "keras.regularizers", "class_name": reg["class_name"], "config": reg.get("config", {}),
                "registered_name": None}
    from .. import regularizers
    return _keras_regularizer(regularizers.serialize(reg))


_FASTNN_ONLY = {"algorithm", "input_shape", "batch_input_shape"}


def keras_layer_config(layer):
    """A fastnn layer -> Keras's {'module', 'class_name', 'config', 'registered_name'}."""
    from ..layers.core import InputLayer
    from ..layers.recurrent import Bidirectional

    cname = type(layer).__name__
    if isinstance(layer, InputLayer):
        return {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                "config": {"batch_shape": [None] + list(layer.input_shape_arg), "dtype": "float32",
                           "sparse": False, "name": layer.name}}
    cfg = {k: v for k, v in layer.get_config().items() if k not in _FASTNN_ONLY}
    if cname == "MaxPool2D":
        cname = "MaxPooling2D"
    if cname == "AvgPool2D":
        cname = "AveragePooling2D"
    if isinstance(layer, Bidirectional):
        inner = keras_layer_config(layer.forward_layer)
        inner["config"]["name"] = layer.forward_layer.name
        cfg["layer"] = inner
        cfg.pop("backward_layer", None)
    for key in list(cfg):
        if key in names.INITIALIZER_KEYS and cfg[key] is not None:
            cfg[key] = _keras_initializer(cfg[key])
        elif key.endswith("_regularizer"):
            cfg[key] = _keras_regularizer(cfg[key])
    cfg["dtype"] = "float32"
    out = {"module": "keras.layers", "class_name": cname, "config": cfg, "registered_name": None}
    if layer.input_shape is not None:
        out["build_config"] = {"input_shape": [None] + list(layer.input_shape)}
    return out


def save_keras(model, path):
    """Writes ``model`` as a Keras 3 ``.keras`` archive (config and weights; Keras
    loads it uncompiled). Written to a temporary file, then renamed over ``path``."""
    import datetime

    h5py = _h5py()
    from ..layers.core import InputLayer

    graph = getattr(model, "_keras_functional_config", None)
    layers_all = list(model.layers)
    if graph is None:       # a Sequential
        inputs = [l for l in layers_all if isinstance(l, InputLayer)]
        order = [l for l in layers_all if not isinstance(l, InputLayer)]
        entries = []
        shape = model.input_shape
        if shape is None:
            raise ValueError("save: the model is not built: its input shape is unknown")
        first = InputLayer(shape=tuple(shape[1:]), name=inputs[0].name if inputs else "input_layer")
        entries.append(keras_layer_config(first))
        entries += [keras_layer_config(l) for l in order]
        config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
                  "config": {"name": model.name, "trainable": True, "dtype": "float32", "layers": entries},
                  "build_config": {"input_shape": list(shape)}}
    else:
        order = layers_all
        config = graph(keras_layer_config)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        root_vars = f.create_group("vars")
        root_vars.attrs["name"] = model.name
        lg = f.create_group("layers")
        for layer, p in zip(order, _paths(order)):
            g = lg.create_group(p)
            g.create_group("vars").attrs["name"] = layer.name
            for sub, specs in _weight_groups(layer):
                if not sub:
                    target = g["vars"]
                else:
                    target = g.require_group(sub).require_group("vars")
                    target.attrs["name"] = layer.name
                for i, spec in enumerate(specs):
                    target.create_dataset(str(i), data=np.asarray(spec.value, np.float32))
    meta = {"keras_version": "3.0.0", "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "saved_by": "fastnn"}
    from .._archive import write_atomic

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("metadata.json", json.dumps(meta))
            zf.writestr("config.json", json.dumps(config))
            zf.writestr("model.weights.h5", buf.getvalue())

    write_atomic(path, write)
