"""Phase II simulation: the multiple contrast test keeps its level under a flat truth and has
the power DoseFinding's ``powMCT`` computes for the same design (an exactly normal endpoint:
no drug-sensitivity spread, no clipping); reproducibility whatever the batching; the truth
against the closed form; randomisation, dropout and missing-data rules."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import trialsim as ts
from trialsim.errors import ConfigError
from trialsim.phase2 import Phase2Study, phase2_truth, simulate_phase2

FIX = Path(__file__).resolve().parents[1] / "fixtures"
BASE = {
    "name": "p2-normal",
    "doses": [0, 0.25, 0.5, 0.75, 1.0], "dose_unit": "mg",
    "population": {"baseline_madrs": {"dist": "truncated_normal", "mean": 42, "sd": 3,
                                      "low": 35, "high": 50}},
    # change at 24 h = -(5 + 4 z0) - 5 d/(0.3 + d) + 3 e: normal, SD 5, no clipping
    "response": {"efficacy": {"type": "madrs_timecourse", "exposure": "dose", "emax": 5.0,
                              "ec50": 0.3, "hill": 1.0, "emax_omega": 0.0, "peak_h": 24,
                              "placebo_plateau": 5.0, "placebo_sd": 4.0, "residual_sd": 3.0,
                              "read_out_h": 24}},
    "design": {"type": "parallel", "allocation": [1, 1, 1, 1, 1], "n_total": 100},
    "visits_h": [24],
    "endpoint": {"type": "change", "visit_h": 24},
    "analysis": {"models": {"linear": None, "emax": 0.2, "sig_emax": [0.5, 3],
                            "exponential": 0.5},
                 "alpha": 0.025, "delta": 2.0},
}


def study(**changes) -> Phase2Study:
    doc = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = doc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return ts.from_dict(doc)


def test_level_under_a_flat_dose_response():
    """10,000 trials with no drug effect: the rejection rate is alpha within 4 MC SEs."""
    s = study(response__efficacy__emax=0.0)
    n = 10_000
    sims = simulate_phase2(s, n, seed=11)
    rate = sims.arrays.signal.mean()
    se = np.sqrt(0.025 * 0.975 / n)
    assert abs(rate - 0.025) < 4 * se, rate


def test_power_matches_dosefinding_powmct():
    ref = json.loads((FIX / "powmct_reference.json").read_text())
    s = study()
    tr = phase2_truth(s, seed=3)
    np.testing.assert_allclose(tr.mean, ref["truth"], atol=4 * tr.mean_se.max() + 1e-6)
    n = 4000
    sims = simulate_phase2(s, n, seed=5)
    power = sims.arrays.signal.mean()
    se = np.sqrt(ref["power"] * (1 - ref["power"]) / n)
    assert abs(power - ref["power"]) < 4 * se, (power, ref["power"])


def test_results_do_not_depend_on_batching():
    s = study(dropout={"rate_per_week": 2.0, "no_response_hazard_ratio": 3.0,
                       "response_visit_h": 24})
    a = simulate_phase2(s, 300, seed=8).arrays
    b = simulate_phase2(s, 300, seed=8, batch_size=77).arrays
    c1 = simulate_phase2(s, 120, seed=8).arrays
    c2 = simulate_phase2(s, 180, seed=8, first_trial=120).arrays
    for f in ("arm", "dropout_h", "y", "signal", "td", "forward", "fitted"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
        np.testing.assert_array_equal(getattr(a, f),
                                      np.concatenate([getattr(c1, f), getattr(c2, f)]), f)


def test_block_randomisation_is_balanced_and_simple_follows_the_ratio():
    s = study(design={"type": "parallel", "allocation": [3, 1, 1, 1, 2], "n_total": 100,
                      "block_size": 16})
    arm = simulate_phase2(s, 200, seed=2).arrays.arm
    for b in range(6):      # every complete block of 16 holds 6, 2, 2, 2, 4
        counts = np.stack([(arm[:, 16 * b:16 * (b + 1)] == d).sum(axis=1) for d in range(5)], 1)
        assert (counts == [6, 2, 2, 2, 4]).all()
    s = study(design={"type": "parallel", "allocation": [3, 1, 1, 1, 2], "n_total": 100,
                      "randomisation": "simple"})
    arm = simulate_phase2(s, 400, seed=2).arrays.arm
    share = np.array([(arm == d).mean() for d in range(5)])
    np.testing.assert_allclose(share, np.array([3, 1, 1, 1, 2]) / 8, atol=4 * np.sqrt(
        0.25 / arm.size))


def test_dropout_hazards_and_missing_data_rules():
    rate = 0.9      # per week; the primary visit at 24 h
    s = study(dropout={"rate_per_week": rate})
    a = simulate_phase2(s, 600, seed=4).arrays
    lost = ~np.isfinite(a.y)
    expected = 1 - np.exp(-rate * 24 / 168)
    assert abs(lost.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / lost.size)
    # MNAR: non-responders (no 50 % fall at 24 h) drop out five times as fast
    s = study(dropout={"rate_per_week": rate, "no_response_hazard_ratio": 5.0,
                       "response_visit_h": 24})
    b = simulate_phase2(s, 600, seed=4).arrays
    assert (~np.isfinite(b.y)).mean() > lost.mean() + 0.02
    # LOCF: every patient is analysed (baseline carried forward: change 0 when lost)
    s = study(dropout={"rate_per_week": rate}, analysis__missing="locf")
    c = simulate_phase2(s, 200, seed=4).arrays
    assert np.isfinite(c.y).all()
    assert (c.y[np.isfinite(c.dropout_h) & (c.dropout_h < 24)] == 0).all()


def test_truth_matches_the_closed_form():
    s = study()
    tr = phase2_truth(s, seed=1)
    d = np.asarray(s.doses)
    expect = -5.0 * (1 - 2.0 ** -24) - 5.0 * d / (0.3 + d)
    np.testing.assert_allclose(tr.mean, expect, atol=4 * tr.mean_se.max())
    # TD(2): 5 d/(0.3 + d) = 2 at d = 0.2; the grid curve is exact up to MC error
    assert tr.td == pytest.approx(0.2, abs=0.01)
    assert tr.forward == 1                       # 0.25 mg, the smallest dose above 0.2


@pytest.mark.parametrize("change,path,words", [
    ({"design__allocation": [1, 1, 1]}, ("design", "allocation"), "one allocation ratio"),
    ({"endpoint__visit_h": 48}, ("endpoint", "visit_h"), "must be one of"),
    ({"analysis__covariates": ["age"]}, ("analysis", "covariates", 0), "not a population"),
    ({"doses": [0.1, 0.25, 0.5, 0.75, 1.0]}, ("doses", 0), "placebo"),
    ({"analysis__models": {"emax": -1}}, ("analysis", "models"), "must be > 0"),
    ({"analysis__models": {"sig_emax": [0.3]}}, ("analysis", "models"), "of 2 numbers each"),
    ({"analysis__models": {"emax": "0.1"}}, ("analysis", "models"), "needs a guesstimate"),
    ({"analysis__models": {"emax": True}}, ("analysis", "models"), "needs a guesstimate"),
    ({"visits_h": [24, 12]}, ("visits_h",), "increasing"),
    ({"dropout": {"no_response_hazard_ratio": 2.0, "response_visit_h": 50}},
     ("dropout", "response_visit_h"), "must be one of visits_h"),
])
def test_phase2_config_errors_name_the_path(change, path, words):
    with pytest.raises(ConfigError) as ei:
        study(**change)
    errs = getattr(ei.value, "errors", [ei.value])
    assert any(e.path[:len(path)] == path and words in e.message for e in errs), \
        [str(e) for e in errs]


def test_stratified_blocks_are_balanced_within_each_stratum():
    """Strata by baseline MADRS (cut at 42): within each stratum, patients in order of entry
    fill that stratum's own permuted blocks of 5, so every complete block of a stratum holds
    each arm once."""
    s = study(design={"type": "parallel", "allocation": [1, 1, 1, 1, 1], "n_total": 100,
                      "strata": {"baseline_madrs": [42]}})
    from trialsim.phase2.simulate import draw_patients

    trials = np.arange(50)
    a = simulate_phase2(s, 50, seed=12).arrays
    pts = draw_patients(s, 12, 0, trials)
    stratum = (pts.covariates["baseline_madrs"] >= 42).astype(int)
    np.testing.assert_array_equal(stratum, s.design.stratum_of(pts.covariates))
    for t in range(50):
        for k in (0, 1):
            arms = a.arm[t][stratum[t] == k]
            full = arms[:len(arms) // 5 * 5].reshape(-1, 5)
            assert (np.sort(full, axis=1) == np.arange(5)).all()


def test_strata_cross_covariates_in_mixed_radix():
    from trialsim.designs.phase2 import Parallel

    d = Parallel(allocation=(1, 1), n_total=10, strata={"a": (0.0,), "b": (1.0, 2.0)})
    cov = {"a": np.array([[-1.0, -1.0, 1.0, 1.0]]), "b": np.array([[0.5, 2.5, 1.0, 1.9]])}
    assert d.n_strata == 6
    np.testing.assert_array_equal(d.stratum_of(cov), [[0, 2, 4, 4]])


def test_n_per_arm_gives_exact_numbers_per_arm():
    s = study(design={"type": "parallel", "n_per_arm": [30, 15, 15, 15, 25]})
    assert s.design.n_total == 100 and s.design.allocation == (30, 15, 15, 15, 25)
    a = simulate_phase2(s, 40, seed=1).arrays
    assert (a.n == [30, 15, 15, 15, 25]).all()


@pytest.mark.parametrize("design,path,words", [
    ({"type": "parallel", "allocation": [1] * 5, "n_total": 50, "strata": {"sex": [0.5]}},
     ("design", "strata", "sex"), "not a population covariate"),
    ({"type": "parallel", "allocation": [1] * 5, "n_total": 50,
      "strata": {"baseline_madrs": [40, 30]}}, ("design",), "increasing"),
    ({"type": "parallel", "n_per_arm": [10, 10, 10, 10, 10], "n_total": 50}, ("design",),
     "not both"),
    ({"type": "parallel", "n_per_arm": [10, 10]}, ("design",), "one number per dose"),
    ({"type": "parallel", "allocation": [1] * 5, "n_total": 50, "randomisation": "simple",
      "strata": {"baseline_madrs": [40]}}, ("design",), "block randomisation"),
    # too few patients for the analysis: it ran, with a power of 0 and no fits
    ({"type": "parallel", "allocation": [1] * 5, "n_total": 3}, ("design", "n_total"),
     "3 patients for 5 arms (the smallest expecting 0.6): the analysis needs at least 2 per "
     "arm and 10 in all"),
    ({"type": "parallel", "allocation": [6, 1, 1, 1, 1], "n_total": 18}, ("design", "n_total"),
     "smallest expecting 1.8"),
    ({"type": "parallel", "n_per_arm": [2, 2, 1, 2, 2]}, ("design", "n_per_arm"),
     "smallest expecting 1)"),
])
def test_design_errors_name_the_path(design, path, words):
    with pytest.raises(ConfigError) as ei:
        study(design=design)
    errs = getattr(ei.value, "errors", [ei.value])
    assert any(tuple(e.path[:len(path)]) == path and words in str(e) for e in errs), \
        [(e.path, str(e)) for e in errs]


def test_mmrm_without_dropout_is_ancova_and_uses_every_visit_with_it():
    """Complete data: the longitudinal model's arm means and covariance at the primary visit
    are ANCOVA's, so the whole analysis agrees trial by trial.  With dropout it analyses every
    patient seen at least once (completers: only those seen at the primary visit)."""
    doc = {"visits_h": [4, 24, 72], "endpoint": {"type": "change", "visit_h": 72},
           "analysis__covariates": ["baseline_madrs"]}
    anc = simulate_phase2(study(**doc), 200, seed=5).arrays
    mm = simulate_phase2(study(**doc, analysis__missing="mmrm"), 200, seed=5).arrays
    np.testing.assert_allclose(mm.observed, anc.observed, rtol=1e-12)
    np.testing.assert_array_equal(mm.signal, anc.signal)
    np.testing.assert_allclose(mm.p_min, anc.p_min, atol=1e-9)
    # the fits see estimates equal to ~1e-12: the same model is selected (bar near-ties of
    # AIC) and fitted alike to the optimiser's tolerance
    same = mm.selected == anc.selected
    assert same.mean() > 0.95
    np.testing.assert_allclose(mm.fitted[same], anc.fitted[same], atol=1e-4)
    drop = {"rate_per_week": 3.0}
    c = simulate_phase2(study(**doc, dropout=drop), 200, seed=5).arrays
    m = simulate_phase2(study(**doc, dropout=drop, analysis__missing="mmrm"), 200, seed=5).arrays
    assert (m.analysed >= c.analysed).all() and (m.analysed > c.analysed).any()
    lost = 1 - np.exp(-3.0 * 4 / 168)               # gone before the first visit
    share = m.analysed.sum() / m.n.sum()
    assert abs(share - (1 - lost)) < 4 * np.sqrt(lost * (1 - lost) / m.n.sum())


def test_mmrm_needs_a_continuous_endpoint():
    with pytest.raises(ConfigError) as ei:
        study(endpoint={"type": "response", "visit_h": 24}, analysis__missing="mmrm")
    assert ei.value.path[:2] == ("analysis", "missing")


def test_binary_endpoint_truth_and_level():
    """Response (a fall of at least 50 %): the change is normal (mean -(5 (1 - 2^-24) +
    5 d/(0.3 + d)), SD 5), so P(response | baseline b) = Phi((-b/2 - mean)/5), averaged over
    the truncated-normal baseline; and the generalised MCP-Mod on logits keeps its level under
    a flat truth (4,000 trials, within 4 MC SEs)."""
    from scipy import integrate
    from scipy.stats import norm, truncnorm

    s = study(endpoint={"type": "response", "visit_h": 24}, analysis__delta=0.5)
    tr = phase2_truth(s, seed=4)
    base = truncnorm((35 - 42) / 3, (50 - 42) / 3, loc=42, scale=3)
    for d, got, se in zip(s.doses, tr.mean, tr.mean_se):
        mean = -(5.0 * (1 - 2.0 ** -24) + 5.0 * d / (0.3 + d))
        want = integrate.quad(lambda b: base.pdf(b) * norm.cdf((-b / 2 - mean) / 5.0), 35, 50)[0]
        assert abs(got - want) < 4 * se + 1e-6, (d, got, want)
    # flat, with a placebo response near 40 % (plateau 20 points) and 40 patients per arm
    flat = study(endpoint={"type": "response", "visit_h": 24}, analysis__delta=0.5,
                 response__efficacy__emax=0.0, response__efficacy__placebo_plateau=20.0,
                 design__n_total=200)
    n = 4000
    rate = simulate_phase2(flat, n, seed=6).arrays.signal.mean()
    assert abs(rate - 0.025) < 4 * np.sqrt(0.025 * 0.975 / n), rate


def test_phase2_keys_with_an_escalation_design_name_the_design_type():
    with pytest.raises(ConfigError) as ei:
        study(design={"type": "crm", "target": 0.3, "skeleton": [0.1, 0.2, 0.3, 0.4, 0.5]})
    assert ei.value.path == ("design", "type") and "phase II design type" in str(ei.value)


def test_trials_whose_analysis_fails_are_counted():
    """Twenty patients on five arms and a dropout hazard of 7 a week: most trials keep too few
    analysed patients for MCP-Mod.  They are no-go, and analysis_failed_pct says why (it read
    as a power near 0); the flagship-like base study has none."""
    doc = copy.deepcopy(BASE)
    doc["design"] = {"type": "parallel", "allocation": [1] * 5, "n_total": 20}
    doc["dropout"] = {"rate_per_week": 7.0}
    sims = ts.simulate(ts.from_dict(doc), 200, seed=1)
    m = sims.metrics().set_index("metric")["value"]
    failed = ~sims.arrays.analysable
    assert m["analysis_failed_pct"] == pytest.approx(100 * failed.mean()) and failed.mean() > 0.5
    assert not sims.arrays.signal[failed].any()
    base = ts.simulate(ts.from_dict(BASE), 100, seed=1).metrics().set_index("metric")["value"]
    assert base["analysis_failed_pct"] == 0
