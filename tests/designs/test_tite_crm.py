"""The TITE-CRM (Cheung & Chappell 2000) against R dfcrm 0.2-2.1.

Fits with partial follow-up are compared with dfcrm's ``titecrm()`` (its help-page example and
random data, both models); operating characteristics of the single-stage TITE-CRM with Poisson
arrivals and uniform DLT times with dfcrm's ``titesim()`` within Monte Carlo error
(tests/fixtures/tite_crm_reference.json, 10,000 trials per run, written by
make_tite_crm_fixture.R).  The calendar that times the decisions is checked in
tests/test_conduct.py."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trialsim as ts
from tests.helpers.oc_compare import Z, assert_oc_close, assert_titesim_duration_close
from trialsim.analysis.crm import crm_posterior, crm_posterior_weighted, tite_weights
from trialsim.designs import CRM, TITECRM
from trialsim.designs.base import BatchState, FollowUp
from trialsim.errors import ConfigError

REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures"
                  / "tite_crm_reference.json").read_text())
SKELETON = tuple(REF["design"]["skeleton"])
HOURS_PER_WEEK = 168.0


def _state(level, tox, elapsed, D=len(SKELETON)) -> BatchState:
    dose = np.asarray(level, np.int64)[None, :] - 1
    seen = np.asarray(tox, bool)[None, :]
    onehot = dose[:, :, None] == np.arange(D)
    n = onehot.sum(axis=1).astype(np.int64)
    t = (onehot & seen[:, :, None]).sum(axis=1).astype(np.int64)
    return BatchState(n, t, np.zeros_like(n), dose[:, -1], np.ones(1, np.int64),
                      seen[:, -1].astype(np.int64), None,
                      FollowUp(dose, seen, np.asarray(elapsed, float)[None, :]))


@pytest.mark.parametrize("fit", REF["fits"], ids=[f"{f['name']}-{f['model']}-{f['scheme']}"
                                                  for f in REF["fits"]])
def test_fits_match_dfcrm_titecrm(fit):
    """Follow-up weights (linear ``min(followup / obswin, 1)``, or adaptive among the observed
    DLT times; 1 with a DLT), posterior mean and variance of beta, the plug-in curve and the
    recommended dose, as dfcrm's ``titecrm``; mean and variance also against a SciPy twin."""
    tox = np.asarray(fit["tox"], bool)
    level = np.asarray(fit["level"]) - 1
    elapsed = np.minimum(np.asarray(fit["followup"]) / fit["obswin"], 1.0)
    w = tite_weights(level, tox, elapsed, fit["scheme"])[0]
    np.testing.assert_allclose(w, fit["weights"], rtol=0, atol=1e-12)
    post = crm_posterior_weighted(level, tox, w, SKELETON, model=fit["model"])
    # dfcrm integrates with R's integrate() at its default relative tolerance (1.2e-4); its
    # error reaches ~2e-6 on these data (the SciPy twin below is exact to 1e-9)
    sd = np.sqrt(fit["post_var"])
    assert abs(post.mean[0] - fit["estimate"]) <= 1e-5 * sd
    np.testing.assert_allclose(post.var[0], fit["post_var"], rtol=1e-5)
    np.testing.assert_allclose(post.ptox[0], fit["ptox"], rtol=1e-4)   # p moves with e^beta
    mean, var = _scipy_twin(level, tox, w, fit["model"])
    assert abs(post.mean[0] - mean) <= 1e-9 * sd
    np.testing.assert_allclose(post.var[0], var, rtol=1e-9)
    design = TITECRM(target=fit["target"], skeleton=SKELETON, max_patients=100,
                     model=fit["model"], scheme=fit["scheme"])
    dec = design.decide_batch(_state(fit["level"], tox, elapsed))
    assert dec.next_dose[0] == dec.recommended[0] == fit["mtd"] - 1


def _scipy_twin(level, tox, w, model):
    """Posterior mean and variance of beta by adaptive SciPy quadrature of the weighted
    likelihood written out directly (no tables, no grid)."""
    from scipy import integrate
    s = np.asarray(SKELETON)
    x = np.log(s / (1 - s)) - 3.0

    def log_post(a):
        with np.errstate(divide="ignore", over="ignore"):
            if model == "empiric":
                p = s[level] ** np.exp(a)
            else:
                p = 1.0 / (1.0 + np.exp(-3.0 - np.exp(a) * x[level]))
            return -a * a / 2 / 1.34 + np.sum(np.where(tox, np.log(p), np.log1p(-w * p)))

    grid = np.linspace(-12, 12, 2401)
    top = max(log_post(a) for a in grid)
    f = lambda a, k: a ** k * np.exp(log_post(a) - top)  # noqa: E731
    z, m1, m2 = (integrate.quad(f, -14, 14, args=(k,), epsabs=0, epsrel=1e-13, limit=500,
                                points=grid[::200])[0] for k in range(3))
    return m1 / z, m2 / z - (m1 / z) ** 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.floats(0, 1)), min_size=1,
                max_size=30))
def test_adaptive_weights_are_linear_without_dlts_and_order_preserving(data):
    """Adaptive weights (Cheung & Chappell 2000): linear when no DLT is observed; otherwise
    in [0, 1], 1 with a DLT, and increasing with the follow-up (a patient followed longer
    never weighs less)."""
    dose = np.array([d for d, _, _ in data])
    tox = np.array([t for _, t, _ in data])
    u = np.array([x for _, _, x in data])
    none = np.zeros_like(tox)
    np.testing.assert_array_equal(tite_weights(dose, none, u, "adaptive"),
                                  tite_weights(dose, none, u, "linear"))
    w = tite_weights(dose, tox, u, "adaptive")[0]
    assert ((w >= 0) & (w <= 1)).all() and (w[tox] == 1).all()
    free = ~tox
    order = np.argsort(u[free], kind="stable")
    assert (np.diff(w[free][order]) >= -1e-12).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.floats(0, 1)), min_size=1,
                max_size=30), st.sampled_from(["empiric", "logistic"]))
def test_full_weights_give_the_crm_and_more_follow_up_lowers_the_estimate(data, model):
    """With every weight 1 the weighted posterior is the CRM's; raising the weight of a patient
    without a DLT (more follow-up, still no DLT) never raises any estimated DLT rate (the
    likelihood ratio is monotone in beta, so the posterior mean of beta cannot fall)."""
    dose = np.array([d for d, _, _ in data])
    tox = np.array([t for _, t, _ in data])
    w = np.array([1.0 if t else x for _, t, x in data])
    full = crm_posterior_weighted(dose, tox, np.ones(dose.size), SKELETON, model=model)
    n = np.bincount(dose, minlength=6)
    t = np.bincount(dose, weights=tox, minlength=6).astype(np.int64)
    ref = crm_posterior(n, t, SKELETON, model=model)
    np.testing.assert_allclose(full.mean, ref.mean, rtol=1e-9, atol=1e-12)
    part = crm_posterior_weighted(dose, tox, w, SKELETON, model=model)
    more = crm_posterior_weighted(dose, tox, np.minimum(w + 0.25, 1.0), SKELETON, model=model)
    assert more.mean[0] >= part.mean[0] - 1e-12
    assert full.mean[0] >= more.mean[0] - 1e-12


def test_without_partial_follow_up_it_decides_as_the_crm():
    tite = TITECRM.example()
    crm = CRM(**{k: getattr(tite, k) for k in ("target", "skeleton", "max_patients")},
              cohort_size=1)
    for h in ("1N 1N 1T", "1N 2N 3N 3T 3N", "1T"):
        assert tite.decide(h) == crm.decide(h)


def test_refusals():
    with pytest.raises(ValueError, match="needs a startup"):
        TITECRM(target=0.2, skeleton=SKELETON, max_patients=24, method="likelihood")
    with pytest.raises(ValueError, match="one patient count per dose"):
        TITECRM(target=0.2, skeleton=SKELETON, max_patients=24, startup=(1, 1))
    with pytest.raises(ConfigError, match=r"design\.method"):
        ts.from_dict({"doses": list(range(1, 7)), "truth": {"tox": [0.1] * 6},
                      "design": {"type": "tite_crm", "target": 0.2, "skeleton": list(SKELETON),
                                 "max_patients": 24, "method": "mle"},
                      "conduct": {"sites": [{"rate_per_week": 1.0}]}})
    doc = {"doses": list(range(1, 7)), "truth": {"tox": [0.1] * 6},
           "design": {"type": "tite_crm", "target": 0.2, "skeleton": list(SKELETON),
                      "max_patients": 24}}
    with pytest.raises(ConfigError, match=r"design\.type: tite_crm .*conduct"):
        ts.from_dict(doc)


def titesim_study(run: dict) -> ts.Study:
    """dfcrm's titesim setting as a study: one site with Poisson arrivals at ``rate`` patients
    per observation window (weeks), chairs not modelled, always open, window of ``obswin``
    weeks, restrict = TRUE (never more than one level above the current dose)."""
    obswin_h = run["obswin"] * HOURS_PER_WEEK
    return ts.from_dict({
        "doses": list(range(1, 7)), "truth": {"tox": run["true_p"]},
        "target": REF["design"]["target"],
        "design": {"type": "tite_crm", "target": REF["design"]["target"],
                   "skeleton": list(SKELETON), "model": run["model"], "scheme": run["scheme"],
                   "start_dose": run["x0"] - 1, "max_patients": REF["design"]["n"],
                   "modifiers": [{"type": "dont_skip_doses", "relative_to": "current"}]},
        "conduct": {"sites": [{"rate_per_week": run["rate_per_window"] / run["obswin"]}],
                    "window_h": obswin_h}})


@pytest.mark.parametrize("name", sorted(REF["runs"]))
def test_operating_characteristics_match_dfcrm_titesim(name):
    """Selection, patients and DLTs per dose, and trial duration (first patient dosed to the
    last patient's window end; dfcrm counts from time 0, where the first arrival is on average
    obswin / rate later) within Monte Carlo error of 10,000 titesim trials and 2,000 of ours."""
    run = REF["runs"][name]
    sims = ts.simulate(titesim_study(run), 2000, seed=20261129)
    assert_oc_close(sims.arrays, run["nsim"], run["mtd_selection"], run["mean_patients"],
                    run["mean_dlts"])
    assert_titesim_duration_close(sims.calendar.duration_h, run, run["obswin"])


def test_an_instant_window_gives_the_crm_one_patient_at_a_time():
    """With a window of 0 h every outcome is known at the next decision: the TITE-CRM's trials
    are the CRM's (cohorts of one, same seeds), selection by selection."""
    run = REF["runs"]["empiric_rate4_A"]
    study = titesim_study(run)
    timed = dataclasses.replace(study, conduct=dataclasses.replace(study.conduct, window_h=0.0))
    tite = ts.simulate(timed, 300, seed=5).arrays
    crm = CRM(target=0.2, skeleton=SKELETON, max_patients=24, cohort_size=1, start_dose=2)
    plain = dataclasses.replace(study, conduct=None,
                                design=dataclasses.replace(study.design, parent=crm))
    ref = ts.simulate(plain, 300, seed=5).arrays
    np.testing.assert_array_equal(tite.selected, ref.selected)
    np.testing.assert_array_equal(tite.patient_dose, ref.patient_dose)


def test_decisions_use_only_what_is_known_at_their_time():
    """A slower accrual (more follow-up between patients) changes the doses of the same
    virtual patients; the batch a trial runs in does not."""
    run = REF["runs"]["empiric_rate4_A"]
    study = titesim_study(run)
    a = ts.simulate(study, 200, seed=9)
    b = ts.simulate(study, 200, seed=9, batch_size=37)
    np.testing.assert_array_equal(a.arrays.patient_dose, b.arrays.patient_dose)
    np.testing.assert_array_equal(a.calendar.decision_h, b.calendar.decision_h)
    slow = dataclasses.replace(study, conduct=dataclasses.replace(
        study.conduct, sites=(dataclasses.replace(study.conduct.sites[0],
                                                  rate_per_week=0.01),)))
    c = ts.simulate(slow, 200, seed=9)
    assert (c.arrays.patient_dose != a.arrays.patient_dose).any()
    # each decision after the first is taken when the next patient is ready, the last at the
    # end of the last patient's window
    dec = a.calendar.decision_h
    assert np.all(np.diff(dec, axis=1) >= 0)
    np.testing.assert_allclose(dec[:, -1] - dec[:, -2], study.conduct.window_h, atol=0.01)


# -- dropout: censored follow-up (Cheung & Chappell 2000 treat withdrawals as censored) ----------
def _dropout_study(rate_per_week: float, tox=None):
    run = REF["runs"]["empiric_rate4_A"]
    study = titesim_study(run)
    conduct = dataclasses.replace(study.conduct, dropout_per_week=rate_per_week)
    if tox is not None:
        study = dataclasses.replace(study, scenario=dataclasses.replace(study.scenario,
                                                                        tox=tuple(tox)))
    return dataclasses.replace(study, conduct=conduct)


def test_dropouts_are_censored_not_replaced():
    """With no DLTs possible, a patient leaves within the window with probability
    1 - exp(-r w) (exponential leaving times): the share flagged as dropouts matches it within
    Monte Carlo error; nobody is replaced (every trial treats max_patients) and the final
    analysis weighs each leaver by the follow-up reached, min(leave, w) / w."""
    from trialsim.conduct.followup import follow_up_clock
    from trialsim.simulate import run_batch

    r = 1.0
    study = _dropout_study(r, tox=[0.0] * len(SKELETON))
    sims = ts.simulate(study, 400, seed=3)
    a = sims.arrays
    P = study.design.max_patients
    assert a.patient_dose.shape[1] == P and (a.n.sum(axis=1) == P).all()
    q = -np.expm1(-r * study.conduct.window_h / HOURS_PER_WEEK)
    share = a.patient_dropout.mean()
    assert abs(share - q) <= Z * np.sqrt(q * (1 - q) / a.patient_dropout.size)
    trials = np.arange(20)
    clock = follow_up_clock(study, trials, 3, 0)
    arr = run_batch(study, trials, 3, 0, clock)
    tox_po = np.zeros((20, P, len(SKELETON)), bool)
    final = clock.final(np.arange(20), arr.n, tox_po, arr.patient_dose, arr.eff,
                        np.zeros_like(arr.n))
    w = study.conduct.window_h
    np.testing.assert_allclose(final.followup.elapsed, np.minimum(clock.leave, w) / w)


def test_a_dlt_after_leaving_is_never_seen():
    """Every patient has a DLT at the lowest dose: those who left before their DLT's onset are
    counted without it (and flagged as dropouts); the others' DLTs are all seen."""
    study = _dropout_study(2.0, tox=[1.0] * len(SKELETON))
    sims = ts.simulate(study, 200, seed=4)
    a = sims.arrays
    from trialsim.conduct.dropout import leave_times
    from trialsim.conduct.followup import dlt_onsets

    P = a.patient_dose.shape[1]
    leave = leave_times(study.conduct, 4, 0, a.trials, P)
    onset = dlt_onsets(4, 0, a.trials, P, study.conduct.window_h)
    given = a.patient_dose >= 0
    np.testing.assert_array_equal(a.patient_tox, given & (onset <= leave))
    np.testing.assert_array_equal(a.patient_dropout, given & (leave < onset))
    assert a.tox.sum() == a.patient_tox.sum()


def test_a_negligible_dropout_changes_nothing():
    plain = ts.simulate(_dropout_study(0.0), 200, seed=6).arrays
    rare = ts.simulate(_dropout_study(1e-12), 200, seed=6).arrays
    np.testing.assert_array_equal(plain.selected, rare.selected)
    np.testing.assert_array_equal(plain.patient_dose, rare.patient_dose)
    assert not rare.patient_dropout.any()
