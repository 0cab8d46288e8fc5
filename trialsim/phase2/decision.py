"""The dose to take forward, by the study's :class:`~trialsim.phase2.study.Decision`, from
estimates (a simulated trial's) or from the truth (the dose the rule would choose knowing
it) — one function for both, so the comparison is like for like."""
from __future__ import annotations

import numpy as np

from trialsim.phase2.study import Decision


def take_forward(decision: Decision, doses: np.ndarray, signal: np.ndarray, td: np.ndarray,
                 effect: np.ndarray, rates: dict[str, np.ndarray], delta: float) -> np.ndarray:
    """Index of the dose taken forward per trial (−1: no-go).

    ``doses`` (D,) placebo first; ``signal`` (T,) the dose-response test rejected flatness;
    ``td`` (T,) the target dose TD(delta) (NaN: not reached); ``effect`` (T, D) the effect
    over placebo in the direction of benefit; ``rates`` measure name → (T, D) rate of its
    safety event per arm."""
    T, D = effect.shape
    safe = np.ones((T, D), bool)
    for name, limit in decision.safety_limits.items():
        safe &= rates[name] <= limit
    if decision.type == "target_dose":
        active = doses[1:]
        ok = signal & np.isfinite(td)
        idx = np.searchsorted(active, np.where(ok, td, np.inf) - 1e-9 * active[-1],
                              side="left")
        fwd = np.where(ok & (idx < active.size), idx + 1, -1)
        rows = np.arange(T)
        return np.where((fwd > 0) & safe[rows, np.maximum(fwd, 0)], fwd, -1)
    u = np.where(safe, utility(decision, effect, rates, delta), -np.inf)[:, 1:]
    best = np.argmax(u, axis=1)
    top = u[np.arange(T), best]
    return np.where(signal & (top > decision.min_utility), best + 1, -1)


def utility(decision: Decision, effect: np.ndarray, rates: dict[str, np.ndarray],
            delta: float) -> np.ndarray:
    """The clinical utility index (…, D) of :class:`Decision` (``type: utility``)."""
    u = np.minimum(effect / delta, decision.cap)
    for name, w in decision.utility_weights.items():
        u = u - w * rates[name]
    return u
