"""Registry of pluggable classes keyed by ``(kind, name)``.

Kinds used by trialsim: ``design``, ``modifier``, ``distribution``, ``response``, ``pk_model``,
``route``.  A YAML node ``{type: NAME, ...}`` of a given kind is built by looking ``NAME`` up
here.  Third-party packages register their classes with :func:`register` in a module named
by an entry point in the ``trialsim.plugins`` group; :func:`load_plugins` imports them.
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable, TypeVar

T = TypeVar("T")

_REGISTRY: dict[str, dict[str, type]] = {}
_PLUGINS_LOADED = False
PLUGIN_GROUP = "trialsim.plugins"


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: make ``cls`` available from YAML as ``type: name`` of ``kind``."""

    def deco(cls: T) -> T:
        table = _REGISTRY.setdefault(kind, {})
        if name in table and table[name] is not cls:
            raise ValueError(f"{kind} {name!r} is already registered by {table[name].__module__}")
        table[name] = cls
        return cls

    return deco


def lookup(kind: str, name: str) -> type:
    """The class registered as ``name`` of ``kind``; ``KeyError`` listing the known names."""
    load_plugins()
    table = _REGISTRY.get(kind, {})
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise KeyError(f"unknown {kind} type {name!r}; known {kind} types: {known}")
    return table[name]


def names(kind: str) -> list[str]:
    """Registered names of one kind, sorted."""
    load_plugins()
    return sorted(_REGISTRY.get(kind, {}))


def load_plugins() -> None:
    """Import every module named in the ``trialsim.plugins`` entry-point group (once)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    _import_builtins()
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        ep.load()


def _import_builtins() -> None:
    # Importing these modules runs their @register decorators.
    import trialsim.designs  # noqa: F401
    import trialsim.population  # noqa: F401
    import trialsim.response  # noqa: F401
