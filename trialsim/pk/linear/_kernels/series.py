"""Taylor series of the PK state over one short step (numba).

Under constant inputs the state (y, a, z) of :mod:`trialsim.pk.linear._kernels.step` obeys the linear
ODE ``a_d' = −ka_d a_d + R_d``, ``y_i' = −λ_i y_i + G0_i R_0 + Σ_d Gd_i ka_d a_d``,
``z' = ke0 (Σ_i y_i − z)``, so its scaled Taylor coefficients ``u_n = x^(n)(0) dt^n / n!`` follow
from ``u_{n+1} = dt / (n + 1) · (A u_n + [n = 0] input)`` and ``x(θ dt) = Σ_n u_n θ^n``.
:func:`series` is used only while the fastest rate × dt stays at most :data:`TAYLOR_MAX`
(terms grow at most ~e^2-fold before they decay, so the rounding error stays within a few
times that of the closed form: metrics agree with the closed-form walk to ~1e-14 relative)
and is truncated once two orders in a row add less than 1e-18 of the sum of the magnitudes;
otherwise it returns −1 and the caller uses the closed form.  Units: time h, rates 1/h,
concentrations mg/L, amounts mg.
"""
from __future__ import annotations

import numpy as np
from numba import njit

TAYLOR_MAX = 2.0  # largest (fastest rate × step) for which the series is used
K_MAX = 48        # cap on the orders (~30 suffice at TAYLOR_MAX)


@njit(cache=True)
def series_workspace(M, ND):
    """(ty (K_MAX + 1, M), ta (K_MAX + 1, ND), tz (K_MAX + 1,), pc (K_MAX + 1,), gk (ND, M)) for
    :func:`series`: scaled coefficients of y, a, z and of C = Σ y; gk is scratch."""
    K1 = K_MAX + 1
    return np.zeros((K1, M)), np.zeros((K1, ND)), np.zeros(K1), np.zeros(K1), np.zeros((ND, M))


@njit(cache=True)
def series(dt, y, a, z, R, lam, G0, Gd, ka, ke0, has_ce, dep_used, sw):
    """Scaled Taylor coefficients (orders 0..K) of the state (y, a, z) over a step of dt h under
    the inputs R, into sw = :func:`series_workspace`; C's are in pc, Ce's in tz.  Returns K, or
    −1 when the fastest rate × dt exceeds :data:`TAYLOR_MAX` (or no convergence by K_MAX)."""
    ty, ta, tz, pc, gk = sw
    M = y.shape[0]
    ND = a.shape[0]
    mu = 0.0
    for i in range(M):
        mu = max(mu, lam[i])
    for d in range(ND):
        if dep_used[d]:            # an unused depot stays empty: its terms are all zero
            mu = max(mu, ka[d])
        for i in range(M):
            gk[d, i] = Gd[d, i] * ka[d] if dep_used[d] else 0.0
    if has_ce:
        mu = max(mu, ke0)
    if not mu * dt <= TAYLOR_MAX:
        return -1
    total = abs(z)
    c = 0.0
    for i in range(M):
        ty[0, i] = y[i]
        c += y[i]
        total += abs(y[i])
    for d in range(ND):
        ta[0, d] = a[d]
        total += abs(a[d])
    pc[0] = c
    tz[0] = z
    small = 0
    for n in range(K_MAX):
        h = dt / (n + 1)
        first = 1.0 if n == 0 else 0.0   # the inputs enter the first derivative only
        m = 0.0
        for d in range(ND):
            u = h * (first * R[1 + d] - ka[d] * ta[n, d])
            ta[n + 1, d] = u
            m += abs(u)
        c = 0.0
        for i in range(M):
            s = first * G0[i] * R[0] - lam[i] * ty[n, i]
            for d in range(ND):
                s += gk[d, i] * ta[n, d]
            u = h * s
            ty[n + 1, i] = u
            c += u
            m += abs(u)
        pc[n + 1] = c
        u = h * ke0 * (pc[n] - tz[n]) if has_ce else 0.0
        tz[n + 1] = u
        m += abs(u)
        total += m
        small = small + 1 if m <= 1e-18 * total else 0
        if small == 2:
            return n + 1
    return -1


@njit(cache=True, inline="always")
def series_step(y, a, sw, K):
    """Move y and a to the end of the step of :func:`series` (orders 0..K); returns z there."""
    ty, ta, tz, pc, gk = sw
    for i in range(y.shape[0]):
        s = 0.0
        for n in range(K, -1, -1):   # smallest terms first
            s += ty[n, i]
        y[i] = s
    for d in range(a.shape[0]):
        s = 0.0
        for n in range(K, -1, -1):
            s += ta[n, d]
        a[d] = s
    s = 0.0
    for n in range(K, -1, -1):
        s += tz[n]
    return s


@njit(cache=True, inline="always")
def horner(p, K, theta, dt):
    """Value, first and second time derivative (per h, per h²) at θ dt of ``Σ_{n<=K} p_n θ^n``."""
    v = p[K]
    d1 = 0.0
    d2 = 0.0
    for n in range(K - 1, -1, -1):
        d2 = d2 * theta + d1
        d1 = d1 * theta + v
        v = v * theta + p[n]
    return v, d1 / dt, 2.0 * d2 / (dt * dt)
