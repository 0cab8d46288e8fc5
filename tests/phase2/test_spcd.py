"""Sequential parallel comparison design: period-2 re-randomisation by hand, who is
re-randomised, the period-2 outcome against its closed form, the combination of the periods
(weight 1 is period 1's analysis), and configuration errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import trialsim as ts
from trialsim.designs.spcd import SPCD
from trialsim.errors import ConfigError
from trialsim.phase2 import simulate_phase2

from tests.phase2.test_phase2_oc import BASE


def spcd_study(**design):
    doc = copy.deepcopy(BASE)
    doc["visits_h"] = [24, 168]
    doc["design"] = {"type": "spcd", "allocation": [2, 1, 1, 1, 1], "n_total": 120,
                     "period2_h": 168, "period2_allocation": [1, 1, 1, 1, 1], **design}
    # no between-patient spread of the placebo response (period 2's mean is then exact), and
    # a placebo response large enough (18 points) for some placebo patients to respond
    doc["response"]["efficacy"]["placebo_sd"] = 0.0
    doc["response"]["efficacy"]["placebo_plateau"] = 18.0
    return ts.from_dict(doc)


def test_period2_allocation_by_hand():
    d = SPCD(allocation=(1, 1), n_total=6, period2_h=1.0, period2_allocation=(1, 1))
    u = np.array([[0.1, 0.9, 0.5, 0.6, 0.3, 0.2] + [0.7, 0.2, 0.4, 0.3, 0.9, 0.1]])
    eligible = np.array([[False, True, False, True, True, False]])
    arm2 = d.allocate_period2(u, eligible)
    # period 2's blocks of 2 from the last 6 uniforms: argsort([.7,.2]) -> arms (1, 0),
    # argsort([.4,.3]) -> (1, 0): the eligible patients take 1, 0, 1 in order
    assert arm2.tolist() == [[-1, 1, -1, 0, 1, -1]]


def test_who_is_re_randomised_and_their_outcome():
    s = spcd_study(period2_placebo_factor=0.4)
    a = simulate_phase2(s, 400, seed=3).arrays
    again = a.arm2 >= 0
    assert (a.arm[again] == 0).all()                   # placebo patients only
    assert again.any() and (~again[a.arm == 0]).any()  # ... and not all of them
    # period 2 change at 24 h after the new dose: -(0.4 * 18 (1 - 2^-24)) - 5 d/(0.3 + d),
    # noise SD 3 (period-2 noise is independent of the period-1 selection)
    doses = np.asarray(s.doses)
    for d in range(5):
        y = a.y2[a.arm2 == d]
        y = y[np.isfinite(y)]
        want = -(0.4 * 18.0 * (1 - 2.0 ** -24)) - 5.0 * doses[d] / (0.3 + doses[d])
        assert abs(y.mean() - want) < 4 * 3.0 / np.sqrt(y.size), (d, y.mean(), want)
    # blocks of 5 among the re-randomised, in order
    for t in range(50):
        arms = a.arm2[t][again[t]]
        full = arms[:arms.size // 5 * 5].reshape(-1, 5)
        assert (np.sort(full, axis=1) == np.arange(5)).all()


def test_weight_one_is_the_period1_analysis():
    s = spcd_study(weight=1.0)
    doc = copy.deepcopy(s.config)
    doc["design"] = {"type": "parallel", "allocation": [2, 1, 1, 1, 1], "n_total": 120}
    par = ts.from_dict(doc)
    a = simulate_phase2(s, 150, seed=9).arrays
    b = simulate_phase2(par, 150, seed=9).arrays
    np.testing.assert_array_equal(a.arm, b.arm)
    np.testing.assert_array_equal(a.signal, b.signal)
    np.testing.assert_allclose(a.p_min, b.p_min, atol=1e-12)
    # weight 0.5 uses period 2 too: a different analysis of the same trials
    c = simulate_phase2(spcd_study(weight=0.5), 150, seed=9).arrays
    assert not np.allclose(np.nan_to_num(c.p_min), np.nan_to_num(a.p_min))


def test_period2_time_must_be_a_visit():
    with pytest.raises(ConfigError) as ei:
        spcd_study(period2_h=100)
    assert ei.value.path[:2] == ("design", "period2_h")


def test_level_under_a_flat_truth():
    """No drug effect in either period: the combined test rejects at its level (3,000 trials,
    within 4 MC SEs) — the periods' estimates behave as independent, as the analysis assumes."""
    s = spcd_study()
    doc = copy.deepcopy(s.config)
    doc["response"]["efficacy"]["emax"] = 0.0
    n = 3000
    rate = simulate_phase2(ts.from_dict(doc), n, seed=17).arrays.signal.mean()
    assert abs(rate - 0.025) < 4 * np.sqrt(0.025 * 0.975 / n), rate
