"""Exposure metrics of the nonlinear (ODE) models for :func:`trialsim.pk.pk_exposures`.

Exposure is not linear in dose, so nothing is scaled: every patient is integrated at every
dose level (per dose level, a batch of patients through :func:`~trialsim.pk.ode.summarize`
or :func:`~trialsim.pk.ode.solve`; no curve is stored).  Supported metrics (see
:data:`SUPPORTED`): ``cmax`` (ng/mL), ``tmax`` (h), ``auc`` over [0, ``horizon_h``] and
``auc:<h>`` over [0, h] (ng·h/mL), ``c_at:<h>`` (ng/mL), and with an effect compartment
(``ke0`` set) ``ce_max`` (ng/mL), ``ce_tmax`` (h) and ``ce_at:<h>`` (ng/mL).  They describe
the model's analyte (``PKSpec.analyte``: ``parent`` by default, or ``metabolite`` for
``parent_metabolite``); ``ce_*`` the effect site of that analyte.

Cost: each of (Cmax/Tmax/AUC of C), (Ce max/Tmax), each extra ``auc:<h>`` and the set of
``c_at``/``ce_at`` times is one integration per patient and dose level.  At dose 0 (and for
mg/kg doses of a zero weight) concentrations are 0 and times NaN, as in the linear engine.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from trialsim.pk.metrics import CONC_KINDS
from trialsim.pk.ode.models import (DEFAULT_ATOL, DEFAULT_MAX_STEPS, DEFAULT_RTOL,
                                    parameter_matrix, solve, summarize)
from trialsim.pk.regimen import Regimen
from trialsim.pk.units import NG_PER_ML_PER_MG_PER_L as NG
from trialsim.spec import spec

#: Metric names the ODE path computes (``<h>``: a number of hours).
SUPPORTED = ("cmax", "tmax", "auc", "auc:<h>", "c_at:<h>", "ce_max", "ce_tmax", "ce_at:<h>")
KINDS = ("cmax", "tmax", "auc", "c_at", "ce_max", "ce_tmax", "ce_at")


@spec
class SolverOptions:
    """Tolerances of the adaptive Dormand–Prince solver: ``rtol`` relative, ``atol`` absolute
    (state units: mg, or mg/L for an effect site), ``max_steps`` per dosing interval."""

    rtol: Annotated[float, Field(gt=0, lt=1)] = DEFAULT_RTOL
    atol: Annotated[float, Field(gt=0)] = DEFAULT_ATOL
    max_steps: Annotated[int, Field(gt=0)] = DEFAULT_MAX_STEPS

    def kwargs(self) -> dict:
        return dict(rtol=self.rtol, atol=self.atol, max_steps=self.max_steps)


def analytes(structure) -> tuple[str, ...]:
    """Analytes whose plasma concentration the model reports (``parent`` first)."""
    return tuple(a for a in structure.system().observables if not a.endswith("_effect"))


def observables(model) -> tuple[str, str | None]:
    """``(plasma observable, effect-site observable or None)`` of a PK spec's analyte."""
    system = model.structure.system()
    plasma = model.analyte or next(iter(system.observables))
    effect = f"{plasma}_effect"
    return plasma, (effect if effect in system.observables else None)


def check_metrics(model, metrics) -> None:
    """``ValueError`` naming the metric and the model for metrics the ODE path cannot give."""
    name = model.structure.system().name
    _, effect = observables(model)
    for m in metrics:
        if m.kind not in KINDS:
            raise ValueError(f"exposure metric {m.name!r} is not supported for the nonlinear ODE model "
                             f"{name} (solved per dose level); supported: {', '.join(SUPPORTED)}")
        if m.kind.startswith("ce_") and effect is None:
            how = ("set ke0 (1/h) in" if "ke0" in type(model.structure).__dataclass_fields__
                   else "the model has none; ce_* metrics are for the built-in models, not")
            raise ValueError(f"exposure metric {m.name!r} needs an effect compartment: {how} the {name} model")


def ode_exposures(model, values, metrics, amount: np.ndarray, doses: np.ndarray,
                  dose_unit: str) -> dict[str, np.ndarray]:
    """Metrics (name → (m, D)) of m patients at D dose levels.

    ``values`` per-patient parameters (name → (m,), from
    :func:`~trialsim.pk.variability.individual_parameters`), ``metrics`` parsed metrics
    (``name``, ``kind``, ``arg``), ``amount`` (m, D) mg per patient and dose level, ``doses``
    the dose levels in ``dose_unit``.  Units as in the module docstring."""
    check_metrics(model, metrics)
    system = model.structure.system()
    m, D = amount.shape
    out = {x.name: np.empty((m, D)) for x in metrics}
    if m == 0:
        return out
    P = parameter_matrix(system, values, m)
    plasma, effect = observables(model)
    route = model.route
    for d in range(D):
        if route.linear_in_amount:
            reg, scale = route.regimen(1.0), np.asarray(amount[:, d], float)
        else:
            if dose_unit != "mg":
                raise ValueError(f"route {type(route).__name__}: the number of devices follows the dose, "
                                 "so dose_unit must be 'mg'")
            reg = route.regimen(float(doses[d])) if doses[d] > 0 else Regimen(())
            scale = np.full(m, 1.0 if doses[d] > 0 else 0.0)
        live = scale > 0 if system.initial_state is None else np.ones(m, bool)
        res = _metrics_at(model, system, reg, P[live], scale[live], metrics, plasma, effect)
        for x in metrics:
            col = out[x.name]
            col[~live, d] = 0.0 if x.kind in CONC_KINDS else np.nan
            col[live, d] = res[x.name]
    return out


def _metrics_at(model, system, reg, P, scale, metrics, plasma, effect) -> dict[str, np.ndarray]:
    """The metrics (name → (n,)) of the patients ``P`` (n, n_params) on one regimen."""
    n = P.shape[0]
    if n == 0:
        return {x.name: np.empty(0) for x in metrics}
    kw = dict(dose_scale=scale, **model.solver.kwargs())
    H = model.horizon_h
    kinds = {x.kind for x in metrics}
    raw: dict[str, np.ndarray] = {}
    if kinds & {"cmax", "tmax"} or any(x.kind == "auc" for x in metrics):
        s = summarize(system, reg, H, P, analyte=plasma, **kw)
        raw.update(cmax=s.cmax, tmax=s.tmax, auc=s.auc)
    for h in sorted({x.arg for x in metrics if x.kind == "auc" and x.arg is not None} - {H}):
        raw[f"auc:{h!r}"] = summarize(system, reg, h, P, analyte=plasma, **kw).auc
    raw[f"auc:{H!r}"] = raw.get("auc")
    if kinds & {"ce_max", "ce_tmax"}:
        s = summarize(system, reg, H, P, analyte=effect, **kw)
        raw.update(ce_max=s.cmax, ce_tmax=s.tmax)
    at = sorted({x.arg for x in metrics if x.kind in ("c_at", "ce_at")})
    if at:
        y = solve(system, reg, at, P, **kw)
        for kind, obs in (("c_at", plasma), ("ce_at", effect)):
            if kind in kinds:
                c = _conc(system, y, P, obs)
                raw.update({f"{kind}:{t!r}": c[:, j] for j, t in enumerate(at)})
    res = {}
    for x in metrics:
        r = raw[x.kind if x.arg is None else f"{x.kind}:{x.arg!r}"]
        res[x.name] = r * NG if x.kind in CONC_KINDS else r
    return res


def _conc(system, y, P, analyte) -> np.ndarray:
    """Concentration (mg/L) of ``analyte`` from states ``y`` (n, T, n_states)."""
    state, vol = system.observables[analyte]
    c = y[:, :, system.state_names.index(state)]
    return c / P[:, system.param_names.index(vol)][:, None] if vol else c
