"""``@spec``: the decorator for every configurable class (designs, modifiers, distributions,
response and PK models, routes).

It makes a frozen pydantic dataclass that rejects unknown fields and validates **strictly**:
an integer field takes an integer, a number field a number (an integer is fine), never
``true`` or a string that looks like a number; numbers must be finite.  Lists become tuples and
numpy scalars Python numbers before validation, so a YAML mapping or Python keyword arguments
can be passed alike.  Every wrong key, type or value is reported with its field name (the
config loader turns that into the file and YAML path).  Range checks go in ``__post_init__``
or pydantic validators and raise ``ValueError`` with a message that says what was expected.

Checks that need the study around the object (e.g. the number of dose levels) read
:func:`context`, which the config loader sets with :func:`validation_context`.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from pydantic import ConfigDict, model_validator
from pydantic.dataclasses import dataclass as _pydantic_dataclass

SPEC_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True, strict=True,
                         allow_inf_nan=False)

_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "trialsim_validation_context", default={})


def context() -> Mapping[str, Any]:
    """What the enclosing study says about the object being validated (e.g. ``n_doses``);
    empty outside :func:`validation_context`."""
    return _CONTEXT.get()


@contextlib.contextmanager
def validation_context(**values: Any) -> Iterator[None]:
    """Make ``values`` visible to validators through :func:`context` for the ``with`` block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **values})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def plain(x: Any) -> Any:
    """Lists and arrays as tuples, numpy scalars as Python scalars, recursively."""
    if isinstance(x, (list, tuple)):
        return tuple(plain(v) for v in x)
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, dict):
        return {plain(k): plain(v) for k, v in x.items()}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _normalise(cls, data: Any) -> Any:
    # pydantic hands a dataclass's constructor arguments over as an ``ArgsKwargs``
    if type(data).__name__ == "ArgsKwargs":
        return type(data)(tuple(plain(a) for a in data.args),
                          {k: plain(v) for k, v in (data.kwargs or {}).items()})
    return plain(data)


def spec(cls=None, /, **kwargs):
    """Frozen, strictly validated, no-extra-keys dataclass.  Use as ``@spec`` or ``@spec(...)``."""
    kwargs.setdefault("frozen", True)
    kwargs.setdefault("config", SPEC_CONFIG)

    def wrap(c):
        c._spec_normalise = model_validator(mode="before")(classmethod(_normalise))
        return _pydantic_dataclass(c, **kwargs)

    return wrap if cls is None else wrap(cls)
