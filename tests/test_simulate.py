"""Reproducibility, chunk invariance, and the tables of Simulations."""
import copy

import numpy as np
import pandas as pd
import pytest

import trialsim as ts
from trialsim.errors import ConfigError
from trialsim.results import true_mtd
from trialsim.simulate import fully_informed_selection

from tests.test_config import GOOD

THREE = {"doses": [1, 2, 3, 4, 5], "target": 0.3, "truth": {"tox": [0.05, 0.10, 0.30, 0.45, 0.60]},
         "design": {"type": "three_plus_three"}}


@pytest.fixture(scope="module", params=["crm", "3+3"])
def study(request):
    return ts.from_dict(GOOD if request.param == "crm" else THREE)


def frames(sims):
    return sims.trials, sims.patients


def test_same_seed_same_results(study):
    a, b = ts.simulate(study, 300, seed=11), ts.simulate(study, 300, seed=11)
    pd.testing.assert_frame_equal(a.trials, b.trials)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    c = ts.simulate(study, 300, seed=12)
    assert not c.trials.equals(a.trials)


def test_chunk_invariance(study):
    """1,000 trials in one call == four calls of 250 == batches of 97."""
    whole = ts.simulate(study, 1000, seed=5)
    parts = [ts.simulate(study, 250, seed=5, first_trial=k) for k in range(0, 1000, 250)]
    glued = pd.concat([p.trials for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(whole.trials, glued)
    glued_p = pd.concat([p.patients for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(whole.patients, glued_p)
    small = ts.simulate(study, 1000, seed=5, batch_size=97)
    pd.testing.assert_frame_equal(whole.trials, small.trials)


def test_tables_are_consistent(study):
    sims = ts.simulate(study, 400, seed=2)
    t, p = sims.trials, sims.patients
    assert (p.groupby("trial").size().values == t.n_patients.values).all()
    assert (p.groupby("trial").tox.sum().values == t.n_dlt.values).all()
    s = sims.summary()
    assert list(s.columns[:7]) == ["dose", "true_tox", "selected_pct", "selected_se", "benchmark_pct",
                                   "benchmark_se", "patients_mean"]
    assert s.selected_pct.sum() == pytest.approx(100)
    assert s.patients_mean.sum() == pytest.approx(t.n_patients.mean())
    assert s.dose.iloc[-1] == "none"
    m = sims.metrics().set_index("metric")
    assert m.loc["patients_mean", "value"] == pytest.approx(t.n_patients.mean())


def test_fully_informed_benchmark():
    tox = np.zeros((1, 10, 3), bool)
    tox[0, :3, 1] = True   # 30% at dose 2
    tox[0, :6, 2] = True   # 60% at dose 3
    assert fully_informed_selection(tox, 0.3)[0] == 1
    assert fully_informed_selection(tox, 0.05)[0] == 0


@pytest.mark.parametrize("n, k_low, k_high", [(20, 3, 5), (30, 5, 7), (10, 1, 3)])
def test_a_tie_goes_to_the_lower_dose_whatever_the_rounding(n, k_low, k_high):
    """Rates k/n equally far from 0.2 on either side are a tie, though their distances differ
    in the last bit of a double (|0.15 - 0.2| > |0.25 - 0.2| in floating point)."""
    tox = np.zeros((1, n, 2), bool)
    tox[0, :k_low, 0] = True
    tox[0, :k_high, 1] = True
    assert fully_informed_selection(tox, 0.2)[0] == 0
    assert true_mtd([0.02, 0.05, 0.10, 0.15, 0.25], 0.2) == 3
    assert true_mtd([0.05, 0.1, 0.3, 0.5], 0.2) == 1
    assert true_mtd([0.05, 0.1, 0.3, 0.5], 0.3) == 2


def test_the_benchmark_has_the_trial_size_the_design_plans():
    """A CRM of 18 patients, and CRMs of max_patients 30 and 60 stopped at 18 by stop_at_n,
    treat and select alike: their benchmark is one, on 18 patients each (it was on 30 and 60:
    66.7, 77.1 and 89.7 % correct in a QA run)."""
    doc = {"doses": [1, 2, 3, 4, 5], "target": 0.3,
           "truth": {"tox": [0.05, 0.10, 0.30, 0.45, 0.60]},
           "design": {"type": "crm", "target": 0.3, "skeleton": [0.05, 0.12, 0.25, 0.40, 0.55],
                      "max_patients": 18}}
    runs = []
    for cap, n in ((18, None), (30, 18), (60, 18)):
        d = copy.deepcopy(doc)
        d["design"]["max_patients"] = cap
        if n is not None:
            d["design"]["modifiers"] = [{"type": "stop_at_n", "n": n}]
        study = ts.from_dict(d)
        assert study.design.planned_patients == 18
        runs.append(ts.simulate(study, 300, seed=4).arrays)
    for r in runs[1:]:
        np.testing.assert_array_equal(r.selected, runs[0].selected)
        np.testing.assert_array_equal(r.benchmark, runs[0].benchmark)


def test_stop_at_n_cuts_the_last_cohort_as_max_patients_does():
    """n = 10 with cohorts of 3: the trials treat 10 patients (they treated 12, and the
    benchmark was on 10) and run exactly as a CRM of max_patients 10; a 3+3 keeps whole
    cohorts, so there n must be a multiple of 3."""
    doc = {"doses": [1, 2, 3, 4, 5], "target": 0.3,
           "truth": {"tox": [0.02, 0.04, 0.06, 0.08, 0.10]},
           "design": {"type": "crm", "target": 0.3, "skeleton": [0.05, 0.12, 0.25, 0.40, 0.55],
                      "max_patients": 10}}
    capped = ts.simulate(ts.from_dict(doc), 200, seed=4)
    doc["design"] = {**doc["design"], "max_patients": 30,
                     "modifiers": [{"type": "stop_at_n", "n": 10}]}
    stopped = ts.simulate(ts.from_dict(doc), 200, seed=4)
    assert (stopped.arrays.n.sum(axis=1) == 10).all()
    for k in ("n", "tox", "selected", "benchmark"):
        np.testing.assert_array_equal(getattr(stopped.arrays, k), getattr(capped.arrays, k))
    doc["design"] = {"type": "three_plus_three", "modifiers": [{"type": "stop_at_n", "n": 10}]}
    with pytest.raises(ConfigError, match="multiple of cohort_size"):
        ts.from_dict(doc)
    # accelerated titration's cohorts of 1, 2 and 3 went past n (7 or 8 patients for n = 6)
    doc["design"]["type"] = "accelerated_titration"
    doc["design"]["modifiers"][0]["n"] = 6
    with pytest.raises(ConfigError, match="cannot stop at exactly 6 patients"):
        ts.from_dict(doc)


def test_crn_same_patients_across_designs():
    """Two designs on the same scenario and seed see the same potential outcomes."""
    a = ts.from_dict(GOOD)
    b = ts.from_dict(THREE)
    sa, sb = ts.simulate(a, 200, seed=9), ts.simulate(b, 200, seed=9)
    np.testing.assert_array_equal(sa.arrays.benchmark, sb.arrays.benchmark)


def test_early_stop_metric_counts_only_early_stops():
    safe = ts.from_dict(GOOD)
    m = ts.simulate(safe, 200, seed=1).metrics().set_index("metric")
    assert m.loc["stopped_before_max_pct", "value"] == 0  # plain CRM always runs to 30
    toxic = ts.from_dict({**GOOD, "truth": {"tox": [0.5, 0.6, 0.7, 0.8, 0.9]},
                          "design": {**GOOD["design"], "modifiers": [
                              {"type": "stop_when_too_toxic", "threshold": 0.3, "prob": 0.8}]}})
    sims = ts.simulate(toxic, 400, seed=1)
    m = sims.metrics().set_index("metric")
    early = (sims.trials.n_patients < 30).mean() * 100
    assert m.loc["stopped_before_max_pct", "value"] == pytest.approx(early)
    assert early > 50
    assert m.loc["no_selection_pct", "value"] >= early
    # stop_at_n reaches the planned size; a 3+3 ends by its own rules (it counted 100 % early)
    at_n = ts.from_dict({**GOOD, "design": {**GOOD["design"], "modifiers": [
        {"type": "stop_at_n", "n": 18}]}})
    m = ts.simulate(at_n, 100, seed=1).metrics().set_index("metric")
    assert m.loc["stopped_before_max_pct", "value"] == 0
    m = ts.simulate(ts.from_dict(THREE), 200, seed=1).metrics().set_index("metric")
    assert m.loc["stopped_before_max_pct", "value"] == 0
    # with de-escalation, confirming the MTD is the design's end too (it counted 71 % early)
    down = {**THREE, "design": {**THREE["design"], "deescalate": True}}
    sims = ts.simulate(ts.from_dict(down), 300, seed=1)
    assert "mtd_confirmed" in set(sims.arrays.stop_code)
    assert sims.metrics().set_index("metric").loc["stopped_before_max_pct", "value"] == 0


def test_designs_see_the_joint_efficacy_toxicity_counts(monkeypatch):
    """The state given to a design counts, per dose, patients with both a DLT and a response,
    as the patient records say (and ``from_history`` counts them too)."""
    from trialsim.designs import BatchState
    from trialsim.designs.interval import BOIN
    from trialsim.outcomes import TrialHistory

    seen = []
    original = BOIN.decide_batch

    def spy(self, state):
        seen.append(state)
        return original(self, state)

    monkeypatch.setattr(BOIN, "decide_batch", spy)
    study = ts.from_dict({"doses": [1, 2, 3], "truth": {"tox": [0.3, 0.5, 0.7],
                                                       "eff": [0.4, 0.6, 0.8]},
                          "design": {"type": "boin", "target": 0.3, "max_patients": 12}})
    a = ts.simulate(study, n_trials=200, seed=3).arrays
    # the second batch decision: every trial after its first cohort (3 patients at dose 1)
    after_first = [s for s in seen if s.n_trials == 200][1]
    first = (a.patient_tox & a.patient_eff)[:, :3].sum(axis=1)
    np.testing.assert_array_equal(after_first.eff_tox[:, 0], first)
    assert first.sum() > 0
    for s in seen:
        assert (s.eff_tox <= np.minimum(s.tox, s.eff)).all()
    h = TrialHistory.parse("1NB 2TEB", 3)
    np.testing.assert_array_equal(BatchState.from_history(h).eff_tox[0], [1, 1, 0])
