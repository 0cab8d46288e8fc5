"""numba kernels of the batched MCP-Mod (:mod:`.batch`): profile least-squares fits of the
dose-response models, and the fitted curves and target doses, for many trials at once (each trial's result
depends on its own data only, so it is the same whatever the batching).  Arrays and numbers
only (the contrast tests' p-values: :mod:`._pvalue_kernels`).

Model codes (:data:`CODES` in :mod:`.batch`): 0 linear, 1 linlog, 2 quadratic, 3 emax,
4 sig_emax, 5 exponential, 6 logistic, 7 beta.  Every model is ``e0 + sum_j b_j g_j(d;
theta)`` with one or two basis functions ``g``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always", error_model="numpy")
def _xlogx(x):
    return 0.0 if x == 0.0 else x * math.log(x)


@njit(cache=True, inline="always", error_model="numpy")
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
        else:       # x/(1 + x) with x = (d/ED50)^h, as a logistic in log dose
            z = th1 * (math.log(th0) - math.log(d))
            out[0] = 1.0 / (1.0 + math.exp(z)) if z < 700.0 else 0.0
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
def _prepare(W, y, w1, wy, s3):
    """Per-trial parts of the weighted criterion: ``w1 = W 1``, ``wy = W y`` and ``s3 = (1'W1,
    1'Wy, y'Wy)``."""
    k = y.size
    a00 = b0 = yWy = 0.0
    for i in range(k):
        u = 0.0
        v = 0.0
        for j in range(k):
            u += W[i, j]
            v += W[i, j] * y[j]
        w1[i] = u
        wy[i] = v
        a00 += u
        b0 += v
        yWy += y[i] * v
    s3[0] = a00
    s3[1] = b0
    s3[2] = yWy


@njit(cache=True, inline="always", error_model="numpy")
def _profile(X, nb, W, w1, wy, s3, beta, Wx):
    """``min_b (y - X b)' W (y - X b)`` over the intercept and the ``nb`` (1 or 2) coefficients
    of the basis columns ``X`` (k, 2), from the per-trial parts of :func:`_prepare`; writes
    ``b`` to ``beta`` (3,).  Normal equations (2 × 2 or 3 × 3) solved in closed form; ``Wx``
    (k,) is scratch.  No allocation: the inner loop of every fit."""
    k = X.shape[0]
    a00, b0, yWy = s3[0], s3[1], s3[2]
    a01 = a11 = b1 = 0.0
    for i in range(k):
        v = 0.0
        for j in range(k):
            v += W[i, j] * X[j, 0]
        a11 += X[i, 0] * v
        a01 += w1[i] * X[i, 0]
        b1 += wy[i] * X[i, 0]
        Wx[i] = v
    if nb == 1:
        det = a00 * a11 - a01 * a01
        if not abs(det) > 1e-300:
            return np.inf
        c0 = (b0 * a11 - a01 * b1) / det
        c1 = (a00 * b1 - a01 * b0) / det
        c2 = 0.0
        fit = c0 * b0 + c1 * b1
    else:
        a02 = a12 = a22 = b2 = 0.0
        for i in range(k):
            v = 0.0
            for j in range(k):
                v += W[i, j] * X[j, 1]
            a22 += X[i, 1] * v
            a12 += Wx[i] * X[i, 1]
            a02 += w1[i] * X[i, 1]
            b2 += wy[i] * X[i, 1]
        m00 = a11 * a22 - a12 * a12
        m01 = a01 * a22 - a12 * a02
        m02 = a01 * a12 - a11 * a02
        det = a00 * m00 - a01 * m01 + a02 * m02
        if not abs(det) > 1e-300:
            return np.inf
        c0 = (b0 * m00 - a01 * (b1 * a22 - a12 * b2) + a02 * (b1 * a12 - a11 * b2)) / det
        c1 = (a00 * (b1 * a22 - a12 * b2) - b0 * m01 + a02 * (a01 * b2 - b1 * a02)) / det
        c2 = (a00 * (a11 * b2 - b1 * a12) - a01 * (a01 * b2 - b1 * a02) + b0 * m02) / det
        fit = c0 * b0 + c1 * b1 + c2 * b2
    beta[0] = c0
    beta[1] = c1
    beta[2] = c2
    # at the least-squares solution (y - Xb)'W(y - Xb) = y'Wy - b'X'Wy
    q = yWy - fit
    return q if q > 0.0 else 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _fill(code, doses, th0, th1, off, scal, X):
    """Basis columns of model ``code`` at ``doses`` into ``X`` (k, 2); returns how many (0:
    not finite)."""
    nb = 1
    for i in range(doses.size):
        nb = basis(code, doses[i], th0, th1, off, scal, X[i])
        if not (math.isfinite(X[i, 0]) and (nb < 2 or math.isfinite(X[i, 1]))):
            return 0
        if nb < 2:
            X[i, 1] = 0.0
    return nb


@njit(cache=True, inline="always", error_model="numpy")
def _q_at(code, doses, x0, x1, n_theta, lo, hi, off, scal, X, W, w1, wy, s3, beta, Wx):
    """The profile criterion at the log shape parameters ``(x0, x1)`` clamped to the bounds."""
    t0 = math.exp(min(max(x0, lo[0]), hi[0]))
    t1 = math.exp(min(max(x1, lo[1]), hi[1])) if n_theta == 2 else 0.0
    nb = _fill(code, doses, t0, t1, off, scal, X)
    if nb == 0:
        return np.inf
    return _profile(X, nb, W, w1, wy, s3, beta, Wx)


GOLD = 0.3819660112501051
#: Nelder–Mead stops when the simplex is this small (log shape parameters).
NM_XTOL = 1e-6


@njit(cache=True, error_model="numpy")
def _brent(code, doses, a, b, x, fx, lo, hi, off, scal, X, W, w1, wy, s3, beta, Wx, tol):
    """Brent's minimisation (golden section with parabolic steps) of the one-parameter
    profile criterion on ``[a, b]`` from the point ``x`` with value ``fx``; returns
    ``(x, f(x))``."""
    w = v = x
    fw = fv = fx
    d = e = 0.0
    for _ in range(100):
        m = 0.5 * (a + b)
        tol1 = tol * abs(x) + 1e-12
        tol2 = 2.0 * tol1
        if abs(x - m) <= tol2 - 0.5 * (b - a):
            break
        use_golden = True
        if abs(e) > tol1:
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            if abs(p) < abs(0.5 * q * e) and p > q * (a - x) and p < q * (b - x):
                e, d = d, p / q
                u = x + d
                if u - a < tol2 or b - u < tol2:
                    d = tol1 if m >= x else -tol1
                use_golden = False
        if use_golden:
            e = (a - x) if x >= m else (b - x)
            d = GOLD * e
        u = x + (d if abs(d) >= tol1 else (tol1 if d > 0 else -tol1))
        fu = _q_at(code, doses, u, 0.0, 1, lo, hi, off, scal, X, W, w1, wy, s3, beta, Wx)
        if fu <= fx:
            if u >= x:
                a = x
            else:
                b = x
            v, w, x = w, x, u
            fv, fw, fx = fw, fx, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, w = w, u
                fv, fw = fw, fu
            elif fu <= fv or v == x or v == w:
                v = u
                fv = fu
    return x, fx


@njit(cache=True, error_model="numpy")
def _nelder_mead(code, doses, x0, x1, f0, s0, s1, lo, hi, off, scal, X, W, w1, wy, s3, beta,
                 Wx, P, F, iters, xtol):
    """Nelder–Mead on the two log shape parameters (clamped to their bounds) from ``(x0,
    x1)`` (value ``f0``) with initial steps ``(s0, s1)``, until the simplex is smaller than
    ``xtol``; ``P`` (3, 2) and ``F`` (3,) are scratch.  Returns the best point and value."""
    P[0, 0], P[0, 1], F[0] = x0, x1, f0
    P[1, 0], P[1, 1] = x0 + s0, x1
    P[2, 0], P[2, 1] = x0, x1 + s1
    for i in range(1, 3):
        F[i] = _q_at(code, doses, P[i, 0], P[i, 1], 2, lo, hi, off, scal, X, W, w1, wy, s3,
                     beta, Wx)
    for _ in range(iters):
        for i in range(1, 3):           # insertion sort of three vertices
            j = i
            while j > 0 and F[j] < F[j - 1]:
                F[j], F[j - 1] = F[j - 1], F[j]
                P[j, 0], P[j - 1, 0] = P[j - 1, 0], P[j, 0]
                P[j, 1], P[j - 1, 1] = P[j - 1, 1], P[j, 1]
                j -= 1
        size = max(abs(P[1, 0] - P[0, 0]), abs(P[1, 1] - P[0, 1]),
                   abs(P[2, 0] - P[0, 0]), abs(P[2, 1] - P[0, 1]))
        if size < xtol or F[2] - F[0] <= 1e-15 * abs(F[0]):
            break
        c0 = 0.5 * (P[0, 0] + P[1, 0])
        c1 = 0.5 * (P[0, 1] + P[1, 1])
        r0, r1 = 2.0 * c0 - P[2, 0], 2.0 * c1 - P[2, 1]
        fr = _q_at(code, doses, r0, r1, 2, lo, hi, off, scal, X, W, w1, wy, s3, beta, Wx)
        if fr < F[0]:
            e0, e1 = 3.0 * c0 - 2.0 * P[2, 0], 3.0 * c1 - 2.0 * P[2, 1]
            fe = _q_at(code, doses, e0, e1, 2, lo, hi, off, scal, X, W, w1, wy, s3, beta, Wx)
            if fe < fr:
                P[2, 0], P[2, 1], F[2] = e0, e1, fe
            else:
                P[2, 0], P[2, 1], F[2] = r0, r1, fr
        elif fr < F[1]:
            P[2, 0], P[2, 1], F[2] = r0, r1, fr
        else:
            k0, k1 = 0.5 * (c0 + P[2, 0]), 0.5 * (c1 + P[2, 1])
            fc = _q_at(code, doses, k0, k1, 2, lo, hi, off, scal, X, W, w1, wy, s3, beta, Wx)
            if fc < F[2]:
                P[2, 0], P[2, 1], F[2] = k0, k1, fc
            else:
                for i in range(1, 3):
                    P[i, 0] = P[0, 0] + 0.5 * (P[i, 0] - P[0, 0])
                    P[i, 1] = P[0, 1] + 0.5 * (P[i, 1] - P[0, 1])
                    F[i] = _q_at(code, doses, P[i, 0], P[i, 1], 2, lo, hi, off, scal, X, W,
                                 w1, wy, s3, beta, Wx)
    best = 0
    for i in range(1, 3):
        if F[i] < F[best]:
            best = i
    return P[best, 0], P[best, 1], F[best]


@njit(cache=True, error_model="numpy")
def fit_batch(code, n_theta, doses, Y, Wt, grid0, grid1, off, scal, active, out_coef,
              out_q):
    """Fit model ``code`` to every ``active`` trial: ``Y`` (T, k) estimates, ``Wt`` (T, k, k)
    weights.  Shape parameters: the best point of the log grid ``grid0`` (× ``grid1``), then
    Brent's method between its neighbours (one parameter) or Nelder–Mead from it, restarted
    once (two), on the log scale clamped to the grid's ends.  Writes ``out_coef`` (T, 3 + 2):
    the linear coefficients then the shape parameters, and ``out_q`` (T,) the weighted
    residual criterion."""
    T, k = Y.shape
    G0 = grid0.size
    G1 = grid1.size if n_theta == 2 else 1
    lo = np.array([grid0[0], grid1[0] if n_theta == 2 else 0.0])
    hi = np.array([grid0[-1], grid1[-1] if n_theta == 2 else 0.0])
    # the basis on the grid is the same for every trial
    table = np.zeros((G0, G1, k, 2))
    nbs = np.zeros((G0, G1), np.int64)
    if n_theta > 0:
        for a in range(G0):
            for c in range(G1):
                t1 = math.exp(grid1[c]) if n_theta == 2 else 0.0
                nbs[a, c] = _fill(code, doses, math.exp(grid0[a]), t1, off, scal, table[a, c])
    step0 = (hi[0] - lo[0]) / max(G0 - 1, 1)
    step1 = (hi[1] - lo[1]) / max(G1 - 1, 1) if n_theta == 2 else 0.0
    for i in range(T):
        if not active[i]:
            continue
        W = Wt[i]
        w1 = np.empty(k)
        wy = np.empty(k)
        s3 = np.empty(3)
        beta = np.zeros(3)
        Wx = np.empty(k)
        X = np.zeros((k, 2))
        _prepare(W, Y[i], w1, wy, s3)
        if n_theta == 0:
            nb = _fill(code, doses, 0.0, 0.0, off, scal, X)
            out_q[i] = _profile(X, nb, W, w1, wy, s3, beta, Wx)
            out_coef[i, :3] = beta
            out_coef[i, 3:] = 0.0
            continue
        best, b0, b1 = np.inf, 0, 0
        for a in range(G0):
            for c in range(G1):
                if nbs[a, c] == 0:
                    continue
                q = _profile(table[a, c], nbs[a, c], W, w1, wy, s3, beta, Wx)
                if q < best:
                    best, b0, b1 = q, a, c
        x0 = grid0[b0]
        x1 = grid1[b1] if n_theta == 2 else 0.0
        if n_theta == 1:
            x0, best = _brent(code, doses, grid0[max(b0 - 1, 0)], grid0[min(b0 + 1, G0 - 1)],
                              x0, best, lo, hi, off, scal, X, W, w1, wy, s3, beta, Wx, 1.5e-8)
        else:
            P = np.empty((3, 2))
            F = np.empty(3)
            s0, s1 = step0, step1
            for _ in range(2):      # a restart guards against a collapsed simplex
                y0, y1, q = _nelder_mead(code, doses, x0, x1, best, s0, s1, lo, hi, off, scal,
                                         X, W, w1, wy, s3, beta, Wx, P, F, 400, NM_XTOL)
                if q <= best:
                    best, x0, x1 = q, y0, y1
                s0, s1 = 0.1 * step0, 0.1 * step1
        t0 = math.exp(min(max(x0, lo[0]), hi[0]))
        t1 = math.exp(min(max(x1, lo[1]), hi[1])) if n_theta == 2 else 0.0
        out_q[i] = _q_at(code, doses, x0, x1, n_theta, lo, hi, off, scal, X, W, w1, wy, s3,
                         beta, Wx)
        out_coef[i, :3] = beta
        out_coef[i, 3] = t0
        out_coef[i, 4] = t1


@njit(cache=True, inline="always", error_model="numpy")
def _mean_at(codes, coef, weights, d, off, scal, g):
    """The (weighted) fitted mean at dose ``d`` of one trial's models."""
    f = 0.0
    for m in range(codes.size):
        w = weights[m]
        if w == 0.0:
            continue
        p = basis(codes[m], d, coef[m, 3], coef[m, 4], off, scal, g)
        v = coef[m, 0]
        for a in range(p):
            v += coef[m, 1 + a] * g[a]
        f += w * v
    return f


@njit(cache=True, error_model="numpy")
def curves_batch(codes, coef, weights, doses, grid, sign, delta, p, off, scal, fitted,
                 target):
    """For every trial with model weights ``weights`` (T, F) (all zero: no fit) of the model
    families ``codes`` (F,) with coefficients ``coef`` (T, F, 5): the fitted means at
    ``doses`` into ``fitted`` (T, k), and the target dose into ``target`` (T,): the smallest
    dose where the effect over placebo (times ``sign``) reaches ``delta``, or, when ``delta``
    is NaN, the fraction ``p`` of its largest value on the grid (NaN when never reached) —
    the first point of ``grid`` past it, refined by bisection."""
    T = coef.shape[0]
    G = grid.size
    for i in range(T):
        has = False
        for m in range(codes.size):
            if weights[i, m] != 0.0:
                has = True
        if not has:
            continue
        g = np.empty(2)
        for j in range(doses.size):
            fitted[i, j] = _mean_at(codes, coef[i], weights[i], doses[j], off, scal, g)
        base = _mean_at(codes, coef[i], weights[i], grid[0], off, scal, g)
        if math.isnan(delta):
            top = 0.0                  # the effect at grid[0]
            for j in range(1, G):
                e = sign * (_mean_at(codes, coef[i], weights[i], grid[j], off, scal, g) - base)
                if e > top:
                    top = e
            level = p * top * (1.0 - 1e-12)
        else:
            level = delta
        prev = 0.0
        for j in range(1, G):
            e = sign * (_mean_at(codes, coef[i], weights[i], grid[j], off, scal, g) - base)
            if e >= level:
                if prev >= level:
                    target[i] = grid[j - 1]
                    break
                a, b = grid[j - 1], grid[j]   # bisection to the crossing
                for _ in range(200):
                    if b - a <= 1e-12 * grid[G - 1]:
                        break
                    mid = 0.5 * (a + b)
                    em = sign * (_mean_at(codes, coef[i], weights[i], mid, off, scal, g) - base)
                    if em >= level:
                        b = mid
                    else:
                        a = mid
                target[i] = b
                break
            prev = e
