"""``simulate(study, n_trials, seed)``: the fast path, all trials advancing in lockstep.

Trials are processed in batches; within a batch every trial still running receives its next
cohort at the same step, and the design decides for the whole batch at once
(``decide_batch``).  Trial ``k`` of scenario ``s`` draws only from its own streams
(``rng.trial_seed``), so results do not depend on the batch size, on ``first_trial`` splits,
or on the number of workers.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from trialsim._lockstep_kernels import give_cohorts
from trialsim.conduct.arrays import CalendarArrays, calendars
from trialsim.conduct.backfill import run_trials as run_backfill_trials
from trialsim.conduct.backfill import slots as backfill_slots
from trialsim.conduct.dropout import SLOT_TAIL, drops, leave_times, patient_slots
from trialsim.conduct.followup import FollowUpClock, dlt_onsets, follow_up_clock
from trialsim.designs.base import NO_DOSE, BatchState, decide_checked
from trialsim.limits import (DEFAULT_MAX_MEMORY_GB, GIB, MAX_TRIALS, ResourceError,  # noqa: F401
                             check_memory_limit, count)
from trialsim.phase2.simulate import memory_estimate as phase2_memory
from trialsim.phase2.scenarios import scenario_memory, simulate_scenarios
from trialsim.phase2.simulate import simulate_phase2
from trialsim.phase2.study import Phase2Study
from trialsim.results import (Simulations, TrialArrays, benchmark_selection,  # noqa: F401
                              fully_informed_selection)
from trialsim.rng import check_seed, stream_uniforms
from trialsim.study import N_TRUTH_PATIENTS, Mechanistic, Study

DEFAULT_BATCH = 4096


def memory_estimate(study: Study, n_trials: int, batch_size: int = DEFAULT_BATCH) -> float:
    """Bytes a run of ``n_trials`` trials needs at its peak (an upper estimate): what is kept
    per trial (counts, the per-patient arrays and the patients table written at the end),
    one batch of potential outcomes and exposures, and the truth estimate."""
    D, P = study.n_doses, trial_slots(study)
    sc = study.scenario
    n_metrics = len(sc.metrics()) + 1 if isinstance(sc, Mechanistic) else 0
    width = sc.population.width(sc.n_z(), sc.n_eta()) if isinstance(sc, Mechanistic) else 2
    per_trial = P * (8 + 4 + 2 + 100) + D * 24 + 400
    per_patient = 2 * 8 * width + D * (2 + 16 * (n_metrics + 1))
    batch = min(n_trials, batch_size) * P * per_patient
    truth = N_TRUTH_PATIENTS * per_patient if isinstance(sc, Mechanistic) else 0
    return float(n_trials) * per_trial + batch + truth


def trial_slots(study: Study) -> int:
    """Patient slots a trial may fill: ``max_patients``, more to replace dropouts (a design
    with partial follow-up censors them instead), or more for backfilled patients."""
    design = study.design
    if design.backfills:
        return backfill_slots(design, study.n_doses, study.calendar_conduct)
    if design.follow_up:
        return int(design.max_patients)
    return patient_slots(int(design.max_patients), study.calendar_conduct)


def check_memory(study: Study, n_trials: int, max_memory_gb: float,
                 batch_size: int = DEFAULT_BATCH) -> None:
    """``ResourceError`` when the run's memory estimate exceeds ``max_memory_gb``."""
    check_memory_limit(*memory_need(study, n_trials, batch_size), max_memory_gb)


def memory_need(study: Study, n_trials: int,
                batch_size: int = DEFAULT_BATCH) -> tuple[float, str]:
    """The run's memory estimate (bytes) and what it is of (for messages)."""
    n_trials = count(n_trials, "n_trials", 1, MAX_TRIALS)
    if isinstance(study, Phase2Study):
        k = len(study.scenarios) or 1
        need = scenario_memory(study, n_trials) if study.scenarios else phase2_memory(
            study, n_trials)
        what = (f"{n_trials:,} phase II trials of {study.design.n_total:,} patients"
                + (f" in each of {k} scenarios" if study.scenarios else ""))
    else:
        need = memory_estimate(study, n_trials, batch_size)
        what = f"{n_trials:,} trials of up to {study.design.max_patients:,} patients"
    return need, what


def simulate(study: Study, n_trials: int, seed: int, *, scenario: int = 0, first_trial: int = 0,
             batch_size: int = DEFAULT_BATCH,
             progress: Callable[[int, int], None] | None = None,
             max_memory_gb: float = DEFAULT_MAX_MEMORY_GB) -> Simulations:
    """Simulate trials ``first_trial .. first_trial + n_trials - 1`` of ``study``.

    ``progress(done, total)`` is called after each batch.  The run's memory need is
    estimated first and refused (:class:`ResourceError`) beyond ``max_memory_gb`` GiB.
    """
    if isinstance(study, Phase2Study) and study.scenarios:
        return simulate_scenarios(study, n_trials, seed, scenario=scenario,
                                  first_trial=first_trial, progress=progress,
                                  max_memory_gb=max_memory_gb)
    if isinstance(study, Phase2Study):
        return simulate_phase2(study, n_trials, seed, scenario=scenario, first_trial=first_trial,
                               progress=progress, max_memory_gb=max_memory_gb)
    if not isinstance(study, Study):
        hint = (" (read a study file with trialsim.load(path) first)"
                if isinstance(study, (str, Path)) else "")
        raise TypeError(f"simulate() needs a Study, got {type(study).__name__}{hint}")
    n_trials = count(n_trials, "n_trials", 1, MAX_TRIALS)
    seed = check_seed(seed)
    scenario = count(scenario, "scenario")
    first_trial = count(first_trial, "first_trial")
    batch_size = count(batch_size, "batch_size", 1)
    if isinstance(max_memory_gb, bool) or not isinstance(max_memory_gb, (int, float)) \
            or not max_memory_gb > 0:
        raise ValueError(f"max_memory_gb must be a positive number, got {max_memory_gb!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a function progress(done, total), got "
                        f"{type(progress).__name__}")
    check_memory(study, n_trials, max_memory_gb, batch_size)
    parts, cals = [], []
    done = 0
    for start in range(first_trial, first_trial + n_trials, batch_size):
        trials = np.arange(start, min(start + batch_size, first_trial + n_trials), dtype=np.int64)
        if study.design.backfills:        # calendars and decisions interleaved
            arrays, cal, _ = run_backfill_trials(study, trials, seed, scenario)
            parts.append(arrays)
            cals.append(cal)
        elif study.design.follow_up:      # decisions inside the calendar
            clock = follow_up_clock(study, trials, seed, scenario)
            parts.append(run_batch(study, trials, seed, scenario, clock))
            cals.append(clock.calendars(parts[-1], study, seed, scenario))
        else:
            parts.append(run_batch(study, trials, seed, scenario))
            if study.conduct is not None:     # the timed path: each trial on its calendar
                cals.append(calendars(parts[-1], study.calendar_conduct, seed, scenario))
        done += len(trials)
        if progress is not None:
            progress(done, n_trials)
    return Simulations(study=study, seed=seed, scenario=scenario, arrays=TrialArrays.concat(parts),
                       calendar=CalendarArrays.concat(cals) if cals else None)


def run_batch(study: Study, trials: np.ndarray, seed: int, scenario: int = 0,
              clock: FollowUpClock | None = None) -> TrialArrays:
    """Run the trials with the given indices in lockstep and return their raw arrays.

    With ``clock`` (designs deciding with partial follow-up) each decision reads what is known
    at its time on the trials' calendars, cohorts have the clock's sizes, and the selection is
    the design's recommendation on every patient's complete follow-up."""
    design = study.design
    doses = np.asarray(study.doses, float)
    T, D, P = len(trials), len(doses), int(design.max_patients)
    cohort = int(design.cohort_size)
    conduct = study.calendar_conduct
    S = trial_slots(study)
    po = study.scenario.draw(seed, scenario, trials, S, doses, study.dose_unit)
    tox_po = po.tox
    eff_po = po.eff if po.eff is not None else np.zeros_like(tox_po)
    if drops(conduct) and clock is None:
        leave = leave_times(conduct, seed, scenario, trials, S)
        onset = dlt_onsets(seed, scenario, trials, S, conduct.window_h)
        window = float(conduct.window_h)
    else:
        leave = onset = np.empty((0, 0))
        window = 0.0
    dropped = np.zeros((T, S), bool)

    n = np.zeros((T, D), np.int64)
    ntox = np.zeros((T, D), np.int64)
    neff = np.zeros((T, D), np.int64)
    neff_tox = np.zeros((T, D), np.int64)
    current = np.full(T, NO_DOSE, np.int64)
    lc_n = np.zeros(T, np.int64)
    lc_tox = np.zeros(T, np.int64)
    total = np.zeros(T, np.int64)
    pat_dose = np.full((T, S), NO_DOSE, np.int8 if D < 127 else np.int64)
    pat_cohort = np.full((T, S), -1, np.int32)

    selected = np.full(T, NO_DOSE, np.int64)
    reason = np.empty(T, dtype=object)
    stop_code = np.empty(T, dtype=object)
    act = np.arange(T)
    # designs that randomise the next dose: one uniform per (trial, patients treated so far)
    draws = (stream_uniforms(seed, scenario, trials, "model", S + 1) if design.randomises
             else None)
    dec = decide_checked(design, _with_draws(BatchState.empty(T, D), draws, act, total))
    step = 0
    while True:
        ended = dec.stop | (dec.next_dose == NO_DOSE)
        if ended.any():
            done = act[ended]
            if clock is None:
                selected[done] = dec.recommended[ended]
            else:       # the analysis once every enrolled patient is followed up
                full = clock.final(done, n, tox_po, pat_dose, neff, neff_tox)
                selected[done] = decide_checked(design, full).recommended
            reason[done] = dec.reason[ended]
            code = dec.stop_code[ended]
            stop_code[done] = np.where(code == "", "no_next_dose", code)
            act = act[~ended]
            nxt = dec.next_dose[~ended]
            sizes = None if dec.cohort_size is None else dec.cohort_size[~ended]
        else:
            nxt = dec.next_dose
            sizes = dec.cohort_size
        if act.size == 0:
            break
        if clock is not None:
            planned = clock.sizes[step]
            if sizes is not None and (sizes != planned).any():
                raise ValueError(f"{type(design).__name__} decides with partial follow-up: its "
                                 f"cohorts must keep cohort_size ({cohort})")
            sizes = None
        sizes = np.full(act.size, cohort, np.int64) if sizes is None else sizes.astype(np.int64)
        bad = give_cohorts(act, nxt.astype(np.int64), sizes, P, step, tox_po, eff_po, n, ntox,
                           neff, neff_tox, pat_dose, pat_cohort, total, current, lc_n, lc_tox,
                           leave, onset, window, dropped)
        if bad >= 0:
            if total[act[bad]] >= S > P:
                raise RuntimeError(f"trial {trials[act[bad]]} needed more than {S - P} "
                                   f"replacements for dropouts (a chance below {SLOT_TAIL:g})")
            raise RuntimeError(f"{type(design).__name__} asked for a cohort beyond max_patients="
                               f"{P}: a design must stop a trial once state.total reaches "
                               f"max_patients (trialsim.designs._common.stop_at_max_patients)")
        step += 1
        if clock is None:
            state = BatchState(n[act], ntox[act], neff[act], current[act], lc_n[act],
                               lc_tox[act], neff_tox[act])
        else:
            state = clock.state(act, step, n, tox_po, pat_dose, neff, neff_tox)
        dec = decide_checked(design, _with_draws(state, draws, act, total))

    benchmark = benchmark_selection(design, study.target, tox_po, po.eff)
    seen = (pat_dose >= 0) & ~dropped                # outcomes observed (evaluable patients)
    rows, cols, d = np.arange(T)[:, None], np.arange(S)[None, :], np.maximum(pat_dose, 0)
    if clock is not None and clock.leave is not None:   # censored: DLTs after leaving unseen
        patient_tox, dropped = clock.observed(pat_dose, tox_po)
        cell = (np.arange(T)[:, None] * D + d)[patient_tox]
        ntox = np.bincount(cell, minlength=T * D).reshape(T, D).astype(np.int64)
    else:
        patient_tox = tox_po[rows, cols, d] & seen
    return TrialArrays(trials=trials, selected=selected, reason=reason.astype(str),
                       stop_code=stop_code.astype(str), n=n, tox=ntox,
                       eff=neff, patient_dose=pat_dose, patient_cohort=pat_cohort,
                       patient_tox=patient_tox,
                       patient_eff=eff_po[rows, cols, d] & seen,
                       patient_dropout=dropped, patient_backfill=np.zeros((T, S), bool),
                       benchmark=benchmark)


def _with_draws(state: BatchState, draws: np.ndarray | None, act: np.ndarray,
                total: np.ndarray) -> BatchState:
    """``state`` with each active trial's uniform for this decision (``None``: no draws)."""
    if draws is None:
        return state
    return dataclasses.replace(state, u=draws[act, total[act]])
