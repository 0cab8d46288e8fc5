"""Backfill cohorts at doses already cleared (BF-BOIN: Zhao, Yuan, Korn & Freidlin 2024,
Clinical Cancer Research 30:673-679), for the interval designs (BOIN, mTPI-2, Keyboard, i3+3),
and for the other designs that decide on complete cohorts without randomising: CRM, BLRM,
EffTox, BOIN12 (after Dehbi, O'Quigley & Iasonos 2021, Contemporary Clinical Trials
111:106605: backfilled patients join the model).  Not for the TITE-CRM (it decides within
windows), Wages-Tait (it randomises) or 3+3-type designs (their rules follow cohorts of three).

While an escalation cohort is in its observation window, patients who arrive are **backfilled**
one at a time, each at a dose below the current one that is *open*:

1. it was given to an escalation cohort and, with ``need_response``, a response is already
   known there (a response is known at the patient's primary visit, ``conduct.read_out_h``);
2. it is safe.  Interval designs: its own evaluated data do not reach the de-escalation (or
   elimination) rule, or those pooled with the next dose up do not (the first unsafe dose
   closes every dose above it up to the current one).  Other designs (CRM, BLRM, EffTox,
   BOIN12): the parent design, deciding now on every evaluated patient, finds it admissible
   and would give a dose at least as high (its next dose; after a stop, its recommendation,
   none after a stop with no dose) -- the model pools the doses itself;
3. fewer than ``max_per_dose`` patients have been given it (pending ones included).

The patient gets the highest open dose (``assign: lowest``: the lowest); with none open they
wait for the next escalation cohort as any other arrival (``conduct.max_wait_days``).  A
patient counts in a decision once *evaluated*: at their DLT if one occurs (onset uniform within
the window), else at the window's end; pending patients are ignored.

At each decision the parent design decides on the escalation patients plus the evaluated
backfill patients; for the interval designs this modifier adds BF-BOIN's rule for disagreement
between doses:
with ``d`` the current dose, if ``d`` says escalate but a lower dose does not (**conflict A**),
or ``d`` says stay or de-escalate while a lower dose says de-escalate or eliminate
(**conflict B**), let ``b`` be the highest such lower dose and pool doses ``b..d``: escalate if
the pooled data say escalate (and ``d + 1`` is allowed), stay if they say stay, and if they say
de-escalate go to the highest ``k`` in ``b..d`` whose pooled data ``b..k`` are safe, else to
``b - 1`` (below the lowest dose: stop when the lowest dose meets the elimination rule, else
give it).  BOIN's ``n_earlystop`` applies to the pooled decision (as in bfboin).
``max_patients`` counts escalation patients only; backfilling ends with escalation and the
final selection uses every patient once followed up.

Backfill needs the study's ``conduct:`` section (arrivals and windows decide who is
backfilled) and runs on the calendar path (:mod:`trialsim.conduct.backfill`).
"""
from __future__ import annotations

import functools
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from trialsim.designs._common import make_decision, stop_trials
from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState, Design
from trialsim.designs.interval import D, E, STOP_N_AT_DOSE, IntervalDesign
from trialsim.designs.modifiers import Modifier, base_of
from trialsim.designs.three_plus_three import CohortsOfThree
from trialsim.registry import register
from trialsim.spec import spec

POOLED = "backfill: pooled doses {}..{} say {}"
STOP_POOLED = ("stop: pooled data below the lowest dose say de-escalate and the lowest dose "
               "meets the elimination rule")


@register("modifier", "backfill")
@spec
class Backfill(Modifier):
    """Backfill patients at cleared doses while an escalation cohort is followed (BF-BOIN, Zhao
    et al. 2024; docs/designs.md); interval designs (BOIN, mTPI-2, Keyboard, i3+3) and the
    designs that decide on complete cohorts without randomising (CRM, BLRM, EffTox, BOIN12);
    needs ``conduct:``.  ``max_per_dose``: patients a dose may reach by backfilling;
    ``assign``: the highest or the lowest open dose; ``need_response``: a dose opens only once
    a response is known there (the study needs an efficacy outcome)."""

    parent: Design
    max_per_dose: Annotated[int, Field(ge=1, le=1000, description="patients a dose may reach "
                                                                  "by backfilling")] = 12
    assign: Annotated[Literal["highest", "lowest"],
                      Field(description="which open dose a backfilled patient gets")] = "highest"
    need_response: Annotated[bool, Field(description="open a dose only once a response is "
                                                     "known there")] = True

    backfills: ClassVar[bool] = True

    @classmethod
    def accepts(cls, design) -> bool:
        design = base_of(design)
        return not (design.follow_up or design.randomises or isinstance(design, CohortsOfThree))

    @model_validator(mode="after")
    def _interval_parent(self) -> "Backfill":
        if not self.accepts(self.parent):
            raise ValueError(f"backfill works with the interval and model-based designs, not "
                             f"{type(self.base_design).__name__} (it decides mid-window, "
                             f"randomises, or follows cohorts of three)")
        if self.parent.backfills:
            raise ValueError("backfill is given twice: one backfill modifier sets the rules "
                             "(the other was ignored)")
        return self

    @property
    def pooled_rule(self) -> bool:
        """Whether BF-BOIN's open-dose and pooled decision rules apply (interval designs);
        else the design's own model or rules pool the doses."""
        return isinstance(self.base_design, IntervalDesign)

    @classmethod
    def wrap(cls, parent) -> "Backfill":
        return cls(parent=parent, max_per_dose=9, need_response=False)

    @classmethod
    def example(cls, n_doses: int = 5, parent=None) -> "Backfill":
        from trialsim.designs.interval import BOIN

        return cls.wrap(parent if parent is not None else BOIN.example(n_doses))

    # -- safety of doses ---------------------------------------------------------------
    def unsafe(self, n, y) -> np.ndarray:
        """``y`` DLTs in ``n`` patients meet the de-escalation or elimination rule (False for
        ``n = 0``)."""
        n, y = np.asarray(n, np.int64), np.asarray(y, np.int64)
        table = _unsafe_table(self.base_design)
        if n.size and n.max() < table.shape[0]:
            return table[n, y]
        move, elim = self.base_design.lookup(n, y)
        return (n > 0) & ((move == D) | elim)

    def open_doses(self, state: BatchState, enrolled, responded) -> np.ndarray:
        """Doses open for backfilling (T, D) bool: ``state`` the evaluated patients
        (escalation and backfill) with the escalation dose as ``current``, ``enrolled`` (T, D)
        patients given each dose (pending included), ``responded`` (T, D) a response known
        there."""
        T, Dn = state.n.shape
        j = np.arange(Dn)[None, :]
        ok = (j < state.current[:, None]) & (state.n > 0) & (np.asarray(enrolled)
                                                             < self.max_per_dose)
        if self.need_response:
            ok &= np.asarray(responded, bool)
        if not ok.any():                # nothing could open: no need to ask the design
            return ok
        if self.pooled_rule:
            return ok & self._safe_pooled(state.n, state.tox, state.current)
        d = self.parent.decide_batch(state)
        ref = np.where(d.stop, d.recommended, d.next_dose)
        return ok & (j <= ref[:, None]) & d.admissible

    def _safe_pooled(self, n, y, current) -> np.ndarray:
        """BF-BOIN's safety (T, D) of the doses below ``current``: a dose's own data or its
        data pooled with the next dose up do not meet the de-escalation or elimination rule;
        the first unsafe dose closes those above it."""
        n, y = np.asarray(n, np.int64), np.asarray(y, np.int64)
        up_n = np.concatenate([n[:, 1:], np.zeros_like(n[:, :1])], axis=1)
        up_y = np.concatenate([y[:, 1:], np.zeros_like(y[:, :1])], axis=1)
        below = np.arange(n.shape[1])[None, :] < np.asarray(current)[:, None]
        safe = ~self.unsafe(n, y) | ~self.unsafe(n + up_n, y + up_y)
        return ~np.logical_or.accumulate(below & ~safe, axis=1)

    def pick(self, open_: np.ndarray) -> int:
        """The dose a backfilled patient gets among the open ones (``NO_DOSE``: none)."""
        idx = np.flatnonzero(open_)
        if idx.size == 0:
            return NO_DOSE
        return int(idx[-1] if self.assign == "highest" else idx[0])

    # -- the decision ------------------------------------------------------------------
    def adjust(self, state: BatchState, d: BatchDecision) -> BatchDecision:
        if not self.pooled_rule:
            return d
        base = self.base_design
        T, Dn = state.n.shape
        cur = state.current
        # BOIN's n_earlystop stops only a trial that stays: a stop of the parent's on it is
        # taken again on the pooled decision (as R bfboin checks it after pooling)
        early = (d.stop & (d.stop_code == "n_at_dose") & (d.recommended != NO_DOSE)
                 & (state.total < base.max_patients)) if base.earlystop_only_staying \
            else np.zeros(T, bool)
        live = (~d.stop | early) & (state.total > 0) & (cur > 0)
        if not live.any():
            return d
        move, elim = base.lookup(state.n, state.tox)
        move = np.where(state.n > 0, move, E)      # untried doses do not object
        below = np.arange(Dn)[None, :] < cur[:, None]
        m_cur = move[np.arange(T), cur]
        e_cur = elim[np.arange(T), cur]
        say_not_e = below & (move != E)
        say_down = below & ((move == D) | elim)
        conflict_a = live & (m_cur == E) & ~e_cur & say_not_e.any(axis=1)
        conflict_b = live & ((m_cur != E) | e_cur) & say_down.any(axis=1)
        rows = np.flatnonzero(conflict_a | conflict_b)
        if rows.size == 0:
            return d
        nxt = np.where(early, cur, d.next_dose)
        text = np.array(d.reason, dtype=object)
        stop = np.zeros(T, bool)
        changed = np.zeros(T, bool)
        first_elim = np.where(elim.any(axis=1), np.argmax(elim, axis=1), Dn)
        for t in rows:
            c = int(cur[t])
            objecting = say_not_e[t] if conflict_a[t] else say_down[t]
            b = int(np.flatnonzero(objecting).max())
            n_b, y_b = state.n[t, b:c + 1], state.tox[t, b:c + 1]
            pm, pe = base.lookup(np.array([n_b.sum()]), np.array([y_b.sum()]))
            top = min(first_elim[t], Dn) - 1        # highest dose not eliminated
            if pm[0] == E and not pe[0]:
                new, said = (c + 1 if c + 1 <= top else c), "escalate"
            elif pm[0] == D or pe[0]:
                cn, cy = np.cumsum(n_b), np.cumsum(y_b)
                ok = ~self.unsafe(cn, cy) & (n_b > 0)
                said = "de-escalate"
                if ok.any():
                    new = b + int(np.flatnonzero(ok).max())
                elif b > 0:
                    new = b - 1
                elif elim[t, 0]:
                    stop[t], new = True, NO_DOSE
                else:
                    new = 0
            else:
                new, said = c, "stay"
            new = min(new, top) if new != NO_DOSE else new
            if new != nxt[t] or stop[t]:
                changed[t] = True
                nxt[t] = new
                text[t] = POOLED.format(b + 1, c + 1, said)
        if not changed.any():
            return d
        reason = np.where(changed, text.astype(str), d.reason)
        resumed = changed & early & (nxt != cur)
        out = make_decision(np.where(stop, NO_DOSE, np.maximum(nxt, 0)), d.stop & ~resumed,
                            d.recommended, d.admissible, reason,
                            np.where(resumed, "", d.stop_code), d.cohort_size)
        out = stop_trials(out, stop, STOP_POOLED, "too_toxic", withdraw=True)
        stays = changed & ~stop & base.stops_early(state.n[np.arange(T), cur], nxt == cur)
        return stop_trials(out, stays, STOP_N_AT_DOSE, "n_at_dose")


def backfill_of(design) -> Backfill | None:
    """The :class:`Backfill` modifier in ``design``'s chain of modifiers, if any."""
    while isinstance(design, Modifier):
        if isinstance(design, Backfill):
            return design
        design = design.parent
    return None


@functools.lru_cache(maxsize=64)
def _unsafe_table(design: IntervalDesign) -> np.ndarray:
    """``[n, y]``: the de-escalation or elimination rule is met (from the design's tables)."""
    move, elim = design.tables()
    table = (move == D) | elim
    table[0] = False
    table.setflags(write=False)
    return table
