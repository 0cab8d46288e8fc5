"""Slow SciPy twins of the numba kernels, for tests only.

* :func:`reference_modes` — eigen-structure from ``numpy.linalg.eig`` of the full matrix.
* :func:`reference_dd` — divided differences of ``x ↦ exp(−x dt)`` in 50-digit arithmetic
  (mpmath matrix exponential of the bidiagonal Opitz matrix).
* :func:`reference_solution` — the same linear ODE (depots, central, peripherals, effect site,
  running AUC) integrated by ``scipy.integrate.solve_ivp`` from breakpoint to breakpoint
  (dose events and infusion ends, boluses added between pieces), or propagated exactly with
  ``scipy.linalg.expm`` of the input-augmented matrix (``method="expm"``; inaccurate, ~1e-10,
  when rates nearly coincide) or mpmath's 30-digit one (``method="mpmath"``).
* :func:`reference_metrics` — Cmax/Tmax, AUC, time above a threshold from that solution
  (dense output, bounded scalar minimisation, Brent root finding).

State layout: ``[depot_0..depot_{ND-1}, central, peripheral_1..P, Ce, AUC]`` (amounts mg;
Ce mg/L; AUC mg·h/L).
"""
from __future__ import annotations

import mpmath
import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.optimize import brentq, minimize_scalar

from trialsim.pk.linear.engine import prepare
from trialsim.pk.regimen import Regimen


def ode_matrix(s, p: int) -> np.ndarray:
    """dx/dt = A x + b(t) for patient p of a :class:`~trialsim.pk.models.LinearSystem`."""
    ND, P = s.site.shape[0], s.k1p.shape[1]
    N = ND + 1 + P + 2
    c = ND
    A = np.zeros((N, N))
    for d in range(ND):
        A[d, d] = -s.ka[p, d]
        A[c + s.site[d], d] += s.ka[p, d]
    A[c, c] = -(s.k10[p] + s.k1p[p].sum())
    for j in range(P):
        A[c, c + 1 + j] = s.kp1[p, j]
        A[c + 1 + j, c] = s.k1p[p, j]
        A[c + 1 + j, c + 1 + j] = -(s.kp1[p, j] + s.kp0[p, j])
    ie = c + 1 + P
    if s.has_ce:
        A[ie, c] = s.ke0[p] / s.V1[p]
        A[ie, ie] = -s.ke0[p]
    A[ie + 1, c] = 1.0 / s.V1[p]
    return A


def reference_modes(s, p: int):
    """(lam ascending, G0, Gd) of patient p from the eigen-decomposition of the disposition."""
    ND, P = s.site.shape[0], s.k1p.shape[1]
    A = ode_matrix(s, p)[ND:ND + 1 + P, ND:ND + 1 + P]
    w, V = np.linalg.eig(A)
    order = np.argsort(-w.real)
    w, V = w.real[order], V.real[:, order]
    Vi = np.linalg.inv(V)
    G = V[0][:, None] * Vi / s.V1[p]            # G[i, s]: mode i from a unit amount in s
    return -w, G[:, 0], np.array([G[:, s.site[d]] for d in range(ND)])


def reference_dd(nodes, dt: float, dps: int = 50) -> float:
    """``D[x0..xm](dt) = (−1)^m f[x0..xm]``, f(x) = exp(−x dt), to ``dps`` digits."""
    m = len(nodes) - 1
    with mpmath.workdps(dps):
        Z = mpmath.zeros(m + 1, m + 1)
        for i, x in enumerate(nodes):
            Z[i, i] = -mpmath.mpf(x) * dt
            if i < m:
                Z[i, i + 1] = 1
        # expm(Z)[0, m] is the divided difference of exp at the nodes −x·dt (Opitz 1964)
        return float(mpmath.expm(Z)[0, m] * mpmath.mpf(dt) ** m)


def _pieces(ev, s, p: int, t_end: float):
    """Sorted breakpoints of patient p: (time, bolus vector, rate vector change)."""
    ND = s.site.shape[0]
    out = []
    for e in range(len(ev.t)):
        c = int(ev.chan[e])
        t0 = float(ev.t[e]) + (float(s.tlag[p, c - 1]) if c > 0 else 0.0)
        amt = float(ev.amt[e] * ev.f[p if ev.f.shape[0] > 1 else 0, e])
        d = float(ev.dur[p if ev.dur.shape[0] > 1 else 0, e])
        idx = c - 1 if c > 0 else ND
        if d > 0:
            out.append((t0, idx, 0.0, amt / d))
            out.append((t0 + d, idx, 0.0, -amt / d))
        else:
            out.append((t0, idx, amt, 0.0))
    out.sort(key=lambda x: x[0])
    return out


def reference_solution(structure, regimen: Regimen, times, values=None, *, method: str = "Radau",
                       rtol: float = 1e-12, atol: float = 1e-16, horizon_h: float | None = None):
    """Per patient: states at ``times`` (n, T, N) and the list of dense pieces
    ``(t0, t1, solution)`` covering [0, max(times, horizon)].  ``method="expm"`` propagates
    exactly with matrix exponentials (pieces then hold callables)."""
    pr = prepare(structure, regimen, values)
    s, ev = pr.system, pr.events
    times = np.asarray(times, float)
    t_end = max(float(times.max()) if times.size else 0.0, horizon_h or 0.0)
    states, pieces = [], []
    for p in range(s.n):
        A = ode_matrix(s, p)
        N = A.shape[0]
        bps = [b for b in _pieces(ev, s, p, t_end) if b[0] <= t_end]
        cuts = sorted({0.0, t_end, *[b[0] for b in bps]})
        x = np.zeros(N)
        rate = np.zeros(N)
        k = 0
        segs = []
        for t0, t1 in zip(cuts[:-1], cuts[1:]):
            while k < len(bps) and bps[k][0] <= t0:
                _, idx, bolus, dr = bps[k]
                x[idx] += bolus
                rate[idx] += dr
                k += 1
            rate[np.abs(rate) < 1e-300] = 0.0
            sol = _integrate(A, rate.copy(), x.copy(), t0, t1, method, rtol, atol)
            segs.append((t0, t1, sol))
            x = sol(t1)
        if not segs:
            segs.append((0.0, 0.0, lambda t, x=x.copy(): x))
        pieces.append(segs)
        states.append(np.array([_at(segs, t, bps) for t in times]).reshape(len(times), N))
    return np.array(states), pieces


def _integrate(A, rate, x0, t0, t1, method, rtol, atol):
    if method == "mpmath":   # 30-digit matrix exponential: exact even for (nearly) defective A
        N = A.shape[0]
        Aug = mpmath.zeros(N + 1, N + 1)
        for i in range(N):
            for j in range(N):
                Aug[i, j] = A[i, j]
            Aug[i, N] = rate[i]

        def sol(t):
            with mpmath.workdps(30):
                E = mpmath.expm(Aug * (mpmath.mpf(float(t)) - t0))
                return np.array([float(sum(E[i, j] * x0[j] for j in range(N)) + E[i, N]) for i in range(N)])
        return sol
    if method == "expm":
        N = A.shape[0]
        Aug = np.zeros((N + 1, N + 1))
        Aug[:N, :N] = A
        Aug[:N, N] = rate

        def sol(t):
            E = expm(Aug * (np.asarray(t) - t0))
            return E[:N, :N] @ x0 + E[:N, N]
        return sol
    r = solve_ivp(lambda t, x: A @ x + rate, (t0, t1), x0, method=method, rtol=rtol, atol=atol,
                  dense_output=True, jac=(lambda t, x: A) if method in ("Radau", "BDF", "LSODA") else None)
    if not r.success:  # pragma: no cover - diagnostic
        raise RuntimeError(r.message)
    return r.sol


def _at(segs, t, bps):
    """State at t, right-continuous: boluses at t are included."""
    for t0, t1, sol in segs:
        if t0 <= t < t1:
            return sol(t)
    t0, t1, sol = segs[-1]
    x = np.array(sol(t1), float)
    for tb, idx, bolus, _ in bps:
        if tb == t:
            x[idx] += bolus
    return x


def reference_profile(structure, regimen: Regimen, times, values=None, **kw):
    """(C (n, T) mg/L, Ce (n, T) or None, states (n, T, N)) from :func:`reference_solution`."""
    pr = prepare(structure, regimen, values)
    s = pr.system
    st, _ = reference_solution(structure, regimen, times, values, **kw)
    ND, P = s.site.shape[0], s.k1p.shape[1]
    c = st[..., ND] / s.V1[:, None]
    ce = st[..., ND + 1 + P] if s.has_ce else None
    return c, ce, st


def reference_metrics(structure, regimen: Regimen, values=None, *, horizon_h: float = 24.0,
                      thresholds=(), ce_thresholds=(), n_scan: int = 4001, **kw) -> dict[str, np.ndarray]:
    """Cmax, Tmax, AUC(0, horizon), AUC(0, ∞), Ce max / time and time above thresholds (mg/L),
    computed from the SciPy solution (dense output scanned on ``n_scan`` points per piece,
    maxima refined by bounded minimisation, crossings by Brent)."""
    pr = prepare(structure, regimen, values)
    s = pr.system
    ND, P = s.site.shape[0], s.k1p.shape[1]
    ic, ie = ND, ND + 1 + P
    t_last = max([horizon_h] + [b[0] for q in range(s.n) for b in _pieces(pr.events, s, q, np.inf)])
    _, pieces = reference_solution(structure, regimen, [horizon_h, t_last], values, **kw)
    out = {k: np.empty(s.n) for k in ("cmax", "tmax", "auc", "auc_inf", "ce_max", "ce_tmax")}
    out["time_above"] = np.zeros((s.n, len(thresholds)))
    out["ce_time_above"] = np.zeros((s.n, len(ce_thresholds)))
    for p, segs in enumerate(pieces):
        sig = {"c": lambda x, p=p: x[ic] / s.V1[p], "ce": lambda x: x[ie]}
        for key, thr_list, mx, tm in (("c", thresholds, "cmax", "tmax"),
                                      ("ce", ce_thresholds, "ce_max", "ce_tmax")):
            f = sig[key]
            best, tbest = -np.inf, np.nan
            for t0, t1, sol in segs:
                t1 = min(t1, horizon_h)
                if t1 <= t0:
                    continue
                tt = np.linspace(t0, t1, n_scan)
                vv = np.array([f(sol(t)) for t in tt])
                j = int(np.argmax(vv))
                if vv[j] > best:
                    best, tbest = vv[j], tt[j]
                if 0 < j < n_scan - 1:
                    r = minimize_scalar(lambda t: -f(sol(t)), bounds=(tt[j - 1], tt[j + 1]),
                                        method="bounded", options={"xatol": 1e-13})
                    if -r.fun > best:
                        best, tbest = -r.fun, r.x
                for k, th in enumerate(thr_list):
                    out["time_above" if key == "c" else "ce_time_above"][p, k] += _time_above(
                        lambda t: f(sol(t)) - th, tt, vv - th)
            out[mx][p], out[tm][p] = best, tbest
        out["auc"][p] = next(sol(horizon_h) for t0, t1, sol in segs if t0 <= horizon_h <= t1)[-1]
        x_end = segs[-1][2](segs[-1][1])
        A = ode_matrix(s, p)
        tail = -np.linalg.solve(A[:-2, :-2], x_end[:-2])   # ∫ from t_last to ∞ of the amounts
        out["auc_inf"][p] = x_end[-1] + tail[ic] / s.V1[p]
    return out


def _time_above(g, tt, gv):
    total = 0.0
    for a, b, ga, gb in zip(tt[:-1], tt[1:], gv[:-1], gv[1:]):
        if ga >= 0 and gb >= 0:
            total += b - a
        elif ga >= 0 > gb:
            total += brentq(g, a, b, xtol=1e-14) - a
        elif ga < 0 <= gb:
            total += b - brentq(g, a, b, xtol=1e-14)
    return total
