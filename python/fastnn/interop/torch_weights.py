"""PyTorch state dicts into fastnn models with the same layers.

The state dict's tensors are grouped by module (the key up to its last dot) in the
dict's order, and matched in order to fastnn's layers that have weights (or by
``mapping={fastnn layer name: torch module prefix}``). Each pair is converted with
the layouts of the README: convolution weight (K, C, R, S) -> (R, S, C, K), depthwise
(C*dm, 1, R, S) -> (R, S, C, dm), linear weight.T, LSTM weight_ih.T / weight_hh.T with
bias_ih + bias_hh (gate orders agree), GRU the same with torch's gates r, z, n
reordered to z, r, h and the two biases as the rows of Keras's (2, 3H) bias,
BatchNorm's weight / bias / running_mean / running_var. A Dense that follows a Flatten
of an (H, W, C) image gets its input rows permuted from torch's (c, h, w) flattening
order to fastnn's (h, w, c). Any unmatched or mis-shaped tensor is a ValueError; the
returned report says what went where.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np


def _array(t):
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    a = np.asarray(t)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"from_torch_state_dict: expected numeric tensors, got dtype {a.dtype}")
    return a.astype(np.float32)


def _groups(state_dict):
    groups = OrderedDict()
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"from_torch_state_dict: state_dict keys must be strings, got {key!r}")
        prefix, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        groups.setdefault(prefix, OrderedDict())[leaf] = value
    return groups


def _flatten_source(model_layers, index):
    """The (H, W, C) shape a Dense at index reads through a Flatten, or None."""
    from ..layers.core import Flatten
    prev = model_layers[index - 1] if index > 0 else None
    if isinstance(prev, Flatten) and prev.input_shape is not None and len(prev.input_shape) == 3:
        return tuple(prev.input_shape)
    return None


def _expect(name, arr, shape, where):
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(f"from_torch_state_dict: {where}: {name} has shape {tuple(arr.shape)}, "
                         f"expected {tuple(shape)} for this layer")


def _take(group, leaf, where):
    if leaf not in group:
        raise ValueError(f"from_torch_state_dict: {where}: missing tensor {leaf!r} (has {sorted(group)})")
    return _array(group.pop(leaf))


def _zrh(a, H):
    r, z, n = a[:H], a[H:2 * H], a[2 * H:]
    return np.concatenate([z, r, n])


def _recurrent_values(layer, group, prefix, suffix, where):
    kind = type(layer).__name__
    H = layer.units
    wi = _take(group, "weight_ih" + suffix, where)
    wh = _take(group, "weight_hh" + suffix, where)
    has_b = ("bias_ih" + suffix) in group
    bi = _take(group, "bias_ih" + suffix, where) if has_b else None
    bh = _take(group, "bias_hh" + suffix, where) if has_b else None
    if kind == "GRU":
        wi, wh = _zrh(wi, H), _zrh(wh, H)
        if has_b:
            bi, bh = _zrh(bi, H), _zrh(bh, H)
    vals = [wi.T, wh.T]
    if layer.use_bias:
        if not has_b:
            raise ValueError(f"from_torch_state_dict: {where}: the torch module has no biases but layer "
                             f"{layer.name!r} uses one")
        vals.append(np.stack([bi, bh]) if kind == "GRU" else bi + bh)
    elif has_b:
        raise ValueError(f"from_torch_state_dict: {where}: the torch module has biases but layer "
                         f"{layer.name!r} has use_bias=False")
    return vals


def _values_for(layer, group, prefix, model_layers, index):
    """The fastnn weight values of layer from one torch module's tensors (consumed)."""
    from ..layers.recurrent import Bidirectional

    cname = type(layer).__name__
    where = f"layer {layer.name!r} ({cname}) <- {prefix or '<root>'}"
    if cname == "Conv2D":
        w = _take(group, "weight", where)
        if w.ndim != 4:
            raise ValueError(f"from_torch_state_dict: {where}: weight has rank {w.ndim}, expected a Conv2d weight")
        vals = [w.transpose(2, 3, 1, 0)]
    elif cname == "DepthwiseConv2D":
        w = _take(group, "weight", where)
        R, S, C, dm = layer.depthwise_kernel.shape
        _expect("weight", w, (C * dm, 1, R, S), where)
        vals = [w.reshape(C, dm, R, S).transpose(2, 3, 0, 1)]
    elif cname == "Conv1D":
        w = _take(group, "weight", where)          # (K_out, C_in, K)
        vals = [w.transpose(2, 1, 0)]
    elif cname == "Dense":
        w = _take(group, "weight", where).T         # (in, out), torch's input order
        src = _flatten_source(model_layers, index)
        if src is not None:
            H, W, C = src
            if w.shape[0] == H * W * C:
                # torch flattened (c, h, w); fastnn flattens (h, w, c)
                w = w.reshape(C, H, W, -1).transpose(1, 2, 0, 3).reshape(H * W * C, -1)
        vals = [w]
    elif cname == "BatchNormalization" or cname == "LayerNormalization":
        vals = []
        for spec in layer.weights:
            leaf = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                    "moving_variance": "running_var"}.get(spec.name, spec.name)
            vals.append(_take(group, leaf, where))
        group.clear()
        return vals, where
    elif cname == "Embedding":
        vals = [_take(group, "weight", where)]
    elif cname in ("LSTM", "GRU", "SimpleRNN"):
        return _recurrent_values(layer, group, prefix, "_l0", where), where
    elif isinstance(layer, Bidirectional):
        vals = (_recurrent_values(layer.forward_layer, group, prefix, "_l0", where)
                + _recurrent_values(layer.backward_layer, group, prefix, "_l0_reverse", where))
        return vals, where
    else:
        raise ValueError(f"from_torch_state_dict: {where}: no PyTorch mapping for {cname}")
    if getattr(layer, "use_bias", False):
        vals.append(_take(group, "bias", where))
    elif "bias" in group:
        raise ValueError(f"from_torch_state_dict: {where}: the torch module has a bias but the layer has "
                         "use_bias=False")
    return vals, where


def from_torch_state_dict(model, state_dict, mapping=None):
    """Loads a torch.nn state dict into ``model`` (built, same layers in the same order);
    returns a report: a list of (fastnn layer, torch module prefix, [torch keys]).

    A multi-layer torch LSTM/GRU (``num_layers`` > 1) maps its ``_l1``, ``_l2`` ...
    weights to the following fastnn recurrent layers."""
    from ..layers.core import InputLayer

    if not hasattr(state_dict, "items"):
        raise TypeError(f"from_torch_state_dict: state_dict: expected a mapping, got {type(state_dict).__name__}")
    groups, origin = _split_stacked(_groups(state_dict))
    model_layers = [l for l in model.layers if not isinstance(l, InputLayer)]
    targets = [(i, l) for i, l in enumerate(model_layers) if l.weights]
    mapping = dict(mapping or {})
    unknown = set(mapping) - {l.name for _, l in targets}
    if unknown:
        raise ValueError(f"from_torch_state_dict: mapping names layers the model does not have: {sorted(unknown)}")
    free = [p for p in groups if p not in mapping.values()]
    values, report = {}, []
    for i, layer in targets:
        if layer.name in mapping:
            prefix = mapping[layer.name]
            if prefix not in groups:
                raise ValueError(f"from_torch_state_dict: mapping: no tensors under {prefix!r}")
        else:
            if not free:
                raise ValueError(f"from_torch_state_dict: no torch tensors left for layer {layer.name!r}")
            prefix = free.pop(0)
        group = groups[prefix]
        keys = [origin[(prefix, k)] for k in group]
        vals, where = _values_for(layer, group, prefix, model_layers, i)
        if group:
            raise ValueError(f"from_torch_state_dict: {where}: tensors left unmatched: {sorted(group)}")
        specs = list(layer.weights)
        if len(vals) != len(specs):
            raise ValueError(f"from_torch_state_dict: {where}: {len(vals)} tensors for {len(specs)} weights")
        for spec, v in zip(specs, vals):
            _expect(spec.name, v, spec.shape, where)
            values[id(spec)] = v
        report.append((layer.name, prefix, keys))
    if free:
        raise ValueError(f"from_torch_state_dict: torch modules left unmatched: {free}")
    from .keras_format import _model_specs
    specs = _model_specs(model)
    model.set_weights([values[id(s)] if id(s) in values else s.value for s in specs])
    return report


def _split_stacked(groups):
    """A torch module holding weight_ih_l0, weight_ih_l1, ... becomes one group per layer
    (named prefix, prefix#l1, ...), each with _l0 suffixes."""
    out, origin = OrderedDict(), {}
    for prefix, group in groups.items():
        levels = sorted({k.split("_l")[-1].split("_")[0] for k in group if "_ih_l" in k}, key=int)
        if len(levels) <= 1:
            out[prefix] = group
            origin.update({(prefix, k): f"{prefix}.{k}" if prefix else k for k in group})
            continue
        for lv in levels:
            sub = OrderedDict()
            for k, v in group.items():
                base, sep, rest = k.rpartition(f"_l{lv}")
                if sep and (rest == "" or rest == "_reverse"):
                    sub[base + "_l0" + rest] = v
                    name = prefix if lv == "0" else f"{prefix}#l{lv}"
                    origin[(name, base + "_l0" + rest)] = f"{prefix}.{k}" if prefix else k
            out[prefix if lv == "0" else f"{prefix}#l{lv}"] = sub
    return out, origin
