"""Divided differences of ``x ↦ exp(−x dt)``: the convolutions of decaying exponentials that
make the exact superposition step of the linear PK engine (:mod:`trialsim.pk.linear._kernels.step`).

``D[x0..xm](dt)`` is the m-fold convolution of ``exp(−x_k t)`` at ``dt`` (h^m), i.e. (−1)^m
times the divided difference of ``x ↦ exp(−x dt)`` on the nodes ``x_k`` (1/h, ≥ 0).  It is
evaluated stably when nodes coincide or nearly do (ka = λ, ke0 = ka ...): by the recurrence on
the two extreme nodes when their spread × dt exceeds :data:`SPREAD` (at most ~1 digit lost),
otherwise by a Taylor series in complete homogeneous polynomials; the tests hold
:func:`dd1`, :func:`dd2` and :func:`dd3` to 2e-14 relative against a 50-digit reference.
"""
from __future__ import annotations

from math import exp, expm1

from numba import njit

SPREAD = 1.0       # above this spread × dt, divided differences use the recurrence


@njit(cache=True)
def dd1(a, b, dt):
    """``D[a, b](dt) = ∫0^dt exp(−a (dt − s)) exp(−b s) ds`` (h), exact for a = b."""
    if a > b:
        a, b = b, a
    x = (b - a) * dt
    ph = 1.0 if x == 0.0 else -expm1(-x) / x
    return exp(-a * dt) * dt * ph


@njit(cache=True)
def _taylor(u1, u2, u3, m):
    # Σ_j (−1)^j h_j(u_1..u_m) / (j + m)!  for 0 <= u <= SPREAD, m in {2, 3}.
    p1 = 1.0
    h2 = 1.0
    h3 = 1.0
    fact = 0.5 if m == 2 else 1.0 / 6.0
    total = fact
    sign = 1.0
    for j in range(1, 60):
        p1 *= u1
        h2 = h2 * u2 + p1
        if m == 3:
            h3 = h3 * u3 + h2
            h = h3
        else:
            h = h2
        fact /= j + m
        sign = -sign
        term = h * fact
        total += sign * term
        if term < 1e-18 * total:
            break
    return total


@njit(cache=True, inline="always")
def sort3(a, b, c):
    """(a, b, c) in ascending order."""
    if a > b:
        a, b = b, a
    if b > c:
        b, c = c, b
    if a > b:
        a, b = b, a
    return a, b, c


@njit(cache=True)
def dd2(a, b, c, dt):
    """``D[a, b, c](dt)`` (h²): triple convolution of exponentials."""
    a, b, c = sort3(a, b, c)
    if (c - a) * dt > SPREAD:
        return (dd1(a, b, dt) - dd1(b, c, dt)) / (c - a)
    return dt * dt * exp(-a * dt) * _taylor((b - a) * dt, (c - a) * dt, 0.0, 2)


@njit(cache=True)
def dd3(a, b, c, d, dt):
    """``D[a, b, c, d](dt)`` (h³): quadruple convolution of exponentials."""
    a, b, c = sort3(a, b, c)
    if d < c:                      # insert d
        a, b, c, d = sort3(a, b, d) + (c,)
    if (d - a) * dt > SPREAD:
        return (dd2(a, b, c, dt) - dd2(b, c, d, dt)) / (d - a)
    return dt * dt * dt * exp(-a * dt) * _taylor((b - a) * dt, (c - a) * dt, (d - a) * dt, 3)
