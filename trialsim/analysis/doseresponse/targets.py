"""Target doses on a fitted dose-response curve, within the studied dose range.

* ``TD(Δ)`` — the minimum effective dose for a clinically relevant effect ``Δ`` (> 0): the
  smallest dose ``d`` in ``(0, D]`` with ``s·(f(d) − f(0)) ≥ Δ``, ``s = +1`` for an increasing
  effect and ``−1`` for a decreasing one (e.g. a fall in MADRS);
* ``ED_p`` — the smallest dose reaching the fraction ``p`` of the largest effect over
  ``[0, D]``.

The first grid point (2,001 over ``[0, D]``) past the threshold is refined to the crossing by
Brent's method; a dose is NaN when the curve never gets there within ``[0, D]`` (no
extrapolation beyond the largest studied dose, unlike DoseFinding's closed forms).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.optimize import brentq

N_GRID = 2001


def _first_crossing(g: Callable[[np.ndarray], np.ndarray], level: float, top: float) -> float:
    d = np.linspace(0.0, top, N_GRID)
    v = g(d)
    hit = np.flatnonzero(v >= level)
    hit = hit[hit > 0]
    if hit.size == 0:
        return float("nan")
    j = int(hit[0])
    if v[j - 1] >= level:
        return float(d[j - 1])
    return float(brentq(lambda x: float(g(np.array([x]))[0]) - level, d[j - 1], d[j],
                        xtol=1e-12 * max(top, 1.0)))


def target_dose(effect: Callable, delta: float, max_dose: float, sign: float = 1.0) -> float:
    """``TD(Δ)``: ``effect(d)`` is ``f(d) − f(0)``; ``sign`` −1 for a decreasing effect."""
    if not delta > 0:
        raise ValueError(f"delta must be > 0 (the size of a clinically relevant effect), got "
                         f"{delta}")
    return _first_crossing(lambda d: sign * effect(d), delta, max_dose)


def effective_dose(effect: Callable, p: float, max_dose: float, sign: float = 1.0) -> float:
    """``ED_p``: the smallest dose reaching ``p`` (in (0, 1]) of the largest effect over
    ``[0, max_dose]`` (NaN when the curve has no effect in the chosen direction)."""
    if not 0 < p <= 1:
        raise ValueError(f"p must lie in (0, 1], got {p}")
    d = np.linspace(0.0, max_dose, N_GRID)
    best = float(np.max(sign * effect(d)))
    if not best > 0:
        return float("nan")
    return _first_crossing(lambda x: sign * effect(x), p * best * (1 - 1e-12), max_dose)
