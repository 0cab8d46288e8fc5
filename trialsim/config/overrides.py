"""Overrides of a parsed study file by dotted paths: ``--set dotted.path=value`` and the
scenarios of a phase II study."""
from __future__ import annotations

import copy
import re
from typing import Any

from trialsim.config.reader import parse_yaml
from trialsim.errors import ConfigError


def apply_overrides(doc: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``dotted.path=value`` overrides (value parsed as YAML) to a copy of ``doc``.

    List elements are addressed by index: ``design.skeleton.0=0.03`` (or ``[0]``).  Errors are
    reported at the option ``--set`` with the override's text.
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    doc = copy.deepcopy(doc)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r} must look like dotted.path=value", ("--set",))
        key, raw = item.split("=", 1)
        try:
            value = parse_yaml(raw)
        except ConfigError as e:
            raise ConfigError(f"override {item!r}: the value is {e.message}", ("--set",)) from None
        set_path(doc, key, value, ("--set",), f"override {item!r}: ")
    return doc


def set_path(doc: dict, key: str, value: Any, where: tuple, prefix: str = "") -> None:
    """Set the element at dotted ``key`` of ``doc`` to ``value`` in place, creating missing
    mappings (list elements by index; one past the end appends).  Errors are reported at
    ``where``, their message starting with ``prefix``."""
    # design.skeleton[2] (as errors print paths) is design.skeleton.2
    key = re.sub(r"\[(\d+)\]", r".\1", str(key).strip())
    parts: list[Any] = [int(p) if p.isdigit() else p for p in key.split(".")]
    if not all(str(p) for p in parts):
        raise ConfigError(f"{prefix}the path {key!r} has an empty element", where)
    if isinstance(parts[0], int):
        raise ConfigError(f"{prefix}the path {key!r} must start with a top-level key such as "
                          "design or truth", where)
    node: Any = doc
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, dict):
            if p not in node or node[p] is None:
                node[p] = [] if isinstance(nxt, int) else {}
            node = node[p]
        elif isinstance(node, list) and isinstance(p, int) and p < len(node):
            node = node[p]
        else:
            raise ConfigError(f"{prefix}{'.'.join(map(str, parts[:i]))} has no element {p!r}",
                              where)
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last <= len(node):
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        at = ".".join(map(str, parts[:-1])) or "the study"
        raise ConfigError(f"{prefix}cannot set element {last!r} of {at}", where)
