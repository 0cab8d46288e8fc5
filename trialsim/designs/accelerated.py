"""Accelerated titration (Simon et al. 1997), with binary dose-limiting toxicity."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from trialsim.designs._common import (NDoses, check_state, make_decision, stop_at_max_patients,
                                      start_dose_below_n_doses)
from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState
from trialsim.designs.three_plus_three import (ESCALATE_0_OF_3, ESCALATE_1_OF_6, STAY_1_OF_3,
                                               STAY_TOP, STOP_TOP, STOP_TOXIC, CohortsOfThree)
from trialsim.registry import register
from trialsim.spec import spec

START = "start: one patient (accelerated titration)"
ESCALATE_SINGLE = "escalate: no DLT in the single patient (accelerated titration)"
FIRST_DLT = "stay: first DLT, 2 more at the current dose (3+3 from here)"
TOP_SINGLE = "stay: top dose reached without DLT, 2 more there (3+3 from here)"


@register("design", "accelerated_titration")
@spec
class AcceleratedTitration(CohortsOfThree):
    """Accelerated titration (Simon, Freidlin, Rubinstein et al. 1997, J Natl Cancer Inst
    89:1138-1147, design 2 with a binary DLT): one patient per dose level, escalating after each
    patient without DLT; at the first DLT (or on reaching the top dose) that dose is expanded to
    3 patients and the 3+3 rules take over in cohorts of 3 (0 of 3 or at most 1 of 6: escalate,
    at the top dose 3 more then stop selecting it; 1 of 3: 3 more; 2 or more: stop and select the
    dose below, none below the starting dose).  Doses are never revisited, so a trial has at
    most ``6 * n_doses`` patients.  ``cohort_size`` is 3, the size of the
    standard cohorts; the titration cohorts of one and the expansions of two are set per
    decision.  (Simon's grade-2 trigger and intrapatient escalation are not modelled: outcomes
    are binary.)
    """

    n_doses: NDoses
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0

    own_cohort_sizes = True
    _start_ok = start_dose_below_n_doses


    def decide_batch(self, state: BatchState) -> BatchDecision:
        check_state(state, self.n_doses, "accelerated_titration")
        T, D = state.n_trials, self.n_doses
        n, t = state.n, state.tox
        fresh = state.total == 0
        cur = np.where(fresh, self.start_dose, state.current)
        rows = np.arange(T)
        n_cur, t_cur = n[rows, cur], t[rows, cur]
        top = cur == D - 1
        single = ~fresh & (n_cur == 1)
        esc1 = single & (t_cur == 0) & ~top
        top1 = single & (t_cur == 0) & top
        first = single & (t_cur == 1)
        std = ~fresh & ~single
        toxic = std & (t_cur >= 2)
        three, six = std & (n_cur == 3), std & (n_cur == 6)
        stay1 = three & (t_cur == 1)
        stay_top = three & (t_cur == 0) & top
        esc3 = three & (t_cur == 0) & ~top
        esc6 = six & (t_cur <= 1) & ~top
        stop_top = six & (t_cur <= 1) & top
        conds = [fresh, esc1, top1, first, toxic, stay1, stay_top, esc3, esc6, stop_top]
        nxt = np.select(conds, [cur, cur + 1, cur, cur, NO_DOSE, cur, cur, cur + 1, cur + 1,
                                NO_DOSE], NO_DOSE)
        size = np.select(conds, [1, 1, 2, 2, 0, 3, 3, 3, 3, 0], 0)
        reason = np.select(conds, [START, ESCALATE_SINGLE, TOP_SINGLE, FIRST_DLT, STOP_TOXIC,
                                   STAY_1_OF_3, STAY_TOP, ESCALATE_0_OF_3, ESCALATE_1_OF_6,
                                   STOP_TOP], "")
        unknown = ~np.logical_or.reduce(conds)
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise ValueError(f"impossible accelerated-titration state in trial {i}: "
                             f"n={n[i].tolist()}, tox={t[i].tolist()}, current={int(cur[i])}")
        below = np.where(cur - 1 >= self.start_dose, cur - 1, NO_DOSE)
        cleared = ((n_cur == 1) & (t_cur == 0)) | ((n_cur == 3) & (t_cur == 0)) \
            | ((n_cur == 6) & (t_cur <= 1))
        rec = np.where(fresh, NO_DOSE, np.where(cleared & ~toxic, cur, below))
        stop = toxic | stop_top
        code = np.select([toxic, stop_top], ["toxic", "top_dose_cleared"], "")
        admissible = ~(toxic[:, None] & (np.arange(D)[None, :] >= cur[:, None]))
        decision = make_decision(nxt, stop, rec, admissible, reason, code, np.maximum(size, 1))
        return stop_at_max_patients(state, decision, self.max_patients)

    @classmethod
    def example(cls, n_doses: int = 5) -> "AcceleratedTitration":
        return cls(n_doses=n_doses)
