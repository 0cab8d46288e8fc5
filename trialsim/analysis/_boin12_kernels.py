"""numba kernels of the BOIN12 design's final selection (:mod:`trialsim.designs.boin12`).

Kernels take arrays and numbers only and never run with ``parallel=True``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from trialsim.analysis._isotonic_kernels import pava_inplace

#: Pseudo-counts of the toxicity and efficacy estimates ``(y + A) / (n + B)``.
A, B = 0.05, 0.1
#: Weights of the efficacy fits are ``n + W_EFF``; of the toxicity fit ``n + B``.
W_EFF = 0.5
#: Increments per dose that order pooled estimates (toxicity, efficacy).
TIE_TOX, TIE_EFF = 0.001, 0.01


@numba.njit(cache=True)
def unimodal_fit(y, w, mode, out, work, iwork):
    """Unimodal fit of ``y`` (weights ``w``, length ``k``) with its peak at the 0-based index
    ``mode``, into ``out``: the procedure of R's ``Iso::ufit`` with a given mode (Turner &
    Wollan 1997, Iso 0.0-18), which BOIN12's authors use to estimate efficacy.

    A peak at the first (last) dose is the non-increasing (non-decreasing) weighted PAVA fit.
    Otherwise the doses before the peak get a non-decreasing PAVA fit and those after it a
    non-increasing one; the two fitted sequences are merged in increasing order (ties: the
    later dose first), the peak's own value is appended, and a last non-decreasing PAVA over
    that sequence, with the weights as Iso assigns them (the weight of merged position ``i`` is
    the original weight of the dose whose merged position is ``i``), gives the values, mapped
    back to their doses.  ``work`` (float64) and ``iwork`` (int64) are work arrays of length at
    least ``9 k`` and ``2 k``.
    """
    k = y.shape[0]
    lv = work[0:k]
    wt = work[k:2 * k]
    st = iwork[0:k]
    if mode >= k - 1:
        for i in range(k):
            out[i] = y[i]
        pava_inplace(out, w, k, lv, wt, st)
        return
    if mode <= 0:
        rev = work[2 * k:3 * k]
        rw = work[3 * k:4 * k]
        for i in range(k):
            rev[i] = y[k - 1 - i]
            rw[i] = w[k - 1 - i]
        pava_inplace(rev, rw, k, lv, wt, st)
        for i in range(k):
            out[i] = rev[k - 1 - i]
        return
    k1 = mode
    k2 = k - 1 - mode
    y1 = work[2 * k:2 * k + k1]
    w1 = work[3 * k:3 * k + k1]
    y2 = work[4 * k:4 * k + k2]
    w2 = work[5 * k:5 * k + k2]
    for i in range(k1):
        y1[i] = y[i]
        w1[i] = w[i]
    for j in range(k2):          # the doses after the peak, last first
        y2[j] = y[k - 1 - j]
        w2[j] = w[k - 1 - j]
    pava_inplace(y1, w1, k1, lv, wt, st)
    pava_inplace(y2, w2, k2, lv, wt, st)
    merged = work[6 * k:7 * k]
    mw = work[7 * k:8 * k]
    ind = iwork[k:2 * k]
    i1 = 0
    i2 = 0
    for i in range(k - 1):
        t1 = y1[i1] if i1 < k1 else y2[k2 - 1] + 1e10
        t2 = y2[i2] if i2 < k2 else y1[k1 - 1] + 1e10
        if t1 < t2:
            merged[i] = y1[i1]
            ind[i] = i1
            i1 += 1
        else:
            merged[i] = y2[i2]
            ind[i] = k - 1 - i2
            i2 += 1
    merged[k - 1] = y[mode]
    ind[k - 1] = mode
    # Iso sets w1(ind(i)) = w(i), then w(i) = w1(i)
    scratch = work[8 * k:9 * k]
    for i in range(k):
        scratch[ind[i]] = w[i]
    for i in range(k):
        mw[i] = scratch[i]
    pava_inplace(merged, mw, k, lv, wt, st)
    for i in range(k):
        out[ind[i]] = merged[i]


@numba.njit(cache=True)
def efficacy_estimate(n, eff, out, fits, work, iwork):
    """Model-averaged unimodal estimate of the efficacy rates of one trial into ``out``: for
    each possible peak, the :func:`unimodal_fit` of ``(eff + A) / (n + B)`` with weights
    ``n + W_EFF``; the fits are averaged with weights proportional to their binomial
    likelihoods (the binomial coefficients cancel), and ``TIE_EFF * (1, 2, ...)`` is added.
    ``fits`` is a ``(k + 3, k)`` work array; ``work``, ``iwork`` as for :func:`unimodal_fit`."""
    k = n.shape[0]
    y = fits[k]
    w = fits[k + 1]
    loglik = fits[k + 2]
    for i in range(k):
        y[i] = (eff[i] + A) / (n[i] + B)
        w[i] = n[i] + W_EFF
    top = -np.inf
    for m in range(k):
        unimodal_fit(y, w, m, fits[m], work, iwork)
        s = 0.0
        for i in range(k):
            if n[i] > 0:
                p = fits[m, i]
                s += eff[i] * math.log(p) + (n[i] - eff[i]) * math.log1p(-p)
        loglik[m] = s
        top = max(top, s)
    z = 0.0
    for m in range(k):
        loglik[m] = math.exp(loglik[m] - top)
        z += loglik[m]
    for i in range(k):
        v = 0.0
        for m in range(k):
            v += loglik[m] * fits[m, i]
        out[i] = v / z + TIE_EFF * (i + 1)


@numba.njit(cache=True)
def boin12_select_kernel(n, tox, eff, excluded, phi_t, u_eff, u_both, u_neither, u_tox,
                         out_dose, out_tox, out_eff, out_util):
    """BOIN12's optimal biological dose for each of ``T`` trials.

    Toxicity: ``(tox + A) / (n + B)`` smoothed by weighted PAVA (weights ``n + B``) plus
    ``TIE_TOX * (1, 2, ...)``; the MTD is the dose closest to ``phi_t`` (first).  Efficacy:
    :func:`efficacy_estimate`.  Utility of each dose from the four outcome utilities with the
    estimates taken as independent; doses untried or ``excluded`` take no part.  The selected
    dose maximises the utility among doses up to the MTD (first maximum), ``-1`` if none takes
    part.  Estimates go to ``out_tox``, ``out_eff`` and ``out_util`` (NaN where excluded)."""
    T, D = n.shape
    x = np.empty(D)
    w = np.empty(D)
    lv = np.empty(D)
    wt = np.empty(D)
    st = np.empty(D, np.int64)
    work = np.empty(9 * D)
    iwork = np.empty(2 * D, np.int64)
    fits = np.empty((D + 3, D))
    pe = np.empty(D)
    for t in range(T):
        for i in range(D):
            x[i] = (tox[t, i] + A) / (n[t, i] + B)
            w[i] = n[t, i] + B
        pava_inplace(x, w, D, lv, wt, st)
        mtd = 0
        best = np.inf
        for i in range(D):
            x[i] += TIE_TOX * (i + 1)
            out_tox[t, i] = x[i]
            if abs(x[i] - phi_t) < best:
                best = abs(x[i] - phi_t)
                mtd = i
        efficacy_estimate(n[t], eff[t], pe, fits, work, iwork)
        sel = -1
        top = -np.inf
        for i in range(D):
            out_eff[t, i] = pe[i]
            pt = x[i]
            pq = pe[i]
            u = (u_eff * pq * (1.0 - pt) + u_neither * (1.0 - pq) * (1.0 - pt)
                 + u_both * pq * pt + u_tox * (1.0 - pq) * pt)
            if n[t, i] == 0 or excluded[t, i]:
                out_util[t, i] = np.nan
                continue
            out_util[t, i] = u
            if i <= mtd and u > top:
                top = u
                sel = i
        out_dose[t] = sel
