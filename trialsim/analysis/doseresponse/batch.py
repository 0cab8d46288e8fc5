"""MCP-Mod for many simulated trials at once: the same procedure as :func:`.procedure.mcpmod`
(optimal contrasts for each trial's actual allocation and covariance, adjusted p-values from
the multivariate t, bounded least-squares fits of the significant model families, AIC/gAIC
selection or averaging, the target dose), with no per-trial Python loop.

Numerics: contrasts and correlations are batched linear algebra.  A candidate whose statistic
is above the Bonferroni critical value is significant and one below the single-test critical
value is not, whatever the correlation; only trials with a statistic between the two get
their adjusted p-values computed, by the spherical-radial method of
:mod:`trialsim.analysis.mvt` over one shared set of :data:`SIM_DIRECTIONS` directions (12
scrambles × 2,048: error below ~5e-5 near p = 0.025, so a decision at the 0.025 level can
differ from an exact one only for trials that close to the boundary); the p-values of the
other trials are left NaN (their decision is certain).  Fits profile the linear
coefficients out and search the shape parameters on log grids (200 points in one dimension,
40 × 40 in two) refined by Nelder–Mead — never a worse optimum than
:func:`.fitting.fit_model` (tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.analysis import mvt
from trialsim.analysis.doseresponse import _kernels as K
from trialsim.analysis.doseresponse.fitting import GRID_1D, GRID_2D
from trialsim.analysis.doseresponse.models import Candidates, family

CODES = {"linear": 0, "linlog": 1, "quadratic": 2, "emax": 3, "sig_emax": 4, "exponential": 5,
         "logistic": 6, "beta": 7}
SIM_M = 11
SIM_DIRECTIONS = mvt.N_SHIFTS * (1 << SIM_M)
DOSE_GRID = 2001


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
    p-values; ``t`` (T, M); ``selected`` (T,) index into ``models`` of the selected family
    (−1 without a signal); ``weights`` (T, F) model weights; ``fitted`` (T, k) the selected
    (or averaged) fitted mean at the studied doses; ``dose`` (T,) the target dose (NaN when
    not reached or no signal)."""

    labels: tuple[str, ...]
    models: tuple[str, ...]
    t: np.ndarray
    p: np.ndarray
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


def batch_pvalues(t: np.ndarray, A: np.ndarray, df: np.ndarray, two_sided: bool = False
                  ) -> np.ndarray:
    """Adjusted p-values (T, M) over the shared directions (see the module docstring)."""
    T, M, r = A.shape
    U = np.concatenate([mvt.directions(r, rep, SIM_M) for rep in range(mvt.N_SHIFTS)])
    dfs, index = np.unique(df, return_inverse=True)
    coefs = np.stack([mvt.radial_spline(r, float(x)).c for x in dfs])
    return K.mct_pvalues(A, np.ascontiguousarray(t), np.ascontiguousarray(U), coefs,
                         index.astype(np.int64), two_sided, mvt.N_SHIFTS)


def _grids(fam, max_dose: float, bounds) -> tuple[np.ndarray, np.ndarray]:
    b = np.log(fam.bounds(max_dose, bounds))
    if fam.n_theta == 1:
        return np.linspace(b[0, 0], b[0, 1], GRID_1D), np.zeros(1)
    if fam.n_theta == 2:
        return np.linspace(b[0, 0], b[0, 1], GRID_2D), np.linspace(b[1, 0], b[1, 1], GRID_2D)
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
    band = ((stat >= q_single[:, None]) & ~sure).any(axis=1) & be.valid
    pv = np.full((T, M), np.nan)
    if band.any():
        pv[band] = batch_pvalues(t[band], A[band], be.df[band], two_sided)
    sig = (sure | (pv < alpha)) & be.valid[:, None]
    signal = sig.any(axis=1)
    models = tuple(dict.fromkeys(c.model for c in cands.items))
    F = len(models)
    crit = np.full((T, F), np.nan)
    curves = np.full((T, F, DOSE_GRID), np.nan)
    fitted_at = np.full((T, F, k), np.nan)
    grid = np.linspace(0.0, float(be.doses[-1]), DOSE_GRID)
    bounds = bounds or {}
    for f, m in enumerate(models):
        cols = [j for j, c in enumerate(cands.items) if c.model == m]
        active = sig[:, cols].any(axis=1)
        if not active.any():
            continue
        coef, c = batch_fit(m, be, active, cands, bounds.get(m))
        crit[:, f] = c
        out = np.full((T, DOSE_GRID), np.nan)
        K.curve_batch(CODES[m], np.nan_to_num(coef), grid, cands.off, cands.scal, out)
        curves[:, f] = np.where(active[:, None], out, np.nan)
        at = np.full((T, k), np.nan)
        K.curve_batch(CODES[m], np.nan_to_num(coef), be.doses, cands.off, cands.scal, at)
        fitted_at[:, f] = np.where(active[:, None], at, np.nan)
    weights = np.zeros((T, F))
    has = np.isfinite(crit)
    if selection == "maxT":
        best_label = np.argmax(np.where(sig, sign * t if not two_sided else np.abs(t), -np.inf),
                               axis=1)
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
    weights[~signal] = 0.0
    selected = np.where(signal, np.argmax(weights, axis=1), -1)
    curve = np.einsum("tf,tfg->tg", weights, np.nan_to_num(curves))
    fitted = np.einsum("tf,tfk->tk", weights, np.nan_to_num(fitted_at))
    fitted[~signal] = np.nan
    effect = sign * (curve - curve[:, :1])
    if delta is not None:
        level = np.full(T, float(delta))
    else:
        level = float(p) * np.max(effect, axis=1) * (1 - 1e-12)
    dose = _first_crossing(grid, effect, level)
    dose[~signal] = np.nan
    return BatchResult(cands.labels, models, t, pv, signal, selected, weights, fitted, dose,
                       critical_value)


def _t_quantile(prob: float, df: np.ndarray) -> np.ndarray:
    """The ``prob`` quantile of t with ``df`` (normal where infinite), per trial."""
    from scipy.special import ndtri, stdtrit

    out = np.full(df.shape, float(ndtri(prob)))
    fin = np.isfinite(df)
    out[fin] = stdtrit(df[fin], prob)
    return out


def _first_crossing(grid: np.ndarray, effect: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The smallest dose where ``effect`` (T, G) reaches ``level`` (T,), linearly
    interpolated between grid points (NaN when never)."""
    above = effect >= level[:, None]
    above[:, 0] = False
    j = np.argmax(above, axis=1)
    hit = above[np.arange(effect.shape[0]), j]
    jm = np.maximum(j - 1, 0)
    rows = np.arange(effect.shape[0])
    e0, e1 = effect[rows, jm], effect[rows, j]
    frac = np.where(e1 > e0, (level - e0) / np.where(e1 > e0, e1 - e0, 1.0), 1.0)
    d = grid[jm] + np.clip(frac, 0.0, 1.0) * (grid[j] - grid[jm])
    return np.where(hit, d, np.nan)
