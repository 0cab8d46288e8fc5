"""The batched MCP-Mod of the simulator agrees with the single-trial analysis trial by trial:
significance, adjusted p-values where computed, the selected model, the fitted curve (the
batch optimum is never worse) and the target dose."""
from __future__ import annotations

import numpy as np
import pytest

from trialsim.analysis.doseresponse import Candidates, analyse, from_binary, from_normal
from trialsim.analysis.doseresponse.batch import BatchEstimates, batch_fit, batch_mcpmod

DOSES = np.array([0, 0.05, 0.2, 0.6, 1.0])
MODELS = {"linear": None, "emax": 0.2, "sig_emax": [0.4, 3], "exponential": 0.5,
          "quadratic": -0.85}


def _stack(ests, kind, n_cov=0):
    T = len(ests)
    if kind == "normal":
        return BatchEstimates(DOSES, np.stack([e.estimates for e in ests]),
                              np.stack([e.cov for e in ests]), np.array([e.df for e in ests]),
                              kind, np.ones(T, bool), np.stack([e.V for e in ests]),
                              np.array([e.rss0 for e in ests]),
                              np.array([e.n_obs for e in ests]), n_cov)
    return BatchEstimates(ests[0].doses, np.stack([e.estimates for e in ests]),
                          np.stack([e.cov for e in ests]), np.array([e.df for e in ests]),
                          "general", np.ones(T, bool))


@pytest.mark.parametrize("effect", [0.0, 0.45])
def test_batch_equals_single_trial_analysis(effect):
    rng = np.random.default_rng(11 if effect else 12)
    ests = []
    for _ in range(14):
        n = rng.integers(12, 25, DOSES.size)           # unequal allocation, as after dropout
        d = np.repeat(DOSES, n)
        y = 0.1 + effect * d / (0.2 + d) + rng.normal(0, 0.7, d.size)
        ests.append(from_normal(d, y, rng.normal(size=d.size)))
    be = _stack(ests, "normal", 1)
    cands = Candidates.from_models(DOSES, MODELS)
    br = batch_mcpmod(be, cands, delta=0.3)
    for i, est in enumerate(ests):
        r = analyse(est, MODELS, delta=0.3)
        assert br.signal[i] == r.signal
        np.testing.assert_allclose(br.t[i], r.test.t, rtol=1e-10)
        done = np.isfinite(br.p[i])
        # accurate to the batch's own standard error (it stops once the decision is sure)
        err = np.abs(br.p[i][done] - r.test.p_adjusted[done])
        assert np.all(err <= 4.5 * br.p_se[i][done] + 1e-4), (err, br.p_se[i][done])
        if not r.signal:
            assert br.selected[i] == -1 and np.isnan(br.dose[i])
            continue
        assert br.models[br.selected[i]] == r.selected
        for m, f in r.fits.items():
            active = np.zeros(len(ests), bool)
            active[i] = True
            _, crit = batch_fit(m, be, active, cands)
            assert crit[i] <= f.aic + 1e-7 * abs(f.aic), m
        np.testing.assert_allclose(br.fitted[i], r.predict(DOSES), rtol=1e-3, atol=1e-3)
        if np.isfinite(r.dose):
            assert br.dose[i] == pytest.approx(r.dose, abs=1e-3)


def test_batch_binary_general_estimates():
    rng = np.random.default_rng(5)
    ests = []
    for _ in range(10):
        d = np.repeat(DOSES, 40)
        p = 1 / (1 + np.exp(-(-1.5 + 2.0 * d / (0.3 + d))))
        ests.append(from_binary(d, (rng.random(d.size) < p).astype(float)))
    be = _stack(ests, "general")
    cands = Candidates.from_models(DOSES, MODELS)
    br = batch_mcpmod(be, cands, delta=0.5, selection="average")
    for i, est in enumerate(ests):
        r = analyse(est, MODELS, delta=0.5, selection="average")
        assert br.signal[i] == r.signal
        if r.signal:
            np.testing.assert_allclose(br.fitted[i], r.predict(DOSES), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("two_sided", [False, True])
def test_max_t_selects_the_largest_statistic_whichever_the_direction(two_sided):
    """With ``selection: maxT`` the model of the significant contrast with the largest test
    statistic (oriented towards benefit; ``|t|`` two-sided) is selected: mirrored data
    (``-y``, direction decreasing) give the same model and target dose as the data increasing,
    in the single-trial and the batched analysis.  Before, decreasing picked the smallest."""
    rng = np.random.default_rng(21)
    ests, mirrored = [], []
    for _ in range(5):
        d = np.repeat(DOSES, 20)
        y = 0.6 * d / (0.1 + d) + rng.normal(0, 0.6, d.size)
        ests.append(from_normal(d, y))
        mirrored.append(from_normal(d, -y))
    kw = dict(delta=0.3, selection="maxT", two_sided=two_sided)
    cands = Candidates.from_models(DOSES, MODELS)
    br = batch_mcpmod(_stack(mirrored, "normal"), cands, direction="decreasing", **kw)
    selected = 0
    for i, (est, mir) in enumerate(zip(ests, mirrored)):
        up = analyse(est, MODELS, **kw)
        down = analyse(mir, MODELS, direction="decreasing", **kw)
        assert down.signal == up.signal
        if not up.signal:
            continue
        stat = np.abs(down.test.t) if two_sided else down.test.t
        sig = np.isin(down.test.labels, down.test.significant)
        best = down.test.labels[int(np.argmax(np.where(sig, stat, -np.inf)))]
        assert down.selected == up.selected == cands.items[cands.labels.index(best)].model
        assert down.dose == pytest.approx(up.dose, rel=1e-6)
        assert br.models[br.selected[i]] == down.selected
        selected += 1
    assert selected >= 4
