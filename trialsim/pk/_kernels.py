"""Numba kernels of the linear PK engine: exact closed forms, no ODE solver.

Units: time h, amounts mg, volumes L, rate constants 1/h, concentrations mg/L.  Kernels take
arrays and numbers only; :mod:`trialsim.pk.exposure` unpacks the dataclasses.

**Disposition.**  A central compartment (volume ``V1``, elimination ``k10``) exchanging with
``P`` peripherals ``j`` (``k1j`` out, ``kj1`` back, ``kj0`` elimination from ``j``, e.g. a
liver).  With ``a = k10 + Σ k1j``, ``e_j = kj1 + kj0`` and ``c_j = k1j kj1`` the eigenvalues
``λ_i`` (``M = P + 1`` of them) are the roots of the secular equation
``f(λ) = a − λ − Σ_j c_j / (e_j − λ)``; ``f`` decreases between its poles, so exactly one
root lies below ``min e_j``, one between consecutive poles and one above the largest: each is
found by a bracketed Newton iteration to machine precision.  The central concentration after
a unit amount put in compartment ``s`` is ``Σ_i G[s, i] exp(−λ_i t)`` with
``G[0, i] = r_i / V1``, ``G[j, i] = r_i kj1 / ((e_j − λ_i) V1)``, ``r_i = −1 / f'(λ_i)``.

**State.**  ``y_i`` (the part of C carried by mode ``i``; ``C = Σ y_i``), depot amounts
``a_d`` (bioavailable mg), and ``z = Ce``.  Between breakpoints the inputs are constant
(``R[0]`` mg/h into central, ``R[1 + d]`` into depot ``d``) and, with
``D[x0..xm](dt)`` the m-fold convolution of ``exp(−x_k t)`` at ``dt`` (= (−1)^m times the
divided difference of ``x ↦ exp(−x dt)``)::

    a_d ← a_d D[ka_d] + R_d D[0, ka_d]
    y_i ← y_i D[λ_i] + G0_i R_0 D[0, λ_i] + Σ_d Gd_i ka_d (a_d D[ka_d, λ_i] + R_d D[0, ka_d, λ_i])
    z   ← z D[ke0] + ke0 Σ_i (y_i D[λ_i, ke0] + G0_i R_0 D[0, λ_i, ke0]
                              + Σ_d Gd_i ka_d (a_d D[ka_d, λ_i, ke0] + R_d D[0, ka_d, λ_i, ke0]))

which is exact superposition of every dose event.  ``D`` is evaluated stably when nodes
coincide or nearly do (ka = λ, ke0 = ka ...): by the recurrence on the two extreme nodes when
their spread × dt exceeds 1 (at most ~1 digit lost), otherwise by a Taylor series in
complete homogeneous polynomials.  AUC(0, t) uses the identity
``AUC = Σ_c input_c S_c − Σ_i y_i / λ_i − Σ_d a_d S_d`` with ``S_c = Σ_i G[c, i] / λ_i``.
"""
from __future__ import annotations

from math import exp, expm1, inf, nan

import numpy as np
from numba import njit

SPREAD = 1.0       # above this spread × dt, divided differences use the recurrence
ROOT_TOL_H = 1e-12  # absolute tolerance (h) of Tmax, crossing and extremum times


# ----------------------------------------------------------------- divided differences
@njit(cache=True)
def dd1(a, b, dt):
    """``D[a, b](dt) = ∫0^dt exp(−a (dt − s)) exp(−b s) ds`` (h), exact for a = b."""
    if a > b:
        a, b = b, a
    x = (b - a) * dt
    ph = 1.0 if x == 0.0 else -expm1(-x) / x
    return exp(-a * dt) * dt * ph


@njit(cache=True)
def _taylor(u1, u2, u3, m):
    # Σ_j (−1)^j h_j(u_1..u_m) / (j + m)!  for 0 <= u <= SPREAD, m in {2, 3}.
    p1 = 1.0
    h2 = 1.0
    h3 = 1.0
    fact = 0.5 if m == 2 else 1.0 / 6.0
    total = fact
    sign = 1.0
    for j in range(1, 60):
        p1 *= u1
        h2 = h2 * u2 + p1
        if m == 3:
            h3 = h3 * u3 + h2
            h = h3
        else:
            h = h2
        fact /= j + m
        sign = -sign
        term = h * fact
        total += sign * term
        if term < 1e-18 * total:
            break
    return total


@njit(cache=True)
def dd2(a, b, c, dt):
    """``D[a, b, c](dt)`` (h²): triple convolution of exponentials."""
    if a > b:
        a, b = b, a
    if b > c:
        b, c = c, b
    if a > b:
        a, b = b, a
    if (c - a) * dt > SPREAD:
        return (dd1(a, b, dt) - dd1(b, c, dt)) / (c - a)
    return dt * dt * exp(-a * dt) * _taylor((b - a) * dt, (c - a) * dt, 0.0, 2)


@njit(cache=True)
def dd3(a, b, c, d, dt):
    """``D[a, b, c, d](dt)`` (h³): quadruple convolution of exponentials."""
    if a > b:
        a, b = b, a
    if c > d:
        c, d = d, c
    if a > c:
        a, c = c, a
    if b > d:
        b, d = d, b
    if b > c:
        b, c = c, b
    if (d - a) * dt > SPREAD:
        return (dd2(a, b, c, dt) - dd2(b, c, d, dt)) / (d - a)
    return dt * dt * dt * exp(-a * dt) * _taylor((b - a) * dt, (c - a) * dt, (d - a) * dt, 3)


# ----------------------------------------------------------------- eigen-structure
@njit(cache=True, inline="always")
def _secular(lam, a, e, c, P):
    f = a - lam
    fp = -1.0
    for j in range(P):
        d = e[j] - lam
        f -= c[j] / d
        fp -= c[j] / (d * d)
    return f, fp


@njit(cache=True, inline="always")
def _root(lo, hi, a, e, c, P, x0):
    x = x0 if lo < x0 < hi else 0.5 * (lo + hi)
    for _ in range(300):
        f, fp = _secular(x, a, e, c, P)
        if f == 0.0:
            return x
        if f > 0.0:
            lo = x
        else:
            hi = x
        xn = x - f / fp
        if abs(xn - x) <= 1e-14 * abs(x):
            return xn   # quadratic convergence: the next step would be below rounding
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if hi - lo <= 4.5e-16 * hi:
            return xn
        x = xn
    return x


@njit(cache=True, inline="always")
def _guesses(k10, k1p, kp1, kp0, P, g):
    """Closed-form eigenvalues (ascending) for 2 and 3 compartments, used as Newton starts:
    the quadratic, and the trigonometric solution of the cubic; coefficients written without
    cancellation (all terms positive).  Written into g (M,)."""
    if P == 1:
        a = k10 + k1p[0]
        e = kp1[0] + kp0[0]
        pr = k10 * e + k1p[0] * kp0[0]
        big = 0.5 * (a + e + np.sqrt((a - e) ** 2 + 4.0 * k1p[0] * kp1[0]))
        g[0] = pr / big
        g[1] = big
    elif P == 2:
        a = k10 + k1p[0] + k1p[1]
        e1 = kp1[0] + kp0[0]
        e2 = kp1[1] + kp0[1]
        c1 = k1p[0] * kp1[0]
        c2 = k1p[1] * kp1[1]
        B = a + e1 + e2
        C = a * e1 + a * e2 + e1 * e2 - c1 - c2
        D = k10 * e1 * e2 + k1p[0] * kp0[0] * e2 + k1p[1] * kp0[1] * e1
        p = C - B * B / 3.0
        q = -2.0 * B ** 3 / 27.0 + B * C / 3.0 - D
        if p < 0.0:
            r = 2.0 * np.sqrt(-p / 3.0)
            arg = min(1.0, max(-1.0, 3.0 * q / (p * r)))
            th = np.arccos(arg) / 3.0
            x0 = B / 3.0 + r * np.cos(th)
            x1 = B / 3.0 + r * np.cos(th - 2.0 * np.pi / 3.0)
            x2 = B / 3.0 + r * np.cos(th - 4.0 * np.pi / 3.0)
            if x0 > x1:
                x0, x1 = x1, x0
            if x1 > x2:
                x1, x2 = x2, x1
            if x0 > x1:
                x0, x1 = x1, x0
            g[0], g[1], g[2] = x0, x1, x2
        else:
            g[:] = -1.0
    else:
        g[:] = -1.0


@njit(cache=True, inline="always")
def modes(V1, k10, k1p, kp1, kp0, site, lam, G0, Gd, W, es):
    """Eigenvalues ``lam`` (M,) ascending, gains ``G0`` (M,) and ``Gd`` (ND, M) (1/L) and
    amount weights ``W`` (P + 1, M) (L: amount in compartment k per unit of y_i) of one
    patient.  ``site[d]`` is the compartment fed by depot d (0 central, j >= 1 peripheral j);
    ``es`` is a (3, P) scratch array."""
    P = k1p.shape[0]
    a = k10
    ee = es[1]
    cs = es[2]
    for j in range(P):
        a += k1p[j]
        es[0, j] = kp1[j] + kp0[j]
        ee[j] = es[0, j]
        cs[j] = k1p[j] * kp1[j]
    for i in range(1, P):          # sort the poles (with their c_j) ascending
        j = i
        while j > 0 and ee[j - 1] > ee[j]:
            ee[j - 1], ee[j] = ee[j], ee[j - 1]
            cs[j - 1], cs[j] = cs[j], cs[j - 1]
            j -= 1
    up = k10 + 2.0 * (a - k10)
    for j in range(P):
        up = max(up, es[0, j] + kp1[j])
    up = up * (1.0 + 1e-9) + 1e-300
    _guesses(k10, k1p, kp1, kp0, P, lam)   # starting points, overwritten by the roots
    for i in range(P + 1):
        lo = 0.0 if i == 0 else ee[i - 1]
        hi = up if i == P else ee[i]
        if i > 0 and i < P and hi - lo <= 1e-13 * hi:
            lam[i] = lo   # coincident poles: a mode invisible from the central compartment
            G0[i] = 0.0
            W[0, i] = 0.0
            for j in range(P):
                W[j + 1, i] = 0.0
            for d in range(site.shape[0]):
                Gd[d, i] = 0.0
            continue
        li = _root(lo, hi, a, ee, cs, P, lam[i])
        f, fp = _secular(li, a, ee, cs, P)
        r = -1.0 / fp
        lam[i] = li
        G0[i] = r / V1
        W[0, i] = V1
        for j in range(P):
            W[j + 1, i] = V1 * k1p[j] / (es[0, j] - li)
        for d in range(site.shape[0]):
            s = site[d]
            Gd[d, i] = G0[i] if s == 0 else r * kp1[s - 1] / ((es[0, s - 1] - li) * V1)


@njit(cache=True)
def modes_batch(V1, k10, k1p, kp1, kp0, site):
    """:func:`modes` for n patients: ``lam`` (n, M), ``G0`` (n, M), ``Gd`` (n, ND, M), ``W``."""
    n, P = k1p.shape
    M = P + 1
    ND = site.shape[0]
    lam = np.empty((n, M))
    G0 = np.empty((n, M))
    Gd = np.empty((n, ND, M))
    W = np.empty((n, P + 1, M))
    es = np.empty((3, P))
    for p in range(n):
        modes(V1[p], k10[p], k1p[p], kp1[p], kp0[p], site, lam[p], G0[p], Gd[p], W[p], es)
    return lam, G0, Gd, W


# ----------------------------------------------------------------- events
@njit(cache=True, inline="always")
def _breakpoints(p, t_ev, amt_ev, dur_ev, chan_ev, f_ev, tlag, bt, bc, bb, br, bk, tot):
    """Sorted breakpoints of patient p; returns their number.  ``bk`` is 0 for a bolus
    (amount ``bb``), +1 / −1 for the start / end of a zero-order input (rate ``br``);
    ``tot[c]`` receives the bioavailable amount put into channel c."""
    pd = p if dur_ev.shape[0] > 1 else 0
    pf = p if f_ev.shape[0] > 1 else 0
    tot[:] = 0.0
    nb = 0
    for e in range(t_ev.shape[0]):
        c = chan_ev[e]
        t0 = t_ev[e] + (tlag[p, c - 1] if c > 0 else 0.0)
        amt = amt_ev[e] * f_ev[pf, e]
        tot[c] += amt
        d = dur_ev[pd, e]
        if d > 0.0:
            bt[nb], bc[nb], bb[nb], br[nb], bk[nb] = t0, c, 0.0, amt / d, 1
            nb += 1
            bt[nb], bc[nb], bb[nb], br[nb], bk[nb] = t0 + d, c, 0.0, -amt / d, -1
        else:
            bt[nb], bc[nb], bb[nb], br[nb], bk[nb] = t0, c, amt, 0.0, 0
        nb += 1
    for i in range(1, nb):  # insertion sort by time (stable)
        j = i
        while j > 0 and bt[j - 1] > bt[j]:
            bt[j - 1], bt[j] = bt[j], bt[j - 1]
            bc[j - 1], bc[j] = bc[j], bc[j - 1]
            bb[j - 1], bb[j] = bb[j], bb[j - 1]
            br[j - 1], br[j] = br[j], br[j - 1]
            bk[j - 1], bk[j] = bk[j], bk[j - 1]
            j -= 1
    return nb


@njit(cache=True, inline="always")
def _apply(j, bc, bb, br, bk, y, a, R, nact, cum, G0):
    c = bc[j]
    if bk[j] == 0:
        if c == 0:
            for i in range(y.shape[0]):
                y[i] += G0[i] * bb[j]
        else:
            a[c - 1] += bb[j]
        cum[c] += bb[j]
    else:
        R[c] += br[j]
        nact[c] += bk[j]
        if nact[c] == 0:
            R[c] = 0.0   # no drift: exactly zero once every infusion into c has ended


# ----------------------------------------------------------------- one exact step
@njit(cache=True, inline="always")
def _coeffs(dt, lam, ka, ke0, has_ce, cen_inf, dep_used, dep_inf, cm, cd, cdm):
    """Step coefficients for a step of dt hours; returns D[ke0]."""
    M = lam.shape[0]
    for i in range(M):
        li = lam[i]
        x = li * dt
        if cen_inf and x <= 0.5:     # one transcendental call: exp and D[0, λ] from expm1
            em = expm1(-x)
            cm[0, i] = 1.0 + em
            cm[1, i] = -em / li
        else:
            e = exp(-x)
            cm[0, i] = e
            if cen_inf:
                cm[1, i] = (1.0 - e) / li
        if has_ce:
            cm[2, i] = dd1(li, ke0, dt)
            if cen_inf:
                cm[3, i] = dd2(0.0, li, ke0, dt)
    for d in range(ka.shape[0]):
        if not dep_used[d]:
            continue
        k = ka[d]
        cd[0, d] = exp(-k * dt)
        if dep_inf[d]:
            cd[1, d] = dd1(0.0, k, dt)
        for i in range(M):
            li = lam[i]
            cdm[0, d, i] = dd1(k, li, dt)
            if dep_inf[d]:
                cdm[1, d, i] = dd2(0.0, k, li, dt)
            if has_ce:
                cdm[2, d, i] = dd2(k, li, ke0, dt)
                if dep_inf[d]:
                    cdm[3, d, i] = dd3(0.0, k, li, ke0, dt)
    return exp(-ke0 * dt) if has_ce else 0.0


@njit(cache=True, inline="always")
def _advance(y, a, z, R, G0, Gd, ka, ke0, has_ce, dep_used, cm, cd, cdm, ee):
    """Move the state (y, a in place) over the step whose coefficients are given; returns z."""
    M = y.shape[0]
    ND = a.shape[0]
    zn = z
    if has_ce:
        s = 0.0
        for i in range(M):
            s += y[i] * cm[2, i] + G0[i] * R[0] * cm[3, i]
            for d in range(ND):
                if dep_used[d]:
                    s += Gd[d, i] * ka[d] * (a[d] * cdm[2, d, i] + R[1 + d] * cdm[3, d, i])
        zn = z * ee + ke0 * s
    for i in range(M):
        v = y[i] * cm[0, i] + G0[i] * R[0] * cm[1, i]
        for d in range(ND):
            if dep_used[d]:
                v += Gd[d, i] * ka[d] * (a[d] * cdm[0, d, i] + R[1 + d] * cdm[1, d, i])
        y[i] = v
    for d in range(ND):
        if dep_used[d]:
            a[d] = a[d] * cd[0, d] + R[1 + d] * cd[1, d]
    return zn


@njit(cache=True, inline="always")
def _signals(y, a, z, R, lam, G0, Gd, ka, ke0, dep_used):
    """(C, C', C'', Ce, Ce', Ce'') of a state under constant inputs R."""
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    for i in range(y.shape[0]):
        inp = G0[i] * R[0]
        inp2 = 0.0
        for d in range(a.shape[0]):
            if dep_used[d]:
                g = Gd[d, i] * ka[d]
                inp += g * a[d]
                inp2 += g * (R[1 + d] - ka[d] * a[d])
        yi1 = inp - lam[i] * y[i]
        c0 += y[i]
        c1 += yi1
        c2 += inp2 - lam[i] * yi1
    e1 = ke0 * (c0 - z)
    return c0, c1, c2, z, e1, ke0 * (c1 - e1)


# ----------------------------------------------------------------- evaluation inside a cell
@njit(cache=True, inline="always")
def _eval(sig, delta, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws):
    """(value, first, second derivative) of signal sig (0 = C, 1 = Ce) at delta h after the
    cell start state (y0, a0, z0), the inputs R being constant over the cell."""
    lam, G0, Gd, kap, du, di = mod
    yt, at, cm, cd, cdm = ws
    for i in range(y0.shape[0]):
        yt[i] = y0[i]
    for d in range(a0.shape[0]):
        at[d] = a0[d]
    ce = has_ce and sig == 1      # C alone needs no effect-site coefficients
    ee = _coeffs(delta, lam, kap, ke0, ce, cen_inf, du, di, cm, cd, cdm)
    zt = _advance(yt, at, z0, R, G0, Gd, kap, ke0, ce, du, cm, cd, cdm, ee)
    s = _signals(yt, at, zt, R, lam, G0, Gd, kap, ke0, du)
    if sig == 0:
        return s[0], s[1], s[2]
    return s[3], s[4], s[5]


@njit(cache=True)
def _solve(mode, sig, target, lo, hi, flo, fhi, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws):
    """Safeguarded Halley (mode 0) / Newton (mode 1) for F(x) = target on [lo, hi] (F(lo) −
    target = flo and F(hi) − target = fhi of opposite signs); F is the signal (mode 0) or its
    derivative (mode 1); steps leaving the bracket are replaced by bisection."""
    x = lo + (hi - lo) * flo / (flo - fhi)
    for _ in range(200):
        v, d1, d2 = _eval(sig, x, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws)
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
def _above(sig, th, ta, va, tb, vb, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws):
    """Time (h) above th on a monotone piece [ta, tb] of a cell."""
    if va >= th and vb >= th:
        return tb - ta
    if va < th and vb < th:
        return 0.0
    x = _solve(0, sig, th, ta, tb, va - th, vb - th, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws)
    return tb - x if vb >= th else x - ta


@njit(cache=True)
def _cell(sig, t0, dt, v0, g0, v1, g1, thr, best, acc, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws):
    """Analyse one cell [t0, t0 + dt] of signal sig: interior maximum (updates best = [max,
    tmax]) and time above each threshold (adds to acc).  Exact if the signal has at most one
    interior extremum in the cell."""
    tm = -1.0
    vm = 0.0
    if (g0 > 0.0 and g1 < 0.0) or (g0 < 0.0 and g1 > 0.0):
        tm = _solve(1, sig, 0.0, 0.0, dt, g0, g1, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws)
        vm = _eval(sig, tm, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws)[0]
        if g0 > 0.0 and vm > best[0]:
            best[0] = vm
            best[1] = t0 + tm
    for k in range(thr.shape[0]):
        th = thr[k]
        if tm < 0.0:
            acc[k] += _above(sig, th, 0.0, v0, dt, v1, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws)
        else:
            acc[k] += _above(sig, th, 0.0, v0, tm, vm, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws)
            acc[k] += _above(sig, th, tm, vm, dt, v1, y0, a0, z0, R, mod, ke0, has_ce, cen_inf, ws)


@njit(cache=True, inline="always")
def _busy(v0, g0, v1, g1, thr):
    """Does the cell need _cell: an interior extremum or a threshold crossed?"""
    if (g0 > 0.0 and g1 < 0.0) or (g0 < 0.0 and g1 > 0.0):
        return True
    for k in range(thr.shape[0]):
        if (v0 >= thr[k]) != (v1 >= thr[k]):
            return True
    return False


@njit(cache=True, inline="always")
def _plain(v0, dt, thr, acc):
    """Time above thresholds of a cell that stays on one side of each of them."""
    for k in range(thr.shape[0]):
        if v0 >= thr[k]:
            acc[k] += dt


# ----------------------------------------------------------------- per-patient setup
@njit(cache=True)
def _workspace(P, ND, E):
    M = P + 1
    return (np.empty(M), np.empty(M), np.empty((ND, M)), np.empty((P + 1, M)), np.empty((3, P)),
            np.zeros((4, M)), np.zeros((2, ND)), np.zeros((4, ND, M)),
            np.empty(2 * E), np.empty(2 * E, np.int64), np.empty(2 * E), np.empty(2 * E),
            np.empty(2 * E, np.int64))


@njit(cache=True, inline="always")
def _same_dt(dt, last, t):
    return abs(dt - last) <= 4e-16 * max(t, 1.0)


@njit(cache=True)
def profile_kernel(times, t_ev, amt_ev, dur_ev, chan_ev, f_ev, V1, k10, k1p, kp1, kp0, ka, tlag,
                   site, ke0, has_ce, cen_inf, dep_used, dep_inf, out_c, out_ce, out_y, out_a,
                   out_cum):
    """C (and Ce) of n patients at sorted ``times`` (h) into out_c / out_ce (n, T), mg/L.
    When out_y has n rows the modal state is also recorded: out_y (n, T, M), out_a (n, T, ND)
    and out_cum (n, T, 1 + ND) (cumulative bioavailable input per channel, mg)."""
    n, P = k1p.shape
    ND = site.shape[0]
    T = times.shape[0]
    record = out_y.shape[0] == n
    lam, G0, Gd, W, es, cm, cd, cdm, bt, bc, bb, br, bk = _workspace(P, ND, t_ev.shape[0])
    y = np.empty(P + 1)
    a = np.empty(ND)
    R = np.empty(ND + 1)
    cum = np.empty(ND + 1)
    tot = np.empty(ND + 1)
    nact = np.empty(ND + 1, np.int64)
    for p in range(n):
        modes(V1[p], k10[p], k1p[p], kp1[p], kp0[p], site, lam, G0, Gd, W, es)
        kap = ka[p]
        k_e = ke0[p]
        nb = _breakpoints(p, t_ev, amt_ev, dur_ev, chan_ev, f_ev, tlag, bt, bc, bb, br, bk, tot)
        y[:] = 0.0
        a[:] = 0.0
        R[:] = 0.0
        cum[:] = 0.0
        nact[:] = 0
        z = 0.0
        last = -1.0
        ee = 0.0
        t_cur = 0.0
        jb = 0
        while jb < nb and bt[jb] <= t_cur:
            _apply(jb, bc, bb, br, bk, y, a, R, nact, cum, G0)
            jb += 1
        for k in range(T):
            tk = times[k]
            while True:
                t_next = tk
                if jb < nb and bt[jb] < tk:
                    t_next = bt[jb]
                if t_next > t_cur:
                    dt = t_next - t_cur
                    if not _same_dt(dt, last, t_next):
                        ee = _coeffs(dt, lam, kap, k_e, has_ce, cen_inf, dep_used, dep_inf, cm, cd, cdm)
                        last = dt
                    z = _advance(y, a, z, R, G0, Gd, kap, k_e, has_ce, dep_used, cm, cd, cdm, ee)
                    for c in range(ND + 1):
                        cum[c] += R[c] * dt
                    t_cur = t_next
                while jb < nb and bt[jb] <= t_cur:
                    _apply(jb, bc, bb, br, bk, y, a, R, nact, cum, G0)
                    jb += 1
                if t_next == tk:
                    break
            s = 0.0
            for i in range(P + 1):
                s += y[i]
            out_c[p, k] = s
            if has_ce:
                out_ce[p, k] = z
            if record:
                out_y[p, k, :] = y
                out_a[p, k, :] = a
                out_cum[p, k, :] = cum


@njit(cache=True)
def metrics_kernel(grid, t_h, rec_idx, auc_idx, thr_c, thr_e, t_ev, amt_ev, dur_ev, chan_ev, f_ev,
                   V1, k10, k1p, kp1, kp0, ka, tlag, site, ke0, has_ce, cen_inf, dep_used, dep_inf,
                   o_cmax, o_tmax, o_emax, o_etmax, o_aucinf, o_auc, o_c, o_ce, o_tc, o_te):
    """Exposure metrics of n patients streamed over the sorted grid (h), no curve kept.

    Over [0, t_h] (t_h a grid point): Cmax/Tmax and Ce max/time (grid and breakpoint values
    plus every interior extremum found by a sign change of the derivative in a cell, refined
    by safeguarded Newton to ROOT_TOL_H), time above each threshold thr_c (n or 1, Kc) for C
    and thr_e for Ce (crossings refined the same way).  AUC(0, grid[auc_idx[j]]) into
    o_auc[:, j], C and Ce at grid[rec_idx[j]] into o_c / o_ce, analytic AUC(0, ∞) into
    o_aucinf.  Concentrations mg/L, times h, AUC mg·h/L."""
    n, P = k1p.shape
    M = P + 1
    ND = site.shape[0]
    G = grid.shape[0]
    lam, G0, Gd, W, es, cm, cd, cdm, bt, bc, bb, br, bk = _workspace(P, ND, t_ev.shape[0])
    ws = (np.empty(M), np.empty(ND), np.zeros((4, M)), np.zeros((2, ND)), np.zeros((4, ND, M)))
    y = np.empty(M)
    a = np.empty(ND)
    y0 = np.empty(M)
    a0 = np.empty(ND)
    R = np.empty(ND + 1)
    S = np.empty(ND + 1)
    cum = np.empty(ND + 1)
    tot = np.empty(ND + 1)
    nact = np.empty(ND + 1, np.int64)
    best_c = np.empty(2)
    best_e = np.empty(2)
    Kc = thr_c.shape[1]
    Ke = thr_e.shape[1]
    acc_c = np.empty(Kc)
    acc_e = np.empty(Ke)
    t_end = t_h * (1.0 + 1e-15)
    for p in range(n):
        modes(V1[p], k10[p], k1p[p], kp1[p], kp0[p], site, lam, G0, Gd, W, es)
        kap = ka[p]
        k_e = ke0[p]
        mod = (lam, G0, Gd, kap, dep_used, dep_inf)
        S[0] = 0.0
        for i in range(M):
            S[0] += G0[i] / lam[i]
        for d in range(ND):
            S[1 + d] = 0.0
            for i in range(M):
                S[1 + d] += Gd[d, i] / lam[i]
        nb = _breakpoints(p, t_ev, amt_ev, dur_ev, chan_ev, f_ev, tlag, bt, bc, bb, br, bk, tot)
        aucinf = 0.0
        for c in range(ND + 1):
            aucinf += tot[c] * S[c]
        o_aucinf[p] = aucinf
        tc = thr_c[p if thr_c.shape[0] > 1 else 0]
        te = thr_e[p if thr_e.shape[0] > 1 else 0]
        y[:] = 0.0
        a[:] = 0.0
        R[:] = 0.0
        cum[:] = 0.0
        nact[:] = 0
        acc_c[:] = 0.0
        acc_e[:] = 0.0
        z = 0.0
        last = -1.0
        ee = 0.0
        t_cur = 0.0
        jb = 0
        while jb < nb and bt[jb] <= t_cur:
            _apply(jb, bc, bb, br, bk, y, a, R, nact, cum, G0)
            jb += 1
        v0c, g0c, _, v0e, g0e, _ = _signals(y, a, z, R, lam, G0, Gd, kap, k_e, dep_used)
        best_c[0] = v0c
        best_c[1] = 0.0
        best_e[0] = v0e
        best_e[1] = 0.0
        ir = 0
        ia = 0
        for kg in range(G):
            tk = grid[kg]
            while True:
                t_next = tk
                if jb < nb and bt[jb] < tk:
                    t_next = bt[jb]
                if t_next > t_cur:
                    dt = t_next - t_cur
                    y0[:] = y
                    a0[:] = a
                    z0 = z
                    if not _same_dt(dt, last, t_next):
                        ee = _coeffs(dt, lam, kap, k_e, has_ce, cen_inf, dep_used, dep_inf, cm, cd, cdm)
                        last = dt
                    z = _advance(y, a, z, R, G0, Gd, kap, k_e, has_ce, dep_used, cm, cd, cdm, ee)
                    for c in range(ND + 1):
                        cum[c] += R[c] * dt
                    v1c, g1c, _, v1e, g1e, _ = _signals(y, a, z, R, lam, G0, Gd, kap, k_e, dep_used)
                    if t_next <= t_end:
                        if _busy(v0c, g0c, v1c, g1c, tc):
                            _cell(0, t_cur, dt, v0c, g0c, v1c, g1c, tc, best_c, acc_c,
                                  y0, a0, z0, R, mod, k_e, has_ce, cen_inf, ws)
                        else:
                            _plain(v0c, dt, tc, acc_c)
                        if has_ce:
                            if _busy(v0e, g0e, v1e, g1e, te):
                                _cell(1, t_cur, dt, v0e, g0e, v1e, g1e, te, best_e, acc_e,
                                      y0, a0, z0, R, mod, k_e, has_ce, cen_inf, ws)
                            else:
                                _plain(v0e, dt, te, acc_e)
                    t_cur = t_next
                    while jb < nb and bt[jb] <= t_cur:
                        _apply(jb, bc, bb, br, bk, y, a, R, nact, cum, G0)
                        jb += 1
                    v0c, g0c, _, v0e, g0e, _ = _signals(y, a, z, R, lam, G0, Gd, kap, k_e, dep_used)
                    if t_cur <= t_end:
                        if v0c > best_c[0]:
                            best_c[0] = v0c
                            best_c[1] = t_cur
                        if v0e > best_e[0]:
                            best_e[0] = v0e
                            best_e[1] = t_cur
                if t_next == tk:
                    break
            while ir < rec_idx.shape[0] and rec_idx[ir] == kg:
                o_c[p, ir] = v0c
                if has_ce:
                    o_ce[p, ir] = v0e
                ir += 1
            while ia < auc_idx.shape[0] and auc_idx[ia] == kg:
                s = 0.0
                for c in range(ND + 1):
                    s += cum[c] * S[c]
                for i in range(M):
                    s -= y[i] / lam[i]
                for d in range(ND):
                    s -= a[d] * S[1 + d]
                o_auc[p, ia] = max(s, 0.0)
                ia += 1
        o_cmax[p] = best_c[0]
        o_tmax[p] = best_c[1] if best_c[0] > 0.0 else nan
        o_emax[p] = best_e[0]
        o_etmax[p] = best_e[1] if best_e[0] > 0.0 else nan
        o_tc[p, :] = acc_c
        o_te[p, :] = acc_e
