"""The exact superposition step of the linear PK engine (numba) and the walk that records C and
Ce at requested times (:func:`profile_kernel`).

Units: time h, amounts mg, volumes L, rate constants 1/h, concentrations mg/L.  Kernels take
arrays and numbers only; :mod:`trialsim.pk.exposure` unpacks the dataclasses.

**State.**  ``y_i`` (the part of C carried by mode ``i`` of :mod:`trialsim.pk.linear._kernels.eigen`;
``C = Σ y_i``), depot amounts ``a_d`` (bioavailable mg), and ``z = Ce``.  Between breakpoints
the inputs are constant (``R[0]`` mg/h into central, ``R[1 + d]`` into depot ``d``) and, with
``D[x0..xm](dt)`` the convolutions of :mod:`trialsim.pk.linear._kernels.divdiff`::

    a_d ← a_d D[ka_d] + R_d D[0, ka_d]
    y_i ← y_i D[λ_i] + G0_i R_0 D[0, λ_i] + Σ_d Gd_i ka_d (a_d D[ka_d, λ_i] + R_d D[0, ka_d, λ_i])
    z   ← z D[ke0] + ke0 Σ_i (y_i D[λ_i, ke0] + G0_i R_0 D[0, λ_i, ke0]
                              + Σ_d Gd_i ka_d (a_d D[ka_d, λ_i, ke0] + R_d D[0, ka_d, λ_i, ke0]))

which is exact superposition of every dose event.  A walk stops at every requested time and
every breakpoint (a bolus, the start or end of a zero-order input), reusing the step
coefficients while the step length stays the same.
"""
from __future__ import annotations

from math import exp, expm1

import numpy as np
from numba import njit

from trialsim.pk.linear._kernels.divdiff import dd1, dd2, dd3
from trialsim.pk.linear._kernels.eigen import modes


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
def apply_due(jb, nb, t, bt, bc, bb, br, bk, y, a, R, nact, cum, G0):
    """Apply the breakpoints from index jb up to time t (h): a bolus into the modes (central) or
    a depot, an infusion start / end into the rates R.  Returns the index of the next one."""
    while jb < nb and bt[jb] <= t:
        c = bc[jb]
        if bk[jb] == 0:
            if c == 0:
                for i in range(y.shape[0]):
                    y[i] += G0[i] * bb[jb]
            else:
                a[c - 1] += bb[jb]
            cum[c] += bb[jb]
        else:
            R[c] += br[jb]
            nact[c] += bk[jb]
            if nact[c] == 0:
                R[c] = 0.0   # no drift: exactly zero once every infusion into c has ended
        jb += 1
    return jb


# ----------------------------------------------------------------- one exact step
@njit(cache=True, inline="always")
def step_coeffs(dt, lam, ka, ke0, has_ce, cen_inf, dep_used, dep_inf, cm, cd, cdm):
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
def advance(y, a, z, R, G0, Gd, ka, ke0, has_ce, dep_used, cm, cd, cdm, ee):
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
def input_signals(y, a, z, R, lam, G0, Gd, ka, ke0, dep_used):
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


@njit(cache=True)
def step_workspace(P, ND, E):
    """Per-patient arrays: modes (lam, G0, Gd, W, es), step coefficients (cm, cd, cdm) and the
    breakpoints (bt, bc, bb, br, bk) of E dose events."""
    M = P + 1
    return (np.empty(M), np.empty(M), np.empty((ND, M)), np.empty((P + 1, M)), np.empty((3, P)),
            np.zeros((4, M)), np.zeros((2, ND)), np.zeros((4, ND, M)),
            np.empty(2 * E), np.empty(2 * E, np.int64), np.empty(2 * E), np.empty(2 * E),
            np.empty(2 * E, np.int64))


@njit(cache=True, inline="always")
def same_dt(dt, last, t):
    """Is a step of dt h, ending at t h, the step ``last`` of the coefficients at hand?"""
    return abs(dt - last) <= 4e-16 * max(t, 1.0)


# ----------------------------------------------------------------- the walk
# Hot-loop note (numba): an inline helper that calls another helper taking arrays inside a
# branch or a loop leaves reference-count updates in the walk (measured 3-5x slower), so the
# walks branch on the reuse of the step coefficients themselves.
@njit(cache=True, inline="always")
def start_patient(p, t_ev, amt_ev, dur_ev, chan_ev, f_ev, tlag, bt, bc, bb, br, bk, tot,
           y, a, R, cum, nact, G0):
    """Patient p at t = 0: sorted breakpoints, zero state, the inputs due at 0 applied.
    Returns (number of breakpoints, index of the next one)."""
    nb = _breakpoints(p, t_ev, amt_ev, dur_ev, chan_ev, f_ev, tlag, bt, bc, bb, br, bk, tot)
    y[:] = 0.0
    a[:] = 0.0
    R[:] = 0.0
    cum[:] = 0.0
    nact[:] = 0
    return nb, apply_due(0, nb, 0.0, bt, bc, bb, br, bk, y, a, R, nact, cum, G0)


@njit(cache=True, inline="always")
def next_stop(tk, jb, nb, bt):
    """Where the walk towards tk stops next: tk, or an earlier breakpoint."""
    if jb < nb and bt[jb] < tk:
        return bt[jb]
    return tk


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
    lam, G0, Gd, W, es, cm, cd, cdm, bt, bc, bb, br, bk = step_workspace(P, ND, t_ev.shape[0])
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
        nb, jb = start_patient(p, t_ev, amt_ev, dur_ev, chan_ev, f_ev, tlag, bt, bc, bb, br, bk, tot,
                        y, a, R, cum, nact, G0)
        z = 0.0
        last = -1.0
        ee = 0.0
        t_cur = 0.0
        for k in range(T):
            tk = times[k]
            while True:
                t_next = next_stop(tk, jb, nb, bt)
                if t_next > t_cur:
                    dt = t_next - t_cur
                    if not same_dt(dt, last, t_next):
                        ee = step_coeffs(dt, lam, kap, k_e, has_ce, cen_inf, dep_used, dep_inf, cm, cd, cdm)
                        last = dt
                    z = advance(y, a, z, R, G0, Gd, kap, k_e, has_ce, dep_used, cm, cd, cdm, ee)
                    for c in range(ND + 1):
                        cum[c] += R[c] * dt
                    t_cur = t_next
                jb = apply_due(jb, nb, t_cur, bt, bc, bb, br, bk, y, a, R, nact, cum, G0)
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
