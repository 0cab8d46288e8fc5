"""Exposure metrics of the closed-form engine for :func:`trialsim.pk.pk_exposures`.

The models are linear, so each patient's profile is computed once for a unit dose (1 mg) and
scaled by the amount; thresholds are divided by the amount instead.  A route whose events
depend on the dose level (``devices``: one device per ``device_mg``, later devices with
another bioavailability) is computed once per distinct dose (exact, no scaling).
"""
from __future__ import annotations

import numpy as np

from trialsim.pk.linear.engine import prepare, run_metrics
from trialsim.pk.metrics import CONC_KINDS, Metric
from trialsim.pk.units import NG_PER_ML_PER_MG_PER_L as NG


def linear_exposures(model, values, metrics: list[Metric], amount: np.ndarray,
                     doses: np.ndarray, dose_unit: str) -> dict[str, np.ndarray]:
    """Metrics (name → (m, D)) of m patients at D dose levels: ``values`` per-patient
    parameters (name → (m,)), ``amount`` (m, D) mg, ``doses`` in ``dose_unit``."""
    m, D = amount.shape
    out = {x.name: np.empty((m, D)) for x in metrics}
    if any(x.needs_effect for x in metrics) and not model.structure.has_effect:
        raise ValueError("effect-site metrics (ce_*) need an effect compartment: set ke0 in "
                         "the model")
    if model.route.linear_in_amount:
        _scaled(model, values, metrics, amount, out)
    else:
        if dose_unit != "mg":
            raise ValueError(f"route {type(model.route).__name__}: the number of devices "
                             "follows the dose, so dose_unit must be 'mg'")
        _per_dose(model, values, metrics, doses, out)
    return out


def _thresholds(ms, kind):
    return sorted({m.arg for m in ms if m.kind == kind})


def _raw(raw, x: Metric):
    return raw[x.kind] if x.arg is None else raw[f"{x.kind}:{x.arg!r}"]


def _scaled(model, v, ms, amount, out):
    m, D = amount.shape
    pr = prepare(model.structure, model.route.regimen(1.0), v, m)
    with np.errstate(divide="ignore", over="ignore"):
        inv = np.where(amount > 0, 1.0 / (NG * amount), np.inf)       # mg/L per ng/mL, unit dose
    tc, te = _thresholds(ms, "time_above"), _thresholds(ms, "ce_time_above")
    thr_c = np.concatenate([t * inv for t in tc], axis=1) if tc else np.zeros((1, 0))
    thr_e = np.concatenate([t * inv for t in te], axis=1) if te else np.zeros((1, 0))
    base = [x for x in ms if "time_above" not in x.kind]
    raw = run_metrics(pr, base, model.horizon_h, model.grid_step_h, thr_c, thr_e)
    for x in ms:
        if x.kind == "time_above":
            j = tc.index(x.arg)
            out[x.name][:] = raw["time_above"][:, j * D:(j + 1) * D]
        elif x.kind == "ce_time_above":
            j = te.index(x.arg)
            out[x.name][:] = raw["ce_time_above"][:, j * D:(j + 1) * D]
        else:
            r = _raw(raw, x)[:, None]
            if x.kind in CONC_KINDS:
                out[x.name][:] = r * NG * amount
            else:
                out[x.name][:] = np.where(amount > 0, r, np.nan)


def _per_dose(model, v, ms, doses, out):
    m = next(iter(v.values())).shape[0]
    tc, te = _thresholds(ms, "time_above"), _thresholds(ms, "ce_time_above")
    base = [x for x in ms if "time_above" not in x.kind]
    for d, dose in enumerate(doses):
        if dose == 0:
            for x in ms:
                out[x.name][:, d] = (0.0 if x.kind in CONC_KINDS or "time_above" in x.kind
                                     else np.nan)
            continue
        pr = prepare(model.structure, model.route.regimen(float(dose)), v, m)
        raw = run_metrics(pr, base, model.horizon_h, model.grid_step_h,
                          np.array([tc], float).reshape(1, -1) / NG,
                          np.array([te], float).reshape(1, -1) / NG)
        for x in ms:
            if x.kind == "time_above":
                out[x.name][:, d] = raw["time_above"][:, tc.index(x.arg)]
            elif x.kind == "ce_time_above":
                out[x.name][:, d] = raw["ce_time_above"][:, te.index(x.arg)]
            else:
                out[x.name][:, d] = _raw(raw, x) * (NG if x.kind in CONC_KINDS else 1.0)
