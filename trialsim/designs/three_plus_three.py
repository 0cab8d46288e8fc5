"""The classic 3+3 design without de-escalation."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from trialsim.designs._common import check_state, make_decision, stop_at_max_patients
from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState, Decision, Design
from trialsim.outcomes import TrialHistory
from trialsim.registry import register
from trialsim.spec import context, spec

START = "start"
#: Stop codes.
CODE_TOXIC = "toxic"
CODE_TOP = "top_dose_cleared"
ESCALATE_0_OF_3 = "escalate: 0 of 3 DLTs at the current dose"
ESCALATE_1_OF_6 = "escalate: at most 1 of 6 DLTs at the current dose"
STAY_1_OF_3 = "stay: 1 of 3 DLTs at the current dose, 3 more there"
STAY_TOP = "stay: 0 of 3 DLTs at the top dose, 3 more there"
STOP_TOXIC = "stop: 2 or more DLTs at the current dose"
STOP_TOP = "stop: at most 1 of 6 DLTs at the top dose"


@register("design", "three_plus_three")
@spec
class ThreePlusThree(Design):
    """The classic 3+3 design **without de-escalation** (Storer 1989; Korn et al. 1994).

    Rules, applied to the current dose ``d`` (the highest and most recent dose given):

    * cohorts of 3; the first cohort gets ``start_dose`` (0-based, default the lowest dose);
    * 3 patients at ``d``: 0 DLTs -> escalate to ``d + 1``; 1 DLT -> 3 more at ``d``;
      2 or 3 DLTs -> stop;
    * 6 patients at ``d``: at most 1 DLT -> escalate to ``d + 1``; 2 or more -> stop;
    * stopping for toxicity at ``d`` selects ``d - 1`` as the MTD, or no dose if ``d`` is the
      starting dose (an untried dose is never selected); ``d - 1`` is not expanded to 6;
    * escalation beyond the top dose: with 0/3 at the top dose, 3 more are treated there;
      with at most 1/6 at the top dose, the trial stops and selects the top dose.

    Doses are never revisited, so each dose gets 0, 3 or 6 patients and a trial has at most
    ``6 * n_doses`` patients.  ``recommended`` is always the dose the rules would select if
    the trial ended now: the current dose once its escalation criterion is met, otherwise the
    dose below it (none below the starting dose); ``NO_DOSE`` before any data.
    ``admissible`` excludes the dose where the trial stopped for toxicity and those above it.
    """

    n_doses: Annotated[int, Field(ge=1, le=1000, description="number of dose levels")]
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0

    @field_validator("n_doses")
    @classmethod
    def _n_doses_of_study(cls, v: int) -> int:
        n = context().get("n_doses")
        if n is not None and v != n:
            raise ValueError(f"the study has {n} doses, got n_doses={v} (leave it out: it "
                             "defaults to the study's)")
        return v

    @field_validator("start_dose")
    @classmethod
    def _start_in_range(cls, v: int, info: ValidationInfo) -> int:
        n = info.data.get("n_doses")
        if n is not None and v >= n:
            raise ValueError(f"start_dose must be a 0-based dose index below n_doses={n}, "
                             f"got {v}")
        return v

    @property
    def cohort_size(self) -> int:
        """Patients per cohort: always 3."""
        return 3

    @property
    def max_patients(self) -> int:
        """At most 6 patients at each dose: ``6 * n_doses``."""
        return 6 * self.n_doses

    def decide_batch(self, state: BatchState) -> BatchDecision:
        check_state(state, self.n_doses, "three_plus_three")
        T, D = state.n_trials, self.n_doses
        fresh = state.total == 0
        self._check_possible(state, ~fresh)
        cur = np.where(fresh, self.start_dose, state.current)
        rows = np.arange(T)
        n_cur = state.n[rows, cur]
        t_cur = state.tox[rows, cur]
        top = cur == D - 1
        three, six = n_cur == 3, n_cur == 6
        below = np.where(cur - 1 >= self.start_dose, cur - 1, NO_DOSE)

        toxic = ~fresh & (t_cur >= 2)
        stop_top = ~fresh & top & six & (t_cur <= 1)
        stay_top = ~fresh & top & three & (t_cur == 0)
        stay = ~fresh & three & (t_cur == 1)
        esc3 = ~fresh & ~top & three & (t_cur == 0)
        esc6 = ~fresh & ~top & six & (t_cur <= 1)

        conds = [fresh, toxic, stop_top, stay_top, stay, esc3, esc6]
        next_dose = np.select(conds, [cur, NO_DOSE, NO_DOSE, cur, cur, cur + 1, cur + 1])
        recommended = np.select(conds, [NO_DOSE, below, cur, cur, below, cur, cur])
        reason = np.select(conds, [START, STOP_TOXIC, STOP_TOP, STAY_TOP, STAY_1_OF_3,
                                   ESCALATE_0_OF_3, ESCALATE_1_OF_6], "")
        stop = toxic | stop_top
        admissible = ~(toxic[:, None] & (np.arange(D)[None, :] >= cur[:, None]))
        code = np.select([toxic, stop_top], [CODE_TOXIC, CODE_TOP], "")
        decision = make_decision(next_dose, stop, recommended, admissible, reason, code)
        return stop_at_max_patients(state, decision, self.max_patients)

    @classmethod
    def example(cls, n_doses: int = 5) -> "ThreePlusThree":
        return cls(n_doses=n_doses)

    def decide(self, history: TrialHistory | str) -> Decision:
        """Decide for one trial, after checking that every cohort of the history has 3
        patients and was given the dose these rules prescribe."""
        if isinstance(history, str):
            history = TrialHistory.parse(history, self.n_doses)
        if not isinstance(history, TrialHistory):
            return super().decide(history)  # raises the TypeError
        bounds = [i for i in range(history.n_patients)
                  if i == 0 or history.cohort[i] != history.cohort[i - 1]] + [history.n_patients]
        for k in range(len(bounds) - 1):
            a, b = bounds[k], bounds[k + 1]
            if b - a != 3:
                raise ValueError(f"impossible 3+3 history {history.format()!r}: cohort {k + 1} "
                                 f"has {b - a} patients, the 3+3 design uses cohorts of 3")
            prefix = TrialHistory(history.n_doses, history.dose[:a], history.tox[:a],
                                  history.eff[:a], history.cohort[:a])
            before = super().decide(prefix)
            if before.stop or before.next_dose != history.dose[a]:
                wanted = "to stop" if before.stop else f"dose {before.next_dose + 1}"
                raise ValueError(f"impossible 3+3 history {history.format()!r}: cohort {k + 1} "
                                 f"was given dose {history.dose[a] + 1} but the rules "
                                 f"prescribe {wanted}")
        return super().decide(history)

    def _check_possible(self, state: BatchState, has_data: np.ndarray) -> None:
        """Raise ``ValueError`` for trials whose counts no 3+3 history could produce."""
        n, t, D = state.n, state.tox, self.n_doses
        cur = state.current
        dose = np.arange(D)[None, :]
        cur_c = np.clip(cur, 0, D - 1)[:, None]
        in_block = (dose >= self.start_dose) & (dose <= cur_c)
        below_cur = in_block & (dose < cur_c)
        at_cur = dose == cur_c
        bad = np.zeros(state.n_trials, dtype=bool)
        why = np.full(state.n_trials, "", dtype=object)

        def flag(mask: np.ndarray, text: str) -> None:
            new = mask & has_data & ~bad
            why[new] = text
            bad[:] |= new

        flag((cur < self.start_dose) | (cur >= D),
             "the current dose is not between the starting dose and the top dose")
        flag(((n % 3) != 0).any(axis=1) | (n > 6).any(axis=1),
             "every dose must have 0, 3 or 6 patients")
        flag(state.last_cohort_n != 3, "the last cohort does not have 3 patients")
        flag(((n > 0) != in_block).any(axis=1),
             "the doses given must run without gaps from the starting dose up to the current "
             "dose (the design never de-escalates)")
        cleared = ((n == 3) & (t == 0)) | ((n == 6) & (t == 1))
        flag((below_cur & ~cleared).any(axis=1),
             "a dose below the current one did not meet the escalation rule")
        t_cur = (t * at_cur).sum(axis=1)
        n_cur = (n * at_cur).sum(axis=1)
        top = cur == D - 1
        flag((n_cur == 6) & ((t_cur > 4) | ((t_cur == 0) & ~top)),
             "6 patients at the current dose but the first 3 would not have been expanded")
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"impossible 3+3 state in trial {i}: {why[i]} (n={state.n[i].tolist()}, "
                f"tox={state.tox[i].tolist()}, current={int(cur[i])}, "
                f"start_dose={self.start_dose})")
