"""Dropout of escalation patients after their dose, and the replacement of those it leaves
not evaluable.

Each patient slot of a trial has a time from dose to leaving, exponential with the conduct's
``dropout_per_week`` hazard, from the trial's ``dropout`` stream, and a DLT onset time within
the window from its ``onset`` stream (both fixed before any design sees the patient).  A
patient is **not evaluable** when they leave before the observation window ends and no DLT was
observed before they left; the design never sees them, and the cohort takes the next patient
slot in their place.  So the slots a trial may use exceed ``max_patients``:
:func:`patient_slots` allows for replacements with a negative binomial bound.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from trialsim.conduct.spec import HOURS_PER_WEEK, Conduct
from trialsim.rng import stream_uniforms

#: Chance that a trial needs more replacement slots than :func:`patient_slots` provides.
SLOT_TAIL = 1e-9


def drops(conduct: Conduct | None) -> bool:
    """Whether patients may drop out (a calendar with a positive dropout hazard)."""
    return conduct is not None and conduct.dropout_per_week > 0


def p_leave_in_window(conduct: Conduct) -> float:
    """Probability a patient leaves before the window's end (an upper bound on the share not
    evaluable)."""
    return -math.expm1(-conduct.dropout_per_week * conduct.window_h / HOURS_PER_WEEK)


def patient_slots(max_patients: int, conduct: Conduct | None) -> int:
    """Patient slots a trial of ``max_patients`` evaluable patients needs: ``max_patients``
    without dropout, else enough that the replacements run out with probability below
    :data:`SLOT_TAIL` (the negative binomial count of patients not evaluable)."""
    if not drops(conduct):
        return int(max_patients)
    q = p_leave_in_window(conduct)
    extra = 0 if q == 0 else int(stats.nbinom.isf(SLOT_TAIL, max_patients, 1.0 - q)) + 1
    return int(max_patients) + extra


def leave_times(conduct: Conduct, seed: int, scenario: int, trials: np.ndarray,
                n_slots: int) -> np.ndarray:
    """Hours from dose to leaving of each patient slot, ``(T, n_slots)``."""
    u = stream_uniforms(seed, scenario, np.asarray(trials), "dropout", n_slots)
    return -np.log1p(-u) * (HOURS_PER_WEEK / conduct.dropout_per_week)
