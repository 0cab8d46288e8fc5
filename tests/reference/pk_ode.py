"""Slow SciPy twins of the ODE path, for tests only.

Each built-in right-hand side is re-written here in plain NumPy (``f(t, y, p) -> dydt``) and
integrated with ``scipy.integrate.solve_ivp`` piecewise between dose events, with the same
semantics as the kernels: bolus jumps at dose times (shifted by the lag time), constant
infusion input between breakpoints, outputs at a dose time taken after the bolus.  Nothing
here calls numba.  The default method is Radau (implicit, independent of the kernels'
explicit Runge–Kutta); SciPy's DOP853 at rtol 1e-10 was found up to ~3e-6 off.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

from trialsim.pk.ode.models import ODESystem, parameter_matrix
from trialsim.pk.regimen import Regimen


def mm1_rhs(t, y, p):
    v, vmax, km, ka = p[0], p[1], p[2], p[3]     # V1, Vmax, Km, ka
    c = y[1] / v
    return np.array([-ka * y[0], ka * y[0] - vmax * c / (km + c)])


def mm2_rhs(t, y, p):
    v1, q, v2, vmax, km, ka = p[:6]              # V1, Q2, V2, Vmax, Km, ka
    c1, c2 = y[1] / v1, y[2] / v2
    return np.array([-ka * y[0], ka * y[0] - vmax * c1 / (km + c1) - q * (c1 - c2),
                     q * (c1 - c2)])


def parent_metabolite_rhs(t, y, p):
    cl, v1, q2, v2, q3, v3, fm, cl_m, v_m, q_m, v_m2, mw, ka = p[:13]
    c1 = y[1] / v1
    out = np.empty(6)
    out[0] = -ka * y[0]
    out[1] = ka * y[0] - cl * c1 - q2 * (c1 - y[2] / v2) - q3 * (c1 - y[3] / v3)
    out[2] = q2 * (c1 - y[2] / v2)
    out[3] = q3 * (c1 - y[3] / v3)
    cm = y[4] / v_m
    out[4] = fm * mw * cl * c1 - cl_m * cm - q_m * (cm - y[5] / v_m2)
    out[5] = q_m * (cm - y[5] / v_m2)
    return out


#: Twin right-hand side of each built-in system, by ``ODESystem.name``.
REFERENCE_RHS: dict[str, Callable] = {
    "michaelis_menten_1cmt": mm1_rhs,
    "michaelis_menten_2cmt": mm2_rhs,
    "parent_metabolite": parent_metabolite_rhs,
}


def _setup(system, regimen, params, dose_scale, rhs):
    rhs = rhs or REFERENCE_RHS[system.name]
    P = parameter_matrix(system, params, 1)
    p = P[0]
    y0 = (np.zeros(len(system.state_names)) if system.initial_state is None
          else np.asarray(system.initial_state(P), float)[0])
    events = []
    for e in regimen.events:
        state = system.state_names.index(system.dose_states[e.target])
        fpar, lpar = system.bioavailability.get(e.target), system.lag.get(e.target)
        frac = p[system.param_names.index(fpar)] if fpar else 1.0
        lag = p[system.param_names.index(lpar)] if lpar else 0.0
        events.append((e.time_h + lag, e.amount_mg * dose_scale * frac, e.duration_h, state))
    return rhs, p, y0, events


def _segments(events, t_end):
    cuts = {0.0, float(t_end)}
    for t, _, d, _ in events:
        cuts.add(t)
        if d > 0:
            cuts.add(t + d)
    return sorted(c for c in cuts if c <= t_end)


def _integrate(rhs, p, y0, n, events, t_end, rtol, atol, method, extra=None):
    """Yield ``(t0, t1, y_at_t0_after_jumps, dense solution or None)`` per segment."""
    y = np.array(y0, dtype=float)
    bps = _segments(events, t_end)
    for k, tb in enumerate(bps):
        for t, a, d, s in events:
            if d == 0 and t == tb:
                y[s] += a
        if k == len(bps) - 1:
            yield tb, tb, y.copy(), None
            return
        rate = np.zeros(y.size)
        for t, a, d, s in events:
            if d > 0 and t <= tb < t + d:
                rate[s] += a / d

        def f(t, yy, rate=rate):
            dy = rhs(t, yy[:n], p) + rate[:n]
            return dy if extra is None else np.append(dy, extra(yy, p))

        sol = solve_ivp(f, (tb, bps[k + 1]), y, method=method, rtol=rtol, atol=atol,
                        dense_output=True)
        if not sol.success:
            raise RuntimeError(sol.message)
        yield tb, bps[k + 1], y.copy(), sol.sol
        y = sol.y[:, -1].copy()


def reference_solve(system: ODESystem, regimen: Regimen, times_h, params=None, *,
                    dose_scale: float = 1.0, rhs: Callable | None = None, rtol: float = 1e-10,
                    atol: float = 1e-14, method: str = "Radau") -> np.ndarray:
    """States of one patient at ``times_h`` (sorted): shape (n_times, n_states)."""
    tt = np.asarray(times_h, dtype=float)
    rhs, p, y0, events = _setup(system, regimen, params, dose_scale, rhs)
    out = np.full((tt.size, y0.size), np.nan)
    for t0, t1, y_start, sol in _integrate(rhs, p, y0, y0.size, events, tt[-1], rtol, atol,
                                                   method):
        at = tt == t0
        out[at] = y_start
        inside = (tt > t0) & (tt < t1)
        if sol is not None and inside.any():
            out[inside] = sol(tt[inside]).T
    return out


def reference_summary(system: ODESystem, regimen: Regimen, t_end_h: float, params=None, *,
                      analyte: str | None = None, dose_scale: float = 1.0,
                      rhs: Callable | None = None, rtol: float = 1e-10, atol: float = 1e-14,
                      method: str = "Radau") -> tuple[float, float, float]:
    """``(Cmax, Tmax, AUC(0–t_end))`` of one patient by a dense search and an AUC state."""
    analyte = analyte or next(iter(system.observables))
    state, vol = system.observables[analyte]
    obs = system.state_names.index(state)
    rhs, p, y0, events = _setup(system, regimen, params, dose_scale, rhs)
    v = p[system.param_names.index(vol)] if vol else 1.0
    best = (-np.inf, 0.0)
    y_end = None
    for t0, t1, y_start, sol in _integrate(rhs, p, np.append(y0, 0.0), y0.size, events, t_end_h,
                                           rtol, atol, method, extra=lambda yy, p: yy[obs] / v):
        if y_start[obs] / v > best[0]:
            best = (y_start[obs] / v, t0)
        y_end = y_start
        if sol is None:
            continue
        grid = np.linspace(t0, t1, 401)
        cg = sol(grid)[obs] / v
        i = int(np.argmax(cg))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        res = minimize_scalar(lambda s: -sol(s)[obs] / v, bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-12 * max(1.0, t1)})
        for c, t in ((cg[i], grid[i]), (-res.fun, res.x)):
            if c > best[0]:
                best = (float(c), float(t))
    return best[0], best[1], float(y_end[-1])
