"""Build registered classes from YAML mappings, turning every failure into a ConfigError
that names the YAML path; and the reverse, a class instance back to its YAML mapping."""
from __future__ import annotations

import dataclasses
from typing import Any

import pydantic

from trialsim.errors import ConfigError, ConfigErrors
from trialsim.registry import _REGISTRY, lookup


def expect_mapping(value: Any, path: tuple, what: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping ({what}), got {type(value).__name__}: {value!r}", path)
    return value


def build(kind: str, node: Any, path: tuple, key: str = "type", **inject) -> Any:
    """Instantiate ``{key: NAME, field: value, ...}`` through the registry of ``kind``.

    ``inject`` supplies fields the YAML may omit (e.g. the number of doses) when the class
    has such a field and the YAML does not set it.
    """
    node = dict(expect_mapping(node, path, f"a {kind} with a '{key}:' key"))
    if key not in node:
        raise ConfigError(f"missing '{key}:' key naming the {kind} type", path)
    name = node.pop(key)
    try:
        cls = lookup(kind, str(name))
    except KeyError as e:
        raise ConfigError(e.args[0], path + (key,)) from None
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for k, v in inject.items():
        if k in fields and k not in node:
            node[k] = v
    return construct(cls, node, path)


def construct(cls: type, kwargs: dict, path: tuple) -> Any:
    """``cls(**kwargs)`` with pydantic and ValueError failures mapped to a ConfigError at ``path``."""
    try:
        return cls(**kwargs)
    except pydantic.ValidationError as e:
        errs = [_pydantic_error(cls, err, path) for err in e.errors()]
        raise (errs[0] if len(errs) == 1 else ConfigErrors(errs)) from None
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e), path) from None


def _pydantic_error(cls: type, err: dict, path: tuple) -> ConfigError:
    loc = tuple(x for x in err["loc"] if x != "__root__")
    msg = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind == "unexpected_keyword_argument":
        allowed = ", ".join(f.name for f in dataclasses.fields(cls) if f.name != "parent")
        msg = f"unknown key; expected one of: {allowed}"
    elif kind.startswith("missing"):
        msg = "required key is missing"
    elif kind not in ("value_error", "assertion_error") and loc:
        msg = f"{msg} (got {err.get('input')!r})"
    return ConfigError(msg, path + loc)


def registered_name(obj: Any) -> tuple[str, str] | None:
    for kind, table in _REGISTRY.items():
        for name, cls in table.items():
            if type(obj) is cls:
                return kind, name
    return None


def to_config(obj: Any) -> Any:
    """A plain-YAML rendering of a registered instance (fields with their resolved values)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        reg = registered_name(obj)
        if reg is not None:
            out["type"] = reg[1]
        for f in dataclasses.fields(obj):
            out[f.name] = to_config(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [to_config(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_config(v) for k, v in obj.items()}
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj
