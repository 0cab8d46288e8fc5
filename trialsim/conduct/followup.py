"""Calendars of designs that decide with partial follow-up (``Design.follow_up``, the
TITE-CRM): the cohorts' times come first, then the decisions read what is known at each.

With such a design the next cohort does not wait for the previous one's observation window,
so when a cohort is formed and dosed depends on arrivals, waiting limits and chairs only, not
on the doses.  Each trial's calendar is therefore laid out for up to ``max_patients`` patients
first (:func:`follow_up_clock`); the lockstep simulator then decides for cohort ``k`` on what
is observed at its formation time (:meth:`FollowUpClock.state`): patients dosed so far, each
DLT once it has occurred (and when), and each patient's follow-up so far.  A trial stopping
early gets its calendar again for the cohorts it had (the first cohorts' times are the same).

A design with a rule-based start-up stage (``Design.startup_plan``, the two-stage TITE-CRM)
escalates within it only once the last patient dosed has completed the window, or earlier at
the first DLT known (dfcrm's ``titesim`` with ``tgrp = obswin``).  The start-up's doses are
fixed in advance and the stage lasts until the first DLT is known, so these waits too are laid
out in advance (:func:`startup_holds`), from the trial's potential DLTs at its start-up doses
(the same draws as the simulator's) and their onsets.

With dropout (``conduct.dropout_per_week``) a patient who leaves is followed up only until
then: their weight stays at the follow-up reached, a DLT after it is never seen, and nobody
replaces them (the weighted likelihood uses the censored follow-up, as Cheung & Chappell 2000
treat withdrawals); the final selection uses the same censored data.

A patient's DLT, if any, occurs at ``onset * window_h`` after the dose, ``onset`` uniform on
(0, 1) from the trial's own ``onset`` stream (dfcrm's ``surv = "uniform"``); with assessment
visits (``conduct.visits_h``) it becomes known at the first visit at or after it, and the
follow-up known DLT-free is that up to the last visit held.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.conduct.arrays import CalendarArrays, calendar_of, summarise
from trialsim.conduct.calendar import StartupHold, TrialCalendar, trial_calendar
from trialsim.conduct.dropout import drops, leave_times, patient_slots
from trialsim.designs.base import NO_DOSE, BatchState, FollowUp
from trialsim.rng import stream, stream_uniforms


@dataclass(frozen=True)
class FollowUpClock:
    """For ``T`` trials of up to ``P`` patients in cohorts of ``sizes`` (``C`` cohorts):
    ``formed`` ``(T, C)`` hours each cohort is formed (its decision), ``dosed`` ``(T, P)`` hours
    each patient is dosed, ``onset`` ``(T, P)`` hours from dose to the DLT (if one occurs),
    ``window_h`` the observation window, the calendars laid out, ``visits`` the DLT
    assessments after the dose (h; ``None``: continuous observation), ``holds`` each
    trial's start-up stage (``None``: the design has none), and ``leave`` ``(T, P)`` hours from
    dose to leaving the trial (dropout; ``None``: nobody leaves): a patient who leaves is
    followed up to then (censored, their TITE weight frozen; a DLT after it is never seen) and
    is not replaced."""

    sizes: np.ndarray
    formed: np.ndarray
    dosed: np.ndarray
    onset: np.ndarray
    window_h: float
    cals: list
    visits: np.ndarray | None = None
    holds: list[StartupHold] | None = None
    leave: np.ndarray | None = None

    def state(self, act: np.ndarray, step: int, n: np.ndarray, tox_po: np.ndarray,
              pat_dose: np.ndarray, eff: np.ndarray, eff_tox: np.ndarray) -> BatchState:
        """What the running trials ``act`` know when cohort ``step`` is formed; every outcome
        after the last cohort.  ``n``, ``eff``, ``eff_tox`` ``(T, D)`` and ``pat_dose``
        ``(T, P)`` are the simulator's records of all trials, ``tox_po`` ``(T, P, D)`` the
        potential DLTs.  Efficacy counts are passed as they are (a study refuses a design that
        decides with partial follow-up on efficacy)."""
        K = int(self.sizes[:step].sum())
        dose = pat_dose[act, :K].astype(np.int64)
        D = n.shape[1]
        given = dose >= 0
        rows = act[:, None]
        y = tox_po[rows, np.arange(K)[None, :], np.maximum(dose, 0)] & given
        last = step >= len(self.sizes)
        complete = last and self.leave is None
        if complete:
            seen, elapsed = y, given.astype(float)
        else:       # observed up to now (after the last cohort: forever) or until leaving
            since = (np.full((act.size, K), np.inf) if last
                     else self.formed[act, step][:, None] - self.dosed[act, :K])
            if self.leave is not None:
                since = np.minimum(since, self.leave[act, :K])
            onset = self.onset[act, :K]
            known = known_after(onset, self.visits)
            if self.visits is None:                # observed continuously
                followed = np.minimum(since, self.window_h)
            else:                                  # at the assessments only
                v = self.visits
                held = np.searchsorted(v, since, "right")
                followed = np.where(held > 0, v[np.maximum(held - 1, 0)], 0.0)
            seen = y & (known <= since)
            if self.window_h > 0:
                elapsed = np.where(seen, known, followed) / self.window_h
            else:
                elapsed = np.ones(since.shape)
            elapsed = elapsed * given
        cell = (np.arange(act.size)[:, None] * D + np.maximum(dose, 0))[seen]
        ntox = np.bincount(cell, minlength=act.size * D).reshape(act.size, D).astype(np.int64)
        # the last cohort given (trials that stopped early have fewer than K patients)
        ends = np.cumsum(self.sizes)
        n_given = given.sum(axis=1)
        c = np.searchsorted(ends, n_given, "left")
        first = np.where(c > 0, ends[np.maximum(c - 1, 0)], 0)
        in_last = given & (np.arange(K)[None, :] >= first[:, None])
        current = np.where(n_given > 0, dose[np.arange(act.size), np.maximum(n_given - 1, 0)]
                           if K else NO_DOSE, NO_DOSE).astype(np.int64)
        lc_n = in_last.sum(axis=1).astype(np.int64)
        lc_tox = (seen & in_last).sum(axis=1).astype(np.int64)
        return BatchState(n[act], ntox, eff[act], current, lc_n, lc_tox, eff_tox[act],
                          None if complete else FollowUp(dose, seen, elapsed))

    def final(self, act: np.ndarray, n, tox_po, pat_dose, eff, eff_tox) -> BatchState:
        """What the trials ``act`` know once every patient is followed up: every outcome, or,
        with dropout, each patient's observed until they left (censored)."""
        return self.state(act, len(self.sizes), n, tox_po, pat_dose, eff, eff_tox)

    def observed(self, pat_dose: np.ndarray, tox_po: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(tox, left)`` per patient ``(T, P)``: DLTs observed in the end (all of them
        without dropout; with dropout those known before the patient left) and patients who
        left before the window's end with no DLT known by then."""
        given = pat_dose >= 0
        P = pat_dose.shape[1]
        y = tox_po[np.arange(given.shape[0])[:, None], np.arange(P)[None, :],
                   np.maximum(pat_dose, 0)] & given
        if self.leave is None:
            return y, np.zeros(given.shape, bool)
        leave = self.leave[:, :P]
        seen = y & (known_after(self.onset[:, :P], self.visits) <= leave)
        return seen, given & (leave < self.window_h) & ~seen

    def calendars(self, arrays, study, seed: int, scenario: int) -> CalendarArrays:
        """Per-trial calendar arrays of the finished trials ``arrays``: the calendars laid out
        for trials that enrolled every patient, laid out again for the others."""
        P = arrays.patient_dose.shape[1]
        enrolled = (arrays.patient_dose >= 0).sum(axis=1)
        cals: list[TrialCalendar] = [
            cal if enrolled[i] == P else calendar_of(
                arrays, i, study.calendar_conduct, seed, scenario, follow_up=True,
                hold=None if self.holds is None else self.holds[i])
            for i, cal in enumerate(self.cals)]
        return summarise(cals, study.calendar_conduct, P)


def known_after(onset: np.ndarray, visits: np.ndarray | None) -> np.ndarray:
    """Hours from the dose until a DLT occurring ``onset`` hours after it is known: at once
    (``visits`` ``None``), else at the first assessment at or after it."""
    if visits is None:
        return onset
    return visits[np.minimum(np.searchsorted(visits, onset, "left"), visits.size - 1)]


def clock_sizes(design) -> np.ndarray:
    """Cohort sizes of a follow-up calendar: ``cohort_size`` up to ``max_patients``."""
    P, c = int(design.max_patients), int(design.cohort_size)
    return np.array([c] * (P // c) + ([P % c] if P % c else []), np.int64)


def startup_holds(study, trials: np.ndarray, seed: int, scenario: int,
                  onset: np.ndarray | None = None,
                  leave: np.ndarray | None = None) -> list[StartupHold] | None:
    """Each trial's start-up stage (:class:`~trialsim.conduct.calendar.StartupHold`) when the
    study's design has one (``Design.startup_plan``), else ``None``: which cohorts escalate,
    and when a DLT of each patient at its start-up dose would be known.  The DLTs are the
    trial's potential outcomes (drawn again from their streams, as the simulator draws them);
    ``onset``: the DLT times (h after the dose) if already drawn."""
    sizes = clock_sizes(study.design)
    plan = study.design.startup_plan(sizes)
    if plan is None:
        return None
    conduct = study.calendar_conduct
    P = int(sizes.sum())
    S = patient_slots(P, conduct)
    tox = study.scenario.draw(seed, scenario, trials, S, np.asarray(study.doses, float),
                              study.dose_unit).tox
    if onset is None:
        onset = dlt_onsets(seed, scenario, trials, P, conduct.window_h)
    if leave is None and drops(conduct):
        leave = leave_times(conduct, seed, scenario, trials, P)
    visits = None if conduct.assessments is None else np.asarray(conduct.assessments, float)
    slot_dose = np.repeat(plan, sizes)
    dlt = tox[:, np.arange(P), slot_dose]
    known = np.where(dlt, known_after(onset[:, :P], visits), np.inf)
    if leave is None:
        followed = np.empty((len(trials), 0))
    else:       # a DLT after leaving is never seen; follow-up ends when they leave
        known = np.where(known <= leave[:, :P], known, np.inf)
        followed = np.minimum(leave[:, :P], conduct.window_h)
    escalates = tuple(bool(e) for e in np.r_[False, plan[1:] > plan[:-1]])
    return [StartupHold(escalates, tuple(float(h) for h in row), tuple(float(h) for h in f))
            for row, f in zip(known, followed)]


def dlt_onsets(seed: int, scenario: int, trials: np.ndarray, n_patients: int,
               window_h: float) -> np.ndarray:
    """Hours from dose to DLT (if one occurs) of each patient slot, ``(T, n_patients)``:
    uniform within the window, from each trial's ``onset`` stream."""
    return stream_uniforms(seed, scenario, trials, "onset", n_patients) * window_h


def follow_up_clock(study, trials: np.ndarray, seed: int, scenario: int) -> FollowUpClock:
    """Lay out the calendars of ``trials`` for ``study`` (its design decides with partial
    follow-up) with every patient of ``max_patients`` enrolled."""
    conduct = study.calendar_conduct
    sizes = clock_sizes(study.design)
    P = int(sizes.sum())
    plan = [(NO_DOSE, int(s)) for s in sizes]
    onset = dlt_onsets(seed, scenario, trials, P, conduct.window_h)
    leave = leave_times(conduct, seed, scenario, trials, P) if drops(conduct) else None
    holds = startup_holds(study, trials, seed, scenario, onset, leave)
    cals = [trial_calendar(plan, conduct, stream(seed, scenario, int(k), "accrual"),
                           follow_up=True, hold=None if holds is None else holds[i])
            for i, k in enumerate(trials)]
    dosed = np.array([cal.dosed for cal in cals], float).reshape(len(trials), P)
    formed = np.array([cal.formed for cal in cals], float).reshape(len(trials), sizes.size)
    visits = None if conduct.assessments is None else np.asarray(conduct.assessments, float)
    return FollowUpClock(sizes, formed, dosed, onset, float(conduct.window_h), cals, visits,
                         holds, leave)
