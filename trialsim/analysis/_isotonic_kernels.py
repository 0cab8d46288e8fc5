"""numba kernels of isotonic regression and of the isotonic MTD selection of interval designs.

Kernels take arrays and numbers only and never run with ``parallel=True``; the documented API
is :mod:`trialsim.analysis.isotonic`.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def pava_inplace(x, w, k, level, weight, start):
    """Weighted pool-adjacent-violators on ``x[:k]`` (weights ``w[:k]``): overwrites ``x[:k]``
    with the non-decreasing least-squares fit.  ``level``, ``weight`` and ``start`` are work
    arrays of length at least ``k``."""
    m = 0
    for i in range(k):
        level[m] = x[i]
        weight[m] = w[i]
        start[m] = i
        m += 1
        while m > 1 and level[m - 2] > level[m - 1]:
            wt = weight[m - 2] + weight[m - 1]
            level[m - 2] = (weight[m - 2] * level[m - 2] + weight[m - 1] * level[m - 1]) / wt
            weight[m - 2] = wt
            m -= 1
    for b in range(m):
        end = start[b + 1] if b + 1 < m else k
        for i in range(start[b], end):
            x[i] = level[b]


@numba.njit(cache=True)
def isotonic_select_kernel(n, tox, eligible, target, a, b, tie, upper, out_dose, out_est):
    """For each trial, the eligible dose whose isotonic DLT estimate is closest to ``target``.

    Per trial: the doses with ``eligible`` (and ``n > 0``) in increasing order get the
    estimates ``(tox + a) / (n + b)`` with weights the inverse of ``(tox + a)(n - tox + a) /
    ((n + b)^2 (n + b + 1))`` (the Beta(a, b - a) posterior variance), smoothed by weighted
    PAVA; ``tie * (1, 2, ...)`` is added so that among pooled doses above the target the lowest
    and below it the highest is closest; doses whose smoothed estimate exceeds ``upper`` are not
    selected.  The selected dose index goes to ``out_dose`` (-1 if no dose qualifies) and the
    smoothed estimates to ``out_est`` (NaN elsewhere)."""
    T, D = n.shape
    x = np.empty(D)
    w = np.empty(D)
    idx = np.empty(D, np.int64)
    level = np.empty(D)
    weight = np.empty(D)
    start = np.empty(D, np.int64)
    for t in range(T):
        k = 0
        for d in range(D):
            out_est[t, d] = np.nan
            if eligible[t, d] and n[t, d] > 0:
                nn = n[t, d] + b
                yy = tox[t, d] + a
                x[k] = yy / nn
                w[k] = (nn * nn * (nn + 1.0)) / (yy * (n[t, d] - tox[t, d] + a))
                idx[k] = d
                k += 1
        if k == 0:
            out_dose[t] = -1
            continue
        pava_inplace(x, w, k, level, weight, start)
        best = -1
        best_dist = np.inf
        for i in range(k):
            out_est[t, idx[i]] = x[i]
            dist = abs(x[i] + tie * (i + 1) - target)
            if x[i] <= upper and dist < best_dist:
                best_dist = dist
                best = i
        out_dose[t] = idx[best] if best >= 0 else -1
