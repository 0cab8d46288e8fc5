"""Exposure metrics of every patient at every dose level, whatever engine solves the model."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trialsim.pk.linear.exposures import linear_exposures
from trialsim.pk.metrics import parse_metric
from trialsim.pk.ode.metrics import check_metrics as check_ode_metrics
from trialsim.pk.ode.metrics import ode_exposures
from trialsim.pk.spec import PKSpec
from trialsim.pk.variability import individual_parameters

#: Patients per block: bounds the temporary arrays of huge populations.
CHUNK = 1 << 15


def check_metrics(model: PKSpec, metrics) -> None:
    """``ValueError`` naming the metric when ``model`` cannot give it."""
    ms = [parse_metric(m) for m in metrics]
    if not model.structure.linear:
        check_ode_metrics(model, ms)
    elif any(m.needs_effect for m in ms) and not model.structure.has_effect:
        bad = next(m.name for m in ms if m.needs_effect)
        raise ValueError(f"exposure metric {bad!r} needs an effect compartment: set ke0 (1/h) "
                         "in the pk section")


def pk_exposures(model: PKSpec, covariates: Mapping[str, np.ndarray], eta: np.ndarray | None,
                 doses: np.ndarray, metrics: tuple[str, ...], dose_unit: str) -> dict[str, np.ndarray]:
    """Exposure metrics of every patient at every dose level: name → (n_patients, n_doses).

    ``covariates`` name → (n,) (``weight_kg`` for mg/kg dosing and allometry), ``eta`` (n,
    n_eta) random effects in ``model.eta_names`` order, ``doses`` the dose levels in
    ``dose_unit`` (``"mg/kg"``: amount = dose × weight_kg; ``"mg"``: amount = dose).
    Metrics (see :mod:`trialsim.pk.metrics`): ``cmax``, ``ce_max``, ``c_at:<h>``,
    ``ce_at:<h>`` in ng/mL; ``auc`` (0–``model.horizon_h``), ``auc:<h>``, ``auc_inf`` in
    ng·h/mL; ``tmax``, ``ce_tmax`` in h (NaN at dose 0); ``time_above:<ng/mL>`` and
    ``ce_time_above:<ng/mL>`` in h within the horizon.

    Linear structures go to the closed-form engine (:func:`~trialsim.pk.linear.linear_exposures`:
    one unit-dose profile per patient, scaled; curves never stored, metrics streamed in the
    numba kernel), nonlinear ones to the ODE engine (:func:`~trialsim.pk.ode.metrics.ode_exposures`:
    each patient integrated at each dose level; ``cmax``, ``tmax``, ``auc``, ``auc:<h>``,
    ``c_at:<h>`` of ``model.analyte``, and ``ce_max``, ``ce_tmax``, ``ce_at:<h>`` with
    ``ke0``).  Patients are processed in blocks of :data:`CHUNK`.
    """
    ms = [parse_metric(m) for m in metrics]
    check_metrics(model, metrics)
    doses = np.asarray(doses, dtype=float).ravel()
    cov = {k: np.asarray(v).reshape(-1) for k, v in covariates.items()}
    if eta is None:
        if model.n_eta:
            raise ValueError(f"the PK model has random effects {list(model.eta_names)}: pass eta")
        sizes = {v.size for v in cov.values()}
        if len(sizes) != 1:
            raise ValueError("without eta, the number of patients comes from the covariates: "
                             "give at least one")
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
    engine = linear_exposures if model.structure.linear else ode_exposures
    out = {m.name: np.empty((n, doses.size)) for m in ms}
    for lo in range(0, n, CHUNK):
        sl = slice(lo, min(n, lo + CHUNK))
        v = individual_parameters(model, {k: c[sl] for k, c in cov.items()}, eta[sl])
        for k, x in engine(model, v, ms, amount[sl], doses, dose_unit).items():
            out[k][sl] = x
    return out
