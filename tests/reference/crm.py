"""Slow pure NumPy/SciPy twin of :mod:`trialsim.analysis.crm`, one trial at a time.

Same models (power ``p_i = s_i ** exp(a)`` or logistic ``logit p_i = c + exp(a) * (logit s_i - c)``,
``a ~ Normal(0, prior_sd**2)``), different numerics:
the posterior mode is found with ``scipy.optimize``, and every integral is an adaptive
``scipy.integrate.quad`` on pieces split around the mode (and at the cut point for tail
probabilities), with the integrand scaled by its value at the mode.  Used only in tests.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize


def _log_p_terms(a: float, s: np.ndarray, intercept: float | None):
    """``log p_i`` and ``log(1 - p_i)`` at ``a``; power model if ``intercept`` is None."""
    b = math.exp(min(a, 700.0))  # exp(700) * log(s) is still finite
    if intercept is None:
        lp = b * np.log(s)
        with np.errstate(divide="ignore"):
            return lp, np.log(-np.expm1(lp))
    eta = intercept + b * (np.log(s / (1 - s)) - intercept)
    return -np.logaddexp(0, -eta), -np.logaddexp(0, eta)


def log_posterior(a: float, n: np.ndarray, tox: np.ndarray, s: np.ndarray, prior_sd: float,
                  intercept: float | None = None) -> float:
    """Unnormalised log posterior density of ``a`` (terms with zero counts are skipped)."""
    log_p, log1m = _log_p_terms(a, s, intercept)
    val = -0.5 * (a / prior_sd) ** 2
    for i in range(len(s)):
        if tox[i]:
            val += tox[i] * log_p[i]
        if n[i] - tox[i]:
            if log1m[i] == -math.inf:
                return -math.inf
            val += (n[i] - tox[i]) * log1m[i]
    return val


def mle_reference(n, tox, skeleton, intercept: float | None = None) -> float:
    """Maximiser of the log likelihood over ``a`` in [-10, 10] by bounded Brent search."""
    n, tox, s = (np.asarray(n), np.asarray(tox), np.asarray(skeleton, float))
    res = optimize.minimize_scalar(lambda a: -log_posterior(a, n, tox, s, math.inf, intercept),
                                   bounds=(-10.0, 10.0), method="bounded",
                                   options={"xatol": 1e-12, "maxiter": 5000})
    return float(res.x)


def _mode_and_scale(f) -> tuple[float, float]:
    res = optimize.minimize_scalar(lambda a: -f(a), bounds=(-60.0, 60.0), method="bounded",
                                   options={"xatol": 1e-10, "maxiter": 2000})
    a0 = float(res.x)
    h = 1e-4
    curv = -(f(a0 + h) - 2 * f(a0) + f(a0 - h)) / h**2
    scale = 1.0 / math.sqrt(curv) if curv > 0 else 1.0
    return a0, min(max(scale, 1e-3), 10.0)


def _integral(g, lo: float, hi: float, breaks: np.ndarray) -> float:
    pts = [lo] + [b for b in breaks if lo < b < hi] + [hi]
    return sum(integrate.quad(g, a, b, epsabs=0.0, epsrel=1e-12, limit=400)[0]
               for a, b in zip(pts[:-1], pts[1:]))


def posterior_reference(n, tox, skeleton, prior_sd: float, threshold: float | None = None,
                        intercept: float | None = None):
    """Posterior summaries for one trial: a dict with ``mean`` and ``var`` of ``a``, ``ptox``
    (plug-in ``p_i(mean)``), ``mean_ptox`` (``E[p_i]``) and, if ``threshold`` is given,
    ``exceeds`` (``P(p_i > threshold)``).  Power model, or logistic with ``intercept``."""
    n = np.asarray(n, dtype=np.int64)
    tox = np.asarray(tox, dtype=np.int64)
    s = np.asarray(skeleton, dtype=float)

    def f(a):
        return log_posterior(a, n, tox, s, prior_sd, intercept)

    a0, sc = _mode_and_scale(f)
    f0 = f(a0)
    breaks = a0 + sc * np.array([-16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16], dtype=float)

    def dens(a):
        return math.exp(f(a) - f0)

    z = _integral(dens, -math.inf, math.inf, breaks)
    mean = _integral(lambda a: a * dens(a), -math.inf, math.inf, breaks) / z
    var = _integral(lambda a: (a - mean) ** 2 * dens(a), -math.inf, math.inf, breaks) / z
    mean_ptox = np.array([
        _integral(lambda a, i=i: math.exp(_log_p_terms(a, s, intercept)[0][i]) * dens(a),
                  -math.inf, math.inf, breaks) / z for i in range(len(s))])
    out = {"mean": mean, "var": var, "ptox": np.exp(_log_p_terms(mean, s, intercept)[0]),
           "mean_ptox": mean_ptox}
    if threshold is not None:
        def gap(a, i):  # p_i decreases in a: p_i > threshold below the root of this
            return _log_p_terms(a, s, intercept)[0][i] - math.log(threshold)

        cuts = [optimize.brentq(gap, -60.0, 60.0, args=(i,), xtol=1e-14)
                if gap(-60.0, i) > 0 > gap(60.0, i) else -math.inf for i in range(len(s))]
        out["exceeds"] = np.array([_integral(dens, -math.inf, c, breaks) / z
                                   if c > -math.inf else 0.0 for c in cuts])
    return out
