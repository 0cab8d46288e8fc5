"""Wages & Tait (2015)'s phase I/II design (``type: wages_tait``), against R: dfcrm's ``crm()``
and ``integrate()`` for every estimate and decision input (``tests/fixtures/
make_wages_tait_fixture.R``), the rule cases of R escalation 0.2's own tests of
``get_wages_and_tait``, and whole-trial operating characteristics of the same rules run in R."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import trialsim as ts
from tests.helpers.oc_compare import assert_oc_close
from trialsim.analysis.crm import crm_posterior, skeleton_fits
from trialsim.designs import WagesTait
from trialsim.designs.base import NO_DOSE, BatchState
from trialsim.designs.wages_tait import exact_limits
from trialsim.outcomes import TrialHistory

REF = json.loads((Path(__file__).parents[1] / "fixtures" / "wages_tait_reference.json")
                 .read_text())


def _design(setting: str, **kw) -> WagesTait:
    s = REF["settings"][setting]
    args = dict(tox_skeleton=s["tox_skeleton"], eff_skeletons=s["eff_skeletons"],
                eff_skeleton_weights=s["eff_skeleton_weights"], tox_limit=s["tox_limit"],
                eff_limit=s["eff_limit"], num_randomise=16, max_patients=64)
    return WagesTait(**{**args, **kw})


def _state(n, tox, eff, u=None) -> BatchState:
    z = np.zeros(1, np.int64)
    n = np.asarray([n], np.int64)
    return BatchState(n, np.asarray([tox], np.int64), np.asarray([eff], np.int64), z, z, z,
                      u=None if u is None else np.array([u]))


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: f"{c['setting']}-{c['n']}")
def test_estimates_and_decision_inputs_match_dfcrm(case):
    """Toxicity and efficacy estimates (dfcrm's plug-in ``ptox``; dfcrm integrates with R's
    default relative tolerance ~1e-4), the efficacy models' log marginal likelihoods
    (``integrate``, rel.tol 1e-10) and posterior probabilities, the chosen model, admissible
    doses, randomisation probabilities, the best admissible dose and the exact limits.  R's
    ``integrate`` over the infinite range is off by up to ~1.3e-6 in the log marginal
    likelihood on these data (ours agree with SciPy quadrature around the mode to 1e-13, see
    the next test), hence the tolerance."""
    d = _design(case["setting"])
    state = _state(case["n"], case["tox"], case["eff"])
    tox_hat, eff_hat = d.estimates(state)
    np.testing.assert_allclose(tox_hat[0], case["tox_hat"], rtol=2e-4, atol=1e-6)
    fits = skeleton_fits(state.n, state.eff, d.eff_skeletons)
    np.testing.assert_allclose(fits.log_evidence[0], case["log_evidence"], atol=3e-6)
    w = fits.model_weights(d.eff_skeleton_weights)[0]
    np.testing.assert_allclose(w, case["model_weights"], atol=1e-6)
    if w.max() - np.sort(w)[-2] < 1e-9:    # an exact tie (mirror-image skeletons, equal data):
        assert w[case["model"]] == pytest.approx(w.max(), abs=1e-9)  # R's pick rests on noise
        return
    assert int(np.argmax(w)) == case["model"]
    np.testing.assert_allclose(eff_hat[0], case["eff_hat"], rtol=2e-4, atol=1e-6)
    near = np.abs(np.asarray(case["tox_hat"]) - d.tox_limit) < 1e-3
    np.testing.assert_array_equal((tox_hat[0] <= d.tox_limit)[~near],
                                  np.asarray(case["admissible"], bool)[~near])
    if not near.any():
        np.testing.assert_allclose(d.randomisation(state)[0], case["randomisation"],
                                   rtol=5e-4, atol=1e-6)
        best = np.argmax(np.where(tox_hat[0] <= d.tox_limit, eff_hat[0], 0))
        assert (best if (tox_hat[0] <= d.tox_limit).any() else -1) == case["best"]
        k = int(best)
        lo = exact_limits(case["tox"][0], case["n"][0], 0.95)
        hi = exact_limits(case["eff"][k], case["n"][k], 0.95)
        np.testing.assert_allclose([lo[0], lo[1]], case["lowest_tox_limits"], atol=1e-9)
        np.testing.assert_allclose([hi[0], hi[1]], case["best_eff_limits"], atol=1e-9)


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)),
                min_size=5, max_size=5))
@settings(max_examples=40, deadline=None)
def test_skeleton_fits_against_scipy_quadrature(cells):
    """Posterior mean and log marginal likelihood of the power model against adaptive SciPy
    quadrature, on random data (a non-monotone skeleton), and the single-skeleton posterior
    mean equals the CRM's."""
    n = np.array([max(a, b, c) for a, b, c in cells])
    y = np.array([min(a, b) for a, b, c in cells])
    sk = np.array([0.3, 0.5, 0.6, 0.45, 0.2])
    f = skeleton_fits(n[None], y[None], [sk])
    sd = math.sqrt(1.34)

    def dens(b, moment):
        p = sk ** math.exp(b)
        return (b ** moment * stats.norm.pdf(b, 0, sd)
                * np.prod(p ** y * (1 - p) ** (n - y)))
    c = f.mean[0, 0]                       # integrate around the posterior's bulk
    z = integrate.quad(dens, c - 10, c + 10, args=(0,), points=[c], epsabs=0, epsrel=1e-10,
                       limit=400)[0]
    m = integrate.quad(dens, c - 10, c + 10, args=(1,), points=[c], epsabs=1e-13 * z,
                       epsrel=1e-10, limit=400)[0] / z   # absolute: the mean may be ~0
    assert abs(f.log_evidence[0, 0] - math.log(z)) < 1e-8
    assert abs(f.mean[0, 0] - m) < 1e-8
    inc = np.array([0.05, 0.1, 0.2, 0.3, 0.45])
    assert abs(skeleton_fits(n[None], y[None], [inc]).mean[0, 0]
               - crm_posterior(n[None], y[None], inc).mean[0]) < 1e-12


def test_escalation_rule_cases():
    """The cases of R escalation 0.2's ``test_wages_tait.R`` (4 doses, prior weight 2 on the
    second efficacy skeleton, limits 0.5/0.5, 9 randomised)."""
    d = _design("escalation_test", num_randomise=9)
    one = d.decide("1NNN", u=0.5)                       # randomising, P sums to 1
    assert one.reasons[0].startswith("randomise")
    assert d.randomisation(BatchState.from_history(TrialHistory.parse("1NNN", 4))).sum() \
        == pytest.approx(1.0)
    assert not d.decide("3T", u=0.5).stop
    stop = d.decide("3TTT", u=0.5)                      # no admissible dose
    assert stop.stop and stop.stop_code == "none_admissible" and stop.recommended is None
    assert not any(stop.admissible)
    assert not d.decide("1NNN 2NNN 3NNN 4NNN").stop     # too little to call it futile
    six = "1NNNNNN 2NNNNNN 3NNNNNN 4NNNNNN"
    futile = d.decide(six)
    assert futile.stop and futile.stop_code == "futile" and futile.recommended is None
    long = dataclasses.replace(d, num_randomise=64).decide(six, u=0.5)    # still randomising
    assert not long.stop


def test_randomisation_stage_within_the_trial():
    """More patients randomised than the trial holds is refused, naming both fields."""
    with pytest.raises(ValueError, match="max_patients must be at least num_randomise"):
        _design("escalation_test", num_randomise=65)


def test_randomisation_follows_the_probabilities_and_needs_a_draw():
    """The next dose is the inverse CDF of the randomisation probabilities at ``u``: each
    admissible dose gets an interval of ``u`` as long as its probability; without ``u`` the
    design refuses to randomise."""
    d = _design("escalation_example")
    h = "1NN 2EN 3BE"
    p = d.randomisation(BatchState.from_history(TrialHistory.parse(h, 6)))[0]
    u = (np.arange(20_000) + 0.5) / 20_000
    picks = np.array([d.decide(h, u=float(x)).next_dose for x in u[::50]])
    share = np.bincount(picks, minlength=6) / picks.size
    np.testing.assert_allclose(share, p, atol=1 / 400 + 1e-12)
    assert p[4] == p[5] == 0                          # inadmissible: toxicity above 0.33
    with pytest.raises(ValueError, match="give a uniform draw u"):
        d.decide(h)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        d.decide(h, u=1.0)


def test_lowest_dose_too_toxic_stops_on_the_exact_interval():
    """Stop when the Clopper-Pearson lower limit at the lowest dose exceeds the toxicity limit
    (3/3 toxicities: 0.292 < 0.33 continues if a dose stays admissible; 5/6: 0.359 stops)."""
    d = _design("escalation_example", tox_skeleton=(0.001, 0.002, 0.003, 0.004, 0.005, 0.006))
    assert exact_limits(3, 3, 0.95)[0] == pytest.approx(0.2924018, abs=1e-7)
    dec = d.decide(_history([(0, 6, 5)]), u=0.3)
    assert dec.stop and dec.stop_code in ("lowest_too_toxic", "none_admissible")
    low = d.decide_batch(_state([6, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0], [0] * 6, 0.3))
    assert low.stop[0] and low.recommended[0] == NO_DOSE


def _history(cells) -> TrialHistory:
    h = TrialHistory(6)
    for dose, n, t in cells:
        h = h.add_cohort(dose, np.arange(n) < t, np.zeros(n, bool))
    return h


def test_optimal_dose_is_the_most_efficacious_admissible_dose():
    d = _design("escalation_example", eff_limit=0.2)
    tox = np.array([[0.05, 0.1, 0.2, 0.3, 0.4, 0.5]])
    assert d.optimal_dose(tox, np.array([[0.2, 0.4, 0.5, 0.5, 0.7, 0.7]]), tox)[0] == 2
    assert d.optimal_dose(tox, np.array([[0.1, 0.15, 0.1, 0.1, 0.7, 0.7]]), tox)[0] == NO_DOSE
    assert d.optimal_dose(tox + 0.5, np.full((1, 6), 0.5), tox)[0] == NO_DOSE


def test_refuses_bad_settings():
    with pytest.raises(ValueError, match="one probability per dose"):
        _design("escalation_example", eff_skeletons=((0.2, 0.3),))
    with pytest.raises(ValueError, match="one positive weight"):
        _design("escalation_example", eff_skeleton_weights=(1.0,))
    with pytest.raises(ValueError, match="increase strictly"):
        _design("escalation_example", tox_skeleton=(0.1, 0.1, 0.2, 0.3, 0.4, 0.5))


def _oc_study(scen: dict) -> ts.Study:
    o = REF["oc_design"]
    s = REF["settings"][o["setting"]]
    design = {"type": "wages_tait", "tox_skeleton": s["tox_skeleton"],
              "eff_skeletons": s["eff_skeletons"], "tox_limit": s["tox_limit"],
              "eff_limit": o["eff_limit"], "num_randomise": o["num_randomise"],
              "max_patients": o["max_patients"], "cohort_size": o["cohort_size"]}
    return ts.from_dict({"doses": [1, 2, 3, 4, 5, 6], "target": s["tox_limit"],
                         "truth": {"tox": scen["true_tox"], "eff": scen["true_eff"]},
                         "design": design})


@pytest.mark.parametrize("name", sorted(REF["oc"]))
def test_operating_characteristics_as_the_rules_run_in_r(name):
    """36 patients in cohorts of 3, the first 12 randomised, escalation's example skeletons,
    efficacy limit 0.2; three scenarios (efficacy plateau, a peak below toxic doses, futile):
    selection per dose and of no dose, mean patients per dose and trial size within Monte Carlo
    error of the same rules run in R on dfcrm fits (``make_wages_tait_fixture.R``, 2,000 trials
    each) and of 2,000 trialsim trials."""
    scen = REF["oc"][name]
    sims = ts.simulate(_oc_study(scen), 2000, seed=20261129)
    n_ref = scen["n_trials"]
    sel = np.asarray(scen["selected"], float) / n_ref          # [none, dose 1, ..., dose D]
    assert_oc_close(sims.arrays, n_ref, sel[1:], scen["patients_per_dose_mean"], None,
                    no_selection=sel[0])
    total = sims.arrays.n.sum(axis=1)
    se = np.sqrt(total.var(ddof=1) / total.size + scen["n_patients_sd"] ** 2 / n_ref) + 1e-9
    assert abs(total.mean() - scen["n_patients_mean"]) <= 4.5 * se


def test_runs_are_reproducible_whatever_the_batching():
    """The randomisation draws come from each trial's own stream: the same trials give the
    same doses in batches of 7 and of 500."""
    study = _oc_study(REF["oc"]["plateau"])
    a = ts.simulate(study, 60, seed=5, batch_size=7).arrays
    b = ts.simulate(study, 60, seed=5, batch_size=500).arrays
    np.testing.assert_array_equal(a.patient_dose, b.patient_dose)
    np.testing.assert_array_equal(a.selected, b.selected)
    c = ts.simulate(study, 60, seed=6).arrays
    assert (c.patient_dose != a.patient_dose).any()


def test_pathways_branch_on_the_randomised_dose():
    """``trialsim table``: after each outcome of a randomised cohort, one row per possible next
    dose with its probability, which sum to 1 and are the design's randomisation
    probabilities; a modifier that moves the dose merges branches."""
    from trialsim.designs.modifiers import DontSkipDoses
    from trialsim.designs.tables import dose_transition_pathways
    d = _design("escalation_example")
    paths = dose_transition_pathways(d, [1, 2, 3, 4, 5, 6], cohorts=1, history="1NN 2EN 3BE")
    after = paths[paths.path == "1NN 2EN 3BE 4N"]
    h = TrialHistory.parse("1NN 2EN 3BE 4N", 6)
    p = d.randomisation(BatchState.from_history(h))[0]
    np.testing.assert_allclose(after.probability.to_numpy(), p[p > 0], atol=1e-6)
    assert list(after.next_level) == list(np.flatnonzero(p > 0) + 1)
    capped = dose_transition_pathways(DontSkipDoses(parent=d), [1, 2, 3, 4, 5, 6], cohorts=1,
                                      history="1NN 2EN 3BE")
    rows = capped[capped.path == "1NN 2EN 3BE 4N"]
    assert rows.probability.sum() == pytest.approx(1.0)
    assert rows.next_level.max() <= 5
