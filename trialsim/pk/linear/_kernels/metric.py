"""Streamed exposure metrics of the linear PK engine (numba): :func:`metrics_kernel` walks each
patient's exact state over a grid (:mod:`trialsim.pk.linear._kernels.step`), analyses every cell
(:mod:`trialsim.pk.linear._kernels.cell`) and stops early once the rest of the curve is certified
decreasing (:mod:`trialsim.pk.linear._kernels.tail`).  No curve is kept.

Units: time h, amounts mg, concentrations mg/L, AUC mg·h/L.  AUC(0, t) uses the identity
``AUC = Σ_c input_c S_c − Σ_i y_i / λ_i − Σ_d a_d S_d`` with ``S_c = Σ_i G[c, i] / λ_i``.

Speed notes (numba): in the walk, an inline helper taking arrays that is called on every step
or that calls another such helper inside a branch keeps reference-count updates in the loop
(several times slower), hence the guarded calls below; steps of a one-off length (to or from a
breakpoint) use the Taylor series of :mod:`trialsim.pk.linear._kernels.series` rather than new
closed-form coefficients, which stay those of the grid step.
"""
from __future__ import annotations

from math import nan

import numpy as np
from numba import njit

from trialsim.pk.linear._kernels.cell import (cell_above, cell_busy, cell_plain, cell_value,
                                             scan_cell)
from trialsim.pk.linear._kernels.eigen import modes
from trialsim.pk.linear._kernels.series import series, series_step, series_workspace
from trialsim.pk.linear._kernels.step import (advance, apply_due, input_signals, next_stop,
                                             same_dt, start_patient, step_coeffs,
                                             step_workspace)
from trialsim.pk.linear._kernels.tail import tail_decreasing, tail_workspace


@njit(cache=True, inline="always")
def _next_record(ir, ia, rec_idx, auc_idx, G):
    """The next grid node whose C / Ce (rec_idx[ir]) or AUC (auc_idx[ia]) is kept; G if none."""
    q = G
    if ir < rec_idx.shape[0]:
        q = rec_idx[ir]
    if ia < auc_idx.shape[0] and auc_idx[ia] < q:
        q = auc_idx[ia]
    return q


@njit(cache=True)
def _record(p, kg, ir, ia, rec_idx, auc_idx, vc, ve, has_ce, y, a, lam, cum, S, o_c, o_ce, o_auc):
    """C and Ce (vc, ve) and AUC(0, t) at grid node kg into the outputs of patient p (for the
    nodes listed in rec_idx / auc_idx); returns the next (ir, ia)."""
    while ir < rec_idx.shape[0] and rec_idx[ir] == kg:
        o_c[p, ir] = vc
        if has_ce:
            o_ce[p, ir] = ve
        ir += 1
    while ia < auc_idx.shape[0] and auc_idx[ia] == kg:
        s = 0.0
        for c in range(cum.shape[0]):
            s += cum[c] * S[c]
        for i in range(y.shape[0]):
            s -= y[i] / lam[i]
        for d in range(a.shape[0]):
            s -= a[d] * S[1 + d]
        o_auc[p, ia] = max(s, 0.0)
        ia += 1
    return ir, ia


@njit(cache=True, inline="always")
def _inputs_off(jb, nb, R):
    """No breakpoint left and every input rate zero."""
    if jb < nb:
        return False
    for c in range(R.shape[0]):
        if R[c] != 0.0:
            return False
    return True


@njit(cache=True)
def _tail_above(dt, v0, thr, acc, ctx):
    """Time above each threshold over the next dt h of a signal certified decreasing there
    (one crossing at most, refined by the closed form of ctx like a cell's)."""
    if thr.shape[0]:
        vh = cell_value(dt, thr, -1, dt, ctx)[0]
        for k in range(thr.shape[0]):
            acc[k] += cell_above(thr[k], 0.0, v0, dt, vh, thr, -1, dt, ctx)


@njit(cache=True)
def _tail_records(p, kg, ir, ia, grid, rec_idx, auc_idx, has_ce, y, a, z, R, cum, S, mod, ke0,
                  cm, cd, cdm, o_c, o_ce, o_auc):
    """From grid node kg on, with every input off: exact jumps of (y, a, z) to the remaining
    recorded nodes (Ce carried only while one is left to record; no infusion coefficients)."""
    lam, G0, Gd, kap, du, di = mod
    no_inf = np.zeros(di.shape[0], np.bool_)
    G = grid.shape[0]
    t_cur = grid[kg]
    q = _next_record(ir, ia, rec_idx, auc_idx, G)
    while q < G:
        ce = has_ce and ir < rec_idx.shape[0]
        ee = step_coeffs(grid[q] - t_cur, lam, kap, ke0, ce, False, du, no_inf, cm, cd, cdm)
        z = advance(y, a, z, R, G0, Gd, kap, ke0, ce, du, cm, cd, cdm, ee)
        t_cur = grid[q]
        vc = 0.0
        for i in range(y.shape[0]):
            vc += y[i]
        ir, ia = _record(p, q, ir, ia, rec_idx, auc_idx, vc, z, has_ce, y, a, lam, cum, S,
                         o_c, o_ce, o_auc)
        q = _next_record(ir, ia, rec_idx, auc_idx, G)


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
    o_aucinf.  Concentrations mg/L, times h, AUC mg·h/L.

    Once no input is left and C (and Ce) are certified decreasing for all later times
    (:func:`~trialsim.pk.linear._kernels.tail.tail_decreasing`, tried at grid nodes with doubling
    gaps), the remaining cells can hold no extremum and at most one crossing per threshold:
    the walk stops, each crossing is refined on the whole remaining piece and the recorded
    nodes are reached by exact jumps (the same values to rounding)."""
    n, P = k1p.shape
    M = P + 1
    ND = site.shape[0]
    G = grid.shape[0]
    lam, G0, Gd, W, es, cm, cd, cdm, bt, bc, bb, br, bk = step_workspace(P, ND, t_ev.shape[0])
    kap = np.empty(ND)                 # this patient's ka: a buffer, so that the tuples below last
    zk = np.empty(2)                   # (Ce at the cell start, ke0)
    y = np.empty(M)
    a = np.empty(ND)
    y0 = np.empty(M)                   # the state at the cell start
    a0 = np.empty(ND)
    R = np.empty(ND + 1)
    mod = (lam, G0, Gd, kap, dep_used, dep_inf)
    ws = (np.empty(M), np.empty(ND), np.zeros((4, M)), np.zeros((2, ND)), np.zeros((4, ND, M)))
    ctx_c = (0, y0, a0, zk, R, mod, cen_inf, ws)       # closed forms of C and Ce in a cell
    ctx_e = (1, y0, a0, zk, R, mod, cen_inf, ws)
    sw = series_workspace(M, ND)
    pc = sw[3]                         # Taylor polynomials of C and Ce in a cell
    pz = sw[2]
    tw = tail_workspace(M, ND)
    S = np.empty(ND + 1)
    cum = np.empty(ND + 1)
    tot = np.empty(ND + 1)
    nact = np.empty(ND + 1, np.int64)
    best_c = np.empty(2)
    best_e = np.empty(2)
    acc_c = np.empty(thr_c.shape[1])
    acc_e = np.empty(thr_e.shape[1])
    t_end = t_h * (1.0 + 1e-15)
    kh = G - 1                         # the last node of [0, t_h]
    while kh > 0 and grid[kh] > t_end:
        kh -= 1
    for p in range(n):
        modes(V1[p], k10[p], k1p[p], kp1[p], kp0[p], site, lam, G0, Gd, W, es)
        kap[:] = ka[p]
        k_e = ke0[p]
        zk[1] = k_e
        S[0] = 0.0
        for i in range(M):
            S[0] += G0[i] / lam[i]
        for d in range(ND):
            S[1 + d] = 0.0
            for i in range(M):
                S[1 + d] += Gd[d, i] / lam[i]
        nb, jb = start_patient(p, t_ev, amt_ev, dur_ev, chan_ev, f_ev, tlag, bt, bc, bb, br, bk, tot,
                        y, a, R, cum, nact, G0)
        aucinf = 0.0
        for c in range(ND + 1):
            aucinf += tot[c] * S[c]
        o_aucinf[p] = aucinf
        tc = thr_c[p if thr_c.shape[0] > 1 else 0]
        te = thr_e[p if thr_e.shape[0] > 1 else 0]
        acc_c[:] = 0.0
        acc_e[:] = 0.0
        z = 0.0
        last = -1.0
        ee = 0.0
        t_cur = 0.0
        on_node = True                 # t_cur is a grid node
        v0c, g0c, _, v0e, g0e, _ = input_signals(y, a, z, R, lam, G0, Gd, kap, k_e, dep_used)
        best_c[0] = v0c
        best_c[1] = 0.0
        best_e[0] = v0e
        best_e[1] = 0.0
        ir = 0
        ia = 0
        k_rec = _next_record(0, 0, rec_idx, auc_idx, G)
        next_try = 0
        gap = 1
        for kg in range(G):
            tk = grid[kg]
            while True:
                t_next = next_stop(tk, jb, nb, bt)
                if t_next > t_cur:
                    dt = t_next - t_cur
                    y0[:] = y
                    a0[:] = a
                    z0 = z
                    K = -2                     # no series of this cell yet (-1: too long for one)
                    if same_dt(dt, last, t_next):
                        z = advance(y, a, z, R, G0, Gd, kap, k_e, has_ce, dep_used, cm, cd, cdm, ee)
                    else:
                        if not (on_node and t_next == tk):    # to or from a breakpoint: a one-off length
                            K = series(dt, y0, a0, z0, R, lam, G0, Gd, kap, k_e, has_ce, dep_used, sw)
                        if K >= 0:
                            z = series_step(y, a, sw, K)
                        else:                  # a grid step (or too long a one): closed form, kept
                            ee = step_coeffs(dt, lam, kap, k_e, has_ce, cen_inf, dep_used, dep_inf,
                                         cm, cd, cdm)
                            last = dt
                            z = advance(y, a, z, R, G0, Gd, kap, k_e, has_ce, dep_used, cm, cd, cdm, ee)
                    for c in range(ND + 1):
                        cum[c] += R[c] * dt
                    v1c, g1c, _, v1e, g1e, _ = input_signals(y, a, z, R, lam, G0, Gd, kap, k_e, dep_used)
                    if t_next <= t_end:
                        busy_c = cell_busy(v0c, g0c, v1c, g1c, tc)
                        busy_e = has_ce and cell_busy(v0e, g0e, v1e, g1e, te)
                        if K == -2 and (busy_c or busy_e):
                            K = series(dt, y0, a0, z0, R, lam, G0, Gd, kap, k_e, has_ce, dep_used, sw)
                        zk[0] = z0
                        if busy_c and K >= 0:      # on the Taylor polynomial, else the closed form
                            scan_cell(t_cur, dt, v0c, g0c, v1c, g1c, tc, best_c, acc_c, pc, K, None)
                        elif busy_c:
                            scan_cell(t_cur, dt, v0c, g0c, v1c, g1c, tc, best_c, acc_c, pc, K, ctx_c)
                        else:
                            cell_plain(v0c, dt, tc, acc_c)
                        if busy_e and K >= 0:
                            scan_cell(t_cur, dt, v0e, g0e, v1e, g1e, te, best_e, acc_e, pz, K, None)
                        elif busy_e:
                            scan_cell(t_cur, dt, v0e, g0e, v1e, g1e, te, best_e, acc_e, pz, K, ctx_e)
                        elif has_ce:
                            cell_plain(v0e, dt, te, acc_e)
                    t_cur = t_next
                    on_node = t_next == tk
                    jn = apply_due(jb, nb, t_cur, bt, bc, bb, br, bk, y, a, R, nact, cum, G0)
                    if jn > jb:                # new inputs: the signals jump
                        v0c, g0c, _, v0e, g0e, _ = input_signals(y, a, z, R, lam, G0, Gd, kap, k_e, dep_used)
                        jb = jn
                    else:
                        v0c, g0c, v0e, g0e = v1c, g1c, v1e, g1e
                    if t_cur <= t_end:
                        if v0c > best_c[0]:
                            best_c[0] = v0c
                            best_c[1] = t_cur
                        if v0e > best_e[0]:
                            best_e[0] = v0e
                            best_e[1] = t_cur
                if t_next == tk:
                    break
            if kg == k_rec:
                ir, ia = _record(p, kg, ir, ia, rec_idx, auc_idx, v0c, v0e, has_ce, y, a, lam, cum, S,
                                 o_c, o_ce, o_auc)
                k_rec = _next_record(ir, ia, rec_idx, auc_idx, G)
            if kg >= next_try and g0c < 0.0 and (g0e < 0.0 or not has_ce) and _inputs_off(jb, nb, R):
                if tail_decreasing(y, a, z, lam, Gd, kap, k_e, has_ce, tw):
                    if kh > kg:
                        y0[:] = y
                        a0[:] = a
                        zk[0] = z
                        _tail_above(grid[kh] - tk, v0c, tc, acc_c, ctx_c)
                        if has_ce:
                            _tail_above(grid[kh] - tk, v0e, te, acc_e, ctx_e)
                    _tail_records(p, kg, ir, ia, grid, rec_idx, auc_idx, has_ce, y, a, z, R, cum, S,
                                  mod, k_e, cm, cd, cdm, o_c, o_ce, o_auc)
                    break
                next_try = kg + gap
                gap *= 2
        o_cmax[p] = best_c[0]
        o_tmax[p] = best_c[1] if best_c[0] > 0.0 else nan
        o_emax[p] = best_e[0]
        o_etmax[p] = best_e[1] if best_e[0] > 0.0 else nan
        o_tc[p, :] = acc_c
        o_te[p, :] = acc_e
