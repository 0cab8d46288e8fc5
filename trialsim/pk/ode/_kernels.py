"""numba kernels of the ODE path: an adaptive Dormand–Prince 5(4) solver with exact dosing.

The solver follows Hairer's ``dopri5`` (Hairer, Nørsett & Wanner, *Solving Ordinary
Differential Equations I*, 2nd ed., §II.4–II.6): the 7-stage FSAL tableau, the 4th-order
error estimate, the PI step-size controller (``beta = 0.04``), the initial step heuristic
and the 4th-order continuous extension used for output times and for the peak search.

The right-hand side is a *first-class function* of type :data:`RHS_TYPE`,
``rhs(t, y, p, dydt) -> None``, which must **assign every entry** of ``dydt`` (the buffers
are reused) and describe the kinetics only: dose input is added by the solver.  Because the
solver is compiled for that function *type* (not for each function), it is compiled and
cached once, and any ``numba.njit`` function with that signature can be passed, including
closures and functions written by users.

Dosing is exact.  The time axis is cut at every *breakpoint* (dose times shifted by the
patient's lag time, infusion ends, the last output time); no step crosses a breakpoint.  At
a breakpoint the bolus amounts are added to their state, then the zero-order input rates of
the infusions running until the next breakpoint are set; between breakpoints they are
constant.  Outputs at a dose time are
taken *after* the bolus (right-continuous, as in the closed-form superposition).

Status codes: 0 success, 1 more than ``max_steps`` steps in one segment, 2 step size
underflow (stiffness or a singular right-hand side).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, types

#: ``rhs(t [h], y [state units], p [parameters], dydt [state units / h]) -> None``
RHS_SIG = types.void(types.float64, types.float64[::1], types.float64[::1], types.float64[::1])
#: The numba type of a right-hand side passed to the solver.
RHS_TYPE = types.FunctionType(RHS_SIG)

OK, TOO_MANY_STEPS, STEP_UNDERFLOW = 0, 1, 2

# Dormand–Prince 5(4) tableau (dopri5.f).
C2, C3, C4, C5 = 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0
A21 = 1.0 / 5.0
A31, A32 = 3.0 / 40.0, 9.0 / 40.0
A41, A42, A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
A51, A52, A53, A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
A61, A62, A63 = 9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0
A64, A65 = 49.0 / 176.0, -5103.0 / 18656.0
A71, A73, A74 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0
A75, A76 = -2187.0 / 6784.0, 11.0 / 84.0
E1, E3, E4 = 71.0 / 57600.0, -71.0 / 16695.0, 71.0 / 1920.0
E5, E6, E7 = -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0
D1, D3 = -12715105075.0 / 11282082432.0, 87487479700.0 / 32700410799.0
D4, D5 = -10690763975.0 / 1880347072.0, 701980252875.0 / 199316789632.0
D6, D7 = -1453857185.0 / 822651844.0, 69997945.0 / 29380423.0
# PI controller (Hairer's defaults).
BETA, SAFE, FACC1, FACC2 = 0.04, 0.9, 5.0, 0.1
EXPO1 = 0.2 - BETA * 0.75
UROUND = 2.3e-16
GOLDEN = 0.6180339887498949


@njit(cache=True, inline="always")
def _f(rhs, t, y, p, rate, n, obs, vidx, out, yb, ob):
    """Full derivative: kinetics + infusion input (+ the AUC state at index ``n``).

    With the AUC state the model states are copied through ``yb``/``ob`` (n,) rather than
    sliced: slices (and row views) cost reference counting on every call.
    """
    if obs < 0:
        rhs(t, y, p, out)
    else:
        for i in range(n):
            yb[i] = y[i]
        rhs(t, yb, p, ob)
        for i in range(n):
            out[i] = ob[i]
    for i in range(n):
        out[i] += rate[i]
    if obs >= 0:
        v = p[vidx] if vidx >= 0 else 1.0
        out[n] = y[obs] / v


@njit(cache=True)
def _hinit(rhs, t, y, f0, p, rate, n, obs, vidx, hmax, rtol, atol, y1, f1, yb, ob):
    """Hairer's initial step size guess (dopri5 ``HINIT``), within ``[1e-6, 1]·hmax``."""
    m = y.shape[0]
    dnf = 0.0
    dny = 0.0
    for i in range(m):
        sk = atol + rtol * abs(y[i])
        dnf += (f0[i] / sk) ** 2
        dny += (y[i] / sk) ** 2
    if dnf <= 1e-10 or dny <= 1e-10:
        h = 1e-6
    else:
        h = np.sqrt(dny / dnf) * 0.01
    # Floor (not in dopri5): a tiny state with a large input (an infusion starting on a
    # washed-out patient) would otherwise give h ~ |y|/|f| and a step-size underflow.
    h = min(max(h, 1e-6 * hmax), hmax)
    for i in range(m):
        y1[i] = y[i] + h * f0[i]
    _f(rhs, t + h, y1, p, rate, n, obs, vidx, f1, yb, ob)
    der2 = 0.0
    for i in range(m):
        sk = atol + rtol * abs(y[i])
        der2 += ((f1[i] - f0[i]) / sk) ** 2
    der2 = np.sqrt(der2) / h
    der12 = max(abs(der2), np.sqrt(dnf))
    if der12 <= 1e-15:
        h1 = max(1e-6, h * 1e-3)
    else:
        h1 = (0.01 / der12) ** 0.2
    return min(100.0 * h, h1, hmax)


@njit(cache=True)
def _dense_coeffs(y, ynew, K, h, R):
    """Coefficients of the continuous extension on the accepted step (dopri5 ``CONTD5``)."""
    for i in range(y.shape[0]):
        ydiff = ynew[i] - y[i]
        bspl = h * K[0, i] - ydiff
        R[0, i] = y[i]
        R[1, i] = ydiff
        R[2, i] = bspl
        R[3, i] = ydiff - h * K[6, i] - bspl
        R[4, i] = h * (D1 * K[0, i] + D3 * K[2, i] + D4 * K[3, i] + D5 * K[4, i]
                       + D6 * K[5, i] + D7 * K[6, i])


@njit(cache=True)
def _dense(R, i, theta):
    th1 = 1.0 - theta
    return R[0, i] + theta * (R[1, i] + th1 * (R[2, i] + theta * (R[3, i] + th1 * R[4, i])))


@njit(cache=True)
def _interior_peak(R, obs, t, h):
    """Golden-section search of the dense output of state ``obs`` on (t, t + h)."""
    a, b = 0.0, 1.0
    x1 = b - GOLDEN * (b - a)
    x2 = a + GOLDEN * (b - a)
    f1 = _dense(R, obs, x1)
    f2 = _dense(R, obs, x2)
    for _ in range(60):
        if f1 < f2:
            a, x1, f1 = x1, x2, f2
            x2 = a + GOLDEN * (b - a)
            f2 = _dense(R, obs, x2)
        else:
            b, x2, f2 = x2, x1, f1
            x1 = b - GOLDEN * (b - a)
            f1 = _dense(R, obs, x1)
        if b - a < 1e-12:
            break
    th = 0.5 * (a + b)
    return _dense(R, obs, th), t + th * h


@njit(cache=True)
def _segment(rhs, t0, t1, y, p, rate, n, obs, vidx, rtol, atol, K, ytmp, ynew, R, yb, ob,
             out_t, i_out, yout, want_peak, peak, max_steps):
    """Advance ``y`` in place from ``t0`` to exactly ``t1`` with constant input ``rate``.

    Writes the dense output at every output time in ``(t0, t1)`` into ``yout`` (from index
    ``i_out``).  With ``want_peak``, ``peak = [Cmax, Tmax]`` is updated for
    ``C = y[obs] / p[vidx]`` over ``[t0, t1]``.  Returns ``(i_out, status)``.
    """
    m = y.shape[0]
    n_out = out_t.shape[0]
    k1, k2, k3, k4, k5, k6, k7 = K[0], K[1], K[2], K[3], K[4], K[5], K[6]
    vol = p[vidx] if vidx >= 0 else 1.0
    t = t0
    hmax = t1 - t0
    _f(rhs, t, y, p, rate, n, obs, vidx, k1, yb, ob)
    if want_peak and y[obs] / vol > peak[0]:
        peak[0] = y[obs] / vol
        peak[1] = t
    if hmax <= 1e-12 * max(1.0, abs(t1)):
        # A sliver between two (nearly) equal breakpoints: one Euler step is exact to far
        # below the tolerance and avoids a step-size underflow.
        for i in range(m):
            y[i] += hmax * k1[i]
        while i_out < n_out and out_t[i_out] < t1:
            for i in range(m):
                yout[i_out, i] = y[i]
            i_out += 1
        if want_peak and y[obs] / vol > peak[0]:
            peak[0] = y[obs] / vol
            peak[1] = t1
        return i_out, OK
    h = _hinit(rhs, t, y, k1, p, rate, n, obs, vidx, hmax, rtol, atol, ytmp, k2, yb, ob)
    facold = 1e-4
    reject = False
    nstep = 0
    while t < t1:
        if nstep >= max_steps:
            return i_out, TOO_MANY_STEPS
        if 0.1 * h <= abs(t) * UROUND or h <= 0.0:
            return i_out, STEP_UNDERFLOW
        nstep += 1
        last = False
        if t + 1.01 * h >= t1:
            h = t1 - t
            last = True
        for i in range(m):
            ytmp[i] = y[i] + h * A21 * k1[i]
        _f(rhs, t + C2 * h, ytmp, p, rate, n, obs, vidx, k2, yb, ob)
        for i in range(m):
            ytmp[i] = y[i] + h * (A31 * k1[i] + A32 * k2[i])
        _f(rhs, t + C3 * h, ytmp, p, rate, n, obs, vidx, k3, yb, ob)
        for i in range(m):
            ytmp[i] = y[i] + h * (A41 * k1[i] + A42 * k2[i] + A43 * k3[i])
        _f(rhs, t + C4 * h, ytmp, p, rate, n, obs, vidx, k4, yb, ob)
        for i in range(m):
            ytmp[i] = y[i] + h * (A51 * k1[i] + A52 * k2[i] + A53 * k3[i] + A54 * k4[i])
        _f(rhs, t + C5 * h, ytmp, p, rate, n, obs, vidx, k5, yb, ob)
        for i in range(m):
            ytmp[i] = y[i] + h * (A61 * k1[i] + A62 * k2[i] + A63 * k3[i]
                                  + A64 * k4[i] + A65 * k5[i])
        tph = t1 if last else t + h
        _f(rhs, tph, ytmp, p, rate, n, obs, vidx, k6, yb, ob)
        for i in range(m):
            ynew[i] = y[i] + h * (A71 * k1[i] + A73 * k3[i] + A74 * k4[i]
                                  + A75 * k5[i] + A76 * k6[i])
        _f(rhs, tph, ynew, p, rate, n, obs, vidx, k7, yb, ob)
        err = 0.0
        for i in range(m):
            sk = atol + rtol * max(abs(y[i]), abs(ynew[i]))
            e = h * (E1 * k1[i] + E3 * k3[i] + E4 * k4[i] + E5 * k5[i]
                     + E6 * k6[i] + E7 * k7[i])
            err += (e / sk) ** 2
        err = np.sqrt(err / m)
        if not np.isfinite(err):
            err = 1e10
        fac11 = err ** EXPO1
        if err <= 1.0:
            fac = fac11 / facold ** BETA
            fac = max(FACC2, min(FACC1, fac / SAFE))
            hnew = h / fac
            facold = max(err, 1e-4)
            need_out = i_out < n_out and (out_t[i_out] < tph or (out_t[i_out] == tph and not last))
            turn = want_peak and k1[obs] > 0.0 and k7[obs] < 0.0   # C has a maximum inside
            if need_out or turn:
                _dense_coeffs(y, ynew, K, h, R)
            while i_out < n_out and (out_t[i_out] < tph or (out_t[i_out] == tph and not last)):
                theta = (out_t[i_out] - t) / h
                for i in range(m):
                    yout[i_out, i] = _dense(R, i, theta)
                i_out += 1
            if want_peak:
                c_new = ynew[obs] / vol
                if turn:
                    a_peak, t_peak = _interior_peak(R, obs, t, h)
                    if a_peak / vol > peak[0]:
                        peak[0] = a_peak / vol
                        peak[1] = t_peak
                if c_new > peak[0]:
                    peak[0] = c_new
                    peak[1] = tph
            for i in range(m):
                y[i] = ynew[i]
                k1[i] = k7[i]
            t = tph
            if hnew > hmax:
                hnew = hmax
            if reject:
                hnew = min(hnew, h)
            reject = False
        else:
            hnew = h / min(FACC1, fac11 / SAFE)
            reject = True
        h = hnew
    return i_out, OK


@njit(cache=True)
def _apply_bolus(y, p, tb, tev, ev_dur, ev_amt_i, ev_state, ev_fidx):
    for e in range(tev.shape[0]):
        if ev_dur[e] == 0.0 and tev[e] == tb:
            frac = p[ev_fidx[e]] if ev_fidx[e] >= 0 else 1.0
            y[ev_state[e]] += ev_amt_i[e] * frac


@njit(cache=True)
def _set_rates(rate, p, tb, tev, tend, ev_dur, ev_amt_i, ev_state, ev_fidx):
    rate[:] = 0.0
    for e in range(tev.shape[0]):
        if ev_dur[e] > 0.0 and tev[e] <= tb and tend[e] > tb:
            frac = p[ev_fidx[e]] if ev_fidx[e] >= 0 else 1.0
            rate[ev_state[e]] += ev_amt_i[e] * frac / ev_dur[e]


@njit(cache=True)
def _schedule(p, ev_time, ev_dur, ev_lidx, t_end, extra_bp):
    """One patient's event start and end times (shifted by their lag parameter) and the
    sorted breakpoints in ``[0, t_end]``: 0, starts, infusion ends, ``extra_bp``, t_end."""
    ne = ev_time.shape[0]
    tev = np.empty(ne)
    tend = np.empty(ne)
    cand = np.empty(2 + 2 * ne + extra_bp.shape[0])
    cand[0] = 0.0
    cand[1] = t_end
    k = 2
    for e in range(ne):
        tev[e] = ev_time[e] + (p[ev_lidx[e]] if ev_lidx[e] >= 0 else 0.0)
        tend[e] = tev[e] + ev_dur[e]
        cand[k] = tev[e]
        k += 1
        if ev_dur[e] > 0.0:
            cand[k] = tend[e]
            k += 1
    for x in extra_bp:
        cand[k] = x
        k += 1
    bp = np.unique(cand[:k])
    return tev, tend, bp[bp <= t_end]


@njit(cache=True)
def _run_patient(rhs, p, y, n, ev_time, ev_dur, ev_amt_i, ev_state, ev_fidx, ev_lidx, t_end,
                 extra_bp, out_t, yout, obs, vidx, want_peak, peak, rtol, atol, max_steps):
    """Integrate one patient from 0 to ``t_end`` over its breakpoints; returns the status."""
    m = y.shape[0]
    K = np.empty((7, m))
    R = np.empty((5, m))
    ytmp = np.empty(m)
    ynew = np.empty(m)
    yb = np.empty(n)
    ob = np.empty(n)
    rate = np.zeros(n)
    n_out = out_t.shape[0]
    i_out = 0
    vol = p[vidx] if vidx >= 0 else 1.0
    tev, tend, bp = _schedule(p, ev_time, ev_dur, ev_lidx, t_end, extra_bp)
    nb = bp.shape[0]
    for k in range(nb):
        tb = bp[k]
        _apply_bolus(y, p, tb, tev, ev_dur, ev_amt_i, ev_state, ev_fidx)
        while i_out < n_out and out_t[i_out] <= tb:
            for i in range(m):
                yout[i_out, i] = y[i]
            i_out += 1
        if k == nb - 1:
            if want_peak and y[obs] / vol > peak[0]:
                peak[0] = y[obs] / vol
                peak[1] = tb
            break
        _set_rates(rate, p, tb, tev, tend, ev_dur, ev_amt_i, ev_state, ev_fidx)
        i_out, status = _segment(rhs, tb, bp[k + 1], y, p, rate, n, obs, vidx, rtol, atol,
                                 K, ytmp, ynew, R, yb, ob, out_t, i_out, yout, want_peak, peak,
                                 max_steps)
        if status != OK:
            return status
    return OK


_F1 = types.float64[::1]
_F2 = types.float64[:, ::1]
_F3 = types.float64[:, :, ::1]
_I1 = types.int64[::1]
_EVENTS = (_F1, _F1, _F2, _I1, _I1, _I1)   # ev_time, ev_dur, ev_amt, ev_state, ev_fidx, ev_lidx


SOLVE_SIG = types.void(RHS_TYPE, _F2, _F2, *_EVENTS, _F1, _F1, types.float64, types.float64,
                       types.int64, _F3, _I1)
SUMMARY_SIG = types.void(RHS_TYPE, _F2, _F2, *_EVENTS, types.float64, types.int64, types.int64,
                         types.float64, types.float64, types.int64, _F1, _F1, _F1, _I1)


@functools.cache
def solve_batch_kernel():
    """The compiled :func:`solve_batch` (compiled, or loaded from the disk cache, on first use
    rather than at import: a cold compile of the solver takes tens of seconds)."""
    return njit(SOLVE_SIG, cache=True)(_solve_batch)


@functools.cache
def summarize_batch_kernel():
    """The compiled :func:`summarize_batch` (on first use, like :func:`solve_batch_kernel`)."""
    return njit(SUMMARY_SIG, cache=True)(_summarize_batch)


def solve_batch(*args) -> None:
    """See :func:`_solve_batch` (arguments) — runs the compiled kernel."""
    solve_batch_kernel()(*args)


def summarize_batch(*args) -> None:
    """See :func:`_summarize_batch` (arguments) — runs the compiled kernel."""
    summarize_batch_kernel()(*args)


def _solve_batch(rhs, P, Y0, ev_time, ev_dur, ev_amt, ev_state, ev_fidx, ev_lidx, extra_bp,
                out_t, rtol, atol, max_steps, Yout, status):
    """States of ``n`` patients at the output times.

    ``P`` (n, n_params) parameters; ``Y0`` (n, n_states) initial states.  The dose schedule
    is shared: ``ev_time``/``ev_dur`` (h), ``ev_state`` (target state index), ``ev_fidx`` and
    ``ev_lidx`` (index in ``p`` of the bioavailable fraction and of the lag time of each
    event, -1 for none); amounts ``ev_amt`` (n, n_events) are per patient.  ``extra_bp``
    sorted extra breakpoints (h; e.g. kinks of a forcing function); ``out_t`` sorted output
    times (h), integration runs to the last one.  Fills ``Yout`` (n, n_times, n_states) and
    ``status`` (n,); a failed patient's rows are NaN.
    """
    n_pat = P.shape[0]
    n = Y0.shape[1]
    t_end = out_t[out_t.shape[0] - 1] if out_t.shape[0] else 0.0
    peak = np.zeros(2)
    for j in range(n_pat):
        y = Y0[j].copy()
        st = _run_patient(rhs, P[j], y, n, ev_time, ev_dur, ev_amt[j], ev_state, ev_fidx,
                          ev_lidx, t_end, extra_bp, out_t, Yout[j], -1, -1, False, peak, rtol,
                          atol, max_steps)
        status[j] = st
        if st != OK:
            Yout[j, :, :] = np.nan


def _summarize_batch(rhs, P, Y0, ev_time, ev_dur, ev_amt, ev_state, ev_fidx, ev_lidx, t_end,
                    obs, vidx, rtol, atol, max_steps, cmax, tmax, auc, status):
    """Cmax, Tmax and AUC over ``[0, t_end]`` of ``C = y[obs] / p[vidx]``, no curves stored.

    AUC is an extra state integrated with the same error control; Cmax is searched on the
    continuous extension inside the step where ``dC/dt`` changes sign.  ``vidx = -1``
    observes the amount itself.  Other arguments as in :func:`_solve_batch`.
    """
    n_pat = P.shape[0]
    n = Y0.shape[1]
    no_bp = np.empty(0)
    no_out = np.empty(0)
    no_yout = np.empty((0, n + 1))
    peak = np.zeros(2)
    for j in range(n_pat):
        y = np.zeros(n + 1)
        y[:n] = Y0[j]
        peak[0] = -np.inf
        peak[1] = 0.0
        st = _run_patient(rhs, P[j], y, n, ev_time, ev_dur, ev_amt[j], ev_state, ev_fidx,
                          ev_lidx, t_end, no_bp, no_out, no_yout, obs, vidx, True, peak, rtol,
                          atol, max_steps)
        status[j] = st
        if st == OK:
            cmax[j] = peak[0]
            tmax[j] = peak[1]
            auc[j] = y[n]
        else:
            cmax[j] = np.nan
            tmax[j] = np.nan
            auc[j] = np.nan


# --------------------------------------------------------------------------- built-in RHS
# Parameter order is the ``param_names`` order of the models in ``models.py``.  Compiled
# lazily (for RHS_SIG when first passed to the solver) and cached on disk.

@njit(cache=True)
def mm1_rhs(t, y, p, dydt):
    """1-cmt, Michaelis–Menten elimination.  y = [depot, central] (mg);
    p = [V1 (L), Vmax (mg/h), Km (mg/L), ka (1/h), F, tlag (h)]."""
    c = y[1] / p[0]
    absorbed = p[3] * y[0]
    dydt[0] = -absorbed
    dydt[1] = absorbed - p[1] * c / (p[2] + c)


@njit(cache=True)
def mm2_rhs(t, y, p, dydt):
    """2-cmt, Michaelis–Menten elimination.  y = [depot, central, peripheral] (mg);
    p = [V1 (L), Q2 (L/h), V2 (L), Vmax (mg/h), Km (mg/L), ka (1/h), F, tlag (h)]."""
    c1 = y[1] / p[0]
    c2 = y[2] / p[2]
    dist = p[1] * (c1 - c2)
    absorbed = p[5] * y[0]
    dydt[0] = -absorbed
    dydt[1] = absorbed - p[3] * c1 / (p[4] + c1) - dist
    dydt[2] = dist


@njit(cache=True)
def parent_metabolite_rhs(t, y, p, dydt):
    """Linear 3-cmt parent -> linear 2-cmt metabolite (unused compartments have Q = 0).

    y = [depot, central, periph2, periph3, met_central, met_periph] (mg);
    p = [CL, V1, Q2, V2, Q3, V3, fm, CLm, Vm, Qm, Vm2, mw_ratio, ka, F, tlag]
    (L/h, L, L/h, L, L/h, L, -, L/h, L, L/h, L, -, 1/h, -, h).
    """
    c1 = y[1] / p[1]
    elim = p[0] * c1
    d2 = p[2] * (c1 - y[2] / p[3])
    d3 = p[4] * (c1 - y[3] / p[5])
    absorbed = p[12] * y[0]
    cm = y[4] / p[8]
    dm = p[9] * (cm - y[5] / p[10])
    dydt[0] = -absorbed
    dydt[1] = absorbed - elim - d2 - d3
    dydt[2] = d2
    dydt[3] = d3
    dydt[4] = p[6] * p[11] * elim - p[7] * cm - dm
    dydt[5] = dm
