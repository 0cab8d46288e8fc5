"""numba kernels of the designs layer.

Kernels take arrays and numbers only (no trialsim objects) and never run with
``parallel=True``.  The public, documented API over them is :mod:`trialsim.analysis.crm`;
their slow pure NumPy/SciPy twin lives in the repository's ``tests/reference/crm.py``.

This module imports nothing from trialsim (it is imported by
``trialsim.analysis.crm`` while ``trialsim.designs`` may still be initialising).
"""
from __future__ import annotations

import numba
import numpy as np

# Nodes where the log posterior density is more than 36 below its maximum (density ratio
# < 2.4e-16, below double precision's relative rounding) are skipped.  The log posterior of the
# power model is concave in ``a`` (prior, DLT and no-DLT terms all are), so the kept nodes form
# one window around the mode and the skipped mass is below ~1e-13 of the total (at most ~1,000
# nodes of a grid each carry less than 2.4e-16 of it).
_CUTOFF = 36.0
# Without concavity (the logistic model) the log posterior is first evaluated at every
# ``_STRIDE``-th node; fine nodes are then evaluated only between the outermost coarse nodes
# within ``_CUTOFF + _MARGIN`` of the coarse maximum (and one stride beyond).  With the grid
# step at most 2/3 of the posterior sd, the log density at a coarse node is within ~4 of
# any nearby peak, so the margin of 8 loses nothing above the cutoff.
_STRIDE = 8
_MARGIN = 8.0
#: Weighted (TITE) posterior: nodes of the first fine pass over the region the coarse pass
#: keeps, and the agreement between successive passes at which the step stops halving (the
#: rule converges like ``exp(-c / step**2)``: halving the step takes an error of ``e`` to about
#: ``e**4``; on the TITE-CRM benchmark's states the means and variances agree with those at a
#: tolerance of 1e-9 to 1e-12 relative).
_FINE_NODES = 32
_FINE_TOL = 1e-6


@numba.njit(cache=True, inline="always")
def _buffers(T, G, D):
    """Outputs (posterior mean, variance, edge density) of ``T`` trials and the work arrays of
    the quadrature kernels: log density at ``G`` nodes, packed per-dose counts (``_pack``)."""
    return (np.empty(T), np.empty(T), np.zeros(T), np.empty(G), np.empty(D, np.int64),
            np.empty(D), np.empty(D, np.int64), np.empty(D))


@numba.njit(cache=True, inline="always")
def _pack(n_tox, n_other, other_is_total, tidx, tcnt, idx, cnt):
    """The doses with DLTs (``tidx``, counts ``tcnt``) and with DLT-free patients (``idx``,
    ``cnt``) of one trial's per-dose counts: DLTs ``n_tox`` and ``n_other``, all patients if
    ``other_is_total`` else the DLT-free ones; returns how many doses of each."""
    kt = 0
    k = 0
    for i in range(n_tox.shape[0]):
        if n_tox[i] > 0:
            tidx[kt] = i
            tcnt[kt] = n_tox[i]
            kt += 1
        free = n_other[i] - n_tox[i] if other_is_total else n_other[i]
        if free > 0:
            idx[k] = i
            cnt[k] = free
            k += 1
    return kt, k


@numba.njit(cache=True, inline="always")
def _log_post(g, kt, tidx, tcnt, k, idx, cnt, log_prior, log_p_table, log1m_table):
    v = log_prior[g]
    for j in range(kt):
        v += tcnt[j] * log_p_table[g, tidx[j]]
    for j in range(k):
        v += cnt[j] * log1m_table[g, idx[j]]
    return v


@numba.njit(cache=True)
def crm_posterior_kernel(n, tox, nodes, weights, log_prior, log_p_table, log1m_table, p_table,
                         cut_index, want_mean_p, unimodal):
    """Posterior of a one-parameter CRM model's parameter ``a`` for ``T`` trials by quadrature.

    With the model's ``log p_i`` and ``log(1 - p_i)`` tabulated at the nodes, the unnormalised
    log posterior at node ``x_g`` is ``L_g = log_prior[g] + sum_i tox_i * log_p_table[g, i]
    + (n_i - tox_i) * log1m_table[g, i]`` and, with ``q_g = weights[g] * exp(L_g - max L)``,
    ``E[h(a) | data] = sum_g h(x_g) q_g / sum_g q_g``.

    If ``unimodal`` (the power model: ``L`` is concave in ``a``) the mode is located by
    bisection on the grid and ``L`` is evaluated outwards from it until it falls more than
    ``_CUTOFF`` below the maximum; otherwise (the logistic model) a coarse pass over every
    ``_STRIDE``-th node bounds the region above the cutoff, and every node in it is evaluated.

    Arguments (``T`` trials, ``D`` doses, ``G`` nodes sorted ascending, ``K`` cuts):
    ``n``, ``tox`` int64 ``(T, D)``; ``nodes``, ``weights``, ``log_prior`` ``(G,)``;
    ``log_p_table[g, i] = log p_i(x_g)``, ``log1m_table[g, i] = log(1 - p_i(x_g))``,
    ``p_table[g, i] = p_i(x_g)`` ``(G, D)``; ``cut_index`` int64 ``(K,)`` non-decreasing: for
    each cut, the number of leading nodes that lie below it; ``want_mean_p``: also compute
    ``E[p_i | data]``.

    Returns ``mean``, ``var`` of ``a`` ``(T,)``; ``cdf`` ``(T, K)`` = ``P(a < cut_k | data)``;
    ``mean_p`` ``(T, D)`` (``(0, D)`` unless ``want_mean_p``); ``edge`` ``(T,)``: the largest
    relative density ``exp(L_g - max L)`` at the two end nodes (should be ~0).
    """
    T, D = n.shape
    G = nodes.shape[0]
    K = cut_index.shape[0]
    mean, var, edge, lp, tidx, tcnt, idx, cnt = _buffers(T, G, D)
    cdf = np.empty((T, K))
    mean_p = np.zeros((T if want_mean_p else 0, D))
    for t in range(T):
        kt, k = _pack(tox[t], n[t], True, tidx, tcnt, idx, cnt)
        lo = 0
        hi = G - 1
        # bisection for the grid maximum of a concave L
        while unimodal and hi - lo > 2:
            mid = (lo + hi) // 2
            a = _log_post(mid, kt, tidx, tcnt, k, idx, cnt, log_prior, log_p_table, log1m_table)
            b = _log_post(mid + 1, kt, tidx, tcnt, k, idx, cnt, log_prior, log_p_table,
                          log1m_table)
            if a < b:
                lo = mid + 1
            elif a > b:
                hi = mid
            elif a == -np.inf:  # flat -inf stretch: give up bisecting, scan everything
                lo = 0
                hi = G - 1
                break
            else:
                lo = mid
                hi = mid + 1
        if not unimodal:
            top = -np.inf
            for g in range(0, G + _STRIDE - 1, _STRIDE):
                v = _log_post(min(g, G - 1), kt, tidx, tcnt, k, idx, cnt, log_prior,
                              log_p_table, log1m_table)
                lp[min(g, G - 1)] = v
                top = max(top, v)
            first = G - 1
            last = 0
            for g in range(0, G + _STRIDE - 1, _STRIDE):
                if lp[min(g, G - 1)] >= top - _CUTOFF - _MARGIN:
                    first = min(first, g)
                    last = max(last, min(g, G - 1))
            lo = max(first - _STRIDE, 0)
            hi = min(last + _STRIDE, G - 1)
        best = lo
        top = -np.inf
        for g in range(lo, hi + 1):
            v = _log_post(g, kt, tidx, tcnt, k, idx, cnt, log_prior, log_p_table, log1m_table)
            lp[g] = v
            if v > top:
                top = v
                best = g
        left = lo
        right = hi
        if unimodal:  # expand the window outwards from the mode
            left = best
            while left > 0:
                v = _log_post(left - 1, kt, tidx, tcnt, k, idx, cnt, log_prior, log_p_table,
                              log1m_table)
                if v < top - _CUTOFF:
                    break
                left -= 1
                lp[left] = v
            right = best
            while right < G - 1:
                v = _log_post(right + 1, kt, tidx, tcnt, k, idx, cnt, log_prior, log_p_table,
                              log1m_table)
                if v < top - _CUTOFF:
                    break
                right += 1
                lp[right] = v
        z = 0.0
        s1 = 0.0
        for g in range(left, right + 1):
            w = weights[g] * np.exp(lp[g] - top)
            lp[g] = w
            z += w
            s1 += w * nodes[g]
        mu = s1 / z
        s2 = 0.0
        for g in range(left, right + 1):
            dx = nodes[g] - mu
            s2 += lp[g] * dx * dx
        mean[t] = mu
        var[t] = s2 / z
        if left == 0:
            edge[t] = lp[0] / weights[0]
        if right == G - 1:
            edge[t] = max(edge[t], lp[G - 1] / weights[G - 1])
        acc = 0.0
        g = left
        for c in range(K):  # one sweep: cut_index is non-decreasing
            stop = min(max(cut_index[c], left), right + 1)
            while g < stop:
                acc += lp[g]
                g += 1
            cdf[t, c] = acc / z
        if want_mean_p:
            for g in range(left, right + 1):
                for i in range(D):
                    mean_p[t, i] += lp[g] * p_table[g, i]
            for i in range(D):
                mean_p[t, i] /= z
    return mean, var, cdf, mean_p, edge


@numba.njit(cache=True, inline="always")
def _log_post_weighted(g, kt, tidx, tcnt, k, idx, cnt, pdose, pw, log_prior, log_p_table,
                       log1m_table, p_table):
    v = _log_post(g, kt, tidx, tcnt, k, idx, cnt, log_prior, log_p_table, log1m_table)
    # one logarithm for all partly followed patients (a product of factors in (0, 1], taken
    # into the sum before it could underflow)
    prod = 1.0
    for j in range(pdose.shape[0]):
        d = pdose[j]
        if d < 0:
            break
        prod *= 1.0 - pw[j] * p_table[g, d]
        if prod < 1e-200:
            v += np.log(prod)
            prod = 1.0
    return v + np.log(prod)


@numba.njit(cache=True)
def crm_weighted_kernel(dose, tox, weight, nodes, log_prior, log_p_table, log1m_table, p_table):
    """Posterior mean and variance of a CRM model's ``a`` with partly followed patients (the
    TITE-CRM's weighted likelihood, Cheung & Chappell 2000), for ``T`` trials by quadrature.

    Patients ``dose`` int64 ``(T, K)`` (dose index; ``-1``: none), ``tox`` bool ``(T, K)``
    (DLT observed) and ``weight`` ``(T, K)`` in ``[0, 1]``: a patient with a DLT contributes
    ``log p_d(a)``, one without ``log(1 - w p_d(a))`` (tabulated when ``w = 1``).  The weighted
    log likelihood need
    not be concave, so every ``_STRIDE``-th node is evaluated first (with the grid step at
    most 2/3 of the posterior sd this pass cannot miss a peak); then the trapezoidal rule over
    the region where that pass is within ``_CUTOFF + _MARGIN`` of its maximum (the density is
    negligible outside it), on equally spaced nodes whose step is halved until two successive
    steps agree.  Nodes (uniform, ascending) and tables as in :func:`crm_posterior_kernel`.
    Returns ``mean``, ``var`` and ``edge`` ``(T,)``.
    """
    T, K = dose.shape
    D = log_p_table.shape[1]
    G = nodes.shape[0]
    mean, var, edge, lp, tidx, tcnt, idx, cnt = _buffers(T, G, D)
    nt = np.empty(D)
    nn = np.empty(D)
    pdose = np.empty(K, np.int64)      # patients in follow-up without a DLT (-1 ends them)
    pw = np.empty(K)
    for t in range(T):
        nt[:] = 0.0
        nn[:] = 0.0
        kp = 0
        for j in range(K):
            d = dose[t, j]
            if d < 0:
                continue
            if tox[t, j]:
                nt[d] += 1.0
            elif weight[t, j] >= 1.0:
                nn[d] += 1.0
            else:
                pdose[kp] = d
                pw[kp] = weight[t, j]
                kp += 1
        if kp < K:
            pdose[kp] = -1
        kt, k = _pack(nt, nn, False, tidx, tcnt, idx, cnt)
        top = -np.inf
        for g in range(0, G + _STRIDE - 1, _STRIDE):
            gg = min(g, G - 1)
            v = _log_post_weighted(gg, kt, tidx, tcnt, k, idx, cnt, pdose, pw, log_prior,
                                   log_p_table, log1m_table, p_table)
            lp[gg] = v
            top = max(top, v)
        first = G - 1
        last = 0
        for g in range(0, G + _STRIDE - 1, _STRIDE):
            gg = min(g, G - 1)
            if lp[gg] >= top - _CUTOFF - _MARGIN:
                first = min(first, gg)
                last = max(last, gg)
        left = max(first - _STRIDE, 0)
        right = min(last + _STRIDE, G - 1)
        # the trapezoidal rule over the region, from a step giving ~_FINE_NODES nodes, halved
        # until the estimates with the step and with twice the step agree (a posterior with a
        # narrow peak and a wide tail needs a step finer than its region suggests); the rule
        # converges like exp(-c / step**2), so agreement to _FINE_TOL leaves an error many
        # orders of magnitude smaller
        step = 1
        while step * 2 * _FINE_NODES <= right - left:
            step *= 2
        right = left + (right - left) // step * step
        for g in range(left, right + 1, step):
            if g % _STRIDE:        # nodes of the coarse pass are known
                lp[g] = _log_post_weighted(g, kt, tidx, tcnt, k, idx, cnt, pdose, pw,
                                           log_prior, log_p_table, log1m_table, p_table)
        while True:
            top = -np.inf
            best = left
            for g in range(left, right + 1, step):
                if lp[g] > top:
                    top = lp[g]
                    best = g
            c = nodes[best]        # moments about the peak node: no cancellation
            z = z2 = s1 = s12 = s2 = s22 = 0.0
            for g in range(left, right + 1, step):
                w = np.exp(lp[g] - top)
                dx = nodes[g] - c
                z += w
                s1 += w * dx
                s2 += w * dx * dx
                if (g - left) % (2 * step) == 0:
                    z2 += w
                    s12 += w * dx
                    s22 += w * dx * dx
            d1 = s1 / z
            d2 = s12 / z2
            v = s2 / z - d1 * d1
            v2 = s22 / z2 - d2 * d2
            mu = c + d1
            if step == 1 or (abs(d1 - d2) <= _FINE_TOL * np.sqrt(v)
                             and abs(v - v2) <= _FINE_TOL * v):
                break
            step //= 2
            for g in range(left + step, right + 1, 2 * step):
                if g % _STRIDE:
                    lp[g] = _log_post_weighted(g, kt, tidx, tcnt, k, idx, cnt, pdose, pw,
                                               log_prior, log_p_table, log1m_table, p_table)
        mean[t] = mu
        var[t] = v
        if left == 0:
            edge[t] = np.exp(lp[0] - top)
        if right >= G - 1 - step:
            edge[t] = max(edge[t], np.exp(lp[right] - top))
    return mean, var, edge


@numba.njit(cache=True, inline="always")
def _skeleton_log_post(g, k, y, n, doses, m, log_prior, log_p, log1m):
    s = log_prior[g]
    for j in range(m):
        d = doses[j]
        if y[d] > 0:
            s += y[d] * log_p[k, g, d]
        if n[d] > y[d]:
            s += (n[d] - y[d]) * log1m[k, g, d]
    return s


@numba.njit(cache=True)
def skeleton_fits_kernel(n, y, nodes, weights, log_prior, log_p, log1m):
    """Power-model fits of binary data under each of ``K`` skeletons.

    ``n``, ``y`` int64 ``(U, D)``: patients and events per dose; ``nodes``, ``weights``,
    ``log_prior`` ``(G,)``: a quadrature rule over ``a`` and the unnormalised log prior there;
    ``log_p``, ``log1m`` ``(K, G, D)``: ``log p`` and ``log(1 - p)`` of each skeleton's curve at
    each node.  Returns the posterior mean of ``a`` and the log of the integral of likelihood
    times (unnormalised) prior, both ``(U, K)``.  The log posterior is concave in ``a`` (each
    dose's terms are, whatever the skeleton), so its mode is found by bisection over the nodes
    and only the window of nodes within ``_CUTOFF`` of it is summed (as the CRM kernel)."""
    U, D = n.shape
    K, G = log_p.shape[0], log_p.shape[1]
    mean = np.empty((U, K))
    log_ev = np.empty((U, K))
    doses = np.empty(D, np.int64)
    for u in range(U):
        m = 0
        for d in range(D):
            if n[u, d] > 0:
                doses[m] = d
                m += 1
        nu, yu = n[u], y[u]
        for k in range(K):
            lo, hi = 0, G - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if (_skeleton_log_post(mid + 1, k, yu, nu, doses, m, log_prior, log_p, log1m)
                        > _skeleton_log_post(mid, k, yu, nu, doses, m, log_prior, log_p,
                                             log1m)):
                    lo = mid + 1
                else:
                    hi = mid
            top = _skeleton_log_post(lo, k, yu, nu, doses, m, log_prior, log_p, log1m)
            tot = weights[lo]
            first = weights[lo] * nodes[lo]
            for step in (-1, 1):
                g = lo + step
                while 0 <= g < G:
                    v = _skeleton_log_post(g, k, yu, nu, doses, m, log_prior, log_p, log1m) - top
                    if v < -_CUTOFF:
                        break
                    w = weights[g] * np.exp(v)
                    tot += w
                    first += w * nodes[g]
                    g += step
            mean[u, k] = first / tot
            log_ev[u, k] = top + np.log(tot)
    return mean, log_ev
