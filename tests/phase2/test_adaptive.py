"""Adaptive phase II designs: interim decisions on hand-computed states (stopping, arm
dropping, randomisation probabilities for rar none / best / target), P(best) against direct
numerical integration, stage allocation by hand, and in simulation: stops at the interim
enrol nobody after it, the level under a flat truth stays near alpha, results do not depend
on batching."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

import trialsim as ts
from trialsim.designs.adaptive import Adaptive, InterimState, prob_best
from trialsim.errors import ConfigError
from trialsim.phase2 import simulate_phase2

from tests.phase2.test_phase2_oc import BASE


def state(mean, se, max_t=(1.0,), reject=(False,), active=None, benefit=-1.0):
    mean, se = np.atleast_2d(mean).astype(float), np.atleast_2d(se).astype(float)
    T, D = mean.shape
    return InterimState(n=np.full((T, D), 10), mean=mean, se=se, benefit=benefit,
                        max_t=np.asarray(max_t, float), reject=np.asarray(reject, bool),
                        active=np.ones((T, D), bool) if active is None else np.asarray(active))


def design(**kw):
    base = dict(allocation=(2, 1, 1, 1), n_total=100, interims=(40,))
    base.update(kw)
    return Adaptive(**base)


def test_prob_best_against_numerical_integration():
    m = np.array([[1.0, 0.4, 0.7, -0.2]])
    se = np.array([[0.3, 0.5, 0.2, 0.4]])
    act = np.array([[True, True, True, False]])
    got = prob_best(m, se, act)[0]
    for d in range(3):
        others = [j for j in range(3) if j != d]
        f = lambda x: norm.pdf(x, m[0, d], se[0, d]) * np.prod(  # noqa: E731
            [norm.cdf(x, m[0, j], se[0, j]) for j in others])
        want = integrate.quad(f, -10, 10, epsabs=1e-13, limit=200)[0]
        assert got[d] == pytest.approx(want, abs=1e-12)
    assert got[3] == 0.0
    # two arms: P(X1 > X2) in closed form
    p2 = prob_best(m[:, :2], se[:, :2], act[:, :2])[0]
    assert p2[0] == pytest.approx(norm.cdf(0.6 / np.hypot(0.3, 0.5)), abs=1e-12)


def test_interim_decisions_by_hand():
    """MADRS change (benefit = a fall): placebo -5, doses -5.5, -9, -10; drop a dose whose
    effect over placebo is below 1 point (the first: 0.5)."""
    d = design(drop_below=1.0, futility_t=0.5, efficacy_p=0.001)
    mean = [[-5.0, -5.5, -9.0, -10.0]] * 3
    se = [[1.0] * 4] * 3
    dec = d.adapt(state(mean, se, max_t=[2.0, 0.4, 3.0], reject=[False, False, True]))
    assert dec.active.tolist() == [[True, False, True, True]] * 3
    assert dec.stop_futility.tolist() == [False, True, False]
    assert dec.stop_efficacy.tolist() == [False, False, True]
    # rar none: the burn-in ratio 2:1:1:1 among the arms left -> 2/4, 0, 1/4, 1/4
    np.testing.assert_allclose(dec.probs[0], [0.5, 0, 0.25, 0.25])
    # every dose dropped: futility, never efficacy
    dec = design(drop_below=10.0, efficacy_p=0.001).adapt(state(mean[:1], se[:1],
                                                                 reject=[True]))
    assert dec.stop_futility.tolist() == [True] and dec.stop_efficacy.tolist() == [False]


def test_rar_best_and_target_by_hand():
    mean = np.array([[-5.0, -7.0, -9.0, -8.0]])
    se = np.array([[1.0, 0.8, 0.9, 1.1]])
    # best: placebo keeps 2/5, the doses share 3/5 in proportion to P(best)^1
    dec = design(rar="best").adapt(state(mean, se))
    pb = prob_best(-mean[:, 1:], se[:, 1:], np.ones((1, 3), bool))[0]
    np.testing.assert_allclose(dec.probs[0], np.r_[0.4, 0.6 * pb / pb.sum()], atol=1e-14)
    # target 3 points over placebo, squared, placebo share 0.25
    dec = design(rar="target", rar_target=3.0, rar_power=2.0,
                 placebo_share=0.25).adapt(state(mean, se))
    eff = -(mean[0, 1:] - mean[0, 0])
    w = norm.cdf((eff - 3.0) / np.sqrt(se[0, 1:] ** 2 + 1.0)) ** 2
    np.testing.assert_allclose(dec.probs[0], np.r_[0.25, 0.75 * w / w.sum()], atol=1e-14)
    # min_share: a dose whose share of all patients falls below 0.1 gets none this stage
    dec = design(rar="target", rar_target=3.0, rar_power=2.0, placebo_share=0.25,
                 min_share=0.1).adapt(state(mean, se))
    small = 0.75 * w / w.sum() < 0.1
    assert small.any() and (dec.probs[0, 1:][small] == 0).all()
    assert dec.probs[0].sum() == pytest.approx(1.0)


def test_stage_allocation_by_hand():
    probs = np.array([[0.5, 0.0, 0.25, 0.25]])
    u = np.array([[0.1, 0.49, 0.5, 0.74, 0.75, 0.99]])
    assert Adaptive.allocate_stage(probs, u).tolist() == [[0, 0, 2, 2, 3, 3]]


def adaptive_study(**kw):
    doc = copy.deepcopy(BASE)
    doc["design"] = {"type": "adaptive", "allocation": [1] * 5, "n_total": 150,
                     "interims": [50, 100], **kw}
    return ts.from_dict(doc)


def test_stopping_at_the_interim_enrols_nobody_after_it():
    s = adaptive_study(drop_below=100.0)            # every dose dropped at the first look
    a = simulate_phase2(s, 60, seed=3).arrays
    assert (a.stopped == 2).all() and (a.n_interims == 1).all()
    assert (a.arm[:, 50:] == -1).all() and (a.arm[:, :50] >= 0).all()
    assert (a.forward == -1).all() and (a.n.sum(axis=1) == 50).all()
    big = adaptive_study(efficacy_p=0.001)
    big = ts.from_dict({**big.config, "response": {"efficacy": {
        **big.config["response"]["efficacy"], "emax": 15.0}}})
    b = simulate_phase2(big, 60, seed=3).arrays
    assert (b.stopped == 1).mean() > 0.9
    assert (b.signal[b.stopped == 1]).all()
    assert (b.n.sum(axis=1)[b.stopped == 1] == 50).all()


def test_level_under_a_flat_truth():
    """Two interims at 0.001 (Haybittle–Peto) and the final test at 0.025, futility at
    t < 0: the rejection rate stays within 0.025 + 0.002 (the interims' spend) + 4 MC SEs."""
    s = adaptive_study(efficacy_p=0.001, futility_t=0.0, rar="best")
    s = ts.from_dict({**s.config, "response": {"efficacy": {
        **s.config["response"]["efficacy"], "emax": 0.0}}})
    n = 4000
    sig = simulate_phase2(s, n, seed=21).arrays.signal
    assert sig.mean() < 0.027 + 4 * np.sqrt(0.027 * 0.973 / n)
    assert sig.mean() > 0.005


def test_adaptive_results_do_not_depend_on_batching():
    s = adaptive_study(efficacy_p=0.01, futility_t=0.0, drop_below=0.0, rar="best",
                       min_share=0.05)
    a = simulate_phase2(s, 90, seed=8).arrays
    b = simulate_phase2(s, 90, seed=8, batch_size=31).arrays
    for f in ("arm", "y", "stopped", "n_interims", "dropped", "forward", "td"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


@pytest.mark.parametrize("kw,words", [
    ({"interims": [100, 50]}, "increasing"),
    ({"interims": [150]}, "before the last patient"),
    ({"rar": "target"}, "rar_target"),
    ({"placebo_share": 0.3}, "response-adaptive"),
    # an arm of ratio 0 got no patient and every trial's analysis failed silently (no-go)
    ({"allocation": [1, 0, 1, 1, 1]}, "every arm needs a positive burn-in ratio"),
    # a look too early to analyse; an interim level above the final alpha
    ({"interims": [3, 60]}, "the first interim comes after 3 patients"),
    ({"efficacy_p": 0.05}, "exceeds the final analysis.alpha (0.025)"),
])
def test_adaptive_config_errors(kw, words):
    with pytest.raises(ConfigError) as ei:
        adaptive_study(**kw)
    assert words in str(ei.value) and "design" in str(ei.value)


def test_pipeline_patients_enrolled_during_the_look_stay_in_the_trial():
    """Accrual of 35 patients a week and a primary visit at 24 h: 5 more patients enter while
    the interim's 50th patient reaches it (floor(24 * 35 / 168) = 5).  A trial stopped at the
    first look then has 55 patients, the last 5 randomised as before the look, followed to the
    end; its duration is 54/35 weeks + 24 h."""
    s = adaptive_study(drop_below=100.0, accrual_per_week=35.0)
    assert s.design.pipeline(24.0) == 5
    sims = simulate_phase2(s, 40, seed=3)
    a = sims.arrays
    assert (a.stopped == 2).all() and (a.n.sum(axis=1) == 55).all()
    assert (a.arm[:, :55] >= 0).all() and (a.arm[:, 55:] == -1).all()
    assert np.isfinite(a.y[:, 50:55]).all()               # followed (no dropout here)
    # the 5 were drawn with the burn-in ratio, as the design's allocation before any look
    from trialsim.rng import stream_uniforms
    u = stream_uniforms(3, 0, np.arange(40), "allocation", s.design.n_uniforms())
    np.testing.assert_array_equal(a.arm[:, :55], s.design.allocate(u)[:, :55])
    want = 54 / 35 + 24 / 168
    np.testing.assert_allclose(sims.trials["duration_weeks"], want)
    m = sims.metrics().set_index("metric")
    assert m.loc["duration_weeks_mean", "value"] == pytest.approx(want)


def test_efficacy_levels_per_look():
    """No efficacy stop at the first look (level 0), Haybittle–Peto at the second: with a
    large effect every trial that stops for efficacy does so at the second look."""
    s = adaptive_study(efficacy_p=[0.0, 0.001])
    s = ts.from_dict({**s.config, "response": {"efficacy": {
        **s.config["response"]["efficacy"], "emax": 15.0}}})
    a = simulate_phase2(s, 60, seed=3).arrays
    assert (a.stopped == 1).mean() > 0.9
    assert (a.n_interims[a.stopped == 1] == 2).all()
    assert (a.n.sum(axis=1)[a.stopped == 1] == 100).all()
    with pytest.raises(ConfigError) as ei:
        adaptive_study(efficacy_p=[0.001])
    assert "one level per interim" in str(ei.value)
