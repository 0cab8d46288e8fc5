"""The resolved PK model the simulator uses (:class:`PKSpec`), whatever engine solves it.

Built from a YAML ``pk:`` mapping by :mod:`trialsim.config.pk`, or directly in Python.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from trialsim.pk.ode.metrics import SolverOptions, analytes
from trialsim.pk.regimen import Devices, Route
from trialsim.pk.structure import Structure
from trialsim.pk.variability import Allometry, CovariateEffect, Omega, check_targets
from trialsim.spec import spec

#: Longest exposure window (h): about 11 years.
MAX_HORIZON_H = 1e5
#: Most internal grid cells per patient of the closed-form metrics walk (horizon / step).
MAX_GRID_CELLS = 100_000
#: A regimen must deliver at least this fraction of its dose within the horizon (below it the
#: exposures would describe almost none of the dose: a mistake in the route or horizon).
MIN_DELIVERED = 0.01


def _template(route: Route):
    """The route's regimen for a unit dose (a device's own dose for devices)."""
    return route.regimen(route.device_mg if isinstance(route, Devices) else 1.0)


def route_name(route: Route) -> str:
    """The route's type as a study file names it (``infusion``, ``oral``, ...)."""
    from trialsim.registry import registered_name
    named = registered_name(route)
    return named[1] if named else type(route).__name__


def doses_a_depot(route: Route) -> bool:
    """Whether the route puts doses in a depot (first-order absorption: ``ka``, ``F`` and
    ``tlag`` apply)."""
    return any(e.target == "depot" for e in _template(route).events)


@spec
class PKSpec:
    """A resolved PK model: structure with typical values, route template, IIV (``omega``,
    random effects named ``eta_names``), allometry, covariate effects, and the window of the
    exposure metrics (``horizon_h``, h; ``grid_step_h``, h, the internal grid of the linear
    engine).  ODE structures only: ``analyte`` the metrics describe (None: the model's first,
    ``parent``) and the ``solver`` tolerances."""

    structure: Structure
    route: Route
    omega: Omega = Omega()
    allometry: Allometry | None = None
    effects: tuple[CovariateEffect, ...] = ()
    horizon_h: Annotated[float, Field(gt=0, le=MAX_HORIZON_H)] = 24.0
    grid_step_h: Annotated[float, Field(gt=0)] = 1.0 / 12.0
    name: str | None = None
    analyte: str | None = None
    solver: SolverOptions = SolverOptions()

    def __post_init__(self):
        check_targets(self.structure.parameters(), self.omega, self.allometry, self.effects)
        if self.horizon_h / self.grid_step_h > MAX_GRID_CELLS:
            raise ValueError(f"grid_step_h: horizon_h / grid_step_h must be at most "
                             f"{MAX_GRID_CELLS:,} grid cells, got {self.horizon_h:g} h / "
                             f"{self.grid_step_h:g} h")
        reg = _template(self.route)
        depot = doses_a_depot(self.route)
        if getattr(self.structure, "ka", 0) is None and depot:
            raise ValueError(f"route {route_name(self.route)} puts doses in a depot: the "
                             "model needs ka")
        odd = [f"{k} {getattr(self.structure, k):g}" for k, plain in (("F", 1.0), ("tlag", 0.0))
               if getattr(self.structure, k, plain) != plain]
        if odd and not depot:
            raise ValueError(f"{' and '.join(odd)}: bioavailability and lag apply to doses in a "
                             f"depot (first-order absorption); route "
                             f"{route_name(self.route)} gives none (it would be ignored)")
        self._check_delivery(reg)
        if self.analyte is not None:
            known = () if self.structure.linear else analytes(self.structure)
            if self.analyte not in known:
                raise ValueError(f"analyte {self.analyte!r}: " + (
                    f"known: {', '.join(known)}" if known else
                    "a linear model describes its one drug (analytes belong to ODE structures)"))

    def _check_delivery(self, reg) -> None:
        """Refuse a route that delivers (almost) none of its dose within the horizon."""
        t, amt, dur, chan = reg.arrays()
        total = amt.sum()
        if not total > 0:
            raise ValueError("route: the regimen gives no drug (every amount or fraction is 0)")
        lag = float(getattr(self.structure, "tlag", 0.0) or 0.0)
        start = t + np.where(chan == 1, lag, 0.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            frac = np.where(dur > 0, np.clip((self.horizon_h - start) / dur, 0.0, 1.0),
                            (start < self.horizon_h).astype(float))
        cut = (dur > 0) & (start < self.horizon_h) & (start + dur > self.horizon_h)
        if cut.any():
            k = int(np.argmax(cut))
            raise ValueError(f"route: an infusion from {start[k]:g} h for {dur[k]:g} h ends after "
                             f"horizon_h = {self.horizon_h:g} h, so the exposures would miss part "
                             "of its dose: lengthen horizon_h or check the duration (in hours)")
        delivered = float((amt * frac).sum() / total)
        if delivered < MIN_DELIVERED:
            raise ValueError(f"route: the regimen delivers {delivered:.2%} of its dose within "
                             f"horizon_h = {self.horizon_h:g} h (doses start after the horizon, "
                             "or an infusion is far longer than it): lengthen horizon_h or "
                             "check the route's times")

    @property
    def n_eta(self) -> int:
        return self.omega.n

    @property
    def eta_names(self) -> tuple[str, ...]:
        return self.omega.names
