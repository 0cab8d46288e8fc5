"""The truth of a phase II scenario: the population mean of the endpoint at each studied dose
and on a fine dose grid, the true target dose, and the dose the decision rule would take
forward knowing the truth.

Estimated by Monte Carlo over virtual patients from a study-level stream (the same for every
design and every run with the seed; standard errors kept): :data:`N_TRUTH` at the studied
doses, :data:`N_GRID_PATIENTS` at each of :data:`N_GRID` doses from 0 to the largest.  The
estimand is the effect of the dose in the whole population had everyone stayed (no dropout).
A binary endpoint's effect is on the logit scale, as the analysis's ``delta``.  When the
route cannot give the grid's doses (whole nasal-spray devices only), the grid is the studied
doses and ``TD`` is interpolated linearly between them.  The true
rate of each safety event at each studied dose comes from the same patients, and the dose
the decision rule takes forward knowing the truth is found by the same function as a
trial's (:func:`trialsim.phase2.decision.take_forward`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.phase2.decision import take_forward
from trialsim.phase2.safety import safety_outcomes
from trialsim.phase2.study import Phase2Study
from trialsim.response.timecourse import classify, madrs_trajectory
from trialsim.rng import study_stream
from trialsim.study import patient_exposures

N_TRUTH = 100_000
N_GRID = 41
N_GRID_PATIENTS = 20_000


@dataclass(frozen=True)
class Phase2Truth:
    """``mean`` (D,) the endpoint's population mean per dose (MADRS change, or the rate),
    ``mean_se`` (D,); ``effect`` (D,) over placebo on the analysis scale (change, or logit);
    ``grid``/``grid_effect`` the effect on a fine grid; ``td`` the true TD(delta) (NaN: not
    reached); ``event_rate`` (S, D) the true rate of each safety event and its
    ``event_rate_se``; ``forward`` the dose the rule takes forward knowing the truth (−1:
    none)."""

    doses: np.ndarray
    mean: np.ndarray
    mean_se: np.ndarray
    effect: np.ndarray
    grid: np.ndarray
    grid_effect: np.ndarray
    td: float
    event_rate: np.ndarray
    event_rate_se: np.ndarray
    forward: int


def _endpoint_means(study: Phase2Study, doses: np.ndarray, n: int, seed: int, scenario: int,
                    purpose: int, safety: bool = False):
    """``(mean (D,), se (D,))`` of the endpoint over ``n`` patients at every dose, followed
    with ``safety`` by ``rate (S, D), se (S, D)`` of the safety events."""
    rng = study_stream(seed, scenario, purpose)
    n_eta = 0 if study.pk is None else study.pk.omega.n
    pts = study.population.draw_from(rng, n, study.n_z, n_eta)
    ex = patient_exposures(study.pk, study.exposure_names(), pts, doses, study.dose_unit)
    m = study.efficacy
    base = pts.covariates[m.baseline]
    v = study.primary
    t = np.asarray(study.visits_h, float)[v:v + 1]
    extra = study.control_improvement(pts.z, t)                           # (1, n, 1)
    if extra is not None:
        extra = np.where((doses == 0)[:, None], extra[..., None, :], 0.0)  # (1, n, D, 1)
    s = madrs_trajectory(m, base, ex[m.exposure], t, pts.z[..., :2],
                         pts.z[..., 2 + v:3 + v], extra)[..., 0]          # (1, n, D)
    if study.endpoint.type == "change":
        y = s - base[..., None]
    else:
        y = classify(s, base, study.endpoint.type).astype(float)
    y = y[0]
    out = (y.mean(axis=0), y.std(axis=0, ddof=1) / np.sqrt(n))
    if not safety:
        return out
    z = rng.standard_normal((1, n, 1, study.n_safety_z))
    cov = {k: c[..., None] for k, c in pts.covariates.items()}
    event = safety_outcomes(study, z, ex, cov)[0][0]                      # (n, D, S)
    rate = event.mean(axis=0).T
    return out + (rate, np.sqrt(rate * (1 - rate) / n))


def _scale(study: Phase2Study, mean: np.ndarray) -> np.ndarray:
    if study.endpoint.type == "change":
        return mean
    p = np.clip(mean, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def phase2_truth(study: Phase2Study, seed: int, scenario: int = 0, n: int = N_TRUTH,
                 n_grid_patients: int = N_GRID_PATIENTS) -> Phase2Truth:
    """The truth of ``study`` (see the module docstring)."""
    doses = np.asarray(study.doses, float)
    mean, se, rate, rate_se = _endpoint_means(study, doses, n, seed, scenario, 1, safety=True)
    effect = _scale(study, mean) - _scale(study, mean)[0]
    grid = np.linspace(0.0, doses[-1], N_GRID)
    try:
        gmean, _ = _endpoint_means(study, grid, n_grid_patients, seed, scenario, 2)
        geff = _scale(study, gmean) - _scale(study, gmean)[0]
    except ValueError:      # a route that gives whole devices only: the studied doses
        grid, geff = doses, effect
    sign = 1.0 if study.direction == "increasing" else -1.0
    delta = study.analysis.delta
    above = np.flatnonzero(sign * geff >= delta)
    above = above[above > 0]
    if above.size:
        j = int(above[0])
        e0, e1 = sign * geff[j - 1], sign * geff[j]
        td = float(grid[j - 1] + (delta - e0) / (e1 - e0) * (grid[j] - grid[j - 1]))
    else:
        td = float("nan")
    forward = int(take_forward(study.decision, doses, np.array([True]), np.array([td]),
                               sign * effect[None, :],
                               {k: rate[None, i] for i, k in enumerate(study.safety)},
                               delta)[0])
    return Phase2Truth(doses, mean, se, effect, grid, geff, td, rate, rate_se, forward)
