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

# Nodes where the log posterior density is more than 46 below its maximum (density ratio
# < 1e-20) are skipped.  The log posterior of the power model is concave in ``a`` (prior,
# DLT and no-DLT terms all are), so the kept nodes form one window around the mode and the
# skipped mass is below ~1e-18 of the total.
_CUTOFF = 46.0


@numba.njit(cache=True, inline="always")
def _log_post(g, c_tox, k, idx, cnt, log_prior, exp_nodes, log1m_table):
    v = log_prior[g] + c_tox * exp_nodes[g]
    for j in range(k):
        v += cnt[j] * log1m_table[g, idx[j]]
    return v


@numba.njit(cache=True)
def crm_posterior_kernel(n, tox, log_skeleton, nodes, weights, log_prior, exp_nodes,
                         log1m_table, p_table, cut_index, want_mean_p):
    """Posterior of the power-model CRM parameter ``a`` for ``T`` trials by quadrature.

    Model ``p_i(a) = s_i ** exp(a)``.  With the unnormalised log posterior at node ``x_g``
    ``L_g = log_prior[g] + sum_i tox_i * exp(x_g) * log(s_i)
    + (n_i - tox_i) * log(1 - s_i ** exp(x_g))`` and ``q_g = weights[g] * exp(L_g - max L)``,
    ``E[h(a) | data] = sum_g h(x_g) q_g / sum_g q_g``.

    The mode is located by bisection on the grid (``L`` is concave), then ``L`` is evaluated
    outwards from it until it falls more than ``_CUTOFF`` below the maximum.

    Arguments (``T`` trials, ``D`` doses, ``G`` nodes sorted ascending, ``K`` cuts):
    ``n``, ``tox`` int64 ``(T, D)``; ``log_skeleton`` ``(D,)``; ``nodes``, ``weights``,
    ``log_prior``, ``exp_nodes`` (``exp(nodes)``) ``(G,)``;
    ``log1m_table[g, i] = log(1 - s_i ** exp(x_g))``, ``p_table[g, i] = s_i ** exp(x_g)``
    ``(G, D)``; ``cut_index`` int64 ``(K,)`` non-decreasing: for each cut, the number of
    leading nodes that lie below it; ``want_mean_p``: also compute ``E[p_i | data]``.

    Returns ``mean``, ``var`` of ``a`` ``(T,)``; ``cdf`` ``(T, K)`` = ``P(a < cut_k | data)``;
    ``mean_p`` ``(T, D)`` (``(0, D)`` unless ``want_mean_p``); ``edge`` ``(T,)``: the largest
    relative density ``exp(L_g - max L)`` at the two end nodes (should be ~0).
    """
    T, D = n.shape
    G = nodes.shape[0]
    K = cut_index.shape[0]
    mean = np.empty(T)
    var = np.empty(T)
    cdf = np.empty((T, K))
    mean_p = np.zeros((T if want_mean_p else 0, D))
    edge = np.zeros(T)
    lp = np.empty(G)
    idx = np.empty(D, np.int64)
    cnt = np.empty(D)
    for t in range(T):
        c_tox = 0.0
        k = 0
        for i in range(D):
            if tox[t, i] > 0:
                c_tox += tox[t, i] * log_skeleton[i]
            m = n[t, i] - tox[t, i]
            if m > 0:
                idx[k] = i
                cnt[k] = m
                k += 1
        # bisection for the grid maximum of the concave L
        lo = 0
        hi = G - 1
        while hi - lo > 2:
            mid = (lo + hi) // 2
            a = _log_post(mid, c_tox, k, idx, cnt, log_prior, exp_nodes, log1m_table)
            b = _log_post(mid + 1, c_tox, k, idx, cnt, log_prior, exp_nodes, log1m_table)
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
        best = lo
        top = -np.inf
        for g in range(lo, hi + 1):
            v = _log_post(g, c_tox, k, idx, cnt, log_prior, exp_nodes, log1m_table)
            lp[g] = v
            if v > top:
                top = v
                best = g
        # expand the window outwards from the mode
        left = best
        while left > 0:
            v = _log_post(left - 1, c_tox, k, idx, cnt, log_prior, exp_nodes, log1m_table)
            if v < top - _CUTOFF:
                break
            left -= 1
            lp[left] = v
        right = best
        while right < G - 1:
            v = _log_post(right + 1, c_tox, k, idx, cnt, log_prior, exp_nodes, log1m_table)
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
