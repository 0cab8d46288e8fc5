"""One escalation trial on its calendar (simpy): arrivals at the sites, cohorts filled from the
patients waiting, chairs, observation windows, decisions."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import simpy

from trialsim.conduct.clinic import Clinic
from trialsim.conduct.spec import Conduct
from trialsim.errors import ConfigError

#: Patients turned away while one cohort waits to fill beyond which the calendar gives up (the
#: waiting limit is too short for the cohort size at the arrival rates: it would never fill).
MAX_TURNED_AWAY = 10_000


@dataclass
class TrialCalendar:
    """Times in hours from the trial's start (the first site may open later).

    ``dosed`` per enrolled patient, in enrolment order; ``arrived`` their arrival; ``formed``
    the time each cohort was formed (its patients ready); ``decisions`` the time of each
    decision after a cohort (the window's end; with partial follow-up the next cohort's
    formation, and for the last cohort its window's end); ``end`` the last patient's
    primary visit; counts of arrivals ``screened``, ``screen_failed``, ``turned_away`` and
    ``waiting`` at the end; ``sessions`` the chair sessions ``(site, start)``; ``events`` the log
    ``(time_h, event, patient, site, dose)`` when asked for; ``redosed`` the second-period
    doses' times."""

    dosed: list = field(default_factory=list)
    arrived: list = field(default_factory=list)
    sites: list = field(default_factory=list)
    formed: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    end: float = 0.0
    screened: int = 0
    screen_failed: int = 0
    turned_away: int = 0
    waiting: int = 0
    sessions: list = field(default_factory=list)
    events: list | None = None
    redosed: list = field(default_factory=list)

    @property
    def duration_h(self) -> float:
        """First patient dosed to the last patient's primary visit."""
        return self.end - min(self.dosed) if self.dosed else 0.0


@dataclass(frozen=True)
class StartupHold:
    """A rule-based start-up stage on a calendar with partial follow-up: ``escalates[k]``,
    cohort ``k`` is one dose up the start-up sequence from cohort ``k - 1``; ``dlt_known[j]``,
    hours from the ``j``-th patient's dose until a DLT at its start-up dose is known (``inf``:
    no DLT, or none seen before the patient left); ``followed[j]``, hours the ``j``-th patient
    is followed (the window, or less if they leave; empty: the window for everyone).  While
    no DLT is known, a cohort that escalates is formed only once the last patient dosed has
    completed their follow-up or a DLT becomes known, whichever comes first (dfcrm's
    ``titesim`` with ``tgrp = obswin``)."""

    escalates: tuple[bool, ...]
    dlt_known: tuple[float, ...]
    followed: tuple[float, ...] = ()

    def until(self, k: int, dosed: list, now: float, window_h: float) -> float:
        """The earliest time cohort ``k`` may be formed (``now`` if it need not wait)."""
        if not k or not self.escalates[k]:
            return now
        seen = min((t + h for t, h in zip(dosed, self.dlt_known)), default=math.inf)
        last = len(dosed) - 1
        follow = self.followed[last] if self.followed else window_h
        return now if seen <= now else max(now, min(dosed[last] + follow, seen))


def trial_calendar(cohorts: list[tuple[int, int]], conduct: Conduct, rng: np.random.Generator,
                   log: bool = False, follow_up: bool = False,
                   leaving: list[list[float | None]] | None = None,
                   hold: StartupHold | None = None,
                   again: list[float | None] | None = None,
                   enrol: bool = False) -> TrialCalendar:
    """Lay the cohorts ``[(dose, size), ...]`` of one trial on a calendar.

    A cohort is formed once enough eligible patients wait and the previous cohort is dosed;
    it is dosed at the sites' chairs; the next cohort waits for the observation window after
    its last dose (the decision), or, with ``follow_up`` (designs deciding with partial
    follow-up), only for its dosing; the last cohort's window ends the trial's decisions.
    The times of the first ``k`` cohorts do not depend on the cohorts after them.

    ``leaving`` (dropout): per cohort, per patient slot in order, the hours from dose to
    leaving of a patient not evaluable, else ``None``.  A cohort of ``size`` slots with ``r``
    not evaluable is formed of its first ``size - r`` patients; each one who leaves is replaced
    at that time by the next waiting patient (the cohort's next slot), and the decision waits
    for the window of the last evaluable patient.

    ``hold`` (with ``follow_up``): a start-up stage, whose escalations wait (patients arriving
    meanwhile wait in the queue up to ``max_wait_days``).

    ``again`` (a second period, cohorts of one): per cohort, the hours after its patient's dose
    at which they are dosed again (a chair session at the first opening from then; ``None``:
    not again); such a patient's participation ends ``read_out`` after the second dose.

    ``enrol`` (phase II: cohorts of one, no decisions): each eligible patient is enrolled on
    arrival and dosed at their own site's first free chair, whatever waits at other sites;
    patient ``k`` is the ``k``-th enrolled (``dosed[k]`` their dose, not in time order)."""
    env = simpy.Environment()
    cal = TrialCalendar(events=[] if log else None)
    arrived = simpy.Store(env)                    # wakes the trial on each eligible arrival
    clinic = Clinic(env, conduct, rng, cal, arrived.put)
    queue, note, expire, session = clinic.queue, clinic.note, clinic.expire, clinic.session
    over = env.event()

    def dose_one(t_arr, pid, j, dose, started, after=None, slot=None):
        def dosed():
            if slot is None:
                cal.dosed.append(env.now)
                cal.arrived.append(t_arr)
                cal.sites.append(j)
                who.append((pid, j))
            else:
                cal.dosed[slot], cal.arrived[slot], cal.sites[slot] = env.now, t_arr, j
            note("dose", pid, j, dose)
            started.succeed()
            if after is not None:
                second.append(env.process(dose_again(env.now + after, pid, j)))
        yield from session(j, dosed)

    second: list = []                             # second-period doses (processes)
    who: list = []                                # (arrival id, site) of each dose, in order

    def dose_again(at, pid, j):
        def dosed():
            cal.redosed.append(env.now)
            note("dose_period2", pid, j)
        yield env.timeout(at - env.now)
        yield from session(j, dosed)

    evaluable: list[float] = []                   # dose times of evaluable patients

    def next_patient():
        """Wait for an eligible patient (those past the waiting limit turned away) and take
        the longest waiting: ``(arrival time, arrival id, site)``."""
        while True:
            expire()
            if queue:
                return queue.pop(0)
            yield arrived.get()

    def replace(dose, slots, leaves_at, pid, j):
        """When patient ``pid`` (at site ``j``) leaves (at ``leaves_at``), dose the cohort's
        next slot; repeat while replacements leave too."""
        while leaves_at is not None:
            yield env.timeout(max(leaves_at - env.now, 0.0))
            note("dropout", pid, j, dose)
            if not slots:
                return
            leave_h = slots.pop(0)
            t, pid, j = yield from next_patient()
            ev = env.event()
            env.process(dose_one(t, pid, j, dose, ev))
            yield ev
            if leave_h is None:
                evaluable.append(env.now)
            leaves_at = None if leave_h is None else env.now + leave_h

    def trial():
        for k, (dose, size) in enumerate(cohorts):
            drops = [None] * size if leaving is None else list(leaving[k])
            first = size - sum(x is not None for x in drops)
            if follow_up and hold is not None:
                until = hold.until(k, cal.dosed, env.now, conduct.window_h)
                if until > env.now:
                    yield env.timeout(until - env.now)
            lost = cal.turned_away
            while True:
                expire()
                if len(queue) >= first:
                    break
                if cal.turned_away - lost > MAX_TURNED_AWAY:
                    raise ConfigError(
                        f"cohort {k + 1} could not be formed: {MAX_TURNED_AWAY:,} patients were "
                        f"turned away while it waited for {first} patients (max_wait_days "
                        f"{conduct.max_wait_days:g} is too short to gather a cohort at these "
                        f"arrival rates)", ("conduct", "max_wait_days"))
                yield arrived.get()
            if follow_up and k:
                cal.decisions.append(env.now)
                note("decision")
            cal.formed.append(env.now)
            group, queue[:first] = queue[:first], []
            started = [env.event() for _ in group]
            after = None if again is None else again[k]
            for (t, pid, j), ev in zip(group, started):
                env.process(dose_one(t, pid, j, dose, ev, after))
            yield simpy.AllOf(env, started)
            if follow_up and k < len(cohorts) - 1:
                continue
            mine = cal.dosed[-first:] if first else []
            ids = who[-first:] if first else []
            evaluable.extend(x for x, h in zip(mine, drops) if h is None)
            spare = drops[first:]
            chains = [env.process(replace(dose, spare, x + h, *i))
                      for x, h, i in zip(mine, drops, ids) if h is not None]
            if chains:
                yield simpy.AllOf(env, chains)
            last = max(evaluable) if evaluable else env.now
            wait = last + conduct.window_h - env.now
            if wait > 0:
                yield env.timeout(wait)
            cal.decisions.append(env.now)
            note("decision")
        expire()
        cal.waiting = len(queue)
        clinic.closed.succeed()                   # accrual closes
        if second:
            yield simpy.AllOf(env, second)
        last = max(evaluable + cal.redosed) if evaluable else None
        cal.end = last + conduct.read_out if last is not None else 0.0
        over.succeed()

    def enrolment():
        n = len(cohorts)
        cal.dosed, cal.arrived, cal.sites = [math.nan] * n, [math.nan] * n, [-1] * n
        started = []
        for k, (arm, _) in enumerate(cohorts):
            t, pid, j = yield from next_patient()
            started.append(env.event())
            env.process(dose_one(t, pid, j, arm, started[-1],
                                 None if again is None else again[k], slot=k))
        expire()
        cal.waiting = len(queue)
        clinic.closed.succeed()                   # accrual closes
        yield simpy.AllOf(env, started)
        if second:
            yield simpy.AllOf(env, second)
        cal.end = (max(cal.dosed + cal.redosed) + conduct.read_out) if n else 0.0
        over.succeed()

    env.process(enrolment() if enrol else trial())
    try:
        env.run(until=over)
    except ConfigError as e:      # simpy re-raises a copy: the original keeps the YAML path
        raise (e.__cause__ if isinstance(e.__cause__, ConfigError) else e) from None
    return cal
