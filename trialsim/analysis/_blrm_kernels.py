"""numba kernel of the two-parameter Bayesian logistic regression model (BLRM) posterior.

Kernels take arrays and numbers only and never run with ``parallel=True``; the documented API
is :mod:`trialsim.analysis.blrm`, its slow SciPy twin ``tests/reference/blrm.py``.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _log_post(t1, t2, e, n, y, x, mu1, mu2, p11, p12, p22):
    """Log posterior (up to a constant) at ``(t1, t2)``; ``e = exp(t2)``, computed by the
    caller once per ``t2``."""
    d1, d2 = t1 - mu1, t2 - mu2
    v = -0.5 * (p11 * d1 * d1 + 2.0 * p12 * d1 * d2 + p22 * d2 * d2)
    for d in range(x.size):
        if n[d] > 0:
            eta = t1 + e * x[d]
            # y * eta - n * log(1 + exp(eta)), overflow-safe
            if eta > 0:
                v += y[d] * eta - n[d] * (eta + np.log1p(np.exp(-eta)))
            else:
                v += y[d] * eta - n[d] * np.log1p(np.exp(eta))
    return v


@numba.njit(cache=True)
def blrm_exceed_kernel(n, y, x, mu1, mu2, p11, p12, p22, logit_cuts, g1, g2, half_width,
                       half_width2, out, out_mode):
    """``out[s, d, k] = P(p_d >= cut_k | data of state s)`` for the model
    ``logit p_d = t1 + exp(t2) * x_d``, prior ``(t1, t2) ~ N(mu, P^-1)``.

    Per state: the posterior mode by Fisher scoring with step halving; then a grid sheared
    along the conditional mean of ``t1`` given ``t2`` (Fisher information at the mode), in
    standardised coordinates ``z = sinh(v)`` with ``v`` at ``g2`` (``t2``) and ``g1`` (``t1``)
    midpoints over ``+-half_width2`` and ``+-half_width`` (fine near the mode, reaching far into
    the tails, which are heavier than the normal approximation's).  For each ``t2`` node the
    event ``p_d >= cut`` is ``t1 >= logit(cut) - exp(t2) x_d``: the mass below it is the midpoint
    sum over the cells below with its Euler-Maclaurin correction at the cell edge, plus the part
    of the cut cell from a quadratic through the three neighbouring midpoint densities.
    ``out_mode[s]`` gets the mode.
    """
    S, D = n.shape
    K = logit_cuts.size
    h1 = 2.0 * half_width / g1
    h2 = 2.0 * half_width2 / g2
    w = np.empty(g1)
    cum = np.empty(g1 + 1)
    sh1 = np.empty(g1)
    ch1 = np.empty(g1)
    for i in range(g1):
        v1 = -half_width + (i + 0.5) * h1
        sh1[i] = np.sinh(v1)
        ch1[i] = np.cosh(v1)
    for s in range(S):
        ns, ys = n[s], y[s]
        t1, t2 = mu1, mu2
        lp = _log_post(t1, t2, np.exp(t2), ns, ys, x, mu1, mu2, p11, p12, p22)
        f11 = f12 = f22 = 0.0
        for it in range(100):
            d1, d2 = t1 - mu1, t2 - mu2
            a1 = -(p11 * d1 + p12 * d2)
            a2 = -(p12 * d1 + p22 * d2)
            f11, f12, f22 = p11, p12, p22
            e = np.exp(t2)
            for d in range(D):
                if ns[d] > 0:
                    eta = t1 + e * x[d]
                    p = 1.0 / (1.0 + np.exp(-eta))
                    r = ys[d] - ns[d] * p
                    wt = ns[d] * p * (1.0 - p)
                    dx = e * x[d]
                    a1 += r
                    a2 += r * dx
                    f11 += wt
                    f12 += wt * dx
                    f22 += wt * dx * dx
            det = f11 * f22 - f12 * f12
            s1 = (f22 * a1 - f12 * a2) / det
            s2 = (f11 * a2 - f12 * a1) / det
            step = 1.0
            while step > 1e-10:
                new = _log_post(t1 + step * s1, t2 + step * s2, np.exp(t2 + step * s2), ns, ys,
                                x, mu1, mu2, p11, p12, p22)
                if new >= lp - 1e-12:
                    break
                step *= 0.5
            t1 += step * s1
            t2 += step * s2
            lp = _log_post(t1, t2, np.exp(t2), ns, ys, x, mu1, mu2, p11, p12, p22)
            if abs(step * s1) + abs(step * s2) < 1e-11:
                break
        out_mode[s, 0] = t1
        out_mode[s, 1] = t2
        det = f11 * f22 - f12 * f12
        sd1 = 1.0 / np.sqrt(f11)          # sd of t1 given t2
        slope = f12 / f11                 # conditional mean of t1 moves by -slope per unit t2
        sd2 = np.sqrt(f11 / det)          # marginal sd of t2
        for d in range(D):
            for k in range(K):
                out[s, d, k] = 0.0
        total = 0.0
        for j in range(g2):
            v2 = -half_width2 + (j + 0.5) * h2
            th2 = t2 + sd2 * np.sinh(v2)
            jac2 = np.cosh(v2)
            c1 = t1 - slope * (th2 - t2)
            e2 = np.exp(th2)
            for i in range(g1):
                th1 = c1 + sd1 * sh1[i]
                w[i] = np.exp(_log_post(th1, th2, e2, ns, ys, x, mu1, mu2, p11, p12, p22)
                              - lp) * ch1[i]
            cum[0] = 0.0
            for i in range(g1):
                cum[i + 1] = cum[i] + w[i]
            col = cum[g1]
            total += col * jac2
            for d in range(D):
                for k in range(K):
                    tau = logit_cuts[k] - e2 * x[d]
                    q = (np.arcsinh((tau - c1) / sd1) + half_width) / h1   # position in cells
                    if q <= 0.0:
                        out[s, d, k] += col * jac2
                        continue
                    if q >= g1:
                        continue
                    i = int(q)
                    fr = q - i
                    b = w[i]
                    a = w[i - 1] if i > 0 else b
                    c = w[i + 1] if i + 1 < g1 else b
                    u = fr - 0.5
                    part = (b * fr + 0.25 * (c - a) * (u * u - 0.25)
                            + (a - 2.0 * b + c) / 6.0 * (u * u * u + 0.125))
                    # mass below the cell's lower edge: the midpoint sums plus their
                    # Euler-Maclaurin correction (h^2 / 24) f'(edge)
                    below = cum[i] + (b - a) / 24.0 + part
                    out[s, d, k] += (col - below) * jac2
        for d in range(D):
            for k in range(K):
                v = out[s, d, k] / total
                out[s, d, k] = min(max(v, 0.0), 1.0)
