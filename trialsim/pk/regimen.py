"""Dose events and regimens (times in hours, amounts in mg).

A regimen is a sorted tuple of :class:`DoseEvent`.  For a linear model the response to a
regimen is the superposition of the responses to its events.  ``target`` says where the
input goes: ``"central"`` (IV bolus when ``duration_h == 0``, zero-order infusion
otherwise) or ``"depot"`` (an absorption compartment emptied at first order; a zero-order
input into the depot when ``duration_h > 0``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGETS = ("central", "depot")


@dataclass(frozen=True)
class DoseEvent:
    """One administration: ``amount_mg`` given at ``time_h`` over ``duration_h`` hours."""

    time_h: float
    amount_mg: float
    duration_h: float = 0.0
    target: str = "central"

    def __post_init__(self) -> None:
        if not np.isfinite(self.time_h) or self.time_h < 0:
            raise ValueError(f"dose time must be a finite number of hours >= 0, got {self.time_h}")
        if not np.isfinite(self.amount_mg) or self.amount_mg < 0:
            raise ValueError(f"dose amount must be a finite number of mg >= 0, got {self.amount_mg}")
        if not np.isfinite(self.duration_h) or self.duration_h < 0:
            raise ValueError(f"duration must be a finite number of hours >= 0, got {self.duration_h}")
        if self.target not in TARGETS:
            raise ValueError(f"dose target must be one of {TARGETS}, got {self.target!r}")


@dataclass(frozen=True)
class Regimen:
    """A sorted tuple of dose events."""

    events: tuple[DoseEvent, ...]

    def __post_init__(self) -> None:
        ev = tuple(sorted(self.events, key=lambda e: (e.time_h, TARGETS.index(e.target))))
        object.__setattr__(self, "events", ev)

    @classmethod
    def single(cls, amount_mg: float, duration_h: float = 0.0, target: str = "central",
               time_h: float = 0.0) -> "Regimen":
        return cls((DoseEvent(time_h, amount_mg, duration_h, target),))

    @classmethod
    def repeated(cls, amount_mg: float, ii_h: float, addl: int, duration_h: float = 0.0,
                 target: str = "central", time_h: float = 0.0) -> "Regimen":
        """A dose at ``time_h`` and ``addl`` more every ``ii_h`` hours (NONMEM's II/ADDL)."""
        if addl < 0 or (addl > 0 and not ii_h > 0):
            raise ValueError(f"need addl >= 0 and ii_h > 0, got addl={addl}, ii_h={ii_h}")
        return cls(tuple(DoseEvent(time_h + i * ii_h, amount_mg, duration_h, target)
                         for i in range(addl + 1)))

    def scaled(self, factor: float) -> "Regimen":
        """The same schedule with every amount multiplied by ``factor``."""
        return Regimen(tuple(DoseEvent(e.time_h, e.amount_mg * factor, e.duration_h, e.target)
                             for e in self.events))

    def __add__(self, other: "Regimen") -> "Regimen":
        return Regimen(self.events + other.events)

    @property
    def total_mg(self) -> float:
        return float(sum(e.amount_mg for e in self.events))

    @property
    def end_h(self) -> float:
        """Time at which the last input ends (hours)."""
        return max((e.time_h + e.duration_h for e in self.events), default=0.0)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(time_h, amount_mg, duration_h, target_code)`` as float64/int64 arrays for kernels.

        ``target_code`` is 0 for central and 1 for depot.
        """
        t = np.array([e.time_h for e in self.events], dtype=np.float64)
        a = np.array([e.amount_mg for e in self.events], dtype=np.float64)
        d = np.array([e.duration_h for e in self.events], dtype=np.float64)
        c = np.array([TARGETS.index(e.target) for e in self.events], dtype=np.int64)
        return t, a, d, c
