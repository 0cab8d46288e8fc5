"""Calendars of a batch of escalation trials: per-trial summaries as arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.conduct.calendar import StartupHold, TrialCalendar, trial_calendar
from trialsim.conduct.dropout import drops, leave_times
from trialsim.conduct.spec import HOURS_PER_WEEK, Conduct
from trialsim.rng import stream
from trialsim.stack import PerTrial


@dataclass(frozen=True)
class CalendarArrays(PerTrial):
    """Per trial (``T``): ``duration_h`` (first patient dosed to the last patient's primary
    visit), ``accrual_h`` (trial start to the last patient dosed), ``screened``,
    ``screen_failed``, ``enrolled``, ``turned_away`` and ``waiting`` (at the end) patients,
    ``wait_h`` mean time from arrival to dosing, ``chair_use`` chair-hours used over
    chair-hours open from the first dose to the end (each site's from its opening), and
    ``decision_h`` (T, P) the time of each decision after a cohort (NaN beyond the trial's
    last)."""

    duration_h: np.ndarray
    accrual_h: np.ndarray
    screened: np.ndarray
    screen_failed: np.ndarray
    enrolled: np.ndarray
    turned_away: np.ndarray
    waiting: np.ndarray
    wait_h: np.ndarray
    chair_use: np.ndarray
    decision_h: np.ndarray


def cohorts_of(patient_dose: np.ndarray, patient_cohort: np.ndarray) -> list[tuple[int, int]]:
    """``[(dose, size), ...]`` of one trial from its patient records (slots not enrolled: -1)."""
    given = patient_dose >= 0
    c = patient_cohort[given]
    d = patient_dose[given]
    if c.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    sizes = np.diff(np.r_[starts, c.size])
    return [(int(d[s]), int(n)) for s, n in zip(starts, sizes)]


def leaving_of(arrays, i: int, conduct: Conduct, seed: int,
               scenario: int) -> list[list[float | None]] | None:
    """Per cohort of the ``i``-th trial, per patient slot, the hours from dose to leaving of
    patients not evaluable (else ``None``); ``None`` without dropout."""
    if not drops(conduct):
        return None
    dose, cohort = arrays.patient_dose[i], arrays.patient_cohort[i]
    given = dose >= 0
    leave = leave_times(conduct, seed, scenario, arrays.trials[i:i + 1], dose.size)[0]
    h = np.where(arrays.patient_dropout[i], leave, np.nan)[given]
    c = cohort[given]
    return [[None if np.isnan(x) else float(x) for x in h[c == k]] for k in np.unique(c)]


def calendar_of(arrays, i: int, conduct: Conduct, seed: int, scenario: int,
                log: bool = False, follow_up: bool = False,
                hold: StartupHold | None = None) -> TrialCalendar:
    """The calendar of the ``i``-th trial of ``arrays`` (its own ``accrual`` stream);
    ``follow_up``: the design decides with partial follow-up, ``hold`` its start-up stage
    (see ``trial_calendar``)."""
    rng = stream(seed, scenario, int(arrays.trials[i]), "accrual")
    return trial_calendar(cohorts_of(arrays.patient_dose[i], arrays.patient_cohort[i]),
                          conduct, rng, log, follow_up,
                          None if follow_up else leaving_of(arrays, i, conduct, seed, scenario),
                          hold)


def calendars(arrays, conduct: Conduct, seed: int, scenario: int) -> CalendarArrays:
    """Every trial of ``arrays`` (a :class:`~trialsim.results.TrialArrays`) on its calendar."""
    cals = [calendar_of(arrays, i, conduct, seed, scenario)
            for i in range(arrays.patient_dose.shape[0])]
    return summarise(cals, conduct, arrays.patient_dose.shape[1])


def enrolment_calendars(arm: np.ndarray, trials: np.ndarray, conduct: Conduct, seed: int,
                        scenario: int, again_h: np.ndarray | None = None) -> CalendarArrays:
    """Phase II calendars: each trial's patients (``arm`` ``(T, N)``, ``-1``: not enrolled)
    enrolled as they arrive and pass screening, each dosed at their site's first free chair
    and followed to ``conduct.read_out``; the ``accrual`` stream of
    each trial.  ``again_h`` ``(T, N)``: hours after their dose at which patients are dosed
    again (a second period; NaN: not again), then followed to ``read_out`` after it."""
    cals = [enrolment_calendar(row, int(k), conduct, seed, scenario,
                               None if again_h is None else again_h[i])
            for i, (row, k) in enumerate(zip(arm, trials))]
    return summarise(cals, conduct, arm.shape[1])


def enrolment_calendar(arm: np.ndarray, trial: int, conduct: Conduct, seed: int, scenario: int,
                       again_h: np.ndarray | None = None, log: bool = False) -> TrialCalendar:
    """One trial's phase II calendar (:func:`enrolment_calendars`: ``arm`` (N,), ``again_h``
    (N,) or None); ``log``: with its event log."""
    on = arm >= 0
    again = (None if again_h is None else
             [None if np.isnan(h) else float(h) for h in again_h[on]])
    return trial_calendar([(int(a), 1) for a in arm[on]], conduct,
                          stream(seed, scenario, trial, "accrual"), log=log, again=again,
                          enrol=True)


def enrolment_times(n: int, trials: np.ndarray, conduct: Conduct, seed: int,
                    scenario: int) -> tuple[np.ndarray, np.ndarray]:
    """``(enrolled, dosed)``: the hours at which ``n`` patients enrolled as they arrive on
    each trial's calendar are enrolled (their arrival) and dosed, each ``(T, n)`` in order of
    enrolment (dosing times need not increase: sites have their own chairs).  The calendar of
    :func:`enrolment_calendars` (arms do not change it); the first patients' times do not
    depend on how many follow."""
    cals = [trial_calendar([(0, 1)] * n, conduct, stream(seed, scenario, int(k), "accrual"),
                           enrol=True) for k in trials]
    shape = (len(trials), n)
    return (np.array([c.arrived for c in cals], float).reshape(shape),
            np.array([c.dosed for c in cals], float).reshape(shape))


def chair_use(cal: TrialCalendar, conduct: Conduct) -> float:
    """Chair-hours in session over chair-hours open, from the first session (a site opening
    later: from its opening) to the end of the last; a site opening after the last patient
    enrolled arrived, who could have none, is left out; 0 without sessions."""
    if not cal.sessions or not conduct.session_h:
        return 0.0
    first = min(t for _, t in cal.sessions)
    end = max(t for _, t in cal.sessions) + conduct.session_h
    last = max(cal.arrived)
    opens = [site.opens_week * HOURS_PER_WEEK for site in conduct.sites]
    avail = sum(site.chairs * conduct.open_hours_between(max(first, t), end)
                for site, t in zip(conduct.sites, opens) if t <= last)
    return len(cal.sessions) * conduct.session_h / avail


def summarise(cals: list[TrialCalendar], conduct: Conduct, P: int) -> CalendarArrays:
    """Per-trial arrays of the calendars ``cals`` of trials of up to ``P`` patients."""
    T = len(cals)
    out = {k: np.zeros(T) for k in ("duration_h", "accrual_h", "wait_h", "chair_use")}
    counts = {k: np.zeros(T, np.int64) for k in ("screened", "screen_failed", "enrolled",
                                                  "turned_away", "waiting")}
    decisions = np.full((T, P), np.nan, np.float32)
    for i, cal in enumerate(cals):
        out["duration_h"][i] = cal.duration_h
        out["accrual_h"][i] = max(cal.dosed) if cal.dosed else 0.0
        out["wait_h"][i] = np.mean(np.subtract(cal.dosed, cal.arrived)) if cal.dosed else 0.0
        out["chair_use"][i] = chair_use(cal, conduct)
        counts["screened"][i] = cal.screened
        counts["screen_failed"][i] = cal.screen_failed
        counts["enrolled"][i] = len(cal.dosed)
        counts["turned_away"][i] = cal.turned_away
        counts["waiting"][i] = cal.waiting
        decisions[i, :len(cal.decisions)] = cal.decisions
    return CalendarArrays(**out, **counts, decision_h=decisions)
