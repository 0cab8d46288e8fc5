"""Multivariate normal and t probabilities of rectangles, and the quantiles of the maximum of
correlated normal or t statistics (the critical values and adjusted p-values of a multiple
contrast test).

Method: spherical-radial integration (Deák 1980; Genz & Monahan 1998; Genz & Bretz,
*Computation of Multivariate Normal and t Probabilities*, Springer 2009, §4.2).  With the
correlation ``R = A Aᵀ`` of rank ``r`` (eigen-decomposition, so singular matrices — MCP-Mod's
contrasts usually outnumber the k − 1 dimensions of a k-dose trial — are exact), write
``X = ρ A u`` with ``u`` uniform on the unit sphere of R^r and ``ρ²`` chi-square with ``r``
degrees of freedom (for the t: ``ρ²/r`` F-distributed with ``(r, ν)``).  Along each direction
the rectangle is an interval of ``ρ``, whose probability is a chi-square (or F) distribution
function, so

    P(lower < X < upper) = E_u[ G(ρ_hi(u)) − G(ρ_lo(u)) ].

The expectation over directions is taken by randomised quasi-Monte Carlo: :data:`N_SHIFTS`
independently scrambled Sobol' sequences mapped to directions, giving the estimate and its
standard error; the points double until three standard errors are below the requested
absolute error.  The integrand is bounded and piecewise smooth in ``u``, and for a maximum of
``M`` statistics it depends on ``u`` only through ``max_m a_mᵀu``, so quantiles are solved on a
smooth function with the directions fixed.  Results are deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq
from scipy.special import chdtr, fdtr, ndtri
from scipy.stats import qmc

from trialsim.analysis import _mvt_kernels as K

N_SHIFTS = 12                 # independent scrambles
FIRST_M, MAX_M = 10, 20       # 2**m directions per scramble
SEED_BASE = 20261128
DEFAULT_ABSEPS = 1e-5
#: Quantiles (critical values) get a tighter default: an error of 1e-4 in the critical value
#: needs about 5e-6 in the probability (the density of the maximum is ~0.05 there).
QUANTILE_ABSEPS = 2e-6
#: Eigenvalues below this (relative to the largest) are zero: the rank of the correlation.
RANK_TOL = 1e-10
MAX_DIM = 100


@dataclass(frozen=True)
class Probability:
    """A probability estimate and its standard error (randomised QMC), with the number of
    directions used per scramble."""

    value: float
    error: float
    points: int


def _check_corr(corr) -> np.ndarray:
    R = np.atleast_2d(np.asarray(corr, dtype=float))
    k = R.shape[0]
    if R.shape != (k, k) or not np.all(np.isfinite(R)):
        raise ValueError("corr must be a finite square matrix")
    if not np.allclose(R, R.T, atol=1e-10) or not np.allclose(np.diag(R), 1.0, atol=1e-10):
        raise ValueError("corr must be a symmetric correlation matrix (ones on the diagonal)")
    if k > MAX_DIM:
        raise ValueError(f"at most {MAX_DIM} variables are supported, got {k}")
    return (R + R.T) / 2


def _factor(R: np.ndarray) -> np.ndarray:
    """``A`` (k, r) with ``A Aᵀ = R`` and ``r`` the numerical rank."""
    w, V = np.linalg.eigh(R)
    if w.min() < -1e-8 * max(w.max(), 1.0):
        raise ValueError("corr must be positive semi-definite")
    keep = w > RANK_TOL * w.max()
    return V[:, keep] * np.sqrt(w[keep])


_DIRECTIONS: dict[tuple[int, int], np.ndarray] = {}


def directions(r: int, rep: int, m: int) -> np.ndarray:
    """The first 2**m directions (unit vectors of R^r) of scrambled Sobol' sequence ``rep``
    (the longest set made so far is kept; shorter requests are its prefix)."""
    have = _DIRECTIONS.get((r, rep))
    if have is not None and have.shape[0] >= 1 << m:
        return have[:1 << m]
    if r == 1:     # the sphere of R^1 is {-1, +1}: half the points each, exactly
        u = np.where(np.arange(1 << m) % 2 == 0, 1.0, -1.0)[:, None]
    else:
        Z = ndtri(np.clip(qmc.Sobol(r, scramble=True, seed=SEED_BASE + 1000 * r + rep)
                          .random_base2(m), 1e-16, 1 - 1e-16))
        u = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    u.setflags(write=False)
    if len(_DIRECTIONS) > 256:
        _DIRECTIONS.clear()
    _DIRECTIONS[(r, rep)] = u
    return u


def radial_cdf_exact(rho: np.ndarray, r: int, df: float) -> np.ndarray:
    """``P(ρ <= rho)``: chi with ``r`` degrees of freedom, or for the t ``ρ²/r ~ F(r, df)``."""
    x = np.square(rho)
    if not np.isfinite(df):
        return chdtr(r, x)
    return fdtr(r, df, x / r)


#: Knots of the interpolated radial distribution, uniform in x = ρ/(1 + ρ).
N_KNOTS = 1 << 14


@lru_cache(maxsize=64)
def radial_spline(r: int, df: float) -> CubicSpline:
    """``G`` and its derivative interpolated by a cubic spline in ``x = ρ/(1 + ρ)`` on
    :data:`N_KNOTS` knots (error below 1e-9; tested against the exact function)."""
    x = np.linspace(0.0, 1.0, N_KNOTS + 1)[:-1]
    g = radial_cdf_exact(x / (1.0 - x), r, df)
    return CubicSpline(np.append(x, 1.0), np.append(g, 1.0))


def _radial_cdf(rho: np.ndarray, r: int, df: float) -> np.ndarray:
    """``P(ρ <= rho)`` from the spline (see :func:`radial_cdf_exact`)."""
    rho = np.asarray(rho, dtype=float)
    return np.clip(radial_spline(r, df)(rho / (1.0 + rho)), 0.0, 1.0)


def _interval(c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``ρ >= 0`` with ``lo < ρ c < hi`` for every column: (rho_lo, rho_hi) per row."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lo, t_hi = lo / c, hi / c
        first = np.where(c > 0, t_lo, np.where(c < 0, t_hi, -np.inf))
        last = np.where(c > 0, t_hi, np.where(c < 0, t_lo, np.inf))
    inside0 = (lo < 0) & (hi > 0)
    empty = np.any((c == 0) & ~inside0, axis=1)
    rho_lo = np.maximum(np.max(first, axis=1), 0.0)
    rho_hi = np.min(last, axis=1)
    rho_hi = np.where(empty | (rho_hi < rho_lo), rho_lo, rho_hi)
    return rho_lo, rho_hi


def _estimate(values_of_rep, m: int) -> Probability:
    means = np.array([values_of_rep(rep, m).mean() for rep in range(N_SHIFTS)])
    return Probability(float(means.mean()), float(means.std(ddof=1) / math.sqrt(N_SHIFTS)),
                       1 << m)


def mvt_probability(lower, upper, corr, df: float = np.inf,
                    abseps: float = DEFAULT_ABSEPS) -> Probability:
    """``P(lower < X < upper)`` for ``X`` multivariate t with ``df`` degrees of freedom
    (``inf``: normal) and correlation ``corr``; limits may be ``±inf``.  Directions double
    until three standard errors are below ``abseps`` (or ``2**MAX_M`` per scramble)."""
    R = _check_corr(corr)
    k = R.shape[0]
    lo = np.broadcast_to(np.asarray(lower, dtype=float), (k,)).copy()
    hi = np.broadcast_to(np.asarray(upper, dtype=float), (k,)).copy()
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise ValueError("limits must be numbers (±inf allowed)")
    if not (df > 0):
        raise ValueError(f"df must be > 0 (inf for the normal), got {df}")
    if np.any(lo >= hi):
        return Probability(0.0, 0.0, 0)
    A = _factor(R)
    r = A.shape[1]

    def values(rep, m):
        c = directions(r, rep, m) @ A.T
        a, b = _interval(c, lo, hi)
        return _radial_cdf(b, r, df) - _radial_cdf(a, r, df)

    m = FIRST_M
    est = _estimate(values, m)
    while 3.0 * est.error > abseps and m < MAX_M:
        m += 1
        est = _estimate(values, m)
    return est


class MaxDistribution:
    """The distribution of ``max_m T_m`` (two-sided: ``max_m |T_m|``) for ``T`` multivariate t
    with ``df`` degrees of freedom (``inf``: normal) and correlation ``R``: :meth:`cdf` and
    :meth:`quantile`.  The directions and their projections are computed once and shared by
    every probability asked of it (only ``max_m a_mᵀu`` of each direction matters)."""

    def __init__(self, corr, df: float = np.inf, two_sided: bool = False):
        if not (df > 0):
            raise ValueError(f"df must be > 0 (inf for the normal), got {df}")
        R = _check_corr(corr)
        self.k = R.shape[0]
        self.A = _factor(R)
        self.r = self.A.shape[1]
        self.df, self.two_sided = df, two_sided
        self._peaks: dict = {}

    def peaks(self, rep: int, m: int) -> np.ndarray:
        """``max_m a_mᵀu`` (two-sided: ``max_m |a_mᵀu|``) of the first 2**m directions."""
        have = self._peaks.get(rep)
        done = 0 if have is None else have.shape[0]
        if done < 1 << m:        # only the directions not seen yet (the sets are nested)
            c = directions(self.r, rep, m)[done:] @ self.A.T
            new = np.abs(c).max(axis=1) if self.two_sided else c.max(axis=1)
            have = new if have is None else np.concatenate([have, new])
            self._peaks[rep] = have
        return have[:1 << m]

    def cdf_at(self, q: float, m: int) -> Probability:
        """``P`` on ``2**m`` directions per scramble (``ρ <= q/top`` along directions that
        point upwards; for ``q < 0``, ``ρ >= q/top`` where every statistic points down)."""
        coef = radial_spline(self.r, self.df).c
        means = np.array([K.max_cdf_sum(float(q), self.peaks(rep, m), coef, self.two_sided)
                          for rep in range(N_SHIFTS)]) / (1 << m)
        return Probability(float(means.mean()), float(means.std(ddof=1) / math.sqrt(N_SHIFTS)),
                           1 << m)

    def cdf(self, q: float, abseps: float = DEFAULT_ABSEPS) -> Probability:
        """``P(max <= q)``, directions doubling until three standard errors are below
        ``abseps``."""
        m = FIRST_M
        est = self.cdf_at(float(q), m)
        while 3.0 * est.error > abseps and m < MAX_M:
            m += 1
            est = self.cdf_at(float(q), m)
        return est

    def quantile(self, prob: float, abseps: float = QUANTILE_ABSEPS) -> float:
        """The ``q`` with ``P(max <= q) = prob`` (a critical value at level ``1 - prob``):
        solved on fixed directions (``P`` is smooth in ``q``), the directions doubling, with
        Newton steps, until three standard errors of ``P`` at the answer are below
        ``abseps``."""
        if not 0 < prob < 1:
            raise ValueError(f"prob must lie in (0, 1), got {prob}")
        dist = stats.t(self.df) if np.isfinite(self.df) else stats.norm()
        sides = 2 if self.two_sided else 1
        one = dist.ppf(1 - (1 - prob) / sides)                    # a single statistic
        bonferroni = dist.ppf(1 - (1 - prob) / (self.k * sides))  # the Bonferroni bound
        m = FIRST_M
        q = brentq(lambda x: self.cdf_at(x, m).value - prob, max(one - 0.5, 1e-9),
                   bonferroni + 0.5, xtol=1e-10)
        while True:
            if 3.0 * self.cdf_at(q, m).error <= abseps or m >= MAX_M:
                return float(q)
            m += 1
            for _ in range(4):       # Newton steps on the finer directions
                f = self.cdf_at(q, m).value - prob
                q -= f / self.density(q, m)
                if abs(f) < abseps / 20:
                    break

    def density(self, q: float, m: int) -> float:
        """``dP/dq`` for ``q > 0``: the mean of ``g(q/top)/top`` over the upward directions."""
        coef = radial_spline(self.r, self.df).c
        return sum(K.max_density_sum(float(q), self.peaks(rep, m), coef)
                   for rep in range(N_SHIFTS)) / (N_SHIFTS * (1 << m))


def max_cdf(q: float, corr, df: float = np.inf, two_sided: bool = False,
            abseps: float = DEFAULT_ABSEPS) -> Probability:
    """``P(max_i T_i <= q)`` (two-sided: ``P(max_i |T_i| <= q)``) for ``T`` multivariate t
    with ``df`` degrees of freedom (``inf``: normal) and correlation ``corr``."""
    return MaxDistribution(corr, df, two_sided).cdf(q, abseps)


def max_quantile(prob: float, corr, df: float = np.inf, two_sided: bool = False,
                 abseps: float = QUANTILE_ABSEPS) -> float:
    """The ``q`` with ``P(max_i T_i <= q) = prob`` (see :meth:`MaxDistribution.quantile`)."""
    return MaxDistribution(corr, df, two_sided).quantile(prob, abseps)
