"""MCP-Mod for many simulated trials at once: the same procedure as :func:`.procedure.mcpmod`
(optimal contrasts for each trial's actual allocation and covariance, adjusted p-values from
the multivariate t, bounded least-squares fits of the significant model families, AIC/gAIC
selection or averaging, the target dose), with no per-trial Python loop.

Numerics: contrasts and correlations are batched linear algebra.  A candidate whose statistic
is above the Bonferroni critical value is significant and one below the single-test critical
value is not, whatever the correlation; only trials with a statistic between the two get
the adjusted p-values of those candidates computed, by the spherical-radial method of
:mod:`trialsim.analysis.mvt` over one shared set of directions (12 scrambles of up to 1,024
points).  A trial starts with 64 points per scramble and doubles them until each p-value is
more than :data:`SIM_Z` standard errors (estimated over the scrambles) from ``alpha`` — the
decision is then the exact one but for a chance of order 1e-4 — or all are used (error
below ~1e-4 near p = 0.025).  So a p-value far from ``alpha`` carries a larger error (its
standard error is returned); the other p-values are left NaN (their decision is certain).
Fits profile the linear coefficients out and search the shape parameters on log grids (30
points in one dimension, 12 × 12 in two, as DoseFinding's defaults) refined by Brent's method
or Nelder–Mead — the same optimum as :func:`.fitting.fit_model` (tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.analysis import mvt
from trialsim.analysis.doseresponse import _kernels as K
from trialsim.analysis.doseresponse import _pvalue_kernels as PK
from trialsim.analysis.doseresponse.models import Candidates, family

CODES = {"linear": 0, "linlog": 1, "quadratic": 2, "emax": 3, "sig_emax": 4, "exponential": 5,
         "logistic": 6, "beta": 7}
SIM_M0, SIM_M = 6, 10
SIM_Z = 4.0
#: Points of the grid that brackets the target dose (then refined by bisection).
DOSE_GRID = 401


@dataclass(frozen=True)
class BatchEstimates:
    """Dose-level estimates of ``T`` trials: ``est`` (T, k), ``cov`` (T, k, k), ``df`` (T,)
    (``inf``: normal); for ``normal`` estimates also ``V`` (T, k, k) with ``cov = sigma² V``,
    ``rss0`` (T,), ``n_obs`` (T,) and ``n_covariates``; ``valid`` (T,) trials with enough data
    to analyse (every arm observed)."""

    doses: np.ndarray
    est: np.ndarray
    cov: np.ndarray
    df: np.ndarray
    kind: str
    valid: np.ndarray
    V: np.ndarray | None = None
    rss0: np.ndarray | None = None
    n_obs: np.ndarray | None = None
    n_covariates: int = 0


@dataclass(frozen=True)
class BatchResult:
    """Per trial: ``signal`` (T,) the flat dose-response rejected; ``p`` (T, M) adjusted
    p-values where computed and ``p_se`` (T, M) their Monte Carlo standard errors; ``t`` (T,
    M); ``selected`` (T,) index into ``models`` of the selected family
    (−1 without a signal); ``weights`` (T, F) model weights; ``fitted`` (T, k) the selected
    (or averaged) fitted mean at the studied doses; ``dose`` (T,) the target dose (NaN when
    not reached or no signal)."""

    labels: tuple[str, ...]
    models: tuple[str, ...]
    t: np.ndarray
    p: np.ndarray
    p_se: np.ndarray
    signal: np.ndarray
    selected: np.ndarray
    weights: np.ndarray
    fitted: np.ndarray
    dose: np.ndarray
    critical_value: float


def batch_contrast_test(be: BatchEstimates, shapes: np.ndarray, two_sided: bool = False):
    """Contrasts, correlation factors and statistics of every trial: ``(t (T, M), A (T, M, r),
    C (T, k, M))``."""
    S = be.cov
    T, k, _ = S.shape
    Sinv = np.linalg.inv(S)
    w = Sinv.sum(axis=2)                                         # S⁻¹ 1, (T, k)
    mean = np.einsum("tk,km->tm", w, shapes) / w.sum(axis=1)[:, None]
    C = np.einsum("tij,tjm->tim", Sinv, shapes[None, :, :] - mean[:, None, :])
    C -= C.mean(axis=1, keepdims=True)
    C /= np.sqrt((C * C).sum(axis=1, keepdims=True))
    sign = np.sign(np.einsum("tkm,km->tm", C, shapes))
    C *= np.where(sign == 0, 1.0, sign)[:, None, :]
    V = np.einsum("tkm,tkl,tln->tmn", C, S, C)
    sd = np.sqrt(np.einsum("tmm->tm", V))
    R = V / (sd[:, :, None] * sd[:, None, :])
    t = np.einsum("tkm,tk->tm", C, be.est) / sd
    vals, vecs = np.linalg.eigh(R)
    r = min(shapes.shape[1], k - 1)
    A = vecs[:, :, -r:] * np.sqrt(np.clip(vals[:, None, -r:], 0.0, None))
    return t, np.ascontiguousarray(A), C


def batch_pvalues(t: np.ndarray, A: np.ndarray, df: np.ndarray, two_sided: bool = False,
                  want: np.ndarray | None = None, alpha: float = 0.025
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted p-values (T, M) and their standard errors, of the candidates in ``want``
    (default all; NaN elsewhere), with the accuracy needed to decide at ``alpha`` (see the
    module docstring)."""
    T, M, r = A.shape
    U = np.stack([mvt.directions(r, rep, SIM_M) for rep in range(mvt.N_SHIFTS)])
    dfs, index = np.unique(df, return_inverse=True)
    coefs = np.stack([mvt.radial_spline(r, float(x)).c for x in dfs])
    want = np.ones((T, M), bool) if want is None else want
    return PK.mct_pvalues(A, np.ascontiguousarray(t), want, np.ascontiguousarray(U), coefs,
                         index.astype(np.int64), two_sided, alpha, SIM_Z, SIM_M0)


#: Grid points of the batched fits (fewer than the single-trial fit's; Nelder–Mead refines).
SIM_GRID_1D, SIM_GRID_2D = 30, 12


def _grids(fam, max_dose: float, bounds) -> tuple[np.ndarray, np.ndarray]:
    b = np.log(fam.bounds(max_dose, bounds))
    if fam.n_theta == 1:
        return np.linspace(b[0, 0], b[0, 1], SIM_GRID_1D), np.zeros(1)
    if fam.n_theta == 2:
        return (np.linspace(b[0, 0], b[0, 1], SIM_GRID_2D),
                np.linspace(b[1, 0], b[1, 1], SIM_GRID_2D))
    return np.zeros(1), np.zeros(1)


def batch_fit(model: str, be: BatchEstimates, active: np.ndarray, cands: Candidates,
              bounds=None) -> tuple[np.ndarray, np.ndarray]:
    """``(coef (T, 5), criterion (T,))`` of ``model`` for the ``active`` trials (AIC for
    normal estimates, gAIC otherwise; NaN elsewhere)."""
    fam = family(model)
    W = np.linalg.inv(be.V if be.kind == "normal" else be.cov)
    g0, g1 = _grids(fam, float(be.doses[-1]), bounds)
    T = be.est.shape[0]
    coef = np.full((T, 5), np.nan)
    q = np.full(T, np.nan)
    K.fit_batch(CODES[fam.name], fam.n_theta, be.doses, be.est, np.ascontiguousarray(W), g0,
                g1, cands.off, cands.scal, active, coef, q)
    p = len(fam.params)
    if be.kind == "normal":
        N = be.n_obs.astype(float)
        rss = be.rss0 + q
        crit = N * np.log(2 * np.pi * rss / N) + N + 2 * (p + be.n_covariates + 1)
    else:
        crit = q + 2 * p
    return coef, np.where(active, crit, np.nan)


def batch_mcpmod(be: BatchEstimates, cands: Candidates, *, alpha: float = 0.025,
                 delta: float | None = None, p: float | None = None, selection: str = "AIC",
                 direction: str = "increasing", bounds: dict | None = None,
                 two_sided: bool = False, critical_value: float = float("nan")) -> BatchResult:
    """MCP-Mod for every trial of ``be`` (see the module docstring and
    :func:`.procedure.analyse` for the options)."""
    sign = 1.0 if direction == "increasing" else -1.0
    shapes = sign * cands.shapes(be.doses)
    T, k = be.est.shape
    M = shapes.shape[1]
    t, A, _ = batch_contrast_test(be, shapes, two_sided)
    stat = np.abs(t) if two_sided else t
    sides = 2 if two_sided else 1
    q_single = _t_quantile(1 - alpha / sides, be.df)
    q_bonferroni = _t_quantile(1 - alpha / (sides * M), be.df)
    sure = stat > q_bonferroni[:, None]
    in_band = (stat >= q_single[:, None]) & ~sure
    band = in_band.any(axis=1) & be.valid
    pv = np.full((T, M), np.nan)
    pse = np.full((T, M), np.nan)
    if band.any():
        pv[band], pse[band] = batch_pvalues(t[band], A[band], be.df[band], two_sided,
                                            in_band[band], alpha)
    sig = (sure | (pv < alpha)) & be.valid[:, None]
    signal = sig.any(axis=1)
    models = tuple(dict.fromkeys(c.model for c in cands.items))
    F = len(models)
    crit = np.full((T, F), np.nan)
    coefs = np.zeros((T, F, 5))
    bounds = bounds or {}
    for f, m in enumerate(models):
        cols = [j for j, c in enumerate(cands.items) if c.model == m]
        active = sig[:, cols].any(axis=1)
        if active.any():
            coef, crit[:, f] = batch_fit(m, be, active, cands, bounds.get(m))
            coefs[active, f] = coef[active]
    weights = np.zeros((T, F))
    has = np.isfinite(crit)
    if selection == "maxT":
        best_label = np.argmax(np.where(sig, stat, -np.inf), axis=1)   # t oriented to benefit
        fam_of = np.array([models.index(c.model) for c in cands.items])
        weights[np.arange(T), fam_of[best_label]] = 1.0
    elif selection == "AIC":
        best = np.argmin(np.where(has, crit, np.inf), axis=1)
        weights[np.arange(T), best] = 1.0
    else:
        c0 = np.where(has, crit, np.inf)
        lowest = np.where(has.any(axis=1), c0.min(axis=1), 0.0)[:, None]
        with np.errstate(invalid="ignore"):
            w = np.where(has, np.exp(-0.5 * (c0 - lowest)), 0.0)
        total = w.sum(axis=1, keepdims=True)
        weights = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    weights[~signal[:, None] | ~has] = 0.0          # (a failed fit carries no weight)
    selected = np.where(weights.any(axis=1), np.argmax(weights, axis=1), -1)
    fitted = np.full((T, k), np.nan)
    dose = np.full(T, np.nan)
    K.curves_batch(np.array([CODES[m] for m in models], np.int64), coefs, weights, be.doses,
                   np.linspace(0.0, float(be.doses[-1]), DOSE_GRID), sign,
                   float("nan") if delta is None else float(delta),
                   float("nan") if p is None else float(p), cands.off, cands.scal, fitted, dose)
    return BatchResult(cands.labels, models, t, pv, pse, signal, selected, weights, fitted, dose,
                       critical_value)


def _t_quantile(prob: float, df: np.ndarray) -> np.ndarray:
    """The ``prob`` quantile of t with ``df`` (normal where infinite), per trial."""
    from scipy.special import ndtri, stdtrit

    out = np.full(df.shape, float(ndtri(prob)))
    fin = np.isfinite(df)
    out[fin] = stdtrit(df[fin], prob)
    return out
