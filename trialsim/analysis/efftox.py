"""The EffTox probability model (Thall & Cook 2004, Biometrics 60:684-693; Thall, Herrick,
Nguyen, Venier & Norris 2014, Clinical Trials 11:657-666): posterior summaries for many trials.

Doses ``d_j`` are coded ``x_j = log d_j - mean(log d)``.  With
``theta = (alpha, beta, gamma, zeta, eta, psi)``::

    logit pi_T(x) = alpha + beta x                  (toxicity)
    logit pi_E(x) = gamma + zeta x + eta x^2        (efficacy)
    P(E = a, T = b) = pi_E^a (1 - pi_E)^(1 - a) pi_T^b (1 - pi_T)^(1 - b)
                      + (-1)^(a + b) pi_E (1 - pi_E) pi_T (1 - pi_T) (e^psi - 1) / (e^psi + 1)

with independent normal priors.  Data per dose: patients with neither event, efficacy only,
toxicity only, both.

**Computation** (no Markov chain Monte Carlo; :mod:`._efftox_mode_kernels`,
:mod:`._efftox_kernels`): the posterior mode by Newton's method; a pilot importance sample of
``points / PILOT`` points (at least ``MIN_PILOT``) from a multivariate Student-t (``DF``
degrees of freedom) centred on the mode with the inverse Hessian there (scaled by ``SCALE``);
then the main importance sample of
``points`` points from a normal with the pilot's weighted mean and covariance (scaled by
``MAIN_SCALE``).  Each summary is its exact value under the normal proposal (a
one-dimensional integral: trapezoidal rule) plus the self-normalised importance-sampling
correction.  The points are scrambled Sobol points with a fixed seed, the same for every data
set, so a summary is a deterministic function of the data.
Accuracy: errors of a few 1e-3 on posterior probabilities and means with the default 4,096
points (at most 3.8e-3 against R rstan on trialr's Stan model with 200,000 draws on 26 data
sets, ``tests/designs/test_efftox.py``), shrinking about as ``points ** -0.5``; R trialr's
default (4 chains of 1,000 draws) has Monte Carlo errors of the same order.  Kish's effective
sample size of the weights is returned per data set.
Trials with identical counts share one computation.

With a :class:`Screen` the main sample stops early where EffTox's decision is settled: it takes
the first ``Screen.first`` points and doubles them (the first ``2^m`` points of the Sobol
sequence are nested) while the decision could change within the summaries' standard errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats
from scipy.optimize import brentq, minimize
from scipy.special import expit, logit

from trialsim.analysis._efftox_kernels import efftox_posterior_kernel
from trialsim.analysis.states import unique_rows

#: The pilot proposal's degrees of freedom and scale against the Laplace approximation, and
#: the seed of the Sobol sequence.
DF, SCALE, SOBOL_SEED = 6.0, 1.2, 20261129
#: The pilot pass uses 1/PILOT of the points (at least MIN_PILOT; 128 of the default 4,096: as
#: accurate as 1,024 on simulated trial states); the main (normal) proposal's scale against the
#: pilot's weighted covariance.
PILOT, MIN_PILOT = 32, 128
MAIN_SCALE = 1.1
PARAMETERS = ("alpha", "beta", "gamma", "zeta", "eta", "psi")


@lru_cache(maxsize=16)
def proposal_points(points: int, df: float = DF) -> tuple[np.ndarray, np.ndarray]:
    """``(z, log_q)``: ``points`` standardised Student-t points (N, 6) with ``df`` degrees of
    freedom (``inf``: normal) from a scrambled Sobol sequence (fixed seed) and their log
    density up to a constant.  ``points`` a power of 2."""
    m = int(points).bit_length() - 1
    if points < 2 or 1 << m != points:
        raise ValueError(f"points must be a power of 2 (at least 2), got {points}")
    u = stats.qmc.Sobol(d=7, scramble=True, seed=SOBOL_SEED).random_base2(m)
    z = stats.norm.ppf(u[:, :6])
    if np.isinf(df):
        log_q = -0.5 * (z * z).sum(axis=1)
    else:
        z /= np.sqrt(stats.chi2.ppf(u[:, 6], df) / df)[:, None]
        log_q = -0.5 * (df + 6) * np.log1p((z * z).sum(axis=1) / df)
    z.setflags(write=False)
    log_q.setflags(write=False)
    return z, log_q


def coded_doses(doses) -> np.ndarray:
    """``log d - mean(log d)`` (Thall & Cook's standardisation)."""
    ld = np.log(np.asarray(doses, float))
    return ld - ld.mean()


@dataclass(frozen=True)
class EffToxPosterior:
    """Posterior summaries per trial and dose (T, D): means of ``pi_E`` and ``pi_T``,
    ``P(pi_E > eff_cut)``, ``P(pi_T > tox_cuts[k])`` (T, D, K), and Kish's effective sample
    size of the importance weights (T,); then the standard error of each summary, as if the
    importance points were independent draws (the quasi-random points' errors are smaller:
    about a third to a half of it; a probability's is at least ``sqrt(p (1 - p) / ess)``,
    :mod:`._efftox_kernels`); and the main importance points each trial took (T,)."""

    mean_eff: np.ndarray
    mean_tox: np.ndarray
    prob_eff_above: np.ndarray
    prob_tox_above: np.ndarray
    ess: np.ndarray
    mean_eff_se: np.ndarray
    mean_tox_se: np.ndarray
    prob_eff_above_se: np.ndarray
    prob_tox_above_se: np.ndarray
    points: np.ndarray


@dataclass(frozen=True)
class Screen:
    """Stop the main sample early where EffTox's decision is settled: take the first
    ``first`` points, and double them while the decision could change if any summary moved by
    ``margin_se`` of its standard errors plus ``margin_abs``.  The decision: doses ``reach``
    (T, D; a function of the patients per dose) with ``P(pi_E > eff_cut) > p_e`` and
    ``P(pi_T < tox_cuts[0]) > p_t`` are acceptable; the acceptable dose of highest utility on
    the contour ``p`` through ``(eff0, 0)`` and ``(1, tox1)`` is chosen.  It is in doubt where
    no dose is surely acceptable while some dose might be, or where another dose that is or
    might be acceptable has a utility that close to the best surely acceptable dose's (their
    difference within ``margin_se`` of its own standard error plus ``margin_abs``: the doses'
    estimates share their points, and much of their error)."""

    first: int
    reach: np.ndarray
    p_e: float
    p_t: float
    p: float
    eff0: float
    tox1: float
    margin_se: float = 3.0
    margin_abs: float = 0.002


def outcome_counts(n, tox, eff, eff_tox) -> np.ndarray:
    """Patients with (neither, efficacy only, toxicity only, both) per trial and dose:
    (T, D, 4) from the per-dose totals."""
    n, tox, eff, both = (np.asarray(a, np.int64) for a in (n, tox, eff, eff_tox))
    return np.stack([n - tox - eff + both, eff - both, tox - both, both], axis=-1)


def posterior(counts: np.ndarray, doses, prior_mean, prior_sd, eff_cut: float,
              tox_cuts, points: int = 4096, standard_errors: bool = True,
              screen: Screen | None = None) -> EffToxPosterior:
    """Posterior summaries for every trial: ``counts`` (T, D, 4) patients with neither event,
    efficacy only, toxicity only and both at each dose; ``doses`` (D,) positive;
    ``prior_mean``, ``prior_sd`` (6,) of ``(alpha, beta, gamma, zeta, eta, psi)``;
    ``eff_cut`` and ``tox_cuts`` (K,) probabilities in (0, 1).  Without ``standard_errors``
    the summaries' standard errors are not computed (NaN; about 10 % faster) unless a
    ``screen`` needs them; ``points`` in the result: the main points each trial's summaries
    took (``points`` without a ``screen``)."""
    counts = np.asarray(counts, np.int64)
    x = coded_doses(doses)
    T, D = counts.shape[0], counts.shape[1]
    if counts.shape != (T, x.size, 4) or (counts < 0).any():
        raise ValueError(f"counts must be non-negative with shape (T, {x.size}, 4), got "
                         f"{counts.shape}")
    mu = np.asarray(prior_mean, float)
    sd = np.asarray(prior_sd, float)
    if mu.shape != (6,) or sd.shape != (6,) or not (sd > 0).all():
        raise ValueError("prior_mean and prior_sd need 6 values (alpha, beta, gamma, zeta, "
                         "eta, psi), the sds positive")
    tox_cuts = np.atleast_1d(np.asarray(tox_cuts, float))
    cuts = np.append(tox_cuts, eff_cut)
    if not ((cuts > 0) & (cuts < 1)).all():
        raise ValueError(f"cut points must lie in (0, 1), got {cuts.tolist()}")
    flat = counts.reshape(T, D * 4)
    uniq, inverse = unique_rows(flat)
    S, K = uniq.shape[0], tox_cuts.size
    z, log_q = proposal_points(points, np.inf)
    z1, log_q1 = proposal_points(max(points // PILOT, MIN_PILOT), DF)
    first, reach, rule = points, np.zeros((S, D), bool), np.zeros(7)
    if screen is not None:
        reach = np.asarray(screen.reach, bool)
        f = screen.first
        if reach.shape != (T, D) or not (1 <= f <= points and f & (f - 1) == 0):
            raise ValueError(f"a screen needs reach of shape ({T}, {D}) and first a power of 2 "
                             f"up to {points}, got {reach.shape} and {f}")
        rows = np.empty(S, np.int64)
        rows[inverse] = np.arange(T)
        first, reach = screen.first, reach[rows]
        rule = np.array([screen.p_e, screen.p_t, screen.p, screen.eff0, screen.tox1,
                         screen.margin_se, screen.margin_abs], float)
    out = [np.empty((S, D)), np.empty((S, D)), np.empty((S, D)), np.empty((S, D, K)),
           np.empty(S), np.empty(S, np.int64), np.empty((S, D)), np.empty((S, D)),
           np.empty((S, D)), np.empty((S, D, K))]
    efftox_posterior_kernel(uniq.reshape(S, D, 4).astype(float), x, x * x, mu, 1.0 / sd ** 2,
                            z1, log_q1, z, log_q, SCALE, MAIN_SCALE, float(logit(eff_cut)),
                            logit(tox_cuts), *_normal_grid(), first, reach, rule, *out,
                            standard_errors)
    if not (standard_errors or first < points):
        for a in out[6:]:
            a.fill(np.nan)
    bad = ~np.isfinite(np.concatenate([a.reshape(S, -1) for a in out[:5]], axis=1)).all(axis=1)
    if bad.any():
        raise FloatingPointError(f"the EffTox posterior could not be computed for the counts "
                                 f"(neither, efficacy, toxicity, both per dose) "
                                 f"{uniq[bad][0].reshape(D, 4).tolist()}")
    mean_eff, mean_tox, p_eff, p_tox, ess, used, *ses = (a[inverse] for a in out)
    return EffToxPosterior(mean_eff, mean_tox, p_eff, p_tox, ess, *ses, used)


@lru_cache(maxsize=64)
def solve_p(eff0: float, tox1: float, eff_star: float, tox_star: float) -> float:
    """The ``p`` of the L^p contour through ``(eff0, 0)``, ``(1, tox1)`` and
    ``(eff_star, tox_star)``: the root of ``((1 - eff_star) / (1 - eff0))^p +
    (tox_star / tox1)^p = 1`` (Thall, Cook & Estey 2006, J Biopharm Stat 16:623-638; as R trialr's
    ``efftox_solve_p``)."""
    a, b = (1 - eff_star) / (1 - eff0), tox_star / tox1
    if not (0 < a < 1 and 0 < b < 1):
        raise ValueError("the contour point (eff_star, tox_star) must satisfy eff0 < eff_star "
                         "< 1 and 0 < tox_star < tox1")
    hi = 1.0
    while a ** hi + b ** hi >= 1.0:     # a^p + b^p falls from 2 (p = 0) to 0
        hi *= 2.0
    return float(brentq(lambda p: a ** p + b ** p - 1.0, 1e-12, hi, xtol=1e-14, rtol=1e-15))


def utility(eff, tox, p: float, eff0: float, tox1: float) -> np.ndarray:
    """Desirability ``1 - (((1 - pi_E) / (1 - eff0))^p + (pi_T / tox1)^p)^(1/p)``: 0 on the
    contour through the three points, higher towards more efficacy and less toxicity."""
    a = (1.0 - np.asarray(eff, float)) / (1.0 - eff0)
    b = np.asarray(tox, float) / tox1
    return 1.0 - (a ** p + b ** p) ** (1.0 / p)


#: Fixed priors of eta (efficacy curvature) and psi (association) in Thall et al. (2014)'s
#: elicitation, and the weights of its objective (as R trialr's ``get_efftox_priors``).
ETA_PRIOR, PSI_PRIOR = (0.0, 0.2), (0.0, 1.0)
ESS_WEIGHT, SD_WEIGHT = 0.1, 0.2


@lru_cache(maxsize=1)
def _normal_grid() -> tuple[np.ndarray, np.ndarray]:
    """Trapezoidal rule for a standard normal: step 0.1 on [-12, 12].  For the integrands
    here it converges geometrically (``expit(loc + sd z)`` is analytic within ``pi / sd`` of
    the real axis: error ~``exp(-2 pi^2 / (0.1 sd))``, below 1e-10 for sd <= 8); Gauss-Hermite
    rules converge slowly here (1e-5 with 40 nodes at sd 3.5)."""
    z = np.linspace(-12.0, 12.0, 241)
    return z, (z[1] - z[0]) * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def _prior_moments(loc: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of ``expit(N(loc, sd^2))`` elementwise (:func:`_normal_grid`)."""
    h, w = _normal_grid()
    p = expit(loc[:, None] + sd[:, None] * h[None, :])
    m = p @ w
    return m, np.sqrt(np.maximum(p * p @ w - m * m, 1e-300))


def _beta_ess(m: np.ndarray, s: np.ndarray) -> float:
    """Mean over doses of the effective sample size ``a + b`` of the beta distribution with
    mean ``m`` and sd ``s``."""
    return float(np.mean(((1.0 - m) * (m / s) ** 2 - m) / m))


def elicited_prior(doses, tox, eff, ess_tox: float = 0.9, ess_eff: float = 0.9
                   ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Normal priors ``(prior_mean, prior_sd)`` of ``(alpha, beta, gamma, zeta, eta, psi)``
    from elicited prior means of the toxicity and efficacy probabilities at each dose and a
    target effective sample size (Thall, Herrick, Nguyen, Venier & Norris 2014, Clin Trials
    11:657-666; ESS ~1 keeps the data in charge).

    Minimises, over the means and sds of alpha, beta, gamma, zeta (``eta ~ N(0, 0.2)``,
    ``psi ~ N(0, 1)`` fixed): the squared differences between the prior means of each dose's
    probabilities and the elicited ones, plus ``0.1`` times the squared differences between
    the mean beta-approximation ESS and the targets, plus ``0.2`` times the squared
    differences of the paired sds (alpha, beta) and (gamma, zeta) — the objective of R trialr's
    ``get_efftox_priors``, with the prior moments by quadrature instead of 10,000 draws.
    Reproduces Thall et al. (2014)'s prostate cancer priors from their elicited values
    (``tests/designs/test_efftox.py``)."""
    x = coded_doses(doses)
    tox, eff = np.asarray(tox, float), np.asarray(eff, float)
    for name, v in (("tox", tox), ("eff", eff)):
        if v.shape != x.shape or not ((v > 0) & (v < 1)).all():
            raise ValueError(f"{name} needs one probability in (0, 1) per dose ({x.size}), got "
                             f"{v.tolist()}")
    eta_sd = ETA_PRIOR[1]

    def objective(par: np.ndarray) -> float:
        am, bm, gm, zm = par[0], par[2], par[4], par[6]
        a_s, b_s, g_s, z_s = np.exp(par[[1, 3, 5, 7]])
        mt, st = _prior_moments(am + bm * x, np.sqrt(a_s ** 2 + (b_s * x) ** 2))
        me, se = _prior_moments(gm + zm * x,
                                np.sqrt(g_s ** 2 + (z_s * x) ** 2 + (eta_sd * x * x) ** 2))
        return float(np.sum((mt - tox) ** 2) + np.sum((me - eff) ** 2)
                     + ESS_WEIGHT * ((_beta_ess(mt, st) - ess_tox) ** 2
                                     + (_beta_ess(me, se) - ess_eff) ** 2)
                     + SD_WEIGHT * ((a_s - b_s) ** 2 + (g_s - z_s) ** 2))

    par = np.zeros(8)           # means 0, sds 1 (log sd 0), as trialr starts
    for _ in range(3):          # restarts settle the quasi-Newton search on flat stretches
        par = minimize(objective, par, method="BFGS", options={"gtol": 1e-10}).x
    mean = (par[0], par[2], par[4], par[6], ETA_PRIOR[0], PSI_PRIOR[0])
    sd = (*np.exp(par[[1, 3, 5, 7]]), ETA_PRIOR[1], PSI_PRIOR[1])
    return tuple(float(v) for v in mean), tuple(float(v) for v in sd)
