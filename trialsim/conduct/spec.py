"""The ``conduct:`` section of a study: sites and accrual, observation windows, waiting limits,
clinic chairs and opening hours.  Times in hours unless the name says otherwise."""
from __future__ import annotations

import dataclasses
import math
from typing import Annotated

from pydantic import Field, model_validator

from trialsim.errors import FieldError
from trialsim.spec import spec

HOURS_PER_WEEK = 168.0


@spec
class Site:
    """A recruiting site: Poisson arrivals at ``rate_per_week`` from ``opens_week`` on, and
    ``chairs`` infusion chairs."""

    rate_per_week: Annotated[float, Field(ge=1e-6, le=10_000,
                                          description="patients arriving per week (from 1e-6: "
                                                      "below it the gaps overflow)")]
    opens_week: Annotated[float, Field(ge=0, le=10_000, description="week the site opens")] = 0.0
    chairs: Annotated[int, Field(ge=1, le=1000, description="infusion chairs")] = 1


@spec
class Conduct:
    """How a trial runs in calendar time.

    ``sites``: the recruiting sites.  ``screen_fail``: probability an arrival is not eligible.
    ``window_h``: observation window after a cohort's last dose before the next decision.
    ``max_wait_days``: an eligible patient waits at most this long for a place in a cohort,
    then is turned away.  ``session_h``: chair time per patient (infusion and monitoring; 0:
    chairs are not modelled).  ``open_hours``: the clinic's daily ``[open, close)`` hours,
    ``open_days``: days it opens (0 = the trial's first day, 7-day weeks); a session starts
    only when the clinic is open.  ``read_out_h``: the primary visit after dosing (default:
    the window), the end of a patient's participation for the trial's duration.
    ``dropout_per_week``: hazard of leaving the trial after the dose (exponential times, per
    week); a patient who leaves before the window's end without an observed DLT is not
    evaluable and is replaced by the next patient available.
    """

    sites: tuple[Site, ...]
    window_h: Annotated[float, Field(ge=0, le=100_000, description="observation window per "
                                                                   "cohort (h)")] = 24.0
    screen_fail: Annotated[float, Field(ge=0, lt=1, description="probability an arrival is "
                                                                "not eligible")] = 0.0
    max_wait_days: Annotated[float, Field(gt=0, le=10_000, description="longest wait for a "
                                                                       "place (days)")] = 1e4
    session_h: Annotated[float, Field(ge=0, le=1000, description="chair time per patient "
                                                                 "(h)")] = 0.0
    open_hours: tuple[float, float] = (0.0, 24.0)
    open_days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    read_out_h: Annotated[float | None, Field(ge=0, le=100_000, description="primary visit "
                                                                          "after dosing (h)")] = None
    visits_h: tuple[Annotated[float, Field(gt=0, le=100_000)], ...] | None = None
    dropout_per_week: Annotated[float, Field(ge=0, le=1000, description="hazard of leaving "
                                                                       "after the dose (per "
                                                                       "week)")] = 0.0

    @model_validator(mode="after")
    def _check(self) -> "Conduct":
        if not self.sites:
            raise ValueError("expected at least one site")
        lo, hi = self.open_hours
        if not 0 <= lo < hi <= 24:
            raise FieldError("open_hours", f"expected [open, close) with 0 <= open < "
                             f"close <= 24, got {list(self.open_hours)}")
        if not self.open_days or any(not 0 <= d <= 6 for d in self.open_days) \
                or len(set(self.open_days)) != len(self.open_days):
            raise FieldError("open_days", f"expected distinct days 0..6, got "
                             f"{list(self.open_days)}")
        if self.visits_h is not None:
            v = self.visits_h
            if not v or any(b <= a for a, b in zip(v, v[1:])):
                raise FieldError("visits_h", f"expected increasing hours after the dose, got "
                                 f"{list(v)}")
            if v[-1] > self.window_h:
                raise FieldError("visits_h", f"DLT assessments are within the window: "
                                 f"the last ({v[-1]:g} h) is after window_h "
                                 f"({self.window_h:g} h)")
        if self.session_h > hi - lo:
            raise FieldError("session_h", f"a session of {self.session_h:g} h does not fit in "
                             f"the opening hours {list(self.open_hours)}")
        return self

    def screening(self, p_eligible: float) -> "Conduct":
        """This conduct with the population's eligibility folded into screening: an arrival
        passes with probability ``(1 - screen_fail) * p_eligible``."""
        if p_eligible == 1.0:
            return self
        return dataclasses.replace(self, screen_fail=1.0 - (1.0 - self.screen_fail) * p_eligible)

    @property
    def read_out(self) -> float:
        return self.window_h if self.read_out_h is None else self.read_out_h

    @property
    def assessments(self) -> tuple[float, ...] | None:
        """DLT assessment times after the dose (h), the window's end included; ``None``:
        continuous observation."""
        if self.visits_h is None:
            return None
        return tuple(self.visits_h) + ((self.window_h,) if self.visits_h[-1] < self.window_h
                                       else ())

    def open_hours_between(self, a: float, b: float) -> float:
        """Hours the clinic is open in ``[a, b)`` (hours from the trial's start)."""
        return max(0.0, self._open_before(b) - self._open_before(a)) if b > a else 0.0

    def _open_before(self, t: float) -> float:
        """Hours the clinic is open in ``[0, t)``."""
        lo, hi = self.open_hours
        weeks = math.floor(t / HOURS_PER_WEEK)
        h = weeks * (hi - lo) * len(self.open_days)
        for d in self.open_days:              # the days of the week ``t`` falls in
            start = weeks * HOURS_PER_WEEK + d * 24.0
            h += min(max(t - start - lo, 0.0), hi - lo)
        return h

    def next_open(self, t: float) -> float:
        """The earliest time >= ``t`` (hours) at which a session of ``session_h`` may start."""
        lo, hi = self.open_hours
        if (lo, hi) == (0.0, 24.0) and len(self.open_days) == 7:
            return t
        day = int(t // 24)
        for k in range(8):
            d = day + k
            if d % 7 not in self.open_days:
                continue
            start = max(t, d * 24 + lo)
            if start + self.session_h <= d * 24 + hi + 1e-9:
                return start
        raise AssertionError("no opening within a week")  # pragma: no cover - validated
