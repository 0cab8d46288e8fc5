"""Reading YAML safely: study files, ``--set`` values and sweep files all go through here.

* ``yaml.SafeLoader`` (no Python objects), plus YAML 1.2 floats: ``1e-1`` and ``1e5`` are
  numbers (YAML 1.1 reads them as strings) — everywhere alike.
* A key given twice in one mapping is an error naming both lines (YAML 1.1 would silently
  keep the last one); tags beyond plain YAML (``!!python/...``) are errors.
* Files must be regular UTF-8 text files of at most :data:`MAX_BYTES`; a document may expand
  (through anchors and aliases) to at most :data:`MAX_NODES` values, and may not refer to
  itself.  These are checked on the parsed node graph, before any value is built.
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
    """SafeLoader with YAML 1.2 floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+
                  |[-+]?\.[0-9_]+[eE][-+]?[0-9]+)$""", re.X),
    list("-+0123456789."))

_MERGE = "tag:yaml.org,2002:merge"
_SAFE_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in (
    "str", "int", "float", "bool", "null", "seq", "map", "timestamp"))


def parse_yaml(text: str, source: str | None = None) -> Any:
    """Parse YAML text (errors name ``source``, the YAML path and the line)."""
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        check_nodes(node, source)
        return loader.construct_document(node)
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "cannot be read"
        raise ConfigError(f"not valid YAML{where}: {problem}", (), source) from None
    except yaml.reader.ReaderError as e:
        raise ConfigError(f"not valid YAML: the text holds a character YAML does not allow "
                          f"(#x{e.character:04x}) at position {e.position}", (),
                          source) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", (), source) from None
    except RecursionError:
        raise ConfigError("not valid YAML: nested too deeply", (), source) from None
    finally:
        if loader is not None:
            loader.dispose()


def check_nodes(root: yaml.Node, source: str | None = None) -> None:
    """Before anything is built: refuse keys given twice in one mapping, tags other than the
    plain YAML ones (``!!python/...``), documents that contain themselves or expand (through
    anchors and aliases) to more than :data:`MAX_NODES` values.  Errors name the YAML path."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def line(n: yaml.Node) -> int:
        return n.start_mark.line + 1

    def visit(n: yaml.Node, path: tuple) -> int:
        if n.tag not in _SAFE_TAGS:
            tag = n.tag.replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(f"not valid YAML for trialsim: the tag {tag!r} (line {line(n)}) is "
                              "not allowed (study files are plain YAML)", path, source)
        if isinstance(n, yaml.ScalarNode):
            return 1
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise ConfigError(f"the value refers to itself (a recursive YAML alias, line "
                              f"{line(n)})", path, source)
        busy.add(key)
        total = 1
        if isinstance(n, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, v in n.value:
                if k.tag == _MERGE:
                    total += visit(v, path)
                    continue
                if not isinstance(k, yaml.ScalarNode):
                    raise ConfigError(f"a key must be a plain value, not a "
                                      f"{'list' if isinstance(k, yaml.SequenceNode) else 'mapping'}"
                                      f" (line {line(k)})", path, source)
                name = (k.tag, k.value)
                if name in seen:
                    raise ConfigError(f"key {k.value!r} is given twice (lines {seen[name]} and "
                                      f"{line(k)})", path, source)
                seen[name] = line(k)
                total += 1 + visit(v, path + (k.value,))
                if total > MAX_NODES:
                    break
        else:
            for i, v in enumerate(n.value):
                total += visit(v, path + (i,))
                if total > MAX_NODES:
                    break
        if total > MAX_NODES:
            raise ConfigError(f"the document expands to more than {MAX_NODES:,} values (YAML "
                              "anchors and aliases?)", path, source)
        busy.discard(key)
        sizes[key] = total
        return total

    try:
        visit(root, ())
    except RecursionError:
        raise ConfigError("the document is nested too deeply", (), source) from None


def read_yaml(path: str | Path, what: str = "a study file") -> dict:
    """Read a study file (or ``what`` else): a YAML mapping of top-level keys."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"expected the path of a YAML file, got {type(path).__name__}: {path!r}")
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError("is a folder, not a YAML file", (), str(path))
        if path.exists() and not path.is_file():
            raise ConfigError("is not a regular file (a device or a pipe?)", (), str(path))
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
        keys = "(name:, doses:, design:, ...)" if what == "a study file" else "(models:, ...)"
        raise ConfigError(f"{what} must be a YAML mapping of top-level keys {keys}, got "
                          f"{_kind(doc)}", (), str(path))
    return doc


def _kind(x: Any) -> str:
    return "an empty file" if x is None else type(x).__name__
