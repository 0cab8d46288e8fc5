"""Registry of pluggable classes keyed by ``(kind, name)``: the bottom layer of trialsim.

Kinds used by trialsim (:data:`KINDS`): ``design`` (dose escalation), ``phase2_design``
(randomised dose-ranging), ``modifier``, ``stopping_rule``, ``distribution``, ``response``, ``route``,
``pk_structure`` and ``covariate_effect``.  A YAML node
``{type: NAME, ...}`` of a given kind (``{dist: NAME}`` for a distribution, ``structure:
NAME`` for a PK structure) is built by looking ``NAME`` up here.

This module imports nothing of trialsim: the built-in classes register themselves when their
modules are imported, and the layers that look names up (the config loader) import them.
Third-party packages register their classes with :func:`register` in a module named by an
entry point in the ``trialsim.plugins`` group; :func:`load_plugins` imports those once, before
the first lookup.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any, Callable, TypeVar

T = TypeVar("T")

KINDS = ("design", "phase2_design", "modifier", "stopping_rule", "distribution", "response",
         "route", "pk_structure", "covariate_effect")
PLUGIN_GROUP = "trialsim.plugins"

_REGISTRY: dict[str, dict[str, type]] = {}
_PLUGINS_LOADED = False


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: make ``cls`` available from YAML as ``type: name`` of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; known: {', '.join(KINDS)}")

    def deco(cls: T) -> T:
        if not hasattr(cls, "__pydantic_fields__"):
            raise TypeError(f"register({kind!r}, {name!r}): {getattr(cls, '__name__', cls)} is "
                            "not a @spec class; decorate it with @spec below @register")
        if kind == "modifier" and "parent" not in cls.__pydantic_fields__:
            raise TypeError(f"register('modifier', {name!r}): {cls.__name__} has no field "
                            "'parent' (declare parent: Design, as the built-in modifiers do)")
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


def registered_name(obj: Any) -> tuple[str, str] | None:
    """``(kind, name)`` under which the class of ``obj`` is registered (the first name when it
    has several), or None."""
    for kind, table in _REGISTRY.items():
        for name, cls in table.items():
            if type(obj) is cls:
                return kind, name
    return None


def load_plugins() -> None:
    """Import every module named in the ``trialsim.plugins`` entry-point group (once)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        ep.load()
