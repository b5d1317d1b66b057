"""Name and config lookup shared by losses, optimizers and regularizers."""
from __future__ import annotations


def from_config(config, by_class, by_name, kind):
    """Accepts {'class_name', 'config'} or a flat get_config() dict carrying 'class_name';
    returns the class and its keyword arguments."""
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    if isinstance(config.get("config"), dict):
        cname, cfg = config.get("class_name"), dict(config["config"])
    else:
        cfg = dict(config)
        cname = cfg.pop("class_name", None)
    cfg.pop("class_name", None)
    cls = by_class.get(cname) or (by_name.get(cname.lower()) if isinstance(cname, str) else None)
    if cls is None:
        raise ValueError(f"config: unknown {kind} class_name {cname!r}; expected one of {sorted(by_class)}")
    return cls, cfg


def class_for_name(identifier, by_class, by_name, kind):
    """A Keras string name (case-insensitive) or a class name -> the class."""
    cls = by_name.get(identifier.lower()) or by_class.get(identifier)
    if cls is None:
        raise ValueError(f"{kind}: unknown name {identifier!r}; expected one of {sorted(by_name)}")
    return cls
