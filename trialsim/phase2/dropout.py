"""Dropout of phase II patients: exponential times by each patient's hazard."""
from __future__ import annotations

import numpy as np

from trialsim.phase2.study import Phase2Study

HOURS_PER_WEEK = 168.0


def dropout_times(study: Phase2Study, u, arm, traj, base, visits, event) -> np.ndarray:
    """Exponential dropout times (h) by each patient's hazard (see :class:`Dropout`)."""
    d = study.dropout
    if d.rate_per_week == 0:
        return np.full(arm.shape, np.inf)
    rate = np.full(arm.shape, d.rate_per_week / HOURS_PER_WEEK)
    if d.hazard_ratio is not None:
        rate = rate * np.asarray(d.hazard_ratio, float)[arm]
    if d.no_response_hazard_ratio != 1.0:
        v = int(np.argmin(np.abs(visits - d.response_visit_h)))
        poor = traj[..., v] > (1.0 - d.response_fraction) * base
        rate = np.where(poor, rate * d.no_response_hazard_ratio, rate)
    names = list(study.safety)
    for name, hr in d.adverse_event_hazard_ratio.items():
        rate = np.where(event[..., names.index(name)], rate * hr, rate)
    with np.errstate(divide="ignore", over="ignore"):     # a vanishing hazard: never
        return np.where(rate > 0, -np.log(np.maximum(u, 1e-300)) / rate, np.inf)
