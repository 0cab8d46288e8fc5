"""The contract of a PK structure (registry kind ``pk_structure``, the YAML ``structure:``
name): a frozen dataclass of typical parameter values (units in
:data:`trialsim.pk.parameters.PARAMETERS`).

``linear`` says which engine solves it: the closed-form engine (:mod:`trialsim.pk.linear`,
superposition, exact) or the ODE engine (:mod:`trialsim.pk.ode`, integrated per dose level).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class ParameterError(ValueError):
    """A parameter value or name that does not fit the structure; ``name`` says which."""

    def __init__(self, name: str, message: str):
        self.name = name
        super().__init__(message)


class Structure:
    """Base class of every PK structure."""

    #: True: solved in closed form by the linear engine; False: integrated by the ODE engine.
    linear: ClassVar[bool] = True

    def parameters(self) -> dict[str, float]:  # pragma: no cover - abstract
        """Typical values of the parameters in use, by name."""
        raise NotImplementedError

    def replace(self, **values) -> "Structure":  # pragma: no cover - abstract
        """A copy with some typical values replaced (``KeyError`` for unknown names)."""
        raise NotImplementedError

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Every parameter name a ``pk:`` mapping may set for this structure."""
        return tuple(cls.__dataclass_fields__)

    @classmethod
    def from_parameters(cls, values: Mapping[str, float]) -> "Structure":
        """The structure with these typical values (``ValueError``/``TypeError`` when some are
        missing or inconsistent)."""
        return cls(**values)

    @property
    def has_effect(self) -> bool:
        """Whether an effect compartment (``ke0``) is set."""
        return getattr(self, "ke0", None) is not None
