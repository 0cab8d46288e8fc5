"""Pharmacokinetics: linear compartment models solved in closed form (numba), variability,
named published models, and the exposure metrics the simulator uses.

Units: time h, amounts mg, volumes L, clearances L/h, rate constants 1/h; concentrations are
mg/L (= µg/mL) inside the engine and **ng/mL** (= mg/L × 1000) in :func:`pk_exposures`.

Main entry points

* :func:`pk_exposures` — exposure metrics of every patient at every dose level (simulator).
* :func:`from_config` / :class:`PKSpec` — a resolved model from a YAML ``pk:`` mapping.
* :func:`draw_eta` — random effects (n, n_eta) from a patient's Generator.
* :func:`concentrations`, :func:`profiles`, :func:`amounts`, :func:`exposure_metrics` —
  vectorised curves and streamed metrics for per-patient parameter arrays.
* :mod:`trialsim.pk.library` — ``available()``, ``describe(name)``, ``pd_constant(name)``.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trialsim.pk.config import PKSpec, from_config, from_library
from trialsim.pk.exposure import (CONC_KINDS, Metric, amounts, conc_factor, concentrations,
                                  exposure_metrics, parse_metric, prepare, profiles, run_metrics,
                                  to_mg_per_l, to_ng_per_ml)
from trialsim.pk.library import available, describe, pd_constant
from trialsim.pk.ode.metrics import check_metrics as _check_ode_metrics
from trialsim.pk.ode.metrics import is_ode, ode_exposures
from trialsim.pk.models import (PARAMETERS, Clearances, HepatoPortalNasal, Mammillary,
                                MicroConstants, clearances_from_micro, micro_from_clearances)
from trialsim.pk.regimen import (Bolus, Devices, DoseEvent, FirstOrder, Infusion, Regimen,
                                 Schedule)
from trialsim.pk.variability import (Allometry, CategoricalEffect, LinearEffect, Omega,
                                     ResidualError, draw_eta, individual_parameters)

__all__ = [
    "pk_exposures", "PKSpec", "from_config", "from_library", "draw_eta", "individual_parameters",
    "concentrations", "profiles", "amounts", "exposure_metrics", "to_ng_per_ml", "to_mg_per_l",
    "conc_factor", "available", "describe", "pd_constant", "PARAMETERS", "Clearances",
    "MicroConstants", "Mammillary", "HepatoPortalNasal", "micro_from_clearances",
    "clearances_from_micro", "Regimen", "DoseEvent", "Bolus", "Infusion", "FirstOrder", "Devices",
    "Schedule", "Omega", "Allometry", "CategoricalEffect", "LinearEffect", "ResidualError",
]

#: Patients per block: bounds the temporary arrays of huge populations.
CHUNK = 1 << 15
NG = 1000.0  # ng/mL per mg/L


def pk_exposures(model: PKSpec, covariates: Mapping[str, np.ndarray], eta: np.ndarray | None,
                 doses: np.ndarray, metrics: tuple[str, ...], dose_unit: str) -> dict[str, np.ndarray]:
    """Exposure metrics of every patient at every dose level: name → (n_patients, n_doses).

    ``covariates`` name → (n,) (``weight_kg`` for mg/kg dosing and allometry), ``eta`` (n,
    n_eta) random effects in ``model.eta_names`` order, ``doses`` the dose levels in
    ``dose_unit`` (``"mg/kg"``: amount = dose × weight_kg; ``"mg"``: amount = dose).
    Metrics (see :func:`trialsim.pk.exposure.parse_metric`): ``cmax``, ``ce_max``,
    ``c_at:<h>``, ``ce_at:<h>`` in ng/mL; ``auc`` (0–``model.horizon_h``), ``auc:<h>``,
    ``auc_inf`` in ng·h/mL; ``tmax``, ``ce_tmax`` in h (NaN at dose 0); ``time_above:<ng/mL>``
    and ``ce_time_above:<ng/mL>`` in h within the horizon.

    The models are linear, so each patient's profile is computed once for a unit dose (1 mg)
    and scaled by the amount; thresholds are divided by the amount instead.  A route whose
    events depend on the dose level (``devices``: one device per ``device_mg``, later devices
    with another bioavailability) is computed once per distinct dose (exact, no scaling).
    Curves are never stored: metrics are streamed per patient in the numba kernel, in blocks
    of :data:`CHUNK` patients.

    Nonlinear (ODE) structures are not linear in dose: each patient is integrated at each
    dose level (:func:`trialsim.pk.ode.metrics.ode_exposures`; ``cmax``, ``tmax``, ``auc``,
    ``auc:<h>``, ``c_at:<h>`` of ``model.analyte``, and ``ce_max``, ``ce_tmax``, ``ce_at:<h>``
    with ``ke0``); other metrics raise ``ValueError`` naming the metric and the model.
    """
    ms = [parse_metric(m) for m in metrics]
    ode = is_ode(model.structure)
    if ode:
        _check_ode_metrics(model, ms)
    doses = np.asarray(doses, dtype=float).ravel()
    cov = {k: np.asarray(v).reshape(-1) for k, v in covariates.items()}
    if eta is None:
        if model.n_eta:
            raise ValueError(f"the PK model has random effects {list(model.eta_names)}: pass eta")
        sizes = {v.size for v in cov.values()}
        if len(sizes) != 1:
            raise ValueError("without eta, the number of patients comes from the covariates: give at least one")
        eta = np.zeros((sizes.pop(), 0))
    eta = np.asarray(eta, dtype=float).reshape(-1, model.n_eta) if model.n_eta else \
        np.zeros((np.asarray(eta).shape[0], 0))
    n = eta.shape[0]
    for k, v in cov.items():
        if v.size != n:
            raise ValueError(f"covariate {k!r} has {v.size} values for {n} patients")
    if dose_unit == "mg/kg":
        if "weight_kg" not in cov:
            raise ValueError("mg/kg dosing needs the covariate weight_kg")
        amount = doses[None, :] * cov["weight_kg"].astype(float)[:, None]
    elif dose_unit == "mg":
        amount = np.broadcast_to(doses[None, :], (n, doses.size))
    else:
        raise ValueError(f"dose_unit must be 'mg' or 'mg/kg', got {dose_unit!r}")
    out = {m.name: np.empty((n, doses.size)) for m in ms}
    for lo in range(0, n, CHUNK):
        sl = slice(lo, min(n, lo + CHUNK))
        v = individual_parameters(model, {k: c[sl] for k, c in cov.items()}, eta[sl])
        if ode:
            for k, x in ode_exposures(model, v, ms, amount[sl], doses, dose_unit).items():
                out[k][sl] = x
        elif model.route.linear_in_amount:
            _scaled_block(model, v, ms, amount[sl], out, sl)
        else:
            if dose_unit != "mg":
                raise ValueError(f"route {type(model.route).__name__}: the number of devices follows the dose, "
                                 "so dose_unit must be 'mg'")
            _per_dose_block(model, v, ms, doses, out, sl)
    return out


def _thresholds(ms, kind):
    return sorted({m.arg for m in ms if m.kind == kind})


def _scaled_block(model, v, ms, amount, out, sl):
    m, D = amount.shape
    pr = prepare(model.structure, model.route.regimen(1.0), v, m)
    with np.errstate(divide="ignore"):
        inv = np.where(amount > 0, 1.0 / (NG * amount), np.inf)       # mg/L per ng/mL, unit dose
    tc, te = _thresholds(ms, "time_above"), _thresholds(ms, "ce_time_above")
    thr_c = np.concatenate([t * inv for t in tc], axis=1) if tc else np.zeros((1, 0))
    thr_e = np.concatenate([t * inv for t in te], axis=1) if te else np.zeros((1, 0))
    base = [x for x in ms if "time_above" not in x.kind]
    raw = run_metrics(pr, base, model.horizon_h, model.grid_step_h, thr_c, thr_e)
    for x in ms:
        if x.kind == "time_above":
            j = tc.index(x.arg)
            out[x.name][sl] = raw["time_above"][:, j * D:(j + 1) * D]
        elif x.kind == "ce_time_above":
            j = te.index(x.arg)
            out[x.name][sl] = raw["ce_time_above"][:, j * D:(j + 1) * D]
        else:
            r = _raw(raw, x)[:, None]
            if x.kind in CONC_KINDS:
                out[x.name][sl] = r * NG * amount
            else:
                out[x.name][sl] = np.where(amount > 0, r, np.nan)


def _raw(raw, x: Metric):
    return raw[x.kind] if x.arg is None else raw[f"{x.kind}:{x.arg!r}"]


def _per_dose_block(model, v, ms, doses, out, sl):
    m = next(iter(v.values())).shape[0]
    tc, te = _thresholds(ms, "time_above"), _thresholds(ms, "ce_time_above")
    base = [x for x in ms if "time_above" not in x.kind]
    for d, dose in enumerate(doses):
        if dose == 0:
            for x in ms:
                out[x.name][sl, d] = 0.0 if x.kind in CONC_KINDS or "time_above" in x.kind else np.nan
            continue
        pr = prepare(model.structure, model.route.regimen(float(dose)), v, m)
        raw = run_metrics(pr, base, model.horizon_h, model.grid_step_h,
                          np.array([tc], float).reshape(1, -1) / NG, np.array([te], float).reshape(1, -1) / NG)
        for x in ms:
            if x.kind == "time_above":
                out[x.name][sl, d] = raw["time_above"][:, tc.index(x.arg)]
            elif x.kind == "ce_time_above":
                out[x.name][sl, d] = raw["ce_time_above"][:, te.index(x.arg)]
            else:
                out[x.name][sl, d] = _raw(raw, x) * (NG if x.kind in CONC_KINDS else 1.0)
