"""``@spec``: the decorator for every configurable class (designs, modifiers, distributions,
response and PK models).

It makes a frozen pydantic dataclass that rejects unknown fields, so a YAML mapping can be
passed as keyword arguments and every wrong key, type or value is reported with its field
name (the config loader turns that into the file and YAML path).  Range checks go in
``__post_init__`` or pydantic validators and raise ``ValueError`` with a message that says
what was expected.
"""
from __future__ import annotations

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as _pydantic_dataclass

SPEC_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True, strict=False)


def spec(cls=None, /, **kwargs):
    """Frozen, validated, no-extra-keys dataclass.  Use as ``@spec`` or ``@spec(...)``."""
    kwargs.setdefault("frozen", True)
    kwargs.setdefault("config", SPEC_CONFIG)

    def wrap(c):
        return _pydantic_dataclass(c, **kwargs)

    return wrap if cls is None else wrap(cls)
