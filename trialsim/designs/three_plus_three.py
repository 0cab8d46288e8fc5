"""The classic 3+3 design, without or with de-escalation."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from trialsim.designs._common import (NDoses, check_state, make_decision, stop_at_max_patients,
                                      start_dose_below_n_doses)
from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState, Decision, Design
from trialsim.outcomes import TrialHistory
from trialsim.registry import register
from trialsim.spec import spec

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
CODE_CONFIRMED = "mtd_confirmed"
DEESCALATE = "de-escalate: 2 or more DLTs at the current dose, 3 more at the dose below"
STOP_BELOW_HAS_6 = "stop: 2 or more DLTs at the current dose, and the dose below has 6 patients"
STOP_CONFIRMED = "stop: at most 1 of 6 DLTs after de-escalation"


class CohortsOfThree(Design):
    """3+3-type rules: cohorts of 3 (which other cohort sizes would break) and at most 6
    patients at each dose."""

    fixed_cohorts = True
    #: The rules end every trial (a toxic dose found, the MTD confirmed after de-escalation, or
    #: the top dose cleared): none stops early (a trial with no dose selected counts in the
    #: no-selection rate).
    completion_codes = ("max_patients", "n_reached", CODE_TOP, CODE_TOXIC, CODE_CONFIRMED)

    @property
    def cohort_size(self) -> int:
        """Patients per cohort: always 3."""
        return 3

    @property
    def max_patients(self) -> int:
        """At most 6 patients at each dose: ``6 * n_doses``."""
        return 6 * self.n_doses


@register("design", "three_plus_three")
@spec
class ThreePlusThree(CohortsOfThree):
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
    ``6 * n_doses`` patients.

    With ``deescalate: true`` (the 3+3 "with de-escalation", escalation's
    ``get_three_plus_three(allow_deescalate = TRUE)``) the MTD must have 6 patients: where the
    rules above stop for toxicity at ``d`` above the starting dose, the next cohort goes to
    ``d - 1`` if it has 3 patients; with 6 there (at most 1 DLT) the trial stops and selects it.
    After a de-escalation, 6 patients at the current dose with at most 1 DLT stop the trial and
    select it (code ``mtd_confirmed``); 2 or more de-escalate again by the same rule, down to the
    starting dose, where they stop with no dose selected.  ``recommended`` is always the dose the rules would select if
    the trial ended now: the current dose once its escalation criterion is met, otherwise the
    dose below it (none below the starting dose); ``NO_DOSE`` before any data.
    ``admissible`` excludes the dose where the trial stopped for toxicity and those above it.
    """

    n_doses: NDoses
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0
    deescalate: Annotated[bool, Field(description="de-escalate after a toxic dose until a dose "
                                                  "has 6 patients with at most 1 DLT")] = False

    _start_ok = start_dose_below_n_doses


    def decide_batch(self, state: BatchState) -> BatchDecision:
        check_state(state, self.n_doses, "three_plus_three")
        if self.deescalate:
            return self._decide_deescalate(state)
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

    def _decide_deescalate(self, state: BatchState) -> BatchDecision:
        T, D = state.n_trials, self.n_doses
        n, t = state.n, state.tox
        fresh = state.total == 0
        if (((n % 3) != 0) | (n > 6)).any() or (state.last_cohort_n[~fresh] != 3).any():
            i = int(np.flatnonzero((((n % 3) != 0) | (n > 6)).any(axis=1)
                                   | (~fresh & (state.last_cohort_n != 3)))[0])
            raise ValueError(f"impossible 3+3 state in trial {i}: every dose must have 0, 3 or "
                             f"6 patients, given in cohorts of 3 (n={n[i].tolist()})")
        cur = np.where(fresh, self.start_dose, state.current)
        rows, idx = np.arange(T), np.arange(D)[None, :]
        n_cur, t_cur = n[rows, cur], t[rows, cur]
        top = cur == D - 1
        came_down = (n * (idx > cur[:, None])).sum(axis=1) > 0
        below = np.maximum(cur - 1, 0)
        at_start = cur == self.start_dose
        below_has_6 = n[rows, below] == 6
        toxic = ~fresh & (t_cur >= 2)
        # escalation phase: the classic rules; de-escalation phase: 6 at the current dose
        confirmed = ~fresh & came_down & (n_cur == 6) & (t_cur <= 1)
        stop_top = ~fresh & ~came_down & top & (n_cur == 6) & (t_cur <= 1)
        stay = ~fresh & ~came_down & (n_cur == 3) & ((t_cur == 1) | (top & (t_cur == 0)))
        esc = ~fresh & ~came_down & ~top & (((n_cur == 3) & (t_cur == 0))
                                            | ((n_cur == 6) & (t_cur <= 1)))
        none_left = toxic & at_start
        stop_below = toxic & ~at_start & below_has_6
        down = toxic & ~at_start & ~below_has_6
        conds = [fresh, none_left, stop_below, down, confirmed, stop_top, stay, esc]
        next_dose = np.select(conds, [cur, NO_DOSE, NO_DOSE, below, NO_DOSE, NO_DOSE, cur,
                                      cur + 1], NO_DOSE)
        reason = np.select(conds, [START, STOP_TOXIC, STOP_BELOW_HAS_6, DEESCALATE,
                                   STOP_CONFIRMED, STOP_TOP,
                                   np.where(top & (t_cur == 0), STAY_TOP, STAY_1_OF_3),
                                   np.where(n_cur == 3, ESCALATE_0_OF_3, ESCALATE_1_OF_6)], "")
        stop = none_left | stop_below | confirmed | stop_top
        code = np.select([none_left | stop_below, confirmed, stop_top],
                         [CODE_TOXIC, CODE_CONFIRMED, CODE_TOP], "")
        # the selection if the trial ended now: the highest cleared dose below every dose with
        # 2 or more DLTs (0 of 3, or at most 1 of 6)
        bad = t >= 2
        first_bad = np.where(bad.any(axis=1), np.argmax(bad, axis=1), D)
        cleared = (((n == 3) & (t == 0)) | ((n == 6) & (t <= 1))) & (idx < first_bad[:, None])
        rec = np.where(cleared.any(axis=1), D - 1 - np.argmax(cleared[:, ::-1], axis=1), NO_DOSE)
        rec = np.select([fresh, none_left, stop_below, confirmed, stop_top],
                        [NO_DOSE, NO_DOSE, below, cur, cur], rec)
        admissible = idx < first_bad[:, None]
        decision = make_decision(next_dose, stop, rec, admissible, reason, code)
        return stop_at_max_patients(state, decision, self.max_patients)

    @classmethod
    def example(cls, n_doses: int = 5) -> "ThreePlusThree":
        return cls(n_doses=n_doses)

    def decide(self, history: TrialHistory | str, u: float | None = None) -> Decision:
        """Decide for one trial, after checking that every cohort of the history has 3
        patients and was given the dose these rules prescribe (``u``: unused, no
        randomisation)."""
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
        return super().decide(history, u)

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
