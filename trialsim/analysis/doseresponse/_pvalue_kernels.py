"""numba kernel of the batched multiple contrast test (:mod:`.batch`): adjusted p-values of
many trials' contrast tests by spherical-radial integration over directions shared by all
trials, refined only until each decision at ``alpha`` is sure.  Arrays and numbers only."""
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
def mct_pvalues(A, t, want, U, coefs, df_index, two_sided, alpha, z, m0):
    """Adjusted p-values ``P(max_j T_j >= t_m)`` (two-sided ``|.|``) of the candidates marked
    in ``want`` (T, M), and their standard errors (NaN elsewhere), by spherical-radial
    integration over the shared directions ``U`` (S, n, r): ``S`` independent scrambles of
    ``n`` points each, whose first ``2**m`` points are a scramble of their own.  Each trial
    starts with ``2**m0`` points per scramble and doubles them until every wanted p-value is
    more than ``z`` standard errors (over the scrambles) from ``alpha``, or all ``n`` are used.
    ``A`` (T, M, r): each trial's correlation factor; ``t`` (T, M); ``coefs`` (n_df, 4,
    n_knots): radial-distribution splines; ``df_index`` (T,)."""
    T, M, r = A.shape
    S, n = U.shape[0], U.shape[1]
    out = np.full((T, M), np.nan)
    err = np.full((T, M), np.nan)
    for i in range(T):
        if not want[i].any():
            continue
        coef = coefs[df_index[i]]
        acc = np.zeros((S, M))
        have = 0
        pts = min(1 << m0, n)
        while True:
            for s in range(S):
                for j in range(have, pts):
                    top = -np.inf
                    for m in range(M):
                        v = 0.0
                        for q in range(r):
                            v += U[s, j, q] * A[i, m, q]
                        if two_sided:
                            v = abs(v)
                        if v > top:
                            top = v
                    for m in range(M):
                        if want[i, m]:
                            acc[s, m] += _below(t[i, m], top, coef, two_sided)
            have = pts
            decided = True
            for m in range(M):
                if not want[i, m]:
                    continue
                mean = 0.0
                for s in range(S):
                    mean += acc[s, m] / pts
                mean /= S
                ss = 0.0
                for s in range(S):
                    ss += (acc[s, m] / pts - mean) ** 2
                se = math.sqrt(ss / (S - 1) / S)
                out[i, m] = 1.0 - mean
                err[i, m] = se
                if abs(out[i, m] - alpha) <= z * se:
                    decided = False
            if decided or pts >= n:
                break
            pts = min(2 * pts, n)
    return out, err


@njit(cache=True, inline="always", error_model="numpy")
def _below(t, top, coef, two_sided):
    """P(the maximum stays below ``t``) along one direction whose largest projection is
    ``top`` (the radial distribution's CDF at the distance to the boundary)."""
    x = abs(t) if two_sided else t
    if x > 0.0:
        if top <= 0.0:
            return 1.0
        rho = x / top
        return min(max(_spline(coef, rho / (1.0 + rho)), 0.0), 1.0)
    if two_sided:
        return 0.0
    if x == 0.0:
        return 1.0 if top <= 0.0 else 0.0
    if top < 0.0:
        rho = x / top
        return 1.0 - min(max(_spline(coef, rho / (1.0 + rho)), 0.0), 1.0)
    return 0.0
