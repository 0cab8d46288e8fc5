"""Slow pure NumPy/SciPy twin of :mod:`trialsim.analysis.crm`, one trial at a time.

Same model (``p_i = s_i ** exp(a)``, ``a ~ Normal(0, prior_sd**2)``), different numerics:
the posterior mode is found with ``scipy.optimize``, and every integral is an adaptive
``scipy.integrate.quad`` on pieces split around the mode (and at the cut point for tail
probabilities), with the integrand scaled by its value at the mode.  Used only in tests.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize


def log_posterior(a: float, n: np.ndarray, tox: np.ndarray, log_s: np.ndarray,
                  prior_sd: float) -> float:
    """Unnormalised log posterior density of ``a`` (terms with zero counts are skipped)."""
    log_p = math.exp(min(a, 700.0)) * log_s  # exp(700) * log(s) is still finite
    val = -0.5 * (a / prior_sd) ** 2
    for i in range(len(log_s)):
        if tox[i]:
            val += tox[i] * log_p[i]
        if n[i] - tox[i]:
            one_minus = -math.expm1(log_p[i])
            if one_minus <= 0.0:
                return -math.inf
            val += (n[i] - tox[i]) * math.log(one_minus)
    return val


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


def posterior_reference(n, tox, skeleton, prior_sd: float, threshold: float | None = None):
    """Posterior summaries for one trial: a dict with ``mean`` and ``var`` of ``a``, ``ptox``
    (plug-in ``s ** exp(mean)``), ``mean_ptox`` (``E[p_i]``) and, if ``threshold`` is given,
    ``exceeds`` (``P(p_i > threshold)``)."""
    n = np.asarray(n, dtype=np.int64)
    tox = np.asarray(tox, dtype=np.int64)
    s = np.asarray(skeleton, dtype=float)
    log_s = np.log(s)

    def f(a):
        return log_posterior(a, n, tox, log_s, prior_sd)

    a0, sc = _mode_and_scale(f)
    f0 = f(a0)
    breaks = a0 + sc * np.array([-16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16], dtype=float)

    def dens(a):
        return math.exp(f(a) - f0)

    z = _integral(dens, -math.inf, math.inf, breaks)
    mean = _integral(lambda a: a * dens(a), -math.inf, math.inf, breaks) / z
    var = _integral(lambda a: (a - mean) ** 2 * dens(a), -math.inf, math.inf, breaks) / z
    mean_ptox = np.array([
        _integral(lambda a, ls=ls: math.exp(math.exp(a) * ls) * dens(a), -math.inf, math.inf,
                  breaks) / z for ls in log_s])
    out = {"mean": mean, "var": var, "ptox": s ** math.exp(mean), "mean_ptox": mean_ptox}
    if threshold is not None:
        cuts = np.log(np.log(threshold) / log_s)
        out["exceeds"] = np.array([_integral(dens, -math.inf, c, breaks) / z for c in cuts])
    return out
