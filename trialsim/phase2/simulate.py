"""Simulating randomised phase II trials, all trials of a batch at once.

For trial ``k`` of scenario ``s`` (its own streams, so results do not depend on batching):

1. ``n_total`` virtual patients from the ``patients`` stream: covariates, PK random effects,
   the time course's two subject effects, one noise draw per visit and one for an active
   placebo — their MADRS at every visit *under every dose* (potential outcomes) follows;
2. randomisation to arms from the ``allocation`` stream (the design's ``allocate``; an
   adaptive design redraws each stage after its interim, :mod:`.interims`);
3. safety measures from the ``safety`` stream (:mod:`.safety`), dropout times from the
   ``dropout`` stream (:mod:`.dropout`), visits after dropout unobserved;
4. the endpoint under the missing-data rule and the dose-level estimates (:mod:`.estimates`;
   a sequential parallel comparison design adds its second period, :mod:`.periods`);
5. MCP-Mod (:func:`trialsim.analysis.doseresponse.batch.batch_mcpmod`) and the dose to take
   forward (:mod:`.decision`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from trialsim.analysis.doseresponse.batch import batch_mcpmod
from trialsim.analysis.doseresponse.models import Candidates
from trialsim.conduct.arrays import (CalendarArrays, enrolment_calendar, enrolment_calendars,
                                     enrolment_times)
from trialsim.conduct.calendar import TrialCalendar
from trialsim.designs.adaptive import Adaptive
from trialsim.designs.spcd import SPCD
from trialsim.limits import MAX_TRIALS, check_memory_limit, count
from trialsim.phase2.arrays import Phase2Arrays
from trialsim.phase2.decision import take_forward
from trialsim.phase2.dropout import dropout_times
from trialsim.phase2.estimates import analysis_input, arm_means
from trialsim.phase2.interims import run_interims
from trialsim.phase2.periods import period2
from trialsim.phase2.results import Phase2Simulations
from trialsim.phase2.safety import arm_rates, safety_normals, safety_outcomes
from trialsim.phase2.study import Phase2Study
from trialsim.response.timecourse import madrs_trajectory
from trialsim.rng import check_seed, stream_uniforms
from trialsim.study import patient_exposures

DEFAULT_BATCH = 1024


def draw_patients(study: Phase2Study, seed: int, scenario: int, trials: np.ndarray,
                  n_patients: int | None = None):
    """The virtual patients of ``trials`` (their ``population`` stream)."""
    N = study.design.n_total if n_patients is None else n_patients
    n_eta = 0 if study.pk is None else study.pk.omega.n
    return study.population.draw(seed, scenario, trials, N, study.n_z, n_eta)


def potential_scores(study: Phase2Study, seed: int, scenario: int, trials: np.ndarray,
                     n_patients: int | None = None, arm: np.ndarray | None = None,
                     pts=None, exposures: dict | None = None):
    """``(scores, baseline (T, N), covariates, exposures)``: every patient's MADRS at every
    visit under every dose, ``scores`` (T, N, D, V), and the exposure metrics (T, N, D) — or,
    given ``arm`` (T, N), under that arm only ((T, N, V) and (T, N)), the same numbers
    without the work for the other arms.  ``pts`` and ``exposures`` (every dose): the
    patients and their exposures if already computed."""
    if pts is None:
        pts = draw_patients(study, seed, scenario, trials, n_patients)
    doses = np.asarray(study.doses, float)
    ex = exposures if exposures is not None else patient_exposures(
        study.pk, study.exposure_names(), pts, doses, study.dose_unit)
    if arm is not None:
        pick = arm[..., None].astype(np.intp)
        ex = {k: np.take_along_axis(np.broadcast_to(v, arm.shape + (len(doses),)), pick,
                                    axis=2)[..., 0] for k, v in ex.items()}
    m = study.efficacy
    base = pts.covariates[m.baseline]
    x = ex[m.exposure]
    visits = np.asarray(study.visits_h, float)
    extra = study.control_improvement(pts.z, visits)                     # (T, N, V) or None
    if extra is not None:
        on = (arm == 0) if arm is not None else (np.arange(len(doses)) == 0)
        extra = (np.where(on[..., None, None], extra[..., None, :], 0.0) if arm is not None
                 else np.where(on[:, None], extra[..., None, :], 0.0))
    scores = madrs_trajectory(m, base, x if arm is None else x[..., None], visits,
                              pts.z[..., :2], pts.z[..., 2:2 + len(study.visits_h)], extra)
    return (scores if arm is None else scores[:, :, 0]), base, pts.covariates, ex


def run_batch(study: Phase2Study, trials: np.ndarray, seed: int, scenario: int = 0,
              cands: Candidates | None = None) -> Phase2Arrays:
    """Simulate and analyse the trials with the given indices."""
    T, N, D = len(trials), study.design.n_total, study.n_doses
    visits = np.asarray(study.visits_h, float)
    pts = draw_patients(study, seed, scenario, trials)
    design = study.design
    u = stream_uniforms(seed, scenario, trials, "allocation", design.n_uniforms())
    arm = (design.allocate(u, design.stratum_of(pts.covariates)) if design.strata
           else design.allocate(u))
    u_drop = stream_uniforms(seed, scenario, trials, "dropout", N)
    z_safety = safety_normals(study, seed, scenario, trials, N)
    cands = cands or Candidates.from_models(study.doses, study.analysis.models,
                                            study.analysis.off, study.analysis.scal)
    a = study.analysis
    n_interims = np.zeros(T, np.int16)
    stopped = np.zeros(T, np.int8)
    dropped = np.zeros((T, D), bool)
    if isinstance(design, Adaptive):
        traj_all, base, cov, ex_all = potential_scores(study, seed, scenario, trials, pts=pts)
        cov_d = {k: c[..., None] for k, c in cov.items()}
        safety_all = safety_outcomes(study, z_safety[:, :, None, :], ex_all, cov_d)

        def observe(arm):
            pick = arm[:, :, None, None]
            traj = np.take_along_axis(traj_all, pick, axis=2)[:, :, 0]
            saf = (tuple(np.take_along_axis(x, pick, axis=2)[:, :, 0] for x in safety_all)
                   if study.safety else tuple(x[:, :, 0] for x in safety_all))
            drop = dropout_times(study, u_drop, arm, traj, base, visits, saf[0])
            return traj, visits[None, None, :] < drop[..., None], drop, saf

        def analyse_first(arm, n_k):
            traj, seen, _, _ = observe(arm)
            return analysis_input(study, traj, base, seen, arm, cov, np.full(T, n_k))[1]

        conduct = study.calendar_conduct      # calendar time: who is enrolled at each look
        times = (None if conduct is None
                 else enrolment_times(N, trials, conduct, seed, scenario))
        arm, n_enrolled, n_interims, stopped, dropped = run_interims(
            study, design, u, arm, analyse_first, cands, times)
        traj, seen, dropout_h, (event, peak, resolved) = observe(arm)
        enrolled = np.arange(N)[None, :] < n_enrolled[:, None]
        dropout_h = np.where(enrolled, dropout_h, np.nan)
        arm = np.where(enrolled, arm, -1)
    else:
        ex_all = patient_exposures(study.pk, study.exposure_names(), pts,
                                   np.asarray(study.doses, float), study.dose_unit)
        traj, base, cov, ex = potential_scores(study, seed, scenario, trials, arm=arm, pts=pts,
                                               exposures=ex_all)
        event, peak, resolved = safety_outcomes(study, z_safety, ex, cov)
        dropout_h = dropout_times(study, u_drop, arm, traj, base, visits, event)
        seen = visits[None, None, :] < dropout_h[..., None]              # (T, N, V)
        n_enrolled = np.full(T, N)
    y, est, ok = analysis_input(study, traj, base, seen, arm, cov, n_enrolled)
    arm2, y2 = np.full((T, N), -1, np.int16), np.full((T, N), np.nan)
    if isinstance(design, SPCD):
        arm2, y2, est = period2(study, design, u, pts, ex_all, arm, traj, base, cov,
                                 dropout_h, est,
                                 stream_uniforms(seed, scenario, trials, "period2", N))
    res = batch_mcpmod(est, cands, alpha=a.alpha, delta=a.delta, selection=a.selection,
                       direction=study.direction)
    if stopped.any():           # a trial stopped for futility takes no dose forward
        res = dataclasses.replace(res, signal=res.signal & (stopped != 2))
    fitted = res.fitted - res.fitted[:, :1]
    rates = arm_rates(event, arm, D)
    sign = 1.0 if study.direction == "increasing" else -1.0
    forward = take_forward(study.decision, np.asarray(study.doses, float), res.signal,
                           res.dose, sign * np.nan_to_num(fitted),
                           {k: rates[:, i] for i, k in enumerate(study.safety)}, a.delta)
    n = np.stack([(arm == d).sum(axis=1) for d in range(D)], axis=1)
    analysed = np.stack([((arm == d) & ok).sum(axis=1) for d in range(D)], axis=1)
    observed = arm_means(y, arm, D)
    p_min = np.where(np.isfinite(res.p).any(axis=1), np.nanmin(
        np.where(np.isfinite(res.p), res.p, np.inf), axis=1), np.nan)
    return Phase2Arrays(trials=trials, arm=arm.astype(np.int16), dropout_h=dropout_h,
                        y=y, n=n, analysed=analysed, observed=observed,
                        analysable=est.valid.copy(), signal=res.signal,
                        p_min=p_min, selected=res.selected, td=res.dose, fitted=fitted,
                        forward=forward, event=event, peak=peak, resolved_h=resolved,
                        event_rate=rates, n_interims=n_interims, stopped=stopped,
                        dropped=dropped, arm2=arm2.astype(np.int16), y2=y2)


def memory_estimate(study: Phase2Study, n_trials: int, batch_size: int = DEFAULT_BATCH) -> float:
    """Bytes a run needs at its peak (an upper estimate): the per-patient arrays and the
    patients table kept per trial, one batch of potential outcomes, and the truth."""
    N, D, V = study.design.n_total, study.n_doses, len(study.visits_h)
    S = len(study.safety)
    J = sum(len(m.times_h) for m in study.safety.values())
    per_trial = N * (2 + 8 + 8 + 48 + S * (17 + 24)) + D * (64 + 8 * S) + 400
    width = study.population.width(study.n_z, 0 if study.pk is None else study.pk.omega.n)
    per_patient = (16 * width + D * (V + 2) * 8 * 3 + 8 * study.n_safety_z
                   + D * 8 * (len(study.exposure_names()) + 3 * J))
    from trialsim.phase2.truth import N_TRUTH
    return (float(n_trials) * per_trial + min(n_trials, batch_size) * N * per_patient
            + N_TRUTH * per_patient)


def simulate_phase2(study: Phase2Study, n_trials: int, seed: int, *, scenario: int = 0,
                    first_trial: int = 0, batch_size: int = DEFAULT_BATCH,
                    progress: Callable[[int, int], None] | None = None,
                    max_memory_gb: float = 8.0, like=None):
    """Simulate trials ``first_trial ..`` of a phase II study; returns
    :class:`~trialsim.phase2.results.Phase2Simulations`.  The memory need is estimated first
    and refused beyond ``max_memory_gb`` GiB.  ``like``: the results of another scenario of
    the same study, whose calendars are reused where they are the same."""
    n_trials = count(n_trials, "n_trials", 1, MAX_TRIALS)
    first_trial = count(first_trial, "first_trial")
    scenario = count(scenario, "scenario")
    batch_size = count(batch_size, "batch_size", 1)
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a function progress(done, total)")
    check_memory_limit(memory_estimate(study, n_trials, batch_size),
                       f"{n_trials:,} phase II trials of {study.design.n_total:,} patients",
                       max_memory_gb)
    seed = check_seed(seed)
    cands = Candidates.from_models(study.doses, study.analysis.models, study.analysis.off,
                                   study.analysis.scal)
    parts, done = [], 0
    for start in range(first_trial, first_trial + n_trials, batch_size):
        trials = np.arange(start, min(start + batch_size, first_trial + n_trials),
                           dtype=np.int64)
        parts.append(run_batch(study, trials, seed, scenario, cands))
        done += len(trials)
        if progress is not None:
            progress(done, n_trials)
    arrays = Phase2Arrays.concat(parts)
    return Phase2Simulations(study=study, seed=seed, scenario=scenario, arrays=arrays,
                             calendar=_calendar(study, arrays, seed, scenario, like))


def _calendar(study: Phase2Study, arrays: Phase2Arrays, seed: int, scenario: int,
              like=None) -> CalendarArrays | None:
    """The trials' calendars (``conduct:``), or ``like``'s when it ran the same conduct on the
    same patients in the same arms (scenarios of one study share their calendars)."""
    conduct = study.calendar_conduct
    if conduct is None:
        return None
    if (like is not None and like.calendar is not None
            and like.study.calendar_conduct == conduct
            and np.array_equal(like.arrays.trials, arrays.trials)
            and np.array_equal(like.arrays.arm, arrays.arm)
            and np.array_equal(like.arrays.arm2, arrays.arm2)
            and getattr(like.study.design, "period2_h", None)
            == getattr(study.design, "period2_h", None)):
        return like.calendar
    return enrolment_calendars(arrays.arm, arrays.trials, conduct, seed, scenario,
                               _again(study, arrays))


def _again(study: Phase2Study, arrays: Phase2Arrays) -> np.ndarray | None:
    """Hours after their dose at which patients are dosed again (T, N; NaN: not again), for a
    design that re-randomises (SPCD); None otherwise."""
    if isinstance(study.design, SPCD):
        return np.where(arrays.arm2 >= 0, study.design.period2_h, np.nan)
    return None


def calendar_log(sims: Phase2Simulations, i: int) -> TrialCalendar:
    """The calendar of the ``i``-th trial of ``sims`` (a run with ``conduct:``) with its event
    log: arrivals, screening, dosing (the dose index is the arm)."""
    again = _again(sims.study, sims.arrays)
    return enrolment_calendar(sims.arrays.arm[i], int(sims.arrays.trials[i]),
                              sims.study.calendar_conduct, sims.seed, sims.scenario,
                              None if again is None else again[i], log=True)
