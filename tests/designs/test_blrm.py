"""BLRM/EWOC: the posterior interval probabilities against a slow SciPy twin (nested adaptive
quadrature, tests/reference/blrm.py; its values stored by tests/fixtures/make_blrm_twin_fixture.py
in blrm_twin_reference.json) and an exact one-dimensional integral under the prior, the EWOC
decisions derived from those probabilities, and validation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logit

import trialsim as ts
from trialsim.errors import ConfigError
from trialsim.analysis.blrm import BLRMPrior, prob_at_or_above
from trialsim.designs import BLRM, DontSkipDoses
from trialsim.outcomes import TrialHistory

TWIN = json.loads((Path(__file__).resolve().parents[1] / "fixtures"
                   / "blrm_twin_reference.json").read_text())
DOSES = [1.0, 2.0, 4.0, 8.0, 16.0]
PRIOR = BLRMPrior(mean=(float(logit(0.245)), 0.0), sd=(2.0, 1.0), corr=0.0)
STATES = ["skewed",        # the heaviest tails seen
          "three_dlts", "thirty_one_dlt"]


def _twin(case) -> np.ndarray:
    """The twin's ``P(p_d >= cut)``, (doses, cuts)."""
    return np.array(case["prob_at_or_above"]).T


def test_the_fixture_is_for_these_settings():
    assert TWIN["doses"] == DOSES and TWIN["ref_dose"] == 4.0
    assert TWIN["prior"]["mean"] == list(PRIOR.mean) and TWIN["prior"]["sd"] == list(PRIOR.sd)


@pytest.mark.parametrize("name", STATES)
def test_posterior_interval_probabilities_match_the_scipy_twin(name):
    case = TWIN["cases"][name]
    got = prob_at_or_above(np.array([case["n"]]), np.array([case["y"]]), DOSES, 4.0, PRIOR,
                           case["cuts"])[0]
    np.testing.assert_allclose(got, _twin(case), atol=1e-4)


def test_correlated_prior_matches_the_twin():
    case = TWIN["correlated"]
    p = case["prior"]
    prior = BLRMPrior(mean=tuple(p["mean"]), sd=tuple(p["sd"]), corr=p["corr"])
    got = prob_at_or_above(np.array([case["n"]]), np.array([case["y"]]), DOSES, 4.0, prior,
                           case["cuts"])[0]
    np.testing.assert_allclose(got, _twin(case), atol=1e-4)


def test_prior_probabilities_equal_the_exact_integral():
    """With no data, ``P(p_d >= c) = E_b[Phi((mu_a + exp(b) x_d - logit c) / sd_a)]``, a 1-D
    integral over ``b = log beta ~ N(0, 1)``."""
    got = prob_at_or_above(np.zeros((1, 5), int), np.zeros((1, 5), int), DOSES, 4.0, PRIOR,
                           [0.33])[0, :, 0]
    mu, sa = PRIOR.mean[0], PRIOR.sd[0]
    exact = [integrate.quad(lambda b: stats.norm.pdf(b) * stats.norm.sf(
        (logit(0.33) - np.exp(b) * np.log(d / 4.0) - mu) / sa), -12, 12, epsabs=1e-14)[0]
        for d in DOSES]
    np.testing.assert_allclose(got, exact, atol=2e-5)


def test_states_are_computed_once_and_shared():
    n = np.array([[3, 0, 0, 0, 0]] * 4 + [[3, 3, 0, 0, 0]])
    y = np.array([[0, 0, 0, 0, 0]] * 4 + [[0, 1, 0, 0, 0]])
    p = prob_at_or_above(n, y, DOSES, 4.0, PRIOR, [0.33])
    assert np.all(p[:4] == p[0]) and not np.allclose(p[4], p[0])


@pytest.mark.parametrize("history", ["1NNN 2NNN", "1NNN 2NNT 2NNN"])
def test_ewoc_decisions_follow_the_twin_probabilities(history):
    """Next dose: among doses with P(p >= 0.33) < 0.25, the highest P(0.16 <= p < 0.33);
    recommendation: the same among doses given."""
    design = BLRM(doses=tuple(DOSES), max_patients=30)
    h = TrialHistory.parse(history, 5)
    n, y, _ = h.counts()
    case = TWIN["cases"]["ewoc_" + history.replace(" ", "_")]
    assert case["n"] == list(n) and case["y"] == list(y)
    ge = _twin(case)
    ok = ge[:, 1] < 0.25
    target = np.where(ok, ge[:, 0] - ge[:, 1], -1)
    d = design.decide(h)
    assert d.next_dose == int(np.argmax(target))
    assert d.recommended == int(np.argmax(np.where(n > 0, target, -1)))
    assert d.admissible == tuple(bool(v) for v in ok)


def test_stops_with_no_dose_when_no_dose_passes_ewoc():
    d = BLRM(doses=tuple(DOSES), max_patients=30).decide("1TTT")
    assert d.stop and d.recommended is None and d.stop_code == "too_toxic"


def test_runs_from_a_study_file_with_the_study_doses():
    study = ts.from_dict({"doses": DOSES, "target": 0.25,
                          "truth": {"tox": [0.05, 0.1, 0.2, 0.35, 0.5]},
                          "design": {"type": "blrm", "max_patients": 24,
                                     "modifiers": [{"type": "dont_skip_doses"}]}})
    assert isinstance(study.design, DontSkipDoses)
    assert study.design.doses == tuple(DOSES) and study.design.d_ref == 4.0
    sims = ts.simulate(study, n_trials=100, seed=5)
    assert sims.arrays.n.sum(axis=1).max() <= 24
    assert np.array_equal(sims.arrays.selected, ts.simulate(study, n_trials=100, seed=5)
                          .arrays.selected)


def test_bad_settings_are_refused_with_the_yaml_path():
    doc = {"doses": [0, 1, 2], "truth": {"tox": [0.1, 0.2, 0.3]},
           "design": {"type": "blrm", "max_patients": 12}}
    with pytest.raises(ConfigError, match="positive and strictly increasing"):
        ts.from_dict(doc)
    doc["doses"] = [1, 2, 3]
    doc["design"]["target_interval"] = [0.3, 0.2]
    with pytest.raises(ConfigError, match="target_interval"):
        ts.from_dict(doc)
