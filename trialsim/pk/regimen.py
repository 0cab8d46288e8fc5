"""Dose events and regimens (times in hours, amounts in mg).

A regimen is a sorted tuple of :class:`DoseEvent`.  For a linear model the response to a
regimen is the superposition of the responses to its events.  ``target`` says where the
input goes: ``"central"`` (IV bolus when ``duration_h == 0``, zero-order infusion
otherwise) or ``"depot"`` (an absorption compartment emptied at first order; a zero-order
input into the depot when ``duration_h > 0``).  ``device`` numbers the devices of one
administration (0 for the first; nasal sprays given one after another), so a model can give
later devices a different bioavailability.

Routes (``Bolus``, ``Infusion``, ``FirstOrder``, ``Devices``, ``Schedule``) are the
configurable templates that turn a dose amount into a regimen (registry kind ``route``).
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator

from trialsim.registry import register
from trialsim.spec import spec

TARGETS = ("central", "depot")


@dataclass(frozen=True)
class DoseEvent:
    """One administration: ``amount_mg`` given at ``time_h`` over ``duration_h`` hours."""

    time_h: float
    amount_mg: float
    duration_h: float = 0.0
    target: str = "central"
    device: int = 0

    def __post_init__(self) -> None:
        if not np.isfinite(self.time_h) or self.time_h < 0:
            raise ValueError(f"dose time must be a finite number of hours >= 0, got {self.time_h}")
        if not np.isfinite(self.amount_mg) or self.amount_mg < 0:
            raise ValueError(f"dose amount must be a finite number of mg >= 0, got {self.amount_mg}")
        if not np.isfinite(self.duration_h) or self.duration_h < 0:
            raise ValueError(f"duration must be a finite number of hours >= 0, got {self.duration_h}")
        if self.target not in TARGETS:
            raise ValueError(f"dose target must be one of {TARGETS}, got {self.target!r}")
        if self.device < 0:
            raise ValueError(f"device index must be >= 0, got {self.device}")


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
        return Regimen(tuple(DoseEvent(e.time_h, e.amount_mg * factor, e.duration_h, e.target,
                                       e.device) for e in self.events))

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

    def devices(self) -> np.ndarray:
        """Device index of every event (int64), in event order."""
        return np.array([e.device for e in self.events], dtype=np.int64)


# ----------------------------------------------------------------- routes (dose templates)
#: Longest time (h) a route may name: about 114 years.
MAX_TIME_H = 1e6
#: Most devices in one administration.
MAX_DEVICES = 100
#: Most administrations one route may repeat (``addl``).
MAX_ADDL = 10_000
PositiveH = Annotated[float, Field(gt=0, le=MAX_TIME_H)]
Hours = Annotated[float, Field(ge=0, le=MAX_TIME_H)]
Addl = Annotated[int, Field(ge=0, le=MAX_ADDL, description="additional administrations")]


class Route:
    """A dose template: ``regimen(amount_mg)`` gives the events of one dose level.

    ``ii_h``/``addl`` repeat the whole administration (NONMEM's II/ADDL).  ``linear_in_amount``
    says whether ``regimen(k * a)`` is ``regimen(a).scaled(k)`` (False when the dose level
    changes the number of devices)."""

    ii_h: float | None
    addl: int
    linear_in_amount = True

    def _repeat(self, one: tuple[DoseEvent, ...]) -> Regimen:
        if self.addl < 0 or (self.addl > 0 and not (self.ii_h or 0) > 0):
            raise ValueError(f"need addl >= 0 and ii_h > 0, got addl={self.addl}, ii_h={self.ii_h}")
        return Regimen(tuple(DoseEvent(e.time_h + k * (self.ii_h or 0.0), e.amount_mg, e.duration_h,
                                       e.target, e.device)
                             for k in range(self.addl + 1) for e in one))

    def regimen(self, amount_mg: float) -> Regimen:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_repeat(route) -> None:
    if route.addl < 0:
        raise ValueError(f"addl must be >= 0, got {route.addl}")
    if route.addl > 0 and not (route.ii_h is not None and route.ii_h > 0):
        raise ValueError("repeated doses (addl > 0) need a dosing interval ii_h > 0 hours")


@register("route", "bolus")
@spec
class Bolus(Route):
    """IV bolus into the central compartment."""

    ii_h: PositiveH | None = None
    addl: Addl = 0

    def __post_init__(self):
        _check_repeat(self)

    def regimen(self, amount_mg: float) -> Regimen:
        return self._repeat((DoseEvent(0.0, amount_mg),))


@register("route", "infusion")
@spec
class Infusion(Route):
    """Zero-order IV infusion of ``duration_h`` hours into the central compartment."""

    duration_h: PositiveH
    ii_h: PositiveH | None = None
    addl: Addl = 0

    def __post_init__(self):
        _check_repeat(self)

    def regimen(self, amount_mg: float) -> Regimen:
        return self._repeat((DoseEvent(0.0, amount_mg, self.duration_h),))


@register("route", "intranasal")
@register("route", "subcutaneous")
@register("route", "oral")
@register("route", "first_order")
@spec
class FirstOrder(Route):
    """Into the depot (first-order absorption with the model's ka, F and tlag); a zero-order
    input into the depot over ``duration_h`` when it is > 0."""

    duration_h: Hours = 0.0
    ii_h: PositiveH | None = None
    addl: Addl = 0

    def __post_init__(self):
        _check_repeat(self)

    def regimen(self, amount_mg: float) -> Regimen:
        return self._repeat((DoseEvent(0.0, amount_mg, self.duration_h, "depot"),))


@register("route", "devices")
@spec
class Devices(Route):
    """Several devices into the depot, ``interval_h`` apart (e.g. one 28-mg nasal spray
    device every 5 minutes): a dose of ``k * device_mg`` mg is ``k`` devices.  Not linear
    in amount when the model gives later devices another bioavailability."""

    device_mg: PositiveH
    interval_h: PositiveH = 5.0 / 60.0
    ii_h: PositiveH | None = None
    addl: Addl = 0
    linear_in_amount = False

    def __post_init__(self):
        _check_repeat(self)

    def n_devices(self, amount_mg: float) -> int:
        k = amount_mg / self.device_mg
        if not (k >= 1 - 1e-9 and abs(k - round(k)) <= 1e-9 * max(1.0, k)):
            raise ValueError(f"a dose of {amount_mg:g} mg is not a whole number of "
                             f"{self.device_mg:g}-mg devices")
        if round(k) > MAX_DEVICES:
            raise ValueError(f"a dose of {amount_mg:g} mg needs {round(k)} devices of "
                             f"{self.device_mg:g} mg; at most {MAX_DEVICES} are allowed")
        return int(round(k))

    def regimen(self, amount_mg: float) -> Regimen:
        return self._repeat(tuple(DoseEvent(i * self.interval_h, self.device_mg, 0.0, "depot", i)
                                  for i in range(self.n_devices(amount_mg))))


@spec
class ScheduledDose:
    """One event of a :class:`Schedule`: ``fraction`` of the dose at ``time_h``."""

    time_h: Hours
    fraction: Annotated[float, Field(ge=0, le=1)] = 1.0
    duration_h: Hours = 0.0
    target: Literal["central", "depot"] = "central"
    device: Annotated[int, Field(ge=0, le=1000)] = 0


@register("route", "schedule")
@spec
class Schedule(Route):
    """Any list of events, each a fraction of the dose (e.g. loading + maintenance)."""

    events: tuple[ScheduledDose, ...]
    ii_h: PositiveH | None = None
    addl: Addl = 0

    @field_validator("events")
    @classmethod
    def _fractions_not_vanishing(cls, v):
        for i, e in enumerate(v):
            if 0 < e.fraction < 1e-6:
                raise ValueError(f"event {i}: a fraction is 0 or at least 1e-6 of the dose, got "
                                 f"{e.fraction:g}")
        return v

    @field_validator("events", mode="before")
    @classmethod
    def _events_from_mappings(cls, v):
        if isinstance(v, tuple):
            return tuple(ScheduledDose(**e) if isinstance(e, Mapping) else e for e in v)
        return v

    def __post_init__(self):
        _check_repeat(self)
        if not self.events:
            raise ValueError("a schedule needs at least one event")
        total = sum(e.fraction for e in self.events)
        if total > 1 + 1e-9:
            raise ValueError(f"the fractions of a schedule add up to {total:g}, more than the "
                             "dose: the dose level is the whole amount of one administration")

    def regimen(self, amount_mg: float) -> Regimen:
        return self._repeat(tuple(DoseEvent(e.time_h, e.fraction * amount_mg, e.duration_h, e.target,
                                            e.device) for e in self.events))

