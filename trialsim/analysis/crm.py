"""One-parameter CRM models: posterior by quadrature and maximum likelihood, for many trials.

Models (the two of the R package dfcrm; Cheung 2011, *Dose Finding by the Continual
Reassessment Method*, ch. 3-4), with skeleton ``s`` (prior guesses, strictly increasing in
(0, 1)) and parameter ``a``:

* ``empiric`` (power; O'Quigley, Pepe & Fisher 1990): ``p_i(a) = s_i ** exp(a)``;
* ``logistic``: ``logit p_i(a) = c + exp(a) * x_i`` with intercept ``c`` (dfcrm's default 3) and
  scaled doses ``x_i = logit(s_i) - c`` (so ``p_i(0) = s_i``; every ``s_i < expit(c)``).

Bayesian estimation: prior ``a ~ Normal(0, prior_sd**2)``, dfcrm's default
``prior_sd = sqrt(1.34)``.  Data per trial: patients ``n_i`` and DLTs ``tox_i`` per dose
(binomial likelihood; the order of patients does not matter).

Quadrature (all trials in one numba call, :func:`trialsim.analysis._kernels.crm_posterior_kernel`):

* posterior moments of ``a`` use the trapezoidal rule on a uniform grid of step
  :data:`TRAPEZOID_STEP` (2/3 of it for the logistic model) over
  ``[-RANGE_SDS * prior_sd, RANGE_SDS * prior_sd]``.  The
  integrand is smooth and negligible at both ends, so the rule converges geometrically; with
  up to 100 patients the posterior sd of ``a`` is at least ~0.12 (~0.06 for the logistic
  model) and the relative error of the
  posterior mean and variance is below 1e-10 (``tests/designs`` checks 1e-8 against an
  independent adaptive ``scipy`` quadrature on random data and 1e-9 against the reference
  twin at extreme data); the error grows for much larger trials (narrower posteriors).
  The prior mass outside the range is ``2 * Phi(-12) = 4e-33``.
* posterior probabilities ``P(p_i > threshold) = P(a < c_i)`` (both models' ``p_i``
  decrease in ``a``) integrate a step function, so they use composite Gauss-Legendre panels
  (:data:`PANEL_WIDTH`, 2/3 of it for the logistic model, :data:`PANEL_NODES` nodes each)
  whose panel boundaries include every
  ``c_i``: same accuracy.

For the power model the kernel skips nodes where the log posterior is more than 46 below its
maximum (it is concave in ``a``, so the kept nodes are one window around the mode, found by
bisection); the logistic model's log posterior need not be concave, so a coarse pass over
every 8th node first bounds the region within the cutoff, and every node in it is used.
Trials with identical counts share one computation (:func:`unique_rows`): trials advancing in
lockstep have few distinct states.

Maximum likelihood (the likelihood CRM): :func:`crm_mle`, the maximiser of the log likelihood
over ``a`` in ``[-MLE_BOUND, MLE_BOUND]`` (dfcrm maximises over the same interval); both log
likelihoods are concave in ``exp(a)``, so bisection on the score finds it to ~1e-15.  Without
DLTs it is ``MLE_BOUND`` (every estimate ~0), with DLTs only ``-MLE_BOUND`` (every estimate ~1).
The TITE-CRM's weighted likelihood (:func:`crm_mle_weighted`) need not be concave for the
logistic model, so its maximiser is found on a grid over the same interval and refined by
golden-section search (to ~1e-8).

Point estimate of the DLT curve, as in dfcrm: the plug-in ``p_i(E[a | data])``
(``CRMPosterior.ptox``) or ``p_i(a_MLE)``.  The posterior mean ``E[p_i | data]`` is available on
request (``mean_ptox=True``); it is not what dfcrm reports or what the CRM design uses.

Quadrature rules are cached per (model, prior_sd[, threshold]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from numpy.polynomial.legendre import leggauss

from trialsim.analysis import _crm_mle_kernels, _kernels
from trialsim.analysis.states import unique_rows

DEFAULT_PRIOR_SD = math.sqrt(1.34)
RANGE_SDS = 12.0
TRAPEZOID_STEP = 0.06
PANEL_WIDTH = 0.5
PANEL_NODES = 12
#: The logistic model identifies ``a`` more sharply (its posterior sd with 100 patients can be
#: as small as ~0.06, against ~0.12 for the power model), so its grid is 1.5 times finer.
LOGISTIC_REFINEMENT = 1.5
MLE_BOUND = 10.0
MODELS = ("empiric", "logistic")


@dataclass(frozen=True)
class CRMModel:
    """A one-parameter dose-toxicity model: ``kind`` ``"empiric"`` (power) or ``"logistic"``
    with ``intercept`` (used by the logistic model only), over the ``skeleton``."""

    skeleton: tuple[float, ...]
    kind: str = "empiric"
    intercept: float = 3.0

    def __post_init__(self):
        s = np.asarray(self.skeleton, dtype=float)
        if self.kind not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.kind!r}")
        if s.size == 0 or not ((s > 0) & (s < 1)).all() or (np.diff(s) <= 0).any():
            raise ValueError(f"skeleton must be strictly increasing probabilities in (0, 1), "
                             f"got {list(self.skeleton)}")
        if self.logistic and not s[-1] < _expit(self.intercept):
            raise ValueError(
                f"the logistic model needs every skeleton value below expit(intercept) = "
                f"{_expit(self.intercept):.4g}: raise the intercept (got {self.intercept}) or "
                f"lower the skeleton")

    @property
    def logistic(self) -> bool:
        return self.kind == "logistic"

    @cached_property
    def x(self) -> np.ndarray:
        """The model's dose values: ``log s`` (power) or ``logit(s) - intercept`` (logistic)."""
        s = np.asarray(self.skeleton, dtype=float)
        return np.log(s / (1 - s)) - self.intercept if self.logistic else np.log(s)

    def log_p(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log p_i(a)`` and ``log(1 - p_i(a))`` for each ``a`` (shape ``(G, D)``)."""
        eta = np.exp(np.asarray(a, dtype=float))[:, None] * self.x[None, :]
        if self.logistic:
            eta = eta + self.intercept
            return -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)
        with np.errstate(divide="ignore"):
            return eta, np.log(-np.expm1(eta))

    def ptox(self, a: np.ndarray) -> np.ndarray:
        """DLT probabilities ``p_i(a)``, shape ``(T, D)`` for ``a`` of shape ``(T,)``."""
        return np.exp(self.log_p(np.atleast_1d(a))[0])

    def cutpoints(self, threshold: float) -> np.ndarray:
        """``c_i`` with ``p_i(a) > threshold`` exactly when ``a < c_i`` (``-inf``: never)."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
        if not self.logistic:
            return np.log(np.log(threshold) / self.x)
        ratio = (math.log(threshold / (1 - threshold)) - self.intercept) / self.x
        with np.errstate(divide="ignore"):
            return np.where(ratio > 0, np.log(np.maximum(ratio, 0.0)), -np.inf)


def _expit(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


@dataclass(frozen=True)
class Quadrature:
    """Nodes over ``a``, their weights and prior log density, and the tables the kernel
    reads (see :func:`~trialsim.analysis._kernels.crm_posterior_kernel`)."""

    nodes: np.ndarray
    weights: np.ndarray
    log_prior: np.ndarray
    log_p_table: np.ndarray
    log1m_table: np.ndarray
    p_table: np.ndarray
    cut_index: np.ndarray
    unimodal: bool


@dataclass(frozen=True)
class CRMPosterior:
    """Posterior summaries for ``T`` trials over ``D`` doses.

    ``mean``, ``var``: posterior mean and variance of ``a`` ``(T,)``; ``ptox``: plug-in DLT
    probabilities ``p_i(mean)`` ``(T, D)`` (dfcrm's estimate); ``mean_ptox``:
    ``E[p_i | data]`` ``(T, D)`` or ``None`` if not requested; ``edge``: integrand at the ends
    of the node range relative to its maximum (a diagnostic, ~0).
    """

    mean: np.ndarray
    var: np.ndarray
    ptox: np.ndarray
    mean_ptox: np.ndarray | None
    edge: np.ndarray


def _tables(nodes: np.ndarray, weights: np.ndarray, model: CRMModel, prior_sd: float,
            cuts: np.ndarray) -> Quadrature:
    log_p, log1m = model.log_p(nodes)
    log_prior = -0.5 * (nodes / prior_sd) ** 2
    cut_index = np.searchsorted(nodes, cuts, side="left").astype(np.int64)
    return Quadrature(nodes, weights, log_prior, np.ascontiguousarray(log_p),
                      np.ascontiguousarray(log1m), np.exp(log_p), cut_index, not model.logistic)


@lru_cache(maxsize=128)
def trapezoid_rule(model: CRMModel, prior_sd: float) -> Quadrature:
    """Uniform trapezoidal rule over ``[-RANGE_SDS*prior_sd, RANGE_SDS*prior_sd]``."""
    nodes, w = _trapezoid_grid(prior_sd, TRAPEZOID_STEP / (LOGISTIC_REFINEMENT
                                                           if model.logistic else 1))
    return _tables(nodes, w, model, prior_sd, np.empty(0))


def _trapezoid_grid(prior_sd: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and trapezoid weights over ``[-RANGE_SDS*prior_sd, RANGE_SDS*prior_sd]``, step at
    most ``step``."""
    half = RANGE_SDS * prior_sd
    nodes = np.linspace(-half, half, int(math.ceil(2 * half / step)) + 1)
    w = np.full(nodes.size, nodes[1] - nodes[0])
    w[[0, -1]] *= 0.5
    return nodes, w


@lru_cache(maxsize=128)
def panel_rule(model: CRMModel, prior_sd: float, cuts: tuple[float, ...]) -> Quadrature:
    """Composite Gauss-Legendre rule whose panel boundaries include every cut point inside
    the range, so that ``P(a < cut)`` is a sum over whole panels (``cuts`` ascending)."""
    half = RANGE_SDS * prior_sd
    width = PANEL_WIDTH / (LOGISTIC_REFINEMENT if model.logistic else 1)
    n_panels = int(math.ceil(2 * half / width))
    edges = np.linspace(-half, half, n_panels + 1)
    inside = [c for c in cuts if -half < c < half]
    edges = np.unique(np.concatenate([edges, inside]))
    x0, w0 = leggauss(PANEL_NODES)
    lo, hi = edges[:-1, None], edges[1:, None]
    nodes = ((hi - lo) / 2 * x0 + (hi + lo) / 2).ravel()
    w = ((hi - lo) / 2 * w0).ravel()
    return _tables(nodes, w, model, prior_sd, np.asarray(cuts, dtype=float))


def _counts(n, tox, n_doses: int) -> tuple[np.ndarray, np.ndarray]:
    n = np.atleast_2d(np.asarray(n, dtype=np.int64))
    tox = np.atleast_2d(np.asarray(tox, dtype=np.int64))
    if n.shape != tox.shape or n.shape[1] != n_doses:
        raise ValueError(f"n and tox must both have shape (trials, {n_doses}), got {n.shape} "
                         f"and {tox.shape}")
    if (tox < 0).any() or (tox > n).any():
        raise ValueError("counts must satisfy 0 <= tox <= n at every dose")
    return np.ascontiguousarray(n), np.ascontiguousarray(tox)


def _model(skeleton, model: str, intercept: float) -> CRMModel:
    return _cached_model(tuple(float(s) for s in skeleton), model, float(intercept))


@lru_cache(maxsize=128)
def _cached_model(skeleton: tuple[float, ...], model: str, intercept: float) -> CRMModel:
    return CRMModel(skeleton, model, intercept)


def _run(n, tox, q: Quadrature, mean_ptox: bool, model: CRMModel | None = None):
    """Kernel outputs per trial, and the plug-in curve at the posterior mean if ``model``."""
    n_u, tox_u, inv = unique_rows(n, tox)
    mean, var, cdf, mp, edge = _kernels.crm_posterior_kernel(
        n_u, tox_u, q.nodes, q.weights, q.log_prior, q.log_p_table, q.log1m_table, q.p_table,
        q.cut_index, mean_ptox, q.unimodal)
    ptox = None if model is None else model.ptox(mean)[inv]
    return (mean[inv], var[inv], cdf[inv], (mp[inv] if mean_ptox else None), edge[inv],
            ptox)


def crm_posterior(n, tox, skeleton, prior_sd: float = DEFAULT_PRIOR_SD, *,
                  mean_ptox: bool = False, model: str = "empiric",
                  intercept: float = 3.0) -> CRMPosterior:
    """Posterior of ``a`` for each trial; ``n`` and ``tox`` are patients and DLTs per dose,
    shape ``(T, D)`` (or ``(D,)`` for one trial)."""
    m = _model(skeleton, model, intercept)
    n, tox = _counts(n, tox, len(m.skeleton))
    mean, var, _, mp, edge, ptox = _run(n, tox, trapezoid_rule(m, float(prior_sd)), mean_ptox,
                                        m)
    return CRMPosterior(mean, var, ptox, mp, edge)


WEIGHT_SCHEMES = ("linear", "adaptive")


def tite_weights(dose, tox, elapsed, scheme: str = "linear") -> np.ndarray:
    """Follow-up weights of the TITE-CRM, as dfcrm's ``titecrm``, for patients ``dose`` int
    ``(T, K)`` (``-1``: none), ``tox`` bool (DLT observed) and ``elapsed``: the fraction of the
    observation window followed, or for a DLT the fraction at which it occurred.

    ``linear`` (Cheung & Chappell 2000): ``w = elapsed``.  ``adaptive`` (ibid.): with the ``z``
    observed DLT times ``s_1 <= ... <= s_z`` (fractions of the window) of the trial,
    ``w = (m + (u - s_m) / (s_{m+1} - s_m)) / (z + 1)`` for a patient followed ``u`` with
    ``s_m <= u < s_{m+1}`` (``s_0 = 0``, ``s_{z+1} = 1``); linear without DLTs.  A patient with a
    DLT weighs 1, no patient more than 1."""
    dose = np.atleast_2d(np.asarray(dose))
    tox = np.atleast_2d(np.asarray(tox, bool))
    u = np.atleast_2d(np.asarray(elapsed, float))
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"scheme must be one of {WEIGHT_SCHEMES}, got {scheme!r}")
    w = u.copy()
    if scheme == "adaptive" and tox.any():
        support = np.sort(np.where(tox, u, np.inf), axis=1)              # observed DLT times
        z = tox.sum(axis=1)[:, None]
        m = np.zeros(u.shape, np.int64)                                   # s_m <= u < s_m+1
        for j in range(int(z.max())):
            m += support[:, j:j + 1] <= u
        lo = np.where(m > 0, np.take_along_axis(support, np.maximum(m - 1, 0), axis=1), 0.0)
        nxt = np.take_along_axis(support, np.minimum(m, support.shape[1] - 1), axis=1)
        hi = np.where(m < z, nxt, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(hi > lo, (u - lo) / (hi - lo), 1.0)   # a DLT at the window's end
        adaptive = (m + frac) / (z + 1)
        w = np.where(z > 0, adaptive, u)
    w = np.where(tox, 1.0, np.minimum(w, 1.0))
    return np.where(dose >= 0, w, 0.0)


def crm_posterior_weighted(dose, tox, weight, skeleton, prior_sd: float = DEFAULT_PRIOR_SD, *,
                           model: str = "empiric", intercept: float = 3.0) -> CRMPosterior:
    """Posterior of ``a`` under the TITE-CRM's weighted likelihood (Cheung & Chappell 2000):
    patient ``j`` contributes ``p(d_j)`` with a DLT and ``1 - w_j p(d_j)`` without, where
    ``w_j`` in ``[0, 1]`` is the fraction of the observation window followed (a patient with a
    DLT weighs 1, as in dfcrm's ``titecrm``).  ``dose`` int ``(T, K)`` (``-1``: no patient),
    ``tox`` bool ``(T, K)`` (DLT observed), ``weight`` ``(T, K)``; or 1-D for one trial.
    With every weight 1 this is :func:`crm_posterior` on the counts."""
    m = _model(skeleton, model, intercept)
    dose, tox, weight = _patients(dose, tox, weight, len(m.skeleton))
    q = trapezoid_rule(m, float(prior_sd))
    mean, var, edge = _kernels.crm_weighted_kernel(dose, tox, weight, q.nodes, q.log_prior,
                                                   q.log_p_table, q.log1m_table, q.p_table)
    return CRMPosterior(mean, var, m.ptox(mean), None, edge)


def _patients(dose, tox, weight, D: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked, contiguous per-patient arrays ``(T, K)`` of the weighted likelihood."""
    dose = np.ascontiguousarray(np.atleast_2d(np.asarray(dose, dtype=np.int64)))
    tox = np.ascontiguousarray(np.atleast_2d(np.asarray(tox, dtype=bool)))
    weight = np.ascontiguousarray(np.atleast_2d(np.asarray(weight, dtype=float)))
    if not dose.shape == tox.shape == weight.shape:
        raise ValueError(f"dose, tox and weight must have one shape, got {dose.shape}, "
                         f"{tox.shape} and {weight.shape}")
    if (dose >= D).any() or (dose < -1).any():
        raise ValueError(f"dose indices must be in -1..{D - 1}")
    given = dose >= 0
    if not ((weight[given] >= 0) & (weight[given] <= 1)).all():
        raise ValueError("weights must lie in [0, 1]")
    return dose, tox, weight


def crm_mle_weighted(dose, tox, weight, skeleton, *, model: str = "empiric",
                     intercept: float = 3.0, ptox: bool = False):
    """Maximum likelihood estimate of ``a`` in ``[-MLE_BOUND, MLE_BOUND]`` under the
    TITE-CRM's weighted likelihood (as dfcrm's ``titecrm(method = "mle")``), for patients as in
    :func:`crm_posterior_weighted`; shape ``(T,)``, with ``ptox`` also the plug-in DLT curve
    ``(T, D)``.  With every weight 1 it is :func:`crm_mle` on the counts (to ~1e-8)."""
    m = _model(skeleton, model, intercept)
    dose, tox, weight = _patients(dose, tox, weight, len(m.skeleton))
    a = _crm_mle_kernels.crm_weighted_mle_kernel(dose, tox, weight, m.x, m.logistic,
                                                 m.intercept, -MLE_BOUND, MLE_BOUND)
    return (a, m.ptox(a)) if ptox else a


def crm_mle(n, tox, skeleton, *, model: str = "empiric", intercept: float = 3.0,
            ptox: bool = False):
    """Maximum likelihood estimate of ``a`` in ``[-MLE_BOUND, MLE_BOUND]`` for each trial,
    shape ``(T,)``; with ``ptox`` also the plug-in DLT curve ``p_i(a)``, shape ``(T, D)``."""
    m = _model(skeleton, model, intercept)
    n, tox = _counts(n, tox, len(m.skeleton))
    n_u, tox_u, inv = unique_rows(n, tox)
    a = _crm_mle_kernels.crm_mle_kernel(n_u, tox_u, m.x, m.logistic, m.intercept, -MLE_BOUND,
                                        MLE_BOUND)
    return (a[inv], m.ptox(a)[inv]) if ptox else a[inv]


def tox_cutpoints(skeleton, threshold: float, model: str = "empiric",
                  intercept: float = 3.0) -> np.ndarray:
    """``c_i`` with ``p_i(a) > threshold`` exactly when ``a < c_i``; for the power model
    ``log(log(thr) / log(s_i))``."""
    return _model(skeleton, model, intercept).cutpoints(threshold)


def prob_tox_exceeds(n, tox, skeleton, threshold: float,
                     prior_sd: float = DEFAULT_PRIOR_SD, *, model: str = "empiric",
                     intercept: float = 3.0) -> np.ndarray:
    """Posterior ``P(p_i > threshold | data)`` for every trial and dose, shape ``(T, D)``."""
    m = _model(skeleton, model, intercept)
    n, tox = _counts(n, tox, len(m.skeleton))
    cuts = m.cutpoints(threshold)
    order = np.argsort(cuts, kind="stable")
    q = panel_rule(m, float(prior_sd), tuple(float(c) for c in cuts[order]))
    cdf = _run(n, tox, q, False)[2]
    out = np.empty_like(cdf)
    out[:, order] = cdf
    return out


@dataclass(frozen=True)
class SkeletonFits:
    """Power-model fits of ``T`` trials under ``K`` skeletons: ``mean`` ``(T, K)``, the posterior
    mean of ``a``; ``log_evidence`` ``(T, K)``, the log marginal likelihood
    ``log ∫ L(a) N(a; 0, prior_sd²) da``; ``curves`` ``(T, K, D)``, the plug-in curves
    ``s_ki ** exp(mean)``."""

    mean: np.ndarray
    log_evidence: np.ndarray
    curves: np.ndarray

    def model_weights(self, prior_weights) -> np.ndarray:
        """Posterior probabilities of the skeletons ``(T, K)`` given their prior weights."""
        lw = self.log_evidence + np.log(np.asarray(prior_weights, float))[None, :]
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)


@lru_cache(maxsize=32)
def _skeleton_tables(skeletons: tuple[tuple[float, ...], ...], prior_sd: float):
    nodes, w = _trapezoid_grid(prior_sd, TRAPEZOID_STEP)
    x = np.log(np.asarray(skeletons, float))                       # (K, D)
    log_p = np.exp(nodes)[None, :, None] * x[:, None, :]            # (K, G, D)
    with np.errstate(divide="ignore"):
        log1m = np.log(-np.expm1(log_p))
    log_prior = -0.5 * (nodes / prior_sd) ** 2
    return nodes, w, log_prior, np.ascontiguousarray(log_p), np.ascontiguousarray(log1m)


def skeleton_fits(n, events, skeletons, prior_sd: float = DEFAULT_PRIOR_SD) -> SkeletonFits:
    """Bayesian power-model (empiric CRM) fits of the same data under each skeleton (rows of
    ``skeletons``, shape ``(K, D)``, values in (0, 1); they need not increase, e.g. the
    efficacy skeletons of Wages & Tait 2015).  ``n``, ``events``: patients and events per dose,
    ``(T, D)``.  Posterior mean and marginal likelihood by the trapezoidal rule of
    :func:`trapezoid_rule` (same grid, same accuracy); trials with equal counts share one
    computation."""
    sk = np.atleast_2d(np.asarray(skeletons, float))
    if sk.size == 0 or not ((sk > 0) & (sk < 1)).all():
        raise ValueError("skeleton values must be probabilities in (0, 1)")
    n, events = _counts(n, events, sk.shape[1])
    nodes, w, log_prior, log_p, log1m = _skeleton_tables(
        tuple(tuple(float(v) for v in row) for row in sk), float(prior_sd))
    n_u, e_u, inv = unique_rows(n, events)
    mean, log_ev = _kernels.skeleton_fits_kernel(n_u, e_u, nodes, w, log_prior, log_p, log1m)
    log_ev = log_ev - math.log(prior_sd * math.sqrt(2 * math.pi))
    curves = sk[None, :, :] ** np.exp(mean)[:, :, None]
    return SkeletonFits(mean[inv], log_ev[inv], curves[inv])
