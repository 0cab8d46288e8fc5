"""The two-stage TITE-CRM (a rule-based start-up until the first DLT is seen) and the TITE-CRM's
likelihood estimate, against R dfcrm 0.2-2.1.

Weighted maximum likelihood fits are compared with dfcrm's ``titecrm(method = "mle")`` and
with a dense grid; operating characteristics with dfcrm's ``titesim()`` with a vector ``x0``
(tests/fixtures/tite_crm_two_stage_reference.json, 10,000 trials per run, written by
make_tite_crm_two_stage_fixture.R) within Monte Carlo error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trialsim as ts
from tests.helpers.oc_compare import assert_oc_close, assert_titesim_duration_close
from trialsim.analysis.crm import CRMModel, crm_mle, crm_mle_weighted, tite_weights
from trialsim.conduct.followup import dlt_onsets, follow_up_clock
from trialsim.designs import TITECRM
from trialsim.designs.base import BatchState, FollowUp
from trialsim.designs.crm import STARTUP

REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures"
                  / "tite_crm_two_stage_reference.json").read_text())
DESIGN = REF["design"]
SKELETON = tuple(DESIGN["skeleton"])
HOURS_PER_WEEK = 168.0
# dfcrm's x0 = three patients at each of doses 1-5, then dose 6: a start-up of 3 per dose
STARTUP_COUNTS = [3, 3, 3, 3, 3, 3]


def test_startup_counts_are_dfcrm_x0():
    design = TITECRM(target=0.2, skeleton=SKELETON, max_patients=24, startup=STARTUP_COUNTS)
    plan = design.startup_plan(np.ones(24, np.int64))
    np.testing.assert_array_equal(plan + 1, DESIGN["x0"])


def _state(level, tox, elapsed) -> BatchState:
    dose = np.asarray(level, np.int64)[None, :] - 1
    seen = np.asarray(tox, bool)[None, :]
    onehot = dose[:, :, None] == np.arange(len(SKELETON))
    n = onehot.sum(axis=1).astype(np.int64)
    t = (onehot & seen[:, :, None]).sum(axis=1).astype(np.int64)
    return BatchState(n, t, np.zeros_like(n), dose[:, -1], np.ones(1, np.int64),
                      seen[:, -1].astype(np.int64), None,
                      FollowUp(dose, seen, np.asarray(elapsed, float)[None, :]))


@pytest.mark.parametrize("method", ["bayes", "likelihood"])
def test_startup_ends_at_the_first_dlt_as_observed(method):
    """Three patients at dose 1, the last followed for 30% of the window: if their DLT (drawn
    to happen at 60% of the window) has not occurred yet, the start-up goes on (dose 2); once it
    has occurred, the model decides (dose 1), on the partial follow-up of the others."""
    design = TITECRM(target=0.2, skeleton=SKELETON, max_patients=24, startup=STARTUP_COUNTS,
                     method=method)
    not_yet = design.decide_batch(_state([1, 1, 1], [0, 0, 0], [1.0, 0.7, 0.3]))
    assert not_yet.next_dose[0] == 1 and not_yet.reason[0] == STARTUP
    seen = design.decide_batch(_state([1, 1, 1], [0, 0, 1], [1.0, 0.9, 0.6]))
    assert seen.reason[0] != STARTUP and seen.next_dose[0] == 0
    # the model's decision uses the follow-up so far: the same counts fully followed differ
    assert design.estimate(_state([1, 1, 1], [0, 0, 1], [1.0, 0.9, 0.6]))[0, 0] > \
        design.estimate(_state([1, 1, 1], [0, 0, 1], [1.0, 1.0, 1.0]))[0, 0]


def two_stage_study(run: dict, max_wait_days: float = 1e-6) -> ts.Study:
    """dfcrm's titesim with a vector x0 as a study (see test_tite_crm.titesim_study): arrivals
    during a start-up wait are turned away at once, as titesim drops them."""
    obswin_h = DESIGN["obswin"] * HOURS_PER_WEEK
    return ts.from_dict({
        "doses": list(range(1, 7)), "truth": {"tox": run["true_p"]}, "target": DESIGN["target"],
        "design": {"type": "tite_crm", "target": DESIGN["target"], "skeleton": list(SKELETON),
                   "max_patients": DESIGN["n"], "startup": STARTUP_COUNTS,
                   "method": "likelihood" if run["method"] == "mle" else "bayes",
                   "modifiers": [{"type": "dont_skip_doses", "relative_to": "current"}]},
        "conduct": {"sites": [{"rate_per_week": run["rate_per_window"] / DESIGN["obswin"]}],
                    "window_h": obswin_h, "max_wait_days": max_wait_days}})


def test_startup_waits_for_the_window_or_the_first_dlt_on_the_calendar():
    """On simulated calendars: every patient formed before the first DLT occurs gets the
    start-up dose; within the start-up an escalation comes no earlier than the last patient's
    window end or the first DLT; the first patient after the DLT is the model's (at most one
    level above the last dose), and in many trials off the start-up sequence."""
    run = REF["runs"]["bayes_rate4_A"]
    study = two_stage_study(run)
    T, P = 300, DESIGN["n"]
    sims = ts.simulate(study, T, seed=11)
    a = sims.arrays
    trials = a.trials
    clock = follow_up_clock(study, trials, 11, 0)
    onset = dlt_onsets(11, 0, trials, P, study.conduct.window_h)
    plan = study.design.startup_plan(np.ones(P, np.int64))
    window = study.conduct.window_h
    first_dlt = np.where(a.patient_tox, clock.dosed + onset, np.inf).min(axis=1)
    off_plan = escalations = 0
    for i in range(T):
        before = clock.formed[i] < first_dlt[i]
        np.testing.assert_array_equal(a.patient_dose[i, before], plan[before])
        for j in np.flatnonzero(before[1:] & (plan[1:] > plan[:-1])) + 1:
            escalations += 1
            assert clock.formed[i, j] >= min(clock.dosed[i, j - 1] + window, first_dlt[i]) - 1e-6
        if not before.all():
            j = int(np.argmin(before))
            assert a.patient_dose[i, j] <= a.patient_dose[i, j - 1] + 1
            off_plan += a.patient_dose[i, j] != plan[j]
    assert escalations > T and off_plan > T // 4, (escalations, off_plan)
    assert (sims.calendar.turned_away > 0).mean() > 0.9       # arrivals during the waits
    # patients who may wait are dosed at the wait's end instead: shorter trials
    queued = ts.simulate(two_stage_study(run, max_wait_days=1e4), T, seed=11)
    assert queued.calendar.duration_h.mean() < sims.calendar.duration_h.mean() - window / 2
    assert queued.calendar.turned_away.sum() == 0


def test_with_dropout_the_startup_waits_for_the_follow_up_and_the_dlts_seen():
    """Dropout (censoring): within the start-up an escalation waits until the last patient's
    follow-up ends (the window, or their leaving) or the first DLT seen (one occurring after
    its patient left is never seen); a negligible hazard changes nothing."""
    import dataclasses

    from trialsim.conduct.dropout import leave_times

    run = REF["runs"]["bayes_rate4_A"]
    base = two_stage_study(run)
    study = dataclasses.replace(base, conduct=dataclasses.replace(base.conduct,
                                                                  dropout_per_week=0.5))
    T, P = 100, DESIGN["n"]
    a = ts.simulate(study, T, seed=12).arrays
    clock = follow_up_clock(study, a.trials, 12, 0)
    onset = dlt_onsets(12, 0, a.trials, P, study.conduct.window_h)
    leave = leave_times(study.conduct, 12, 0, a.trials, P)
    window = study.conduct.window_h
    plan = study.design.startup_plan(np.ones(P, np.int64))
    given = a.patient_dose >= 0
    potential = study.scenario.draw(12, 0, a.trials, P, np.arange(1.0, 7.0), "").tox
    dlt = potential[np.arange(T)[:, None], np.arange(P)[None, :], np.maximum(a.patient_dose, 0)]
    seen_at = np.where(dlt & given & (onset <= leave), clock.dosed + onset, np.inf)
    first_seen = seen_at.min(axis=1)
    np.testing.assert_array_equal(a.patient_tox, dlt & given & (onset <= leave))
    waits = 0
    for i in range(T):
        before = clock.formed[i] < first_seen[i]
        np.testing.assert_array_equal(a.patient_dose[i, before], plan[before])
        for j in np.flatnonzero(before[1:] & (plan[1:] > plan[:-1])) + 1:
            end = min(clock.dosed[i, j - 1] + min(window, leave[i, j - 1]), first_seen[i])
            assert clock.formed[i, j] >= end - 1e-6
            waits += 1
    assert waits > T
    rare = dataclasses.replace(base, conduct=dataclasses.replace(base.conduct,
                                                                 dropout_per_week=1e-12))
    np.testing.assert_array_equal(ts.simulate(rare, 60, seed=12).arrays.patient_dose,
                                  ts.simulate(base, 60, seed=12).arrays.patient_dose)


@pytest.mark.parametrize("name", sorted(REF["runs"]))
def test_operating_characteristics_match_dfcrm_titesim_two_stage(name):
    """Selection, patients and DLTs per dose and the trial duration (first patient dosed to
    the last patient's window end; dfcrm counts from time 0, where the first arrival is on
    average obswin / rate later) within Monte Carlo error of 10,000 titesim trials and 1,000 of
    ours.  dfcrm's vague-prior fallback while every patient so far has had a DLT (see
    ``TITECRM``) concerns a few per cent of its trials and is not reproduced."""
    run = REF["runs"][name]
    sims = ts.simulate(two_stage_study(run), 1000, seed=20261130)
    assert_oc_close(sims.arrays, run["nsim"], run["mtd_selection"], run["mean_patients"],
                    run["mean_dlts"])
    assert_titesim_duration_close(sims.calendar.duration_h, run, DESIGN["obswin"])


@pytest.mark.parametrize("fit", REF["fits"], ids=[f"{f['name']}-{f['model']}"
                                                  for f in REF["fits"]])
def test_weighted_mle_matches_dfcrm_titecrm(fit):
    """The weighted likelihood's maximiser as dfcrm's ``titecrm(method = "mle")`` (its
    ``optimize`` stops at tol 1e-4), the plug-in curve and the recommended dose; it is also
    at least as likely as dfcrm's estimate."""
    tox = np.asarray(fit["tox"], bool)
    level = np.asarray(fit["level"]) - 1
    w = tite_weights(level, tox, np.minimum(np.asarray(fit["followup"]) / fit["obswin"], 1.0))
    a, p = crm_mle_weighted(level, tox, w, SKELETON, model=fit["model"], ptox=True)
    assert abs(a[0] - fit["estimate"]) <= 1e-3
    np.testing.assert_allclose(p[0], fit["ptox"], rtol=2e-3)
    m = CRMModel(SKELETON, fit["model"])
    assert _loglik(m, level, tox, w[0], a[0])[0] >= \
        _loglik(m, level, tox, w[0], fit["estimate"])[0] - 1e-12
    design = TITECRM(target=fit["target"], skeleton=SKELETON, max_patients=100,
                     model=fit["model"], method="likelihood", startup=(1,) * 6)
    st_ = _state(fit["level"], tox, np.minimum(np.asarray(fit["followup"]) / fit["obswin"], 1))
    assert design.decide_batch(st_).recommended[0] == fit["mtd"] - 1


def _loglik(m: CRMModel, level, tox, w, a):
    """The weighted log likelihood written out directly, at each ``a``."""
    p = m.ptox(np.atleast_1d(np.asarray(a, float)))[:, level]
    with np.errstate(divide="ignore"):
        return np.sum(np.where(tox, np.log(p), np.log1p(-w * p)), axis=1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.floats(0, 1)), min_size=1,
                max_size=30), st.sampled_from(["empiric", "logistic"]))
def test_weighted_mle_is_the_global_maximiser(data, model):
    """Against a grid of 20,001 points over [-10, 10]: never less likely than its best point
    (the logistic model's weighted likelihood need not be concave); with every weight 1 it is
    the CRM's likelihood estimate on the counts."""
    dose = np.array([d for d, _, _ in data])
    tox = np.array([t for _, t, _ in data])
    w = np.where(tox, 1.0, np.array([x for _, _, x in data]))
    m = CRMModel(SKELETON, model)
    a = crm_mle_weighted(dose, tox, w, SKELETON, model=model)[0]
    assert -10 <= a <= 10
    grid = _loglik(m, dose, tox, w, np.linspace(-10, 10, 20001)).max()
    assert _loglik(m, dose, tox, w, a)[0] >= grid - 1e-9
    full = crm_mle_weighted(dose, tox, np.ones(dose.size), SKELETON, model=model)[0]
    n = np.bincount(dose, minlength=6)
    t = np.bincount(dose, weights=tox, minlength=6).astype(np.int64)
    assert abs(full - crm_mle(n, t, SKELETON, model=model)[0]) <= 1e-7


def test_a_flat_weighted_likelihood_is_maximised_precisely():
    """Hypothesis's example: the logistic model with DLTs at the lowest and highest doses; the
    weighted MLE with every weight 1 is the count MLE to 1e-10 (golden-section search on the
    flat likelihood missed it by 1.02e-7)."""
    dose = np.array([0, 0, 0, 2, 5, 5, 5])
    tox = np.array([True, True, True, True, False, True, True])
    full = crm_mle_weighted(dose, tox, np.ones(7), SKELETON, model="logistic")[0]
    n = np.bincount(dose, minlength=6)
    t = np.bincount(dose, weights=tox, minlength=6).astype(np.int64)
    assert abs(full - crm_mle(n, t, SKELETON, model="logistic")[0]) <= 1e-10
