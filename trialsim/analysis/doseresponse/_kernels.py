"""numba kernels of the batched MCP-Mod (:mod:`.batch`): adjusted p-values of many trials'
contrast tests over shared directions, and profile least-squares fits of the dose-response
models for many trials at once.  Arrays and numbers only.

Model codes (:data:`CODES` in :mod:`.batch`): 0 linear, 1 linlog, 2 quadratic, 3 emax,
4 sig_emax, 5 exponential, 6 logistic, 7 beta.  Every model is ``e0 + sum_j b_j g_j(d;
theta)`` with one or two basis functions ``g``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always", error_model="numpy")
def _spline(coef, x):
    n = coef.shape[1]
    i = int(x * n)
    if i >= n:
        i = n - 1
    dx = x - i / n
    return ((coef[0, i] * dx + coef[1, i]) * dx + coef[2, i]) * dx + coef[3, i]


@njit(cache=True, error_model="numpy")
def mct_pvalues(A, t, U, coefs, df_index, two_sided, n_reps):
    """Adjusted p-values ``P(max_j T_j >= t_m)`` (two-sided ``|.|``) for every trial and
    candidate, by spherical-radial integration over the shared directions ``U`` (n, r) in
    ``n_reps`` equal blocks.  ``A`` (T, M, r): each trial's correlation factor; ``t`` (T, M);
    ``coefs`` (n_df, 4, n_knots): radial-distribution splines; ``df_index`` (T,)."""
    T, M, r = A.shape
    n = U.shape[0]
    out = np.empty((T, M))
    for i in range(T):
        coef = coefs[df_index[i]]
        acc = np.zeros(M)
        for j in range(n):
            top = -np.inf
            for m in range(M):
                v = 0.0
                for q in range(r):
                    v += U[j, q] * A[i, m, q]
                if two_sided:
                    v = abs(v)
                if v > top:
                    top = v
            for m in range(M):
                x = abs(t[i, m]) if two_sided else t[i, m]
                if x > 0.0:
                    if top <= 0.0:
                        acc[m] += 1.0
                    else:
                        rho = x / top
                        g = _spline(coef, rho / (1.0 + rho))
                        acc[m] += min(max(g, 0.0), 1.0)
                elif not two_sided:
                    if x == 0.0:
                        if top <= 0.0:
                            acc[m] += 1.0
                    elif top < 0.0:
                        rho = x / top
                        g = _spline(coef, rho / (1.0 + rho))
                        acc[m] += 1.0 - min(max(g, 0.0), 1.0)
        for m in range(M):
            out[i, m] = 1.0 - acc[m] / n
    return out


@njit(cache=True, inline="always", error_model="numpy")
def _xlogx(x):
    return 0.0 if x == 0.0 else x * math.log(x)


@njit(cache=True, error_model="numpy")
def basis(code, d, th0, th1, off, scal, out):
    """The basis functions of model ``code`` at dose ``d`` into ``out`` (returns how many)."""
    if code == 0:
        out[0] = d
        return 1
    if code == 1:
        out[0] = math.log(d + off)
        return 1
    if code == 2:
        out[0] = d
        out[1] = d * d
        return 2
    if code == 3:
        out[0] = d / (th0 + d)
        return 1
    if code == 4:
        if d <= 0.0:
            out[0] = 0.0
        else:
            x = (d / th0) ** th1
            out[0] = 1.0 if math.isinf(x) else x / (1.0 + x)
        return 1
    if code == 5:
        z = d / th0
        out[0] = math.expm1(z) if z < 700.0 else np.inf
        return 1
    if code == 6:
        z = (th0 - d) / th1
        out[0] = 1.0 / (1.0 + math.exp(z)) if z < 700.0 else 0.0
        return 1
    x = d / scal
    log_b = _xlogx(th0 + th1) - _xlogx(th0) - _xlogx(th1)
    if x <= 0.0 or x >= 1.0:
        out[0] = 0.0
    else:
        out[0] = math.exp(log_b + th0 * math.log(x) + th1 * math.log(1.0 - x))
    return 1


@njit(cache=True, error_model="numpy")
def profile_q(code, doses, y, W, th0, th1, off, scal, beta):
    """The weighted residual criterion ``(y - X b)' W (y - X b)`` minimised over the linear
    coefficients ``b = beta`` (written) for fixed shape parameters."""
    k = doses.size
    X = np.empty((k, 3))
    g = np.empty(2)
    p = 1
    for i in range(k):
        X[i, 0] = 1.0
        p = 1 + basis(code, doses[i], th0, th1, off, scal, g)
        for j in range(1, p):
            X[i, j] = g[j - 1]
            if not math.isfinite(g[j - 1]):
                return np.inf
    A = np.zeros((p, p))
    b = np.zeros(p)
    for a in range(p):
        for c in range(p):
            s = 0.0
            for i in range(k):
                for j in range(k):
                    s += X[i, a] * W[i, j] * X[j, c]
            A[a, c] = s
        s = 0.0
        for i in range(k):
            for j in range(k):
                s += X[i, a] * W[i, j] * y[j]
        b[a] = s
    # solve the p x p system (p <= 3) by Gaussian elimination with partial pivoting
    for col in range(p):
        piv = col
        for r in range(col + 1, p):
            if abs(A[r, col]) > abs(A[piv, col]):
                piv = r
        if abs(A[piv, col]) < 1e-300:
            return np.inf
        if piv != col:
            for c in range(p):
                A[col, c], A[piv, c] = A[piv, c], A[col, c]
            b[col], b[piv] = b[piv], b[col]
        for r in range(col + 1, p):
            f = A[r, col] / A[col, col]
            for c in range(col, p):
                A[r, c] -= f * A[col, c]
            b[r] -= f * b[col]
    for r in range(p - 1, -1, -1):
        s = b[r]
        for c in range(r + 1, p):
            s -= A[r, c] * beta[c]
        beta[r] = s / A[r, r]
    for j in range(p, 3):
        beta[j] = 0.0
    q = 0.0
    res = np.empty(k)
    for i in range(k):
        f = 0.0
        for j in range(p):
            f += X[i, j] * beta[j]
        res[i] = y[i] - f
    for i in range(k):
        for j in range(k):
            q += res[i] * W[i, j] * res[j]
    return q


@njit(cache=True, error_model="numpy")
def _q_log(code, doses, y, W, x, n_theta, lo, hi, off, scal, beta):
    """The profile criterion at log shape parameters ``x`` clamped into ``[lo, hi]``."""
    t0 = math.exp(min(max(x[0], lo[0]), hi[0]))
    t1 = math.exp(min(max(x[1], lo[1]), hi[1])) if n_theta == 2 else 0.0
    return profile_q(code, doses, y, W, t0, t1, off, scal, beta)


@njit(cache=True, error_model="numpy")
def _nelder_mead(code, doses, y, W, x0, step, n_theta, lo, hi, off, scal, beta, iters):
    """Nelder–Mead on the log shape parameters (clamped to their bounds) from ``x0``;
    returns the best point (2,) and its criterion."""
    n = n_theta
    P = np.zeros((n + 1, 2))
    F = np.empty(n + 1)
    for i in range(n + 1):
        P[i, :] = x0
        if i > 0:
            P[i, i - 1] += step[i - 1]
        F[i] = _q_log(code, doses, y, W, P[i], n_theta, lo, hi, off, scal, beta)
    xr = np.zeros(2)
    xe = np.zeros(2)
    xc = np.zeros(2)
    for _ in range(iters):
        order = np.argsort(F)
        P = P[order]
        F = F[order]
        if abs(F[n] - F[0]) <= 1e-13 * (abs(F[0]) + 1e-300):
            break
        cen = np.zeros(2)
        for i in range(n):
            cen += P[i]
        cen /= n
        xr[:] = cen + (cen - P[n])
        fr = _q_log(code, doses, y, W, xr, n_theta, lo, hi, off, scal, beta)
        if fr < F[0]:
            xe[:] = cen + 2.0 * (cen - P[n])
            fe = _q_log(code, doses, y, W, xe, n_theta, lo, hi, off, scal, beta)
            if fe < fr:
                P[n], F[n] = xe, fe
            else:
                P[n], F[n] = xr, fr
        elif fr < F[n - 1]:
            P[n], F[n] = xr, fr
        else:
            xc[:] = cen + 0.5 * (P[n] - cen)
            fc = _q_log(code, doses, y, W, xc, n_theta, lo, hi, off, scal, beta)
            if fc < F[n]:
                P[n], F[n] = xc, fc
            else:
                for i in range(1, n + 1):
                    P[i] = P[0] + 0.5 * (P[i] - P[0])
                    F[i] = _q_log(code, doses, y, W, P[i], n_theta, lo, hi, off, scal, beta)
    best = np.argmin(F)
    out = P[best].copy()
    out[0] = min(max(out[0], lo[0]), hi[0])
    out[1] = min(max(out[1], lo[1]), hi[1])
    return out, F[best]


@njit(cache=True, error_model="numpy")
def fit_batch(code, n_theta, doses, Y, Wt, grid0, grid1, off, scal, active, out_coef,
              out_q):
    """Fit model ``code`` to every ``active`` trial: ``Y`` (T, k) estimates, ``Wt`` (T, k, k)
    weights; shape parameters on the log grids ``grid0`` (and ``grid1``) then refined by
    Nelder–Mead on the log scale (clamped to the bounds; restarted twice).  Writes
    ``out_coef`` (T, 3 + 2): the linear coefficients then the shape parameters, and
    ``out_q`` (T,) the weighted residual criterion."""
    T = Y.shape[0]
    beta = np.zeros(3)
    for i in range(T):
        if not active[i]:
            continue
        y = Y[i]
        W = Wt[i]
        if n_theta == 0:
            q = profile_q(code, doses, y, W, 0.0, 0.0, off, scal, beta)
            out_q[i] = q
            out_coef[i, :3] = beta
            out_coef[i, 3:] = 0.0
            continue
        best, b0, b1 = np.inf, 0, 0
        n1 = grid1.size if n_theta == 2 else 1
        for a in range(grid0.size):
            for c in range(n1):
                t1 = math.exp(grid1[c]) if n_theta == 2 else 0.0
                q = profile_q(code, doses, y, W, math.exp(grid0[a]), t1, off, scal, beta)
                if q < best:
                    best, b0, b1 = q, a, c
        lo = np.array([grid0[0], grid1[0] if n_theta == 2 else 0.0])
        hi = np.array([grid0[-1], grid1[-1] if n_theta == 2 else 0.0])
        x0 = np.array([grid0[b0], grid1[b1] if n_theta == 2 else 0.0])
        step = np.array([(hi[0] - lo[0]) / max(grid0.size - 1, 1),
                         (hi[1] - lo[1]) / max(grid1.size - 1, 1) if n_theta == 2 else 0.0])
        for _ in range(3):      # restarts from the best point so far, smaller steps
            x, q = _nelder_mead(code, doses, y, W, x0, step, n_theta, lo, hi, off, scal,
                                beta, 400)
            if q < best:
                best, x0 = q, x
            step *= 0.5
        t0 = math.exp(x0[0])
        t1 = math.exp(x0[1]) if n_theta == 2 else 0.0
        out_q[i] = profile_q(code, doses, y, W, t0, t1, off, scal, beta)
        out_coef[i, :3] = beta
        out_coef[i, 3] = t0
        out_coef[i, 4] = t1


@njit(cache=True, error_model="numpy")
def curve_batch(code, coef, doses, off, scal, out):
    """Fitted means of model ``code`` at ``doses`` (n,) for each trial's ``coef`` (T, 5)."""
    g = np.empty(2)
    for i in range(coef.shape[0]):
        for j in range(doses.size):
            p = basis(code, doses[j], coef[i, 3], coef[i, 4], off, scal, g)
            f = coef[i, 0]
            for a in range(p):
                f += coef[i, 1 + a] * g[a]
            out[i, j] = f
