"""numba kernels of :mod:`trialsim.analysis.mvt`: the radial distribution function, a cubic
spline on uniform knots in ``x = ρ/(1 + ρ)``, summed over directions.  Arrays and numbers
only."""
from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def _spline(coef, n, x):
    i = int(x * n)
    if i >= n:
        i = n - 1
    dx = x - i / n
    return ((coef[0, i] * dx + coef[1, i]) * dx + coef[2, i]) * dx + coef[3, i]


@njit(cache=True, inline="always")
def _spline_slope(coef, n, x):
    i = int(x * n)
    if i >= n:
        i = n - 1
    dx = x - i / n
    return (3.0 * coef[0, i] * dx + 2.0 * coef[1, i]) * dx + coef[2, i]


@njit(cache=True)
def max_cdf_sum(q, top, coef, two_sided):
    """Sum over directions of ``P(ρ · top <= q)`` (two-sided: ``ρ · top`` is ``max|.|``), the
    one-sided case handling ``q <= 0`` (``top`` the largest projection of each direction)."""
    n = coef.shape[1]
    total = 0.0
    for j in range(top.size):
        t = top[j]
        if q > 0.0:
            if t <= 0.0:
                total += 1.0
            else:
                rho = q / t
                g = _spline(coef, n, rho / (1.0 + rho))
                total += min(max(g, 0.0), 1.0)
        elif two_sided:
            continue
        elif q == 0.0:
            if t <= 0.0:
                total += 1.0
        elif t < 0.0:
            rho = q / t
            g = _spline(coef, n, rho / (1.0 + rho))
            total += 1.0 - min(max(g, 0.0), 1.0)
    return total


@njit(cache=True)
def max_density_sum(q, top, coef):
    """Sum over directions of ``d/dq P(ρ · top <= q)`` for ``q > 0``."""
    n = coef.shape[1]
    total = 0.0
    for j in range(top.size):
        t = top[j]
        if t > 0.0:
            rho = q / t
            x = rho / (1.0 + rho)
            total += _spline_slope(coef, n, x) / ((1.0 + rho) * (1.0 + rho)) / t
    return total
