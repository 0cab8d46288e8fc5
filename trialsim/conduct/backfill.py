"""Escalation trials with backfilling (:class:`~trialsim.designs.backfill.Backfill`): the
calendar and the decisions interleaved.

Who is backfilled depends on what is known when they arrive, and what is known at a decision
depends on who was backfilled, so each trial runs on its own simpy calendar, paused at each
decision; the decisions of every trial at the same step are taken together
(``decide_batch``), then each calendar runs on to its next decision.

On a trial's calendar: after a decision, the next escalation cohort is filled one patient at
a time from the patients waiting or arriving (each dosed as soon as a chair and the clinic
allow); once it is full, patients arriving during its observation window are backfilled at
the open dose (:meth:`Backfill.open_doses`, checked at each arrival) or, with none open, wait
(up to ``max_wait_days``) for the next cohort; the decision comes at the window's end after
the cohort's last dose.  Patient ``k`` of a trial (escalation and backfill, in order of dosing)
has the outcomes of potential-outcome slot ``k``; a DLT occurs ``onset * window_h`` after the
dose (the ``onset`` stream, as for the TITE-CRM) and is known then; a patient without a DLT is
evaluated at the window's end (so the current cohort's patients count in the open-dose rule as
they are evaluated, and all of them at the decision); a response is known at the primary visit
(``read_out_h``).
When escalation ends, backfilling ends; the selection is the design's on every patient once
followed up, and the trial's end is the last patient's primary visit.

With dropout (``conduct.dropout_per_week``, the ``dropout`` stream) a patient who leaves before
the window's end without a DLT seen is never evaluated; one in an escalation cohort is replaced
when they leave by the next patient available (before any backfilling), and the decision waits
for the window of the cohort's last evaluable patient; a backfilled one is not replaced.
"""
from __future__ import annotations

import numpy as np
import simpy

from trialsim.conduct.arrays import summarise
from trialsim.conduct.calendar import TrialCalendar
from trialsim.conduct.dropout import drops, leave_times, patient_slots
from trialsim.conduct.followup import dlt_onsets
from trialsim.conduct.clinic import Clinic
from trialsim.conduct.spec import Conduct
from trialsim.designs.backfill import Backfill, backfill_of
from trialsim.designs.base import NO_DOSE, BatchState, decide_checked
from trialsim.results import TrialArrays, benchmark_selection
from trialsim.rng import stream

#: Slack on "the window has passed" (h): the decision comes at the window's end computed in
#: floating point.
_EPS_H = 1e-6


def slots(design, n_doses: int, conduct: Conduct | None = None) -> int:
    """Patient slots a trial may fill: ``max_patients`` escalation patients (more to replace
    dropouts) and up to ``max_per_dose`` per dose by backfilling."""
    return (patient_slots(int(design.max_patients), conduct)
            + n_doses * int(_rule(design).max_per_dose))


def _rule(design) -> Backfill:
    rule = backfill_of(design)
    if rule is None:
        raise ValueError("the design has no backfill modifier")
    return rule


class _Trial:
    """One trial on its calendar, paused at each decision (:meth:`run_to_decision`)."""

    def __init__(self, conduct: Conduct, rng: np.random.Generator, rule: Backfill,
                 tox: np.ndarray, eff: np.ndarray, onset: np.ndarray,
                 leave: np.ndarray | None = None, log: bool = False):
        self.c, self.rng, self.rule = conduct, rng, rule
        self.tox, self.eff, self.onset = tox, eff, onset        # (S, D), (S, D), (S,)
        self.leave = leave                  # (S,) hours from dose to leaving, or None
        self.D = tox.shape[1]
        self.env = env = simpy.Environment()
        self.cal = TrialCalendar(events=[] if log else None)
        self.wake = env.event()
        S = tox.shape[0]
        self.dose = np.full(S, NO_DOSE, np.int64)   # per patient, in order of dosing
        self.time = np.zeros(S)
        self.backfill = np.zeros(S, bool)
        self.cohort = np.full(S, -1, np.int32)
        self.gone = np.zeros(S, bool)       # left before the window's end, no DLT seen
        self.pid = np.full(S, -1, np.int64)  # arrival ids (the event log's patient)
        self.m = 0                          # patients dosed
        self.replacing = 0                  # escalation places waiting for a replacement
        self.k = 0                          # escalation cohorts formed
        self.current = NO_DOSE
        self.last_cohort: list[int] = []    # patients of the last escalation cohort
        self.in_window = False
        self.reserved = 0                   # patients being dosed, not yet recorded
        self.backfilling: list = []         # the backfilled patients' dosing events
        self.ask = env.event()
        self.reply = env.event()
        self.capacity = tox.shape[0]
        self._open_key, self._open = None, None
        self.clinic = Clinic(env, conduct, rng, self.cal, self._arrived)
        self.queue, self._note, self._expire = (self.clinic.queue, self.clinic.note,
                                                self.clinic.expire)
        env.process(self._trial())

    # -- the clinic ------------------------------------------------------------------------
    def _arrived(self, pid: int) -> None:
        if self.in_window and not self.replacing:     # a replacement comes first
            self._try_backfill()
        if not self.wake.triggered:
            self.wake.succeed()

    def _next_patient(self):
        """Wait for a patient in the queue (the longest waiting) and take them."""
        while True:
            self._expire()
            if self.queue:
                return self.queue.pop(0)
            if self.wake.triggered:     # one event wakes every waiter (cohort, replacements)
                self.wake = self.env.event()
            yield self.wake

    def _dose_one(self, patient, dose: int, backfill: bool, started):
        t_arr, pid, j = patient

        def start():
            self.reserved -= 1
            m = self.m
            self.dose[m], self.time[m], self.backfill[m] = dose, self.env.now, backfill
            self.cohort[m] = self.k - 1
            self.pid[m] = pid
            if self.leave is not None:
                h = self.leave[m]
                self.gone[m] = h < self.c.window_h and not (self.tox[m, dose]
                                                            and self.onset[m] <= h)
            self.m = m + 1
            self.cal.dosed.append(self.env.now)
            self.cal.arrived.append(t_arr)
            self.cal.sites.append(j)
            self._note("backfill" if backfill else "dose", pid, j, dose)
            started.succeed(m)

        yield from self.clinic.session(j, start)

    # -- backfilling -------------------------------------------------------------------------
    def _try_backfill(self):
        """Backfill the longest-waiting patient still within ``max_wait_days`` (those past it
        are turned away first), if a dose is open."""
        if self.m + self.reserved >= self.capacity or self.current <= 0:
            return
        self._expire()
        if not self.queue:
            return
        d = self.rule.pick(self.open_doses())
        if d == NO_DOSE:
            return
        patient = self.queue.pop(0)
        self.reserved += 1
        started = self.env.event()
        self.backfilling.append(started)
        self.env.process(self._dose_one(patient, d, True, started))

    def open_doses(self) -> np.ndarray:
        """The doses open now (:meth:`Backfill.open_doses`); the last answer is kept while
        what is known stays the same (a model-based design decides to answer)."""
        counts = self.counts(self.env.now)
        row, enrolled = self._row(counts), counts[4]
        key = (b"".join(np.asarray(v).tobytes() for v in row), enrolled.tobytes())
        if key != self._open_key:
            self._open_key = key
            self._open = self.rule.open_doses(_stack([row]), enrolled[None], row[2][None] > 0)[0]
        return self._open

    # -- what is known -----------------------------------------------------------------------
    def counts(self, now: float, everything: bool = False):
        """Per dose: evaluated patients, their DLTs, responses known, joint (DLT and
        response), and patients given the dose (pending included); ``everything``: every
        outcome, as at the end of follow-up."""
        D, k = self.D, self.m
        dose = self.dose[:k]
        idx = np.arange(k)
        tox = self.tox[idx, dose]
        eff = self.eff[idx, dose]
        stays = ~self.gone[:k]          # patients who left early are never evaluable
        if everything:
            ev = stays
            eff = eff & stays
        else:      # evaluated: at the DLT, else at the window's end (escalation or backfill)
            since = now - self.time[:k] + _EPS_H
            ev = stays & ((tox & (self.onset[:k] <= since)) | (since >= self.c.window_h))
            eff = eff & stays & (since >= self.c.read_out)
        tox = tox & ev

        def per_dose(mask):
            return np.bincount(dose[mask], minlength=D)

        return (per_dose(ev), per_dose(tox), per_dose(eff), per_dose(tox & eff),
                np.bincount(dose, minlength=D))

    def state(self, everything: bool = False) -> tuple:
        """This trial's row of a :class:`BatchState` at the current time."""
        return self._row(self.counts(self.env.now, everything))

    def _row(self, counts: tuple) -> tuple:
        n, y, e, ey, _ = counts
        last = np.asarray(self.last_cohort, np.int64)
        lc_n = last.size
        lc_tox = int(self.tox[last, self.dose[last]].sum())
        escalated = int((~self.backfill[:self.m] & ~self.gone[:self.m]).sum())
        return n, y, e, ey, self.current, lc_n, lc_tox, escalated

    # -- the escalation ----------------------------------------------------------------------
    def _trial(self):
        env, W = self.env, self.c.window_h
        while True:
            reply = self.reply
            self.ask.succeed()
            cmd = yield reply
            if cmd is None:
                break
            dose, size = cmd
            self.k += 1
            self.current = dose
            self.last_cohort = []
            started = []
            for _ in range(size):
                if self.m + self.reserved >= self.capacity:
                    raise RuntimeError(f"a trial needed more than its {self.capacity} patient "
                                       f"slots (replacements for dropouts: a chance below 1e-9)")
                patient = yield from self._next_patient()
                ev = env.event()
                self.reserved += 1
                env.process(self._dose_one(patient, dose, False, ev))
                started.append(ev)
                yield ev
            members = [ev.value for ev in started]
            self.in_window = True
            chains = [env.process(self._replace(dose, m)) for m in members if self.gone[m]]
            self.last_cohort = [m for m in members if not self.gone[m]]
            if self.queue:              # patients who waited through the cohort's dosing
                for _ in range(len(self.queue)):
                    before = len(self.queue)
                    self._try_backfill()
                    if len(self.queue) == before:
                        break
            if chains:
                yield simpy.AllOf(env, chains)
            last = max((self.time[m] for m in self.last_cohort), default=env.now)
            wait = last + W - env.now
            if wait > 0:
                yield env.timeout(wait)
            self.in_window = False
            self.cal.decisions.append(env.now)
            self._note("decision")
        # escalation over: backfilling ends; follow every patient to the primary visit
        if self.reserved:               # backfilled patients still waiting for a chair
            yield simpy.AllOf(env, self.backfilling)
        self.cal.end = self.time[:self.m].max() + self.c.read_out if self.m else 0.0
        self._expire()
        self.cal.waiting = len(self.queue)
        self.clinic.closed.succeed()

    def _replace(self, dose: int, m: int):
        """When escalation patient ``m`` leaves, the next patient takes their place in the
        cohort (before any backfilling); again while replacements leave."""
        env = self.env
        while self.gone[m]:
            yield env.timeout(max(self.time[m] + self.leave[m] - env.now, 0.0))
            self._note("dropout", int(self.pid[m]))
            if self.m + self.reserved >= self.capacity:
                return
            self.replacing += 1
            patient = yield from self._next_patient()
            self.replacing -= 1
            ev = env.event()
            self.reserved += 1
            env.process(self._dose_one(patient, dose, False, ev))
            m = yield ev
            if not self.gone[m]:
                self.last_cohort.append(m)

    # -- driving -----------------------------------------------------------------------------
    def run_to_decision(self) -> None:
        self.env.run(until=self.ask)

    def answer(self, cmd) -> None:
        reply = self.reply
        self.ask, self.reply = self.env.event(), self.env.event()
        reply.succeed(cmd)

    def finish(self) -> None:
        self.answer(None)
        self.env.run(until=self.clinic.closed)


def run_trials(study, trials: np.ndarray, seed: int, scenario: int, traced: int | None = None):
    """Run ``trials`` of ``study`` (a design with :class:`Backfill`) on their calendars:
    ``(TrialArrays, CalendarArrays)``; ``traced``: the index (within ``trials``) of a trial
    whose event log is kept (``CalendarArrays`` then carries it in ``events``)."""
    design, conduct = study.design, study.calendar_conduct
    rule = _rule(design)
    doses = np.asarray(study.doses, float)
    T, D = len(trials), len(doses)
    S = slots(design, D, conduct)
    po = study.scenario.draw(seed, scenario, trials, S, doses, study.dose_unit)
    tox_po = po.tox
    eff_po = po.eff if po.eff is not None else np.zeros_like(tox_po)
    if rule.need_response and po.eff is None:
        raise ValueError("backfill with need_response needs an efficacy outcome (truth.eff "
                         "or response.efficacy)")
    onset = dlt_onsets(seed, scenario, trials, S, conduct.window_h)
    leave = leave_times(conduct, seed, scenario, trials, S) if drops(conduct) else None
    runs = [_Trial(conduct, stream(seed, scenario, int(k), "accrual"), rule, tox_po[i],
                   eff_po[i], onset[i], None if leave is None else leave[i], log=traced == i)
            for i, k in enumerate(trials)]
    selected = np.full(T, NO_DOSE, np.int64)
    reason = np.empty(T, dtype=object)
    stop_code = np.empty(T, dtype=object)
    act = list(range(T))
    cohort = int(design.cohort_size)
    while act:
        for i in act:
            runs[i].run_to_decision()
        dec = decide_checked(design, _stack([runs[i].state() for i in act]))
        ended = dec.stop | (dec.next_dose == NO_DOSE)
        keep = []
        for r, i in enumerate(act):
            if ended[r]:
                runs[i].finish()
                reason[i], code = dec.reason[r], dec.stop_code[r]
                stop_code[i] = code if code else "no_next_dose"
                continue
            size = cohort if dec.cohort_size is None else int(dec.cohort_size[r])
            runs[i].answer((int(dec.next_dose[r]), size))
            keep.append(i)
        act = keep
    final = _stack([run.state(everything=True) for run in runs])   # every patient followed up
    selected[:] = decide_checked(design, final).recommended
    pat_dose = np.full((T, S), NO_DOSE, np.int8 if D < 127 else np.int64)
    pat_cohort = np.full((T, S), -1, np.int32)
    pat_bf = np.zeros((T, S), bool)
    pat_gone = np.zeros((T, S), bool)
    n, ntox, neff = final.n, final.tox, final.eff
    for i, run in enumerate(runs):
        pat_dose[i] = run.dose
        pat_cohort[i] = run.cohort
        pat_bf[i] = run.backfill
        pat_gone[i] = run.gone
    given = (pat_dose >= 0) & ~pat_gone              # evaluable
    rows, cols, d = np.arange(T)[:, None], np.arange(S)[None, :], np.maximum(pat_dose, 0)
    benchmark = benchmark_selection(design, study.target, tox_po, po.eff)
    arrays = TrialArrays(trials=trials, selected=selected, reason=reason.astype(str),
                         stop_code=stop_code.astype(str), n=n, tox=ntox, eff=neff,
                         patient_dose=pat_dose, patient_cohort=pat_cohort,
                         patient_tox=tox_po[rows, cols, d] & given,
                         patient_eff=eff_po[rows, cols, d] & given,
                         patient_dropout=pat_gone, patient_backfill=pat_bf,
                         benchmark=benchmark)
    cals = summarise([run.cal for run in runs], conduct, S)
    return arrays, cals, [run.cal for run in runs]


def _stack(rows: list[tuple]) -> BatchState:
    n, y, e, ey, cur, lc_n, lc_tox, esc = zip(*rows)
    a = np.asarray
    return BatchState(a(n), a(y), a(e), a(cur, np.int64), a(lc_n, np.int64),
                      a(lc_tox, np.int64), a(ey), escalated=a(esc, np.int64))
