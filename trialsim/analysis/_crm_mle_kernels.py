"""numba kernels of the CRM's maximum likelihood estimates: the bounded MLE of ``a`` (dfcrm's
``crm(method = "mle")``) and its weighted version under partial follow-up (dfcrm's
``titecrm(method = "mle")``).

Kernels take arrays and numbers only (no trialsim objects) and never run with
``parallel=True``; the public, documented API over them is :mod:`trialsim.analysis.crm`.
This module imports nothing from trialsim.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _score(n, tox, x, logistic, intercept, a):
    """First and second derivatives of the log likelihood with respect to ``b = exp(a)`` (the
    first has the sign of the derivative in ``a``).  Power model (``x = log s``):
    ``p_i = exp(b x_i)``; logistic (``x = logit(s) - intercept``):
    ``p_i = expit(intercept + b x_i)``."""
    b = np.exp(a)
    d1 = 0.0
    d2 = 0.0
    for i in range(x.shape[0]):
        if n[i] == 0:
            continue
        if logistic:
            p = 1.0 / (1.0 + np.exp(-(intercept + b * x[i])))
            d1 += x[i] * (tox[i] - n[i] * p)
            d2 -= n[i] * x[i] * x[i] * p * (1.0 - p)
        else:
            d1 += x[i] * tox[i]
            if n[i] > tox[i]:
                q = -np.expm1(b * x[i])  # 1 - p
                r = np.exp(b * x[i]) / q  # p / (1 - p)
                d1 -= x[i] * (n[i] - tox[i]) * r
                d2 -= (n[i] - tox[i]) * x[i] * x[i] * r / q
    return d1, d2


@numba.njit(cache=True)
def crm_mle_kernel(n, tox, x, logistic, intercept, lo, hi):
    """Maximum likelihood estimate of ``a`` on ``[lo, hi]`` for ``T`` trials.

    Both models' log likelihoods are concave in ``b = exp(a)``, so the score is decreasing in
    ``a``: Newton steps in ``b``, safeguarded by bisection in ``a`` on the bracket of a sign
    change of the score, converge to the maximiser (to ~1e-13 in ``a``).  Without DLTs the
    score is never negative (estimate ``hi``); with DLTs only it is never positive (estimate
    ``lo``).  ``n``, ``tox`` int64 ``(T, D)``; ``x`` ``(D,)``; returns ``(T,)``.
    """
    T = n.shape[0]
    out = np.empty(T)
    for t in range(T):
        if _score(n[t], tox[t], x, logistic, intercept, hi)[0] >= 0.0:
            out[t] = hi
            continue
        if _score(n[t], tox[t], x, logistic, intercept, lo)[0] <= 0.0:
            out[t] = lo
            continue
        left = lo
        right = hi
        a = 0.0 if lo < 0.0 < hi else 0.5 * (lo + hi)
        for _ in range(200):
            d1, d2 = _score(n[t], tox[t], x, logistic, intercept, a)
            if d1 > 0.0:
                left = a
            else:
                right = a
            b = np.exp(a)
            step = b - d1 / d2 if d2 < 0.0 else -1.0
            nxt = np.log(step) if step > 0.0 else 0.5 * (left + right)
            if not left < nxt < right:
                nxt = 0.5 * (left + right)
            if abs(nxt - a) < 1e-13 or right - left < 1e-13:
                a = nxt
                break
            a = nxt
        out[t] = a
    return out


#: Weighted maximum likelihood: nodes of the first pass over ``[lo, hi]`` (the weighted log
#: likelihood of the logistic model need not be concave), and the width of the bracket at
#: which golden-section refinement around the best node stops.
_MLE_NODES = 201
_MLE_TOL = 1e-10
_GOLDEN = 0.6180339887498949


@numba.njit(cache=True)
def _loglik_weighted(a, dose, tox, weight, x, logistic, intercept):
    """Weighted (TITE) log likelihood of one trial at ``a``: ``log p_d`` per DLT,
    ``log(1 - w p_d)`` per patient without one."""
    b = np.exp(a)
    v = 0.0
    for j in range(dose.shape[0]):
        d = dose[j]
        if d < 0:
            continue
        eta = b * x[d]
        if logistic:
            eta += intercept
            if tox[j]:
                v -= max(-eta, 0.0) + np.log1p(np.exp(-abs(eta)))
            elif weight[j] >= 1.0:
                v -= max(eta, 0.0) + np.log1p(np.exp(-abs(eta)))
            else:
                v += np.log1p(-weight[j] / (1.0 + np.exp(-eta)))
        elif tox[j]:
            v += eta
        elif weight[j] >= 1.0:
            v += np.log(-np.expm1(eta))
        else:
            v += np.log1p(-weight[j] * np.exp(eta))
    return v


@numba.njit(cache=True)
def _score_weighted(a, dose, tox, weight, x, logistic, intercept):
    """Derivative in ``a`` of :func:`_loglik_weighted`."""
    b = np.exp(a)
    v = 0.0
    for j in range(dose.shape[0]):
        d = dose[j]
        if d < 0:
            continue
        g = b * x[d]                     # d eta / d a
        if logistic:
            p = 1.0 / (1.0 + np.exp(-(intercept + g)))
            if tox[j]:
                v += (1.0 - p) * g
            elif weight[j] >= 1.0:
                v -= p * g
            else:
                v -= weight[j] * p * (1.0 - p) / (1.0 - weight[j] * p) * g
        else:
            e = np.exp(g)
            if tox[j]:
                v += g
            elif weight[j] >= 1.0:
                v -= e / (-np.expm1(g)) * g
            else:
                v -= weight[j] * e / (1.0 - weight[j] * e) * g
    return v


@numba.njit(cache=True)
def crm_weighted_mle_kernel(dose, tox, weight, x, logistic, intercept, lo, hi):
    """Maximiser over ``a`` in ``[lo, hi]`` of the TITE-CRM's weighted log likelihood (see
    :func:`crm_weighted_kernel` for the data) of ``T`` trials, as dfcrm's ``titecrm(method =
    "mle")`` maximises it over ``[-10, 10]``.  The logistic model's weighted log likelihood
    need not be concave, so the best of ``_MLE_NODES`` equally spaced nodes is found first,
    then refined on the bracket of its neighbours: by bisection where the score changes sign
    across it (to ~1e-13 in ``a``), else by golden-section search (to ~1e-8, the precision of
    a maximum's location from function values); an end of the interval is kept where the
    likelihood there is at least as high (no DLT: ``hi``; DLTs only: ``lo``).  ``x``: the
    model's dose values (:attr:`trialsim.analysis.crm.CRMModel.x`).  Returns ``(T,)``."""
    T = dose.shape[0]
    out = np.empty(T)
    h = (hi - lo) / (_MLE_NODES - 1)
    for t in range(T):
        dt, yt, wt = dose[t], tox[t], weight[t]
        top = -np.inf
        best = lo
        for g in range(_MLE_NODES):
            a = lo + g * h
            v = _loglik_weighted(a, dt, yt, wt, x, logistic, intercept)
            if v > top:
                top = v
                best = a
        left = max(best - h, lo)
        right = min(best + h, hi)
        if (_score_weighted(left, dt, yt, wt, x, logistic, intercept) > 0.0
                and _score_weighted(right, dt, yt, wt, x, logistic, intercept) < 0.0):
            # an interior maximum: bisection on the score's sign change, to ~1e-13 (function
            # values alone locate it to ~1e-7 where the likelihood is flat)
            while right - left > 1e-13:
                mid = 0.5 * (left + right)
                if mid <= left or mid >= right:
                    break
                if _score_weighted(mid, dt, yt, wt, x, logistic, intercept) > 0.0:
                    left = mid
                else:
                    right = mid
        c = right - _GOLDEN * (right - left)
        d = left + _GOLDEN * (right - left)
        fc = _loglik_weighted(c, dt, yt, wt, x, logistic, intercept)
        fd = _loglik_weighted(d, dt, yt, wt, x, logistic, intercept)
        while right - left > _MLE_TOL:
            if fc >= fd:
                right = d
                d = c
                fd = fc
                c = right - _GOLDEN * (right - left)
                fc = _loglik_weighted(c, dt, yt, wt, x, logistic, intercept)
            else:
                left = c
                c = d
                fc = fd
                d = left + _GOLDEN * (right - left)
                fd = _loglik_weighted(d, dt, yt, wt, x, logistic, intercept)
        a = 0.5 * (left + right)
        v = _loglik_weighted(a, dt, yt, wt, x, logistic, intercept)
        for e in (lo, hi):
            ve = _loglik_weighted(e, dt, yt, wt, x, logistic, intercept)
            if ve >= v:
                a = e
                v = ve
        out[t] = a
    return out
