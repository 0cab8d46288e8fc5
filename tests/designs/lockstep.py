"""A tiny lockstep trial loop for design tests (the real simulator lives in
``trialsim.simulate``): every active trial gets the next cohort at the decided dose, DLTs are
binomial draws from a seeded numpy ``Generator``, and the design decides for all at once."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.designs.base import NO_DOSE, BatchState, Design


@dataclass(frozen=True)
class LockstepResult:
    selected: np.ndarray  # (T,) selected dose index or NO_DOSE
    n: np.ndarray  # (T, D) patients per dose
    tox: np.ndarray  # (T, D) DLTs per dose
    reason: np.ndarray  # (T,) reason of the final decision
    steps: int  # decide_batch calls


def run_lockstep(design: Design, p_true, n_trials: int, rng: np.random.Generator,
                 max_steps: int = 1000) -> LockstepResult:
    p = np.asarray(p_true, dtype=float)
    T, D = n_trials, p.size
    n = np.zeros((T, D), np.int64)
    tox = np.zeros((T, D), np.int64)
    cur = np.full(T, NO_DOSE, np.int64)
    lcn = np.zeros(T, np.int64)
    lct = np.zeros(T, np.int64)
    selected = np.full(T, NO_DOSE, np.int64)
    reason = np.full(T, "", dtype=object)
    active = np.arange(T)
    dec = design.decide_batch(BatchState.empty(T, D))
    steps = 1
    while True:
        done = dec.stop
        selected[active[done]] = dec.recommended[done]
        reason[active[done]] = dec.reason[done]
        active, dose = active[~done], dec.next_dose[~done]
        if active.size == 0:
            break
        if steps >= max_steps:
            raise RuntimeError("trials did not stop")
        assert (dose >= 0).all() and (dose < D).all(), "continuing trials need a dose"
        want = design.cohort_size if dec.cohort_size is None else dec.cohort_size[~done]
        size = np.minimum(want, design.max_patients - n[active].sum(axis=1))
        assert (size > 0).all(), "a continuing trial has reached max_patients"
        dlt = rng.binomial(size, p[dose])
        n[active, dose] += size
        tox[active, dose] += dlt
        cur[active], lcn[active], lct[active] = dose, size, dlt
        state = BatchState(n[active], tox[active], np.zeros_like(n[active]), cur[active],
                           lcn[active], lct[active])
        dec = design.decide_batch(state)
        steps += 1
    return LockstepResult(selected, n, tox, reason, steps)
