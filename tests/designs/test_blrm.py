"""BLRM/EWOC: the posterior interval probabilities against a slow SciPy twin (nested adaptive
quadrature, tests/reference/blrm.py) and an exact one-dimensional integral under the prior, the
EWOC decisions derived from those probabilities, and validation."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logit

import trialsim as ts
from trialsim.errors import ConfigError
from tests.reference import blrm as twin
from trialsim.analysis.blrm import BLRMPrior, prob_at_or_above
from trialsim.designs import BLRM, DontSkipDoses
from trialsim.outcomes import TrialHistory

DOSES = [1.0, 2.0, 4.0, 8.0, 16.0]
PRIOR = BLRMPrior(mean=(float(logit(0.245)), 0.0), sd=(2.0, 1.0), corr=0.0)
STATES = [([3, 3, 3, 9, 6], [0, 0, 0, 2, 4]),        # skewed: the heaviest tails seen
          ([3, 0, 0, 0, 0], [3, 0, 0, 0, 0]), ([30, 0, 0, 0, 0], [1, 0, 0, 0, 0])]


def _twin(n, y, prior=PRIOR, cuts=(0.16, 0.33), ref=4.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([twin.prob_at_or_above(n, y, DOSES, ref, prior.mean, prior.sd,
                                               prior.corr, c) for c in cuts]).T


@pytest.mark.parametrize("n, y", STATES)
def test_posterior_interval_probabilities_match_the_scipy_twin(n, y):
    got = prob_at_or_above(np.array([n]), np.array([y]), DOSES, 4.0, PRIOR, [0.16, 0.33])[0]
    np.testing.assert_allclose(got, _twin(n, y), atol=1e-4)


def test_correlated_prior_matches_the_twin():
    prior = BLRMPrior(mean=(-1.0, 0.2), sd=(1.5, 0.8), corr=-0.4)
    n, y = [3, 6, 3, 0, 0], [0, 1, 2, 0, 0]
    got = prob_at_or_above(np.array([n]), np.array([y]), DOSES, 4.0, prior, [0.2, 0.4])[0]
    np.testing.assert_allclose(got, _twin(n, y, prior, (0.2, 0.4)), atol=1e-4)


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
    ge = _twin(list(n), list(y))
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
    sims = ts.simulate(study, n_trials=300, seed=5)
    assert sims.arrays.n.sum(axis=1).max() <= 24
    assert np.array_equal(sims.arrays.selected, ts.simulate(study, n_trials=300, seed=5)
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
