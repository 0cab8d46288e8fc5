"""Analysis of one cell of the streamed metrics (numba): the signal C or Ce between two stops
of the walk, where the inputs are constant; interior extrema and threshold crossings refined by
safeguarded Newton / Halley iteration to :data:`ROOT_TOL_H`.

The signal of a cell of length dt is either the polynomial ``poly[0..K]`` in θ = s / dt of
:mod:`trialsim.pk.linear._kernels.series` (``ctx`` None: short cells, ~30 ns an evaluation) or, for
``ctx = (sig, y0, a0, zk, R, mod, cen_inf, ws)``, the closed form of
:mod:`trialsim.pk.linear._kernels.step` from the state (y0, a0, z0 = zk[0]) at the cell start (any
length; sig 0 = C, 1 = Ce; ke0 = zk[1]; ``mod`` = (lam, G0, Gd, ka, dep_used, dep_inf), ``ws``
= (y, a, cm, cd, cdm) scratch).  Both are exact to rounding.  Numba compiles one
specialisation for each kind of ``ctx``, so the polynomial path handles no state arrays:
in these kernels every array passed on inside a loop costs reference counting.
Units: time h, concentrations mg/L.
"""
from __future__ import annotations

from numba import njit

from trialsim.pk.linear._kernels.series import horner
from trialsim.pk.linear._kernels.step import advance, input_signals, step_coeffs

ROOT_TOL_H = 1e-12  # absolute tolerance (h) of Tmax, crossing and extremum times


@njit(cache=True)
def _eval(sig, delta, y0, a0, z0, R, mod, ke0, cen_inf, ws):
    """(value, first, second derivative) of signal sig (0 = C, 1 = Ce) at delta h after the
    state (y0, a0, z0) by the closed form, the inputs R being constant."""
    lam, G0, Gd, kap, du, di = mod
    yt, at, cm, cd, cdm = ws
    for i in range(y0.shape[0]):
        yt[i] = y0[i]
    for d in range(a0.shape[0]):
        at[d] = a0[d]
    ce = sig == 1                 # C alone needs no effect-site coefficients
    ee = step_coeffs(delta, lam, kap, ke0, ce, cen_inf, du, di, cm, cd, cdm)
    zt = advance(yt, at, z0, R, G0, Gd, kap, ke0, ce, du, cm, cd, cdm, ee)
    s = input_signals(yt, at, zt, R, lam, G0, Gd, kap, ke0, du)
    if sig == 0:
        return s[0], s[1], s[2]
    return s[3], s[4], s[5]


@njit(cache=True, inline="always")
def cell_value(x, poly, K, dt, ctx):
    """(value, first, second derivative) of the cell's signal at x h into the cell."""
    if ctx is None:
        return horner(poly, K, x / dt, dt)
    sig, y0, a0, zk, R, mod, cen_inf, ws = ctx
    return _eval(sig, x, y0, a0, zk[0], R, mod, zk[1], cen_inf, ws)


@njit(cache=True)
def _solve(mode, target, lo, hi, flo, fhi, poly, K, dt, ctx):
    """Safeguarded Halley (mode 0) / Newton (mode 1) for F(x) = target on [lo, hi] (F(lo) −
    target = flo and F(hi) − target = fhi of opposite signs); F is the signal (mode 0) or its
    derivative (mode 1); steps leaving the bracket are replaced by bisection."""
    x = lo + (hi - lo) * flo / (flo - fhi)
    for _ in range(200):
        v, d1, d2 = cell_value(x, poly, K, dt, ctx)
        F = v - target if mode == 0 else d1
        dF = d1 if mode == 0 else d2
        if F == 0.0:
            return x
        if (F > 0.0) == (flo > 0.0):
            lo = x
            flo = F
        else:
            hi = x
        den = 2.0 * dF * dF - F * d2 if mode == 0 else 0.0
        if den != 0.0:
            xn = x - 2.0 * F * dF / den          # Halley step (cubic convergence)
        else:
            xn = x - F / dF if dF != 0.0 else 0.5 * (lo + hi)
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) < ROOT_TOL_H or hi - lo < ROOT_TOL_H:
            return xn
        x = xn
    return x


@njit(cache=True)
def cell_above(th, ta, va, tb, vb, poly, K, dt, ctx):
    """Time (h) above th on a monotone piece [ta, tb] of a cell."""
    if va >= th and vb >= th:
        return tb - ta
    if va < th and vb < th:
        return 0.0
    x = _solve(0, th, ta, tb, va - th, vb - th, poly, K, dt, ctx)
    return tb - x if vb >= th else x - ta


@njit(cache=True)
def scan_cell(t0, dt, v0, g0, v1, g1, thr, best, acc, poly, K, ctx):
    """Analyse one cell [t0, t0 + dt] of a signal: interior maximum (updates best = [max,
    tmax]) and time above each threshold (adds to acc).  Exact if the signal has at most one
    interior extremum in the cell."""
    tm = -1.0
    vm = 0.0
    if (g0 > 0.0 and g1 < 0.0) or (g0 < 0.0 and g1 > 0.0):
        tm = _solve(1, 0.0, 0.0, dt, g0, g1, poly, K, dt, ctx)
        vm = cell_value(tm, poly, K, dt, ctx)[0]
        if g0 > 0.0 and vm > best[0]:
            best[0] = vm
            best[1] = t0 + tm
    for k in range(thr.shape[0]):
        th = thr[k]
        if tm < 0.0:
            acc[k] += cell_above(th, 0.0, v0, dt, v1, poly, K, dt, ctx)
        else:
            acc[k] += cell_above(th, 0.0, v0, tm, vm, poly, K, dt, ctx)
            acc[k] += cell_above(th, tm, vm, dt, v1, poly, K, dt, ctx)


@njit(cache=True, inline="always")
def cell_busy(v0, g0, v1, g1, thr):
    """Does the cell need analysing: an interior extremum or a threshold crossed?"""
    if (g0 > 0.0 and g1 < 0.0) or (g0 < 0.0 and g1 > 0.0):
        return True
    for k in range(thr.shape[0]):
        if (v0 >= thr[k]) != (v1 >= thr[k]):
            return True
    return False


@njit(cache=True, inline="always")
def cell_plain(v0, dt, thr, acc):
    """Time above thresholds of a cell that stays on one side of each of them."""
    for k in range(thr.shape[0]):
        if v0 >= thr[k]:
            acc[k] += dt
