"""Small helpers shared by every design and modifier: building decisions, joining reasons,
and the common rule that stops a trial once ``max_patients`` have been treated."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState
from trialsim.spec import context

MAX_PATIENTS_REASON = "stop: max_patients reached"

# string concatenation: the numpy >= 2 ufunc when available (about twice as fast)
_str_add = getattr(getattr(np, "strings", None), "add", np.char.add)


def make_decision(next_dose, stop, recommended, admissible, reason,
                  stop_code=None, cohort_size=None) -> BatchDecision:
    """A :class:`BatchDecision` with the contract's dtypes; ``next_dose`` is forced to
    ``NO_DOSE`` where ``stop`` is true.  ``stop_code`` defaults to ``""`` everywhere (no
    trial stopped); ``cohort_size`` to ``None`` (the design's fixed cohort size)."""
    stop = np.asarray(stop, dtype=bool)
    next_dose = np.where(stop, NO_DOSE, np.asarray(next_dose, dtype=np.int64)).astype(np.int64)
    code = (np.full(stop.shape, "", dtype="<U1") if stop_code is None
            else np.asarray(stop_code, dtype=str))
    return BatchDecision(next_dose=next_dose, stop=stop,
                         recommended=np.asarray(recommended, dtype=np.int64),
                         admissible=np.asarray(admissible, dtype=bool),
                         reason=np.asarray(reason, dtype=str), stop_code=code,
                         cohort_size=None if cohort_size is None
                         else np.asarray(cohort_size, dtype=np.int64))


def stop_trials(decision: BatchDecision, mask: np.ndarray, reason: str, code: str,
                withdraw: bool = False) -> BatchDecision:
    """Stop the trials in ``mask`` (``reason`` and ``code`` strings, or arrays of one per
    trial).

    Trials not stopped already get ``code`` and ``reason``.  With ``withdraw`` the
    recommendation becomes ``NO_DOSE`` wherever ``mask`` is true, and the reason is added
    there too; where that withdraws a dose selected by a trial another rule stopped, ``code``
    is added to that rule's code (``max_patients+too_toxic``: the trial ran to its size, then
    was found too toxic)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return decision
    newly = mask & ~decision.stop
    rec, codes = decision.recommended, decision.stop_code
    if withdraw:
        taken = mask & decision.stop & (rec != NO_DOSE)
        if taken.any():
            codes = np.where(taken, np.char.add(np.char.add(codes.astype(str), "+"), code),
                             codes)
        rec = np.where(mask, NO_DOSE, rec)
    codes = np.where(newly, code, codes)
    return make_decision(decision.next_dose, decision.stop | mask, rec, decision.admissible,
                         join_reasons(decision.reason, reason, mask if withdraw else newly),
                         codes, decision.cohort_size)


def join_reasons(reason: np.ndarray, extra, mask: np.ndarray) -> np.ndarray:
    """``reason`` with ``extra`` appended (``"; "``-separated) where ``mask`` is true.

    Works on the masked entries only (string operations on whole batches are slow)."""
    idx = np.flatnonzero(mask)
    reason = np.asarray(reason, dtype=str)
    if idx.size == 0:
        return reason
    old = reason[idx]
    add = np.broadcast_to(np.asarray(extra, dtype=str), reason.shape)[idx]
    joined = np.where(old == "", add, _str_add(_str_add(old, "; "), add))
    width = max(reason.dtype.itemsize, joined.dtype.itemsize) // np.dtype("U1").itemsize
    out = reason.astype(f"<U{width}")
    out[idx] = joined
    return out


def stop_at_max_patients(state: BatchState, decision: BatchDecision,
                         max_patients: int) -> BatchDecision:
    """Stop every trial with ``state.total >= max_patients`` (code ``max_patients``).

    The recommendation is kept (it was made on all the data); ``next_dose`` becomes
    ``NO_DOSE``.  The reason ``"stop: max_patients reached"`` is appended only for trials
    that were not already stopped by another rule.  Every design calls this last.
    """
    return stop_trials(decision, state.total >= max_patients, MAX_PATIENTS_REASON,
                       "max_patients")


def check_state(state: BatchState, n_doses: int, design: str) -> None:
    """Raise ``ValueError`` if the state does not fit a design over ``n_doses`` doses."""
    if state.n_doses != n_doses:
        raise ValueError(f"{design} has {n_doses} doses but the trial state has "
                         f"{state.n_doses}")
    if (state.tox < 0).any() or (state.tox > state.n).any():
        raise ValueError("trial state must satisfy 0 <= tox <= n at every dose")


def check_joint_outcomes(state: BatchState) -> None:
    """Raise ``ValueError`` unless every dose's four joint outcomes (neither, efficacy only,
    toxicity only, both) have non-negative counts (designs deciding on efficacy too)."""
    n, t, e, b = state.n, state.tox, state.eff, state.eff_tox
    if (b < 0).any() or (b > t).any() or (b > e).any() or (t + e - b > n).any():
        raise ValueError("trial state must satisfy 0 <= eff_tox <= min(tox, eff) and "
                         "tox + eff - eff_tox <= n at every dose")


def _n_doses_of_study(v: int) -> int:
    n = context().get("n_doses")
    if n is not None and v != n:
        raise ValueError(f"the study has {n} doses, got n_doses={v} (leave it out: it "
                         "defaults to the study's)")
    return v


#: The ``n_doses`` field of designs that take the number of doses (filled in from the study).
NDoses = Annotated[int, Field(ge=1, le=1000, description="number of dose levels"),
                   AfterValidator(_n_doses_of_study)]


def _start_below_n_doses(cls, v: int, info: ValidationInfo) -> int:
    n = info.data.get("n_doses")
    if n is not None and v >= n:
        raise ValueError(f"start_dose must be a 0-based dose index below n_doses={n}, got {v}")
    return v


#: A validator of ``start_dose`` against ``n_doses`` (assign it in the class body).
start_dose_below_n_doses = field_validator("start_dose")(classmethod(_start_below_n_doses))


def _log_doses(v: tuple[float, ...]) -> tuple[float, ...]:
    d = np.asarray(v, float)
    if d.size == 0 or not (d > 0).all() or (np.diff(d) <= 0).any():
        raise ValueError(f"doses must be positive and strictly increasing (the model uses "
                         f"log(dose)), got {list(v)}")
    n = context().get("n_doses")
    if n is not None and d.size != n:
        raise ValueError(f"expected one dose per study dose level ({n}), got {d.size}")
    return tuple(float(x) for x in v)


#: The ``doses`` field of designs whose model uses log(dose) (filled in from the study).
LogDoses = Annotated[tuple[float, ...], Field(description="dose levels (positive, the study's)"),
                     AfterValidator(_log_doses)]


def _start_below_doses(cls, v: int, info: ValidationInfo) -> int:
    doses = info.data.get("doses")
    if doses is not None and v >= len(doses):
        raise ValueError(f"start_dose must be a 0-based dose index below {len(doses)}, got {v}")
    return v


#: A validator of ``start_dose`` against ``doses`` (assign it in the class body).
start_dose_below_doses = field_validator("start_dose")(classmethod(_start_below_doses))


def _max_patients_at_least_cohort(self):
    if self.max_patients < self.cohort_size:
        raise ValueError(f"max_patients must be at least cohort_size ({self.cohort_size}), got "
                         f"{self.max_patients}")
    return self


#: A check that ``max_patients >= cohort_size`` (assign it in the class body).
max_patients_at_least_cohort = model_validator(mode="after")(_max_patients_at_least_cohort)
