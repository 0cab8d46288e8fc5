"""Simulating randomised phase II trials, all trials of a batch at once.

For trial ``k`` of scenario ``s`` (its own streams, so results do not depend on batching):

1. ``n_total`` virtual patients from the ``patients`` stream: covariates, PK random effects,
   the time course's two subject effects and one noise draw per visit — their MADRS at every
   visit *under every dose* (potential outcomes) follows;
2. randomisation to arms from the ``allocation`` stream (the design's ``allocate``);
3. dropout times from the ``dropout`` stream (exponential, hazard by arm and by the patient's
   own response), visits after it unobserved;
4. the endpoint per patient at the primary visit under the missing-data rule, the dose-level
   estimates (cell means, ANCOVA with covariates; logit rates for a binary endpoint);
5. MCP-Mod (:func:`trialsim.analysis.doseresponse.batch.batch_mcpmod`) and the dose to take
   forward.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from scipy.special import ndtri

from trialsim.analysis.doseresponse.batch import (BatchEstimates, batch_contrast_test,
                                                  batch_mcpmod)
from trialsim.analysis.doseresponse.models import Candidates
from trialsim.analysis.longitudinal import batch_estimates as mmrm_estimates
from trialsim.designs.adaptive import Adaptive, InterimState
from trialsim.designs.spcd import SPCD
from trialsim.limits import MAX_TRIALS, check_memory_limit, count
from trialsim.population.distributions import U_MIN
from trialsim.phase2.arrays import Phase2Arrays
from trialsim.phase2.decision import take_forward
from trialsim.phase2.results import Phase2Simulations
from trialsim.phase2.safety import arm_rates, safety_normals, safety_outcomes
from trialsim.phase2.study import Phase2Study
from trialsim.response.timecourse import classify, madrs_trajectory
from trialsim.rng import check_seed, stream_uniforms
from trialsim.study import patient_exposures

DEFAULT_BATCH = 1024
HOURS_PER_WEEK = 168.0


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
            drop = _dropout_times(study, u_drop, arm, traj, base, visits, saf[0])
            return traj, visits[None, None, :] < drop[..., None], drop, saf

        def analyse_first(arm, n_k):
            traj, seen, _, _ = observe(arm)
            return _analyse(study, traj, base, seen, arm, cov, np.full(T, n_k))[1]

        arm, n_enrolled, n_interims, stopped, dropped = _interims(
            study, design, u, arm, analyse_first, cands)
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
        dropout_h = _dropout_times(study, u_drop, arm, traj, base, visits, event)
        seen = visits[None, None, :] < dropout_h[..., None]              # (T, N, V)
        n_enrolled = np.full(T, N)
    y, est, ok = _analyse(study, traj, base, seen, arm, cov, n_enrolled)
    arm2, y2 = np.full((T, N), -1, np.int16), np.full((T, N), np.nan)
    if isinstance(design, SPCD):
        arm2, y2, est = _period2(study, design, u, pts, ex_all, arm, traj, base, cov,
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
    observed = _arm_means(y, arm, D)
    p_min = np.where(np.isfinite(res.p).any(axis=1), np.nanmin(
        np.where(np.isfinite(res.p), res.p, np.inf), axis=1), np.nan)
    return Phase2Arrays(trials=trials, arm=arm.astype(np.int16), dropout_h=dropout_h,
                        y=y, n=n, analysed=analysed, observed=observed, signal=res.signal,
                        p_min=p_min, selected=res.selected, td=res.dose, fitted=fitted,
                        forward=forward, event=event, peak=peak, resolved_h=resolved,
                        event_rate=rates, n_interims=n_interims, stopped=stopped,
                        dropped=dropped, arm2=arm2.astype(np.int16), y2=y2)


def _period2(study, design: SPCD, u, pts, ex, arm, traj, base, cov, dropout_h, est1, u2):
    """Period 2 of a sequential parallel comparison design: ``(arm2 (T, N), y2 (T, N),
    combined estimates)`` — see :mod:`trialsim.designs.spcd`."""
    T, N = arm.shape
    D = study.n_doses
    m = study.efficacy
    visits = np.asarray(study.visits_h, float)
    v2 = int(np.flatnonzero(visits == design.period2_h)[0])
    base2 = traj[..., v2]
    eligible = ((arm == 0) & (base2 > (1.0 - design.response_fraction) * base)
                & (dropout_h > design.period2_h))
    arm2 = design.allocate_period2(u, eligible)
    pick = np.maximum(arm2, 0)
    x2 = np.take_along_axis(np.broadcast_to(ex[m.exposure], (T, N, D)), pick[..., None], axis=2)
    f = design.period2_placebo_factor
    m2 = dataclasses.replace(m, placebo_plateau=f * m.placebo_plateau,
                             placebo_sd=f * m.placebo_sd)
    t = study.endpoint.visit_h
    z2 = ndtri(np.maximum(u2, U_MIN))[..., None]
    s2 = madrs_trajectory(m2, base2, x2, [t], pts.z[..., :2], z2)[:, :, 0, 0]
    seen2 = (arm2 >= 0) & (dropout_h > design.period2_h + t)
    if study.endpoint.type == "change":
        y2 = np.where(seen2, s2 - base2, np.nan)
    else:
        y2 = np.where(seen2, classify(s2, base2, study.endpoint.type).astype(float), np.nan)
    est2 = _estimates(study, y2, pick, base, cov)
    w = design.weight
    ok = est2.valid[:, None]
    est = np.where(ok, w * est1.est + (1 - w) * est2.est, est1.est)
    cv = np.where(ok[..., None], w * w * est1.cov + (1 - w) ** 2 * est2.cov, est1.cov)
    # degrees of freedom: those of the period that counts, the smaller when both do
    df = est1.df if w == 1 else np.where(est2.valid, est2.df if w == 0 else
                                         np.minimum(est1.df, est2.df), est1.df)
    return arm2, y2, BatchEstimates(est1.doses, est, cv, df, "general", est1.valid)


def _interims(study: Phase2Study, design: Adaptive, u, arm, analyse_first, cands):
    """Run the interims of an adaptive design on every trial of the batch: ``(arm,
    n_enrolled (T,), n_interims (T,), stopped (T,), dropped (T, D))``.  At interim k the first
    ``interims[k]`` patients have their primary outcome (``analyse_first(arm, n)``: the
    estimates from the first n patients); the next stage's patients are drawn with the
    interim's probabilities; a stopped trial enrols nobody after the interim."""
    T, N = arm.shape
    D = study.n_doses
    arm = arm.copy()
    active = design.initial_active(T)
    going = np.ones(T, bool)
    n_enrolled = np.full(T, N)
    n_interims = np.zeros(T, np.int16)
    stopped = np.zeros(T, np.int8)
    benefit = 1.0 if study.direction == "increasing" else -1.0
    shapes = benefit * cands.shapes(np.asarray(study.doses, float))
    a = study.analysis
    stages = design.stages
    ratios = np.asarray(design.allocation, float)
    for k, n_k in enumerate(design.interims):
        est = analyse_first(arm, n_k)
        t, _, _ = batch_contrast_test(est, shapes)
        reject = np.zeros(T, bool)
        if design.efficacy_p is not None:
            reject = batch_mcpmod(est, cands, alpha=design.efficacy_p, delta=a.delta,
                                  selection=a.selection, direction=study.direction).signal
        se = np.sqrt(np.einsum("tdd->td", est.cov))
        state = InterimState(n=np.stack([(arm[:, :n_k] == d).sum(axis=1) for d in range(D)], 1),
                             mean=est.est, se=se, benefit=benefit,
                             max_t=np.where(est.valid, t.max(axis=1), np.inf),
                             reject=reject & est.valid, active=active)
        dec = design.adapt(state)
        ok = going & est.valid           # an interim without estimates changes nothing
        n_interims += going
        eff, fut = ok & dec.stop_efficacy, ok & dec.stop_futility
        stopped[eff], stopped[fut] = 1, 2
        n_enrolled = np.where(eff | fut, n_k, n_enrolled)
        going &= ~(eff | fut)
        active = np.where(ok[:, None], dec.active, active)
        kept = np.where(active, ratios, 0.0)
        probs = np.where(ok[:, None], dec.probs, kept / kept.sum(axis=1, keepdims=True))
        new = design.allocate_stage(probs, design.stage_uniforms(u, k + 1))
        arm[:, stages[k]:stages[k + 1]] = new
    dropped = design.initial_active(T) & ~active
    return arm, n_enrolled, n_interims, stopped, dropped


def _analyse(study, traj, base, seen, arm, cov, n_enrolled):
    """The analysis's input from the first ``n_enrolled`` (T,) patients of each trial: ``(y
    (T, N) the endpoint under the missing-data rule (NaN: not analysed, or not enrolled),
    the dose-level estimates, analysed (T, N))``.  ``missing: mmrm`` estimates the arm means
    at the primary visit from every visit up to it
    (:func:`trialsim.analysis.longitudinal.batch_estimates`); ``y`` then holds the observed
    change at the primary visit."""
    T, N = arm.shape
    inside = np.arange(N)[None, :] < n_enrolled[:, None]
    seen = seen & inside[..., None]
    arm0 = np.maximum(arm, 0)
    if study.analysis.missing != "mmrm":
        y = np.where(inside, _endpoint(study, traj, base, seen), np.nan)
        return y, _estimates(study, y, arm0, base, cov), np.isfinite(y)
    v = study.primary
    y = np.where(seen[..., v], traj[..., v] - base, np.nan)
    change = np.where(seen, traj - base[..., None], np.nan)[..., :v + 1]
    names = study.analysis.covariates
    X = np.stack([cov[c] for c in names], axis=-1) if names else None
    est = mmrm_estimates(np.asarray(study.doses, float), change, arm0, v, X)
    return y, est, seen[..., 0]


def _dropout_times(study, u, arm, traj, base, visits, event) -> np.ndarray:
    """Exponential dropout times (h) by each patient's hazard (see :class:`Dropout`)."""
    d = study.dropout
    if d.rate_per_week == 0:
        return np.full(arm.shape, np.inf)
    rate = np.full(arm.shape, d.rate_per_week / HOURS_PER_WEEK)
    if d.hazard_ratio is not None:
        rate = rate * np.asarray(d.hazard_ratio, float)[arm]
    if d.no_response_hazard_ratio != 1.0:
        v = int(np.argmin(np.abs(visits - d.response_visit_h)))
        poor = traj[..., v] > (1.0 - d.response_fraction) * base
        rate = np.where(poor, rate * d.no_response_hazard_ratio, rate)
    names = list(study.safety)
    for name, hr in d.adverse_event_hazard_ratio.items():
        rate = np.where(event[..., names.index(name)], rate * hr, rate)
    with np.errstate(divide="ignore"):
        return np.where(rate > 0, -np.log(np.maximum(u, 1e-300)) / rate, np.inf)


def _endpoint(study, traj, base, seen) -> np.ndarray:
    """Each patient's endpoint at the primary visit under the missing-data rule (NaN when not
    analysed): MADRS change from baseline, or 1.0/0.0 for response/remission."""
    v = study.primary
    if study.analysis.missing == "completers":
        score = np.where(seen[..., v], traj[..., v], np.nan)
    else:   # LOCF: the last observed visit up to the primary one; baseline if none
        score = base.copy()
        for j in range(v + 1):
            score = np.where(seen[..., j], traj[..., j], score)
    ep = study.endpoint
    if ep.type == "change":
        return score - base
    out = classify(np.nan_to_num(score), base, ep.type).astype(float)
    return np.where(np.isfinite(score), out, np.nan)


def _arm_means(y, arm, D) -> np.ndarray:
    ok = np.isfinite(y)
    out = np.full((y.shape[0], D), np.nan)
    for d in range(D):
        m = (arm == d) & ok
        cnt = m.sum(axis=1)
        s = np.where(m, y, 0.0).sum(axis=1)
        out[:, d] = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
    return out


def _estimates(study, y, arm, base, cov) -> BatchEstimates:
    """Dose-level estimates of every trial from the analysed patients."""
    T, N = y.shape
    D = study.n_doses
    doses = np.asarray(study.doses, float)
    ok = np.isfinite(y)
    cell = (np.arange(T)[:, None] * D + arm).ravel()            # (trial, arm) of each patient
    w = ok.ravel().astype(float)

    def arm_sums(v):        # (T, N) -> (T, D): sums over each arm's analysed patients
        return np.bincount(cell, weights=(v.ravel() * w), minlength=T * D).reshape(T, D)

    n = np.bincount(cell, weights=w, minlength=T * D).reshape(T, D)     # (T, D)
    valid = (n >= (1 if study.endpoint.binary else 2)).all(axis=1)
    if study.endpoint.binary:
        events = arm_sums(np.where(ok, y, 0.0))
        pad = (events == 0) | (events == n)      # Haldane–Anscombe for separated arms
        e = np.where(pad, events + 0.5, events)
        nn = np.where(pad, n + 1.0, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = e / nn
            est = np.log(p / (1 - p))
            var = 1.0 / (nn * p * (1 - p))
        est = np.where(valid[:, None], est, 0.0)
        var = np.where(valid[:, None] & np.isfinite(var), var, 1.0)
        cov_m = np.zeros((T, D, D))
        cov_m[:, np.arange(D), np.arange(D)] = var
        return BatchEstimates(doses, est, cov_m, np.full(T, np.inf), "general", valid)
    yv = np.where(ok, y, 0.0)
    nn = np.maximum(n, 1.0)
    ybar = arm_sums(yv) / nn
    resid_y = np.where(ok, yv - np.take_along_axis(ybar, arm, axis=1), 0.0)      # (T, N)
    syy = (resid_y ** 2).sum(axis=1)
    n_cov = len(study.analysis.covariates)
    N_obs = n.sum(axis=1)
    V = np.zeros((T, D, D))
    V[:, np.arange(D), np.arange(D)] = 1.0 / nn
    est = ybar
    rss0 = syy
    if n_cov:
        X = np.stack([np.where(ok, cov[c], 0.0) for c in study.analysis.covariates], axis=-1)
        xbar_all = X.sum(axis=1) / np.maximum(N_obs, 1)[:, None]                 # (T, q)
        xbar = np.stack([arm_sums(X[..., j]) for j in range(n_cov)], axis=-1) / nn[..., None]
        rx = np.where(ok[..., None], X - np.take_along_axis(xbar, arm[..., None], axis=1), 0.0)
        Sxx = np.einsum("tnq,tnr->tqr", rx, rx)                                  # (T, q, q)
        Sxy = np.einsum("tnq,tn->tq", rx, resid_y)
        good = np.linalg.det(Sxx) > 1e-12
        Sxx_safe = np.where(good[:, None, None], Sxx, np.eye(n_cov)[None])
        gamma = np.linalg.solve(Sxx_safe, Sxy[..., None])[..., 0]            # (T, q)
        dx = xbar - xbar_all[:, None, :]                                      # (T, D, q)
        est = ybar - np.einsum("tdq,tq->td", dx, gamma)
        rss0 = syy - np.einsum("tq,tq->t", gamma, Sxy)
        Sinv = np.linalg.inv(Sxx_safe)
        V = V + np.einsum("tdq,tqr,ter->tde", dx, Sinv, dx)
        valid &= good
    df = N_obs - D - n_cov
    valid &= df >= 1
    sigma2 = rss0 / np.maximum(df, 1)
    cov_m = sigma2[:, None, None] * V
    eye = np.eye(D)[None]
    cov_m = np.where(valid[:, None, None], cov_m, eye)
    V = np.where(valid[:, None, None], V, eye)
    return BatchEstimates(doses, np.where(valid[:, None], est, 0.0), cov_m,
                          np.maximum(df, 1).astype(float), "normal", valid, V,
                          np.where(valid, rss0, 1.0), N_obs, n_cov)


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
                    max_memory_gb: float = 8.0):
    """Simulate trials ``first_trial ..`` of a phase II study; returns
    :class:`~trialsim.phase2.results.Phase2Simulations`.  The memory need is estimated first
    and refused beyond ``max_memory_gb`` GiB."""
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
    return Phase2Simulations(study=study, seed=seed, scenario=scenario,
                             arrays=Phase2Arrays.concat(parts))
