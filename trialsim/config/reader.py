"""Reading YAML safely: study files, ``--set`` values and sweep files all go through here.

* ``yaml.SafeLoader`` (no Python objects), plus YAML 1.2 floats: ``1e-1`` and ``1e5`` are
  numbers (YAML 1.1 reads them as strings) — everywhere alike.
* A key given twice in one mapping is an error naming both lines (YAML 1.1 would silently
  keep the last one).
* Files must be UTF-8 text of at most :data:`MAX_BYTES`; a document may expand (through
  anchors and aliases) to at most :data:`MAX_NODES` values, and may not refer to itself.
Every error is a :class:`~trialsim.errors.ConfigError` naming the file (and line).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from trialsim.errors import ConfigError

#: Largest study file read (bytes).
MAX_BYTES = 5 * 1024 * 1024
#: Most values (scalars, lists, mappings) a document may expand to.
MAX_NODES = 200_000


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats and duplicate-key detection."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *base' merges; keys given here override it
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"a key must be a plain value, not {type(key).__name__}",
                        key_node.start_mark) from None
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"key {key!r} is given twice (first at line {first.line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+
                  |[-+]?\.[0-9_]+[eE][-+]?[0-9]+)$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str, source: str | None = None) -> Any:
    """Parse YAML text (errors name ``source`` and the line)."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"not valid YAML{where}: {problem}", (), source) from None
    except RecursionError:
        raise ConfigError("not valid YAML: nested too deeply", (), source) from None
    check_size(doc, source)
    return doc


def read_yaml(path: str | Path) -> dict:
    """Read a study file: a YAML mapping of top-level keys."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"expected the path of a YAML file, got {type(path).__name__}: {path!r}")
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError("is a folder, not a YAML file", (), str(path))
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"the file has {size:,} bytes; a study file may have at most "
                              f"{MAX_BYTES:,}", (), str(path))
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read file: {e.strerror or e}", (), str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text: byte 0x{raw[e.start]:02x} at line {line} cannot "
                          "be decoded; save the file as UTF-8", (), str(path)) from None
    doc = parse_yaml(text, str(path))
    if not isinstance(doc, dict):
        raise ConfigError("a study file must be a YAML mapping of top-level keys (name:, doses:, "
                          f"design:, ...), got {_kind(doc)}", (), str(path))
    return doc


def _kind(x: Any) -> str:
    return "an empty file" if x is None else type(x).__name__


def check_size(doc: Any, source: str | None = None) -> None:
    """Refuse documents that expand to more than :data:`MAX_NODES` values or contain
    themselves (YAML anchors and aliases can do both)."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(x: Any) -> int:
        if not isinstance(x, (list, dict)):
            return 1
        key = id(x)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise ConfigError("the document refers to itself (a recursive YAML alias)", (), source)
        busy.add(key)
        items = x.values() if isinstance(x, dict) else x
        total = 1
        for v in items:
            total += size(v)
            if total > MAX_NODES:
                raise ConfigError(f"the document expands to more than {MAX_NODES:,} values "
                                  "(YAML anchors and aliases?)", (), source)
        busy.discard(key)
        sizes[key] = total
        return total

    try:
        size(doc)
    except RecursionError:
        raise ConfigError("the document is nested too deeply", (), source) from None
