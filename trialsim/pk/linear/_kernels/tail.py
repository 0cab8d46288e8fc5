"""Certified monotone tail of the streamed metrics (numba).

Once every input has ended (no breakpoint left, every rate zero) the future of the state
(y, a, z) of :mod:`trialsim.pk.linear._kernels.step` is a sum of decaying exponentials in the time
``s`` (h) since now: with ``g_di = Gd[d, i] ka_d a_d`` and ``t_di = g_di / (λ_i − ka_d)``,

    C(s)  = Σ_i (y_i − Σ_d t_di) exp(−λ_i s) + Σ_d (Σ_i t_di) exp(−ka_d s)
    Ce(s) = Σ_μ e_μ exp(−μ s) + (z − Σ_μ e_μ) exp(−ke0 s),   e_μ = ke0 c_μ / (ke0 − μ)

(``c_μ`` the coefficients of C on the rates μ ∈ {λ_i, ka_d}; all in mg/L).  :func:`tail_decreasing`
proves that C' (and Ce') stay negative for every s >= 0 with an upper bound (see
:func:`_negative`), so the metrics walk can stop there: no later extremum, each threshold
crossed at most once.  The bound is only sufficient; near-coincident rates, a sum that is zero
or a derivative that is not yet clearly negative give False and the walk goes on.
"""
from __future__ import annotations

import numpy as np
from numba import njit

MARGIN = 1e-12  # relative safety margin of the bound: rounding of the coefficients and of the walk


@njit(cache=True, inline="always")
def _negative(mu, c, m, n, ix):
    """Is Σ_{j<n} c_j exp(−mu_j s) < 0 for every s >= 0 (mu_j >= 0)?  Upper bound: with the terms
    sorted by decreasing mu, ``S_j = c_j + max(S_{j+1}, 0)`` bounds the sum of terms j, j+1, ...
    by ``S_j exp(−mu_j s)`` (a positive remainder decays no slower than exp(−mu_j s)); certified
    when ``S_last + MARGIN Σ m_j < 0``, ``m_j`` bounding the magnitudes summed into c_j.
    ``ix`` is an int scratch array of length >= n."""
    for j in range(n):
        ix[j] = j
    for j in range(1, n):           # insertion sort, decreasing mu
        q = j
        while q > 0 and mu[ix[q - 1]] < mu[ix[q]]:
            ix[q - 1], ix[q] = ix[q], ix[q - 1]
            q -= 1
    s = 0.0
    tot = 0.0
    for q in range(n):
        j = ix[q]
        s = max(s, 0.0) + c[j]
        tot += m[j]
    return s + MARGIN * tot < 0.0


@njit(cache=True)
def tail_workspace(M, ND):
    """Scratch arrays of :func:`tail_decreasing` for M modes and ND depots."""
    n = M + ND + 1
    return np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.int64)


@njit(cache=True)
def tail_decreasing(y, a, z, lam, Gd, ka, ke0, has_ce, tw):
    """True when, with no input any more, C (and Ce if has_ce) decrease for all later times
    from the state (y (M,) mg/L, a (ND,) mg, z mg/L); ``tw`` from :func:`tail_workspace`."""
    mu, cc, mc, dc, dm, ix = tw
    M = y.shape[0]
    ND = a.shape[0]
    n = M + ND
    for i in range(M):
        mu[i] = lam[i]
        cc[i] = y[i]
        mc[i] = abs(y[i])
    for d in range(ND):
        mu[M + d] = ka[d]
        cc[M + d] = 0.0
        mc[M + d] = 0.0
        if a[d] == 0.0:
            continue
        for i in range(M):
            g = Gd[d, i] * ka[d] * a[d]
            if g == 0.0:
                continue
            den = lam[i] - ka[d]
            if abs(den) <= 1e-12 * max(lam[i], ka[d]):
                return False           # coincident rates: a t·exp(−λt) term, not handled here
            t = g / den
            cc[i] -= t
            cc[M + d] += t
            mc[i] += abs(t)
            mc[M + d] += abs(t)
    for j in range(n):
        dc[j] = -mu[j] * cc[j]
        dm[j] = mu[j] * mc[j]
    if not _negative(mu, dc, dm, n, ix):
        return False
    if not has_ce:
        return True
    ce_k = z
    me_k = abs(z)
    for j in range(n):
        if mc[j] == 0.0:
            dc[j] = 0.0
            dm[j] = 0.0
            continue
        den = ke0 - mu[j]
        if abs(den) <= 1e-12 * max(ke0, mu[j]):
            return False
        e = ke0 * cc[j] / den
        em = ke0 * mc[j] / abs(den)
        ce_k -= e
        me_k += em
        dc[j] = -mu[j] * e
        dm[j] = mu[j] * em
    mu[n] = ke0
    dc[n] = -ke0 * ce_k
    dm[n] = ke0 * me_k
    return _negative(mu, dc, dm, n + 1, ix)
