"""Build registered classes from YAML mappings, turning every failure into a ConfigError that
names the YAML path; read plain values (numbers, names, mappings) with the same kind of error;
and the reverse, a class instance back to its YAML mapping.

This module imports every built-in package that registers classes, so that every ``type:``
of every kind (design, modifier, response, distribution, route, PK structure, covariate
effect) is found through :func:`trialsim.registry.lookup`, built-ins and plugins alike.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import pydantic

import trialsim.designs  # noqa: F401  (registers the designs and modifiers)
import trialsim.pk  # noqa: F401  (registers routes, PK structures, covariate effects)
import trialsim.population  # noqa: F401  (registers the distributions)
import trialsim.response  # noqa: F401  (registers the outcome models)
from trialsim.errors import ConfigError, ConfigErrors, FieldError
from trialsim.registry import lookup, registered_name


def describe_value(value: Any) -> str:
    """A short rendering of a YAML value for error messages."""
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def path_key(key: Any) -> str | int:
    """A mapping key as an element of a YAML path (text and integers as they are)."""
    return key if isinstance(key, (str, int)) and not isinstance(key, bool) else \
        describe_value(key)


def expect_mapping(value: Any, path: tuple, what: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping ({what}), got {type(value).__name__}: "
                          f"{describe_value(value)}", path)
    return value


def expect_name(value: Any, path: tuple, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected {what} (a name), got {describe_value(value)}", path)
    return value


def finite_number(value: Any, path: tuple, what: str = "a finite number") -> float:
    """A finite int or float (not a bool, not a string); ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected {what}, got {describe_value(value)}", path)
    try:
        x = float(value)
    except OverflowError:
        raise ConfigError(f"expected {what}, got a number too large to represent", path) from None
    if not math.isfinite(x):
        raise ConfigError(f"expected {what} (finite), got {describe_value(value)}", path)
    return x


def positive_number(value: Any, path: tuple, what: str = "a positive number") -> float:
    x = finite_number(value, path, what)
    if not x > 0:
        raise ConfigError(f"expected {what}, got {describe_value(value)}", path)
    return x


def build(kind: str, node: Any, path: tuple, key: str = "type", **inject) -> Any:
    """Instantiate ``{key: NAME, field: value, ...}`` through the registry of ``kind``.

    ``inject`` supplies fields the YAML may omit (the study's doses and their number) when the
    class has such a field and the YAML does not set it; an error in an injected value is
    reported at the study's ``doses``, where the user wrote it.
    """
    node = dict(expect_mapping(node, path, f"a {kind} with a '{key}:' key"))
    if key not in node:
        raise ConfigError(f"missing '{key}:' key naming the {kind} type", path)
    cls = lookup_type(kind, node.pop(key), path + (key,))
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    injected = {k for k in inject if k in fields and k not in node}
    for k in injected:
        node[k] = inject[k]
    try:
        return construct(cls, node, path)
    except ConfigError as e:     # an injected value is the study's (top-level ``doses``)
        errs = e.errors if isinstance(e, ConfigErrors) else [e]
        errs = [ConfigError(x.message, ("doses",) + x.path[len(path) + 1:], x.file)
                if len(x.path) > len(path) and x.path[len(path)] in injected else x
                for x in errs]
        raise (errs[0] if len(errs) == 1 else ConfigErrors(errs)) from None


def construct_each(cls: type, items: list, path: tuple, what: str) -> tuple:
    """``(cls(**item), ...)`` for a YAML list of mappings, each checked at ``path + (i,)`` (so an
    error names the element: ``conduct.sites[1].chairs``)."""
    return tuple(construct(cls, dict(expect_mapping(x, path + (i,), what)), path + (i,))
                 for i, x in enumerate(items))


def field_default(cls: type, f: dataclasses.Field) -> tuple[Any, Any]:
    """``(default, default_factory)`` of field ``f`` of ``cls`` as pydantic sees it (a default
    given as ``Field(default=...)`` included), ``dataclasses.MISSING`` where there is none."""
    fi = getattr(cls, "__pydantic_fields__", {}).get(f.name)
    if fi is None:
        return f.default, f.default_factory
    return (dataclasses.MISSING if fi.is_required() else fi.default,
            fi.default_factory or dataclasses.MISSING)


def check_keys(kind: str, node: dict, path: tuple, key: str = "type", given=()) -> None:
    """Check ``node``'s type name and keys without building it (unknown keys, and required
    keys missing other than those in ``given``): for a node whose context has errors of its
    own, such as a modifier of a design that could not be built."""
    if key not in node:
        raise ConfigError(f"missing '{key}:' key naming the {kind} type", path)
    cls = lookup_type(kind, node[key], path + (key,))
    if not dataclasses.is_dataclass(cls):
        return
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    errs = [ConfigError("unknown key; expected one of: " + ", ".join(
                f.name for f in fields if f.name not in given), path + (k,))
            for k in node if k != key and k not in names]
    errs += [ConfigError("required key is missing", path + (f.name,)) for f in fields
             if f.name not in node and f.name not in given
             and field_default(cls, f) == (dataclasses.MISSING, dataclasses.MISSING)]
    if errs:
        raise errs[0] if len(errs) == 1 else ConfigErrors(errs)


def lookup_type(kind: str, name: Any, path: tuple) -> type:
    """The class registered as ``name`` of ``kind``; ConfigError at ``path`` otherwise."""
    if not isinstance(name, str):
        raise ConfigError(f"expected the name of a {kind} type, got {describe_value(name)}", path)
    try:
        return lookup(kind, name)
    except KeyError as e:
        raise ConfigError(e.args[0], path) from None


def construct(cls: type, kwargs: dict, path: tuple) -> Any:
    """``cls(**kwargs)`` with pydantic and ValueError failures mapped to a ConfigError at ``path``."""
    bad_keys = [k for k in kwargs if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"keys must be names, got {describe_value(bad_keys[0])}", path)
    try:
        return cls(**kwargs)
    except pydantic.ValidationError as e:
        raise from_validation(cls, e, path) from None
    except (ValueError, TypeError, ArithmeticError) as e:
        raise ConfigError(str(e), path) from None


def from_validation(cls: type, e: pydantic.ValidationError, path: tuple) -> ConfigError:
    """A pydantic error as one ConfigError (or ConfigErrors) with YAML paths."""
    errs, short = [], {}
    for err in e.errors():
        loc = tuple(x for x in err["loc"] if x != "__root__")
        if err["type"] == "missing" and loc and isinstance(loc[-1], int) \
                and isinstance(err.get("input"), (list, tuple)):   # a fixed-length list too short
            if loc[:-1] not in short:
                errs.append(loc[:-1])
            short[loc[:-1]] = (max(loc[-1] + 1, short.get(loc[:-1], (0,))[0]), len(err["input"]))
        else:
            errs.append(_pydantic_error(cls, err, path))
    errs = [ConfigError(f"expected {short[x][0]} values, got {short[x][1]}", path + x)
            if isinstance(x, tuple) else x for x in errs]
    return errs[0] if len(errs) == 1 else ConfigErrors(errs)


#: pydantic error types → what was expected, in plain words.
_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "string_type": "a text value", "tuple_type": "a list",
    "dict_type": "a mapping", "list_type": "a list", "literal_error": None,
}


def _pydantic_error(cls: type, err: dict, path: tuple) -> ConfigError:
    loc = tuple(x for x in err["loc"] if x != "__root__")
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):           # a cross-field check naming its key
        loc += (cause.key,)
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    kind = err["type"]
    got = describe_value(err.get("input"))
    if kind == "unexpected_keyword_argument":
        allowed = ", ".join(f.name for f in dataclasses.fields(cls) if f.name != "parent")
        msg = f"unknown key; expected one of: {allowed}"
    elif kind.startswith("missing"):
        msg = "required key is missing"
    elif kind in _EXPECTED and _EXPECTED[kind]:
        msg = f"expected {_EXPECTED[kind]}, got {got}"
    elif kind in ("too_short", "too_long") and "actual_length" in err.get("ctx", {}):
        ctx = err["ctx"]
        bound = (f"at most {ctx['max_length']}" if kind == "too_long"
                 else f"at least {ctx['min_length']}")
        msg = f"expected {bound} values, got {ctx['actual_length']}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal",
                  "literal_error", "string_too_short"):
        msg = f"{msg[0].lower()}{msg[1:]}, got {got}"
    elif kind == "is_instance_of" or kind == "dataclass_exact_type":
        msg = f"expected {msg.removeprefix('Input should be ')}, got {got}"
    elif kind not in ("value_error", "assertion_error") and loc:
        msg = f"{msg} (got {got})"
    return ConfigError(msg, path + loc)


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
        return {to_config(k) if not isinstance(k, str) else k: to_config(v) for k, v in obj.items()}
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj
