"""Safety endpoints of phase II studies and the rules that take a dose forward: the measure
against its closed form, events and resolution on hand-made series, event rates of the
simulation and of the truth against the normal probability they must equal, the dropout
hazard of patients with an event, both decision rules on hand-computed cases, the truth's
choice by the same function, and configuration errors naming their YAML path."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy.stats import norm

import trialsim as ts
from trialsim.errors import ConfigError
from trialsim.phase2 import phase2_truth, simulate_phase2
from trialsim.phase2.decision import take_forward, utility
from trialsim.phase2.safety import arm_rates
from trialsim.phase2.study import Decision
from trialsim.phase2.truth import N_TRUTH
from trialsim.response.safety import SafetyMeasure

from tests.phase2.test_phase2_oc import BASE

# One-compartment IV bolus without variability: C(t) = 1000 dose/V exp(-CL/V t) ng/mL
CL, V = 10.0, 20.0


def conc(dose, t):
    return 1000.0 * np.asarray(dose, float) / V * np.exp(-CL / V * t)


def study(safety, decision=None, dropout=None, **extra):
    doc = copy.deepcopy(BASE)
    doc["pk"] = {"structure": "mammillary", "CL": CL, "V1": V, "route": {"type": "bolus"},
                 "allometry": False, "horizon_h": 24}
    doc["safety"] = safety
    if decision is not None:
        doc["decision"] = decision
    if dropout is not None:
        doc["dropout"] = dropout
    doc.update(extra)
    return ts.from_dict(doc)


def test_measure_matches_its_closed_form():
    m = SafetyMeasure(emax=12.0, ec50=40.0, hill=2.0, omega=0.3, placebo_mean=1.0,
                      placebo_sd=2.0, residual_sd=0.5, threshold=5.0, times_h=(0.5, 1.0, 2.0),
                      baseline="b")
    c = np.array([[0.0, 20.0, 80.0], [10.0, 40.0, 0.0]])
    z = np.array([[0.5, -1.0, 0.1, 0.2, 0.3], [-2.0, 0.0, 0.0, -0.4, 1.0]])
    b = np.array([100.0, 120.0])
    got = m.values(c, z, b)
    for i in range(2):
        for j in range(3):
            e = 12.0 * math.exp(0.3 * z[i, 0]) * c[i, j] ** 2 / (40.0 ** 2 + c[i, j] ** 2)
            want = b[i] + 1.0 + 2.0 * z[i, 1] + e + 0.5 * z[i, 2 + j]
            assert got[i, j] == pytest.approx(want, rel=1e-14)
    assert m.n_z == 5
    assert m.metric_names() == ("ce_at:0.5", "ce_at:1.0", "ce_at:2.0")


@pytest.mark.parametrize("series,event,peak,resolved", [
    ([1, 2, 3, 2], False, 3, math.nan),               # never at the threshold
    ([1, 5, 6, 2], True, 6, 2.0),                     # resolved at the 4th assessment (2 h)
    ([5, 1, 5, 1], True, 5, 2.0),                     # the LAST episode's end counts
    ([1, 2, 5, 7], True, 7, math.inf),                # still above at the last assessment
    ([5, 4.99, 4.99, 4.99], True, 5, 0.5),            # at the threshold is an event
])
def test_event_peak_and_resolution(series, event, peak, resolved):
    m = SafetyMeasure(emax=1.0, ec50=1.0, threshold=5.0, times_h=(0.25, 0.5, 1.0, 2.0))
    e, p, r = m.summarise(np.array([series], float))
    assert bool(e[0]) is event and p[0] == peak
    if math.isnan(resolved):
        assert math.isnan(r[0])
    else:
        assert r[0] == resolved


def test_event_rates_equal_the_normal_probability():
    """One assessment at 1 h, no spread but the residual: P(event | dose) =
    1 - Phi((threshold - placebo - E(C)) / sd), for the truth (N_TRUTH patients) and for the
    mean of the simulated trials' arm rates (within 4 MC SEs)."""
    sd, thr = 2.0, 5.0
    s = study({"tox": {"emax": 10, "ec50": 20, "threshold": thr, "times_h": [1.0],
                       "exposure": "c", "residual_sd": sd, "placebo_mean": 0.5}})
    d = np.asarray(s.doses, float)
    c = conc(d, 1.0)
    p = 1 - norm.cdf((thr - 0.5 - 10 * c / (20 + c)) / sd)
    tr = phase2_truth(s, seed=3)
    assert (np.abs(tr.event_rate[0] - p) <= 4 * np.sqrt(p * (1 - p) / N_TRUTH) + 1e-12).all()
    n = 400
    a = simulate_phase2(s, n, seed=9).arrays
    rate = a.event_rate[:, 0].mean(axis=0)
    se = np.sqrt(p * (1 - p) / (n * 20))
    assert (np.abs(rate - p) <= 4 * se).all(), (rate, p)
    # the per-arm rates are those of the patients table
    np.testing.assert_array_equal(a.event_rate, arm_rates(a.event, a.arm, 5))
    k = (a.arm[3] == 2)
    assert a.event_rate[3, 0, 2] == a.event[3, k, 0].mean()


def test_simulation_and_truth_are_reproducible_and_batch_invariant():
    s = study({"tox": {"emax": 10, "ec50": 20, "threshold": 4.0, "times_h": [0.5, 1.0, 3.0],
                       "exposure": "c", "residual_sd": 1.0, "omega": 0.5,
                       "placebo_sd": 1.0}})
    a = simulate_phase2(s, 150, seed=8).arrays
    b = simulate_phase2(s, 150, seed=8, batch_size=41).arrays
    for f in ("event", "peak", "resolved_h", "event_rate", "forward"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    # the safety stream is its own: efficacy outcomes do not change when safety is added
    plain = simulate_phase2(ts.from_dict(copy.deepcopy(BASE)), 150, seed=8).arrays
    np.testing.assert_array_equal(plain.y, a.y)
    np.testing.assert_array_equal(plain.arm, a.arm)


def test_adverse_events_raise_the_dropout_hazard():
    """Every patient on the top dose has the event (deterministic), none on placebo; with a
    hazard ratio of 4 the top arm loses 1 - exp(-4 r 24/168) by 24 h, placebo 1 - exp(-r 24/168)."""
    r = 1.0
    s = study({"tox": {"emax": 10, "ec50": 20, "threshold": 4.0, "times_h": [1.0],
                       "exposure": "c"}},
              dropout={"rate_per_week": r, "adverse_event_hazard_ratio": {"tox": 4.0}})
    a = simulate_phase2(s, 500, seed=2).arrays
    assert a.event[a.arm == 4].all() and not a.event[a.arm == 0].any()
    for d, hr in ((0, 1.0), (4, 4.0)):
        lost = ~np.isfinite(a.y[a.arm == d])
        want = 1 - math.exp(-hr * r * 24 / 168)
        assert abs(lost.mean() - want) < 4 * math.sqrt(want * (1 - want) / lost.size), d


DOSES = np.array([0.0, 1.0, 2.0, 4.0])


def test_target_dose_rule_with_safety_limits():
    dec = Decision(type="target_dose", safety_limits={"tox": 0.3})
    td = np.array([0.5, 1.5, 1.5, np.nan, 5.0, 1.0])
    signal = np.array([True, True, True, True, True, False])
    rates = np.array([[0, .1, .2, .5]] * 6, float)
    rates[2, 2] = 0.31                             # the chosen dose (2) is too toxic: no-go
    got = take_forward(dec, DOSES, signal, td, np.zeros((6, 4)), {"tox": rates}, 1.0)
    assert got.tolist() == [1, 2, -1, -1, -1, -1]
    # without limits the same trials
    got = take_forward(Decision(), DOSES, signal, td, np.zeros((6, 4)), {}, 1.0)
    assert got.tolist() == [1, 2, 2, -1, -1, -1]


def test_utility_rule_by_hand():
    dec = Decision(type="utility", utility_weights={"tox": 2.0}, cap=1.0, min_utility=0.1,
                   safety_limits={"tox": 0.45})
    effect = np.array([[0, 2, 4, 6], [0, 2, 4, 6], [0, 0.2, 0.3, 0.4], [0, 2, 4, 6]], float)
    tox = np.array([[0, .05, .1, .2], [0, .05, .3, .44], [0, 0, 0, 0], [0, .3, .5, .6]])
    sig = np.array([True, True, True, False])
    u = utility(dec, effect, {"tox": tox}, 4.0)
    # trial 0: min(E/4, 1) - 2 tox = [0, .4, .8, .6]; trial 1: [0, .4, .4, .12]
    np.testing.assert_allclose(u[0], [0, 0.4, 0.8, 0.6])
    np.testing.assert_allclose(u[1], [0, 0.4, 0.4, 0.12])
    got = take_forward(dec, DOSES, sig, np.zeros(4), effect, {"tox": tox}, 4.0)
    # 0: dose 2; 1: tie -> the lower dose; 2: best U 0.1 is not above 0.1; 3: no signal
    assert got.tolist() == [2, 1, -1, -1]


def test_truth_takes_forward_by_the_same_rule():
    """A steep toxicity makes the doses at and above 0.5 mg unacceptable: the true TD (0.2
    mg, see test_phase2_oc) still points at 0.25 mg; a limit on 0.25 mg makes the truth no-go,
    and the simulated trials mostly follow."""
    tox = {"tox": {"emax": 10, "ec50": 10, "threshold": 4.5, "times_h": [1.0],
                   "exposure": "c", "residual_sd": 1.0}}
    s = study(tox, decision={"safety_limits": {"tox": 0.5}})
    tr = phase2_truth(s, seed=1)
    c = conc(np.asarray(s.doses, float), 1.0)
    p = 1 - norm.cdf((4.5 - 10 * c / (10 + c)) / 1.0)
    np.testing.assert_allclose(tr.event_rate[0], p, atol=0.01)
    assert p[1] < 0.5 < p[2]
    assert tr.forward == 1
    strict = study(tox, decision={"safety_limits": {"tox": p[1] / 2}})
    assert phase2_truth(strict, seed=1).forward == -1
    sims = simulate_phase2(strict, 200, seed=4)
    assert (sims.arrays.forward == -1).mean() > 0.9
    summary = sims.summary()
    assert summary.loc[1, "tox_true_pct"] == pytest.approx(100 * sims.truth.event_rate[0, 1])
    assert "tox_event" in sims.patients.columns


@pytest.mark.parametrize("change,path,words", [
    ({"decision": {"safety_limits": {"nausea": 0.2}}}, ("decision",), "not a safety measure"),
    ({"decision": {"utility_weights": {"tox": 1}}}, ("decision",), "type: utility"),
    ({"dropout": {"adverse_event_hazard_ratio": {"nausea": 2}}}, ("dropout",),
     "not a safety measure"),
    ({"safety": {"tox": {"emax": 1, "ec50": 1, "threshold": 1, "times_h": [2, 1]}}},
     ("safety", "tox"), "increase"),
    ({"safety": {"tox": {"emax": 1, "ec50": 1, "threshold": 1, "times_h": [1],
                         "baseline": "sbp"}}}, ("safety", "tox"), "sbp"),
    ({"safety": {"bad name": {"emax": 1, "ec50": 1, "threshold": 1, "times_h": [1]}}},
     ("safety",), "name"),
    ({"safety": [1, 2]}, ("safety",), "mapping"),
])
def test_safety_config_errors_name_the_path(change, path, words):
    safety = {"tox": {"emax": 10, "ec50": 20, "threshold": 4.0, "times_h": [1.0],
                      "exposure": "c"}}
    kw = dict(change)
    with pytest.raises(ConfigError) as ei:
        study(kw.pop("safety", safety), **kw)
    errs = getattr(ei.value, "errors", [ei.value])
    assert any(tuple(e.path[:len(path)]) == path and words in str(e) for e in errs), \
        [(e.path, str(e)) for e in errs]


def test_safety_needs_pk():
    doc = copy.deepcopy(BASE)
    doc["safety"] = {"tox": {"emax": 10, "ec50": 20, "threshold": 4.0, "times_h": [1.0]}}
    with pytest.raises(ConfigError) as ei:
        ts.from_dict(doc)
    assert "pk" in str(ei.value)
