"""Eigen-structure of the linear PK disposition (numba): a central compartment (volume ``V1``,
elimination ``k10``) exchanging with ``P`` peripherals ``j`` (``k1j`` out, ``kj1`` back, ``kj0``
elimination from ``j``, e.g. a liver).  Units: volumes L, rate constants 1/h.

With ``a = k10 + Σ k1j``, ``e_j = kj1 + kj0`` and ``c_j = k1j kj1`` the eigenvalues ``λ_i``
(``M = P + 1`` of them, 1/h) are the roots of the secular equation
``f(λ) = a − λ − Σ_j c_j / (e_j − λ)``; ``f`` decreases between its poles, so exactly one
root lies below ``min e_j``, one between consecutive poles and one above the largest: each is
found by a bracketed Newton iteration to machine precision.  The central concentration after
a unit amount put in compartment ``s`` is ``Σ_i G[s, i] exp(−λ_i t)`` (1/L) with
``G[0, i] = r_i / V1``, ``G[j, i] = r_i kj1 / ((e_j − λ_i) V1)``, ``r_i = −1 / f'(λ_i)``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from trialsim.pk.linear._kernels.divdiff import sort3


@njit(cache=True, inline="always")
def _secular(lam, a, e, c, P):
    f = a - lam
    fp = -1.0
    for j in range(P):
        d = e[j] - lam
        f -= c[j] / d
        fp -= c[j] / (d * d)
    return f, fp


@njit(cache=True, inline="always")
def _root(lo, hi, a, e, c, P, x0):
    x = x0 if lo < x0 < hi else 0.5 * (lo + hi)
    for _ in range(300):
        f, fp = _secular(x, a, e, c, P)
        if f == 0.0:
            return x
        if f > 0.0:
            lo = x
        else:
            hi = x
        xn = x - f / fp
        if abs(xn - x) <= 1e-14 * abs(x):
            return xn   # quadratic convergence: the next step would be below rounding
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if hi - lo <= 4.5e-16 * hi:
            return xn
        x = xn
    return x


@njit(cache=True, inline="always")
def _guesses(k10, k1p, kp1, kp0, P, g):
    """Closed-form eigenvalues (ascending) for 2 and 3 compartments, used as Newton starts:
    the quadratic, and the trigonometric solution of the cubic; coefficients written without
    cancellation (all terms positive).  Written into g (M,)."""
    if P == 1:
        a = k10 + k1p[0]
        e = kp1[0] + kp0[0]
        pr = k10 * e + k1p[0] * kp0[0]
        big = 0.5 * (a + e + np.sqrt((a - e) ** 2 + 4.0 * k1p[0] * kp1[0]))
        g[0] = pr / big
        g[1] = big
    elif P == 2:
        a = k10 + k1p[0] + k1p[1]
        e1 = kp1[0] + kp0[0]
        e2 = kp1[1] + kp0[1]
        c1 = k1p[0] * kp1[0]
        c2 = k1p[1] * kp1[1]
        B = a + e1 + e2
        C = a * e1 + a * e2 + e1 * e2 - c1 - c2
        D = k10 * e1 * e2 + k1p[0] * kp0[0] * e2 + k1p[1] * kp0[1] * e1
        p = C - B * B / 3.0
        q = -2.0 * B ** 3 / 27.0 + B * C / 3.0 - D
        if p < 0.0:
            r = 2.0 * np.sqrt(-p / 3.0)
            arg = min(1.0, max(-1.0, 3.0 * q / (p * r)))
            th = np.arccos(arg) / 3.0
            x0 = B / 3.0 + r * np.cos(th)
            x1 = B / 3.0 + r * np.cos(th - 2.0 * np.pi / 3.0)
            x2 = B / 3.0 + r * np.cos(th - 4.0 * np.pi / 3.0)
            g[0], g[1], g[2] = sort3(x0, x1, x2)
        else:
            g[:] = -1.0
    else:
        g[:] = -1.0


@njit(cache=True, inline="always")
def modes(V1, k10, k1p, kp1, kp0, site, lam, G0, Gd, W, es):
    """Eigenvalues ``lam`` (M,) ascending, gains ``G0`` (M,) and ``Gd`` (ND, M) (1/L) and
    amount weights ``W`` (P + 1, M) (L: amount in compartment k per unit of y_i) of one
    patient.  ``site[d]`` is the compartment fed by depot d (0 central, j >= 1 peripheral j);
    ``es`` is a (3, P) scratch array."""
    P = k1p.shape[0]
    a = k10
    ee = es[1]
    cs = es[2]
    for j in range(P):
        a += k1p[j]
        es[0, j] = kp1[j] + kp0[j]
        ee[j] = es[0, j]
        cs[j] = k1p[j] * kp1[j]
    for i in range(1, P):          # sort the poles (with their c_j) ascending
        j = i
        while j > 0 and ee[j - 1] > ee[j]:
            ee[j - 1], ee[j] = ee[j], ee[j - 1]
            cs[j - 1], cs[j] = cs[j], cs[j - 1]
            j -= 1
    up = k10 + 2.0 * (a - k10)
    for j in range(P):
        up = max(up, es[0, j] + kp1[j])
    up = up * (1.0 + 1e-9) + 1e-300
    _guesses(k10, k1p, kp1, kp0, P, lam)   # starting points, overwritten by the roots
    for i in range(P + 1):
        lo = 0.0 if i == 0 else ee[i - 1]
        hi = up if i == P else ee[i]
        if i > 0 and i < P and hi - lo <= 1e-13 * hi:
            lam[i] = lo   # coincident poles: a mode invisible from the central compartment
            G0[i] = 0.0
            W[0, i] = 0.0
            for j in range(P):
                W[j + 1, i] = 0.0
            for d in range(site.shape[0]):
                Gd[d, i] = 0.0
            continue
        li = _root(lo, hi, a, ee, cs, P, lam[i])
        f, fp = _secular(li, a, ee, cs, P)
        r = -1.0 / fp
        lam[i] = li
        G0[i] = r / V1
        W[0, i] = V1
        for j in range(P):
            W[j + 1, i] = V1 * k1p[j] / (es[0, j] - li)
        for d in range(site.shape[0]):
            s = site[d]
            Gd[d, i] = G0[i] if s == 0 else r * kp1[s - 1] / ((es[0, s - 1] - li) * V1)


@njit(cache=True)
def modes_batch(V1, k10, k1p, kp1, kp0, site):
    """:func:`modes` for n patients: ``lam`` (n, M), ``G0`` (n, M), ``Gd`` (n, ND, M), ``W``."""
    n, P = k1p.shape
    M = P + 1
    ND = site.shape[0]
    lam = np.empty((n, M))
    G0 = np.empty((n, M))
    Gd = np.empty((n, ND, M))
    W = np.empty((n, P + 1, M))
    es = np.empty((3, P))
    for p in range(n):
        modes(V1[p], k10[p], k1p[p], kp1[p], kp0[p], site, lam[p], G0[p], Gd[p], W[p], es)
    return lam, G0, Gd, W
