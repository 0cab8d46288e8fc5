"""Fitting the dose-response models to dose-level estimates by bounded (generalised) least
squares, and their information criteria.

Every model is linear in ``(e0, beta)`` given its shape parameters ``theta`` (see
:mod:`.models`), so the criterion is profiled: for fixed ``theta`` the linear coefficients
solve a weighted least-squares problem in closed form, and ``theta`` is optimised within its
bounds — on a grid (log-spaced: 200 points in one dimension, 40 × 40 in two), then refined
from the best grid point (bounded Brent in one dimension, L-BFGS-B in two, on the log scale).

Criteria (as in the R package DoseFinding):

* normal endpoint: ``RSS(theta) = rss0 + (est − f)' V⁻¹ (est − f)`` equals the residual sum of
  squares of the model (plus covariates) fitted to the patients; ``AIC = N log(2π RSS/N) + N
  + 2 (p + q + 1)`` with ``p`` model parameters, ``q`` covariate coefficients and one for
  the residual variance;
* binary or general estimates: ``gRSS = (est − f)' S⁻¹ (est − f)`` and ``gAIC = gRSS + 2p``
  (Pinheiro et al., Stat Med 2014).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from trialsim.analysis.doseresponse.estimates import DoseEstimates
from trialsim.analysis.doseresponse.models import Family, family

GRID_1D = 200
GRID_2D = 40


@dataclass(frozen=True)
class Fit:
    """A fitted model: ``params`` by name, the criterion ``rss`` (normal: residual sum of
    squares of the patient-level fit; otherwise gRSS), ``aic`` (normal: AIC; otherwise gAIC),
    ``n_params`` (model parameters), ``at_bound`` (a shape parameter ended on its bound)."""

    model: str
    params: dict
    rss: float
    aic: float
    n_params: int
    at_bound: bool
    extra: dict

    @property
    def coef(self) -> np.ndarray:
        return np.array(list(self.params.values()))

    def predict(self, doses) -> np.ndarray:
        """The fitted mean at ``doses``."""
        return family(self.model).mean(np.asarray(doses, dtype=float), self.coef, self.extra)

    def effect(self, doses) -> np.ndarray:
        """The fitted effect over placebo, ``f(d) − f(0)``, at ``doses``."""
        d = np.asarray(doses, dtype=float)
        return self.predict(d) - self.predict(np.zeros(1))[0]


def _profile(fam: Family, d, y, W, extra):
    """``(Q(theta), beta(theta))``: the weighted residual criterion and linear coefficients."""
    def solve(theta):
        X = np.hstack([np.ones((d.size, 1)), fam.basis(d, np.asarray(theta, float), extra)])
        XtW = X.T @ W
        A = XtW @ X
        try:
            beta = np.linalg.solve(A, XtW @ y)
        except np.linalg.LinAlgError:
            beta = np.linalg.lstsq(A, XtW @ y, rcond=None)[0]
        if not np.all(np.isfinite(beta)):
            return np.inf, beta
        r = y - X @ beta
        return float(r @ W @ r), beta
    return solve


def fit_model(model: str, est: DoseEstimates, bounds=None, extra: dict | None = None) -> Fit:
    """Fit ``model`` to the dose-level estimates (see the module docstring)."""
    fam = family(model)
    d, y = est.doses, est.estimates
    extra = dict(extra or {"off": 0.01 * d[-1], "scal": 1.2 * d[-1]})
    W = est.weight
    solve = _profile(fam, d, y, W, extra)
    at_bound = False
    if fam.n_theta == 0:
        theta = np.zeros(0)
        q, beta = solve(theta)
    else:
        b = fam.bounds(float(d[-1]), bounds)
        lb = np.log(b)
        if fam.n_theta == 1:
            grid = np.exp(np.linspace(lb[0, 0], lb[0, 1], GRID_1D))
            vals = np.array([solve([g])[0] for g in grid])
            j = int(np.nanargmin(vals))
            lo, hi = np.log(grid[max(j - 1, 0)]), np.log(grid[min(j + 1, GRID_1D - 1)])
            res = minimize_scalar(lambda x: solve([np.exp(x)])[0], bounds=(lo, hi),
                                  method="bounded", options={"xatol": 1e-10})
            x = res.x if res.fun <= vals[j] else np.log(grid[j])
            theta = np.array([np.exp(x)])
        else:
            g0 = np.linspace(lb[0, 0], lb[0, 1], GRID_2D)
            g1 = np.linspace(lb[1, 0], lb[1, 1], GRID_2D)
            vals = np.array([[solve([np.exp(a), np.exp(c)])[0] for c in g1] for a in g0])
            i, j = np.unravel_index(int(np.nanargmin(vals)), vals.shape)
            start = np.array([g0[i], g1[j]])
            res = minimize(lambda x: solve(np.exp(x))[0], start, method="L-BFGS-B",
                           bounds=[tuple(lb[0]), tuple(lb[1])],
                           options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 500})
            x = res.x if res.fun <= vals[i, j] else start
            theta = np.exp(x)
        theta = np.clip(theta, b[:, 0], b[:, 1])
        at_bound = bool(np.any(np.isclose(theta, b[:, 0], rtol=1e-6) |
                               np.isclose(theta, b[:, 1], rtol=1e-6)))
        q, beta = solve(theta)
    coef = np.concatenate([beta, theta])
    p = coef.size
    if est.kind == "normal":
        rss = est.rss0 + q
        N = est.n_obs
        aic = N * np.log(2 * np.pi * rss / N) + N + 2 * (p + est.n_covariates + 1)
    else:
        rss = q
        aic = q + 2 * p
    return Fit(fam.name, dict(zip(fam.params, (float(c) for c in coef))), float(rss),
               float(aic), p, at_bound, extra)
