"""The CRM design and the modifiers: decisions on mini-language histories, validation,
batch/single agreement, and the shared max_patients stop."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from tests.designs.lockstep import run_lockstep
from trialsim.analysis import crm as post
from trialsim.designs import (CRM, NO_DOSE, BatchState, DontSkipDoses, StopAtN,
                              StopWhenTooToxic, ThreePlusThree)
from trialsim.designs._common import MAX_PATIENTS_REASON
from trialsim.outcomes import TrialHistory
from trialsim.registry import lookup

SK = [0.05, 0.1, 0.25, 0.4, 0.6]  # the escalation README skeleton, target 0.25


def crm(**kw) -> CRM:
    args = dict(target=0.25, skeleton=SK, max_patients=30)
    args.update(kw)
    return CRM(**args)


def H(text: str, n_doses: int = 5) -> TrialHistory:
    return TrialHistory.parse(text, n_doses)


# ---------------------------------------------------------------------------- the design
def test_first_decision_is_the_start_dose():
    d = crm(start_dose=1).decide(H(""))
    assert d.next_dose == 1 and not d.stop and d.reasons == ("start",)
    assert d.recommended == 2  # prior guess: the skeleton dose closest to 0.25


def test_next_dose_is_closest_to_target_with_plugin_estimate():
    for text in ["1NNN", "1NNN 2NTN", "2NNN 3TTN", "1NNN 2NNN 3NNT 3NNN 4TNT"]:
        n, t, _ = H(text).counts()
        p = post.crm_posterior(n, t, SK).ptox[0]
        best = int(np.argmin(np.abs(p - 0.25)))
        d = crm().decide(H(text))
        assert d.next_dose == best and d.recommended == best and not d.stop


def test_escalation_readme_examples():
    # brockk/escalation README.md, with get_dfcrm(skeleton = SK, target = 0.25) (dfcrm::crm)
    assert crm().decide(H("2NNN")).next_dose == 3  # "skipping straight to dose 4"
    assert DontSkipDoses(crm()).decide(H("2NNN")).next_dose == 2  # dose 3 with dont_skip
    m = StopAtN(crm(), n=15)
    d = m.decide(H("1NNN 2TNN 2NNN 3NNN"))
    assert not d.stop and d.next_dose == 2
    d = m.decide(H("1NNN 2TNN 2NNN 3NNN 3NTN"))
    assert d.stop and d.recommended == 2 and d.next_dose is None
    t = StopWhenTooToxic(crm(), dose=0, threshold=0.35, prob=0.7)
    d = t.decide(H("1NTN"))
    assert not d.stop and d.next_dose == 0
    d = t.decide(H("1NTN 1TTT"))
    assert d.stop and d.recommended is None


def test_reasons_name_the_direction():
    assert crm().decide(H("2NNN")).reasons == (
        "escalate: estimated DLT rate closest to target",)
    assert crm().decide(H("3TTT")).reasons[0].startswith("de-escalate")
    d = crm().decide(H("1NNN 2NTN"))
    assert d.reasons[0].startswith("stay" if d.next_dose == 1 else "escalate")


def test_stops_at_max_patients_with_a_recommendation():
    d = crm(max_patients=6).decide(H("1NNN 2NNN"))
    assert d.stop and d.next_dose is None
    assert d.recommended == crm().decide(H("1NNN 2NNN")).next_dose
    assert d.reasons[-1] == MAX_PATIENTS_REASON
    assert not crm(max_patients=7).decide(H("1NNN 2NNN")).stop


def test_simulated_crm_trials_end_at_max_patients():
    res = run_lockstep(crm(max_patients=20, cohort_size=3), [0.05, 0.1, 0.2, 0.35, 0.5], 2000,
                       np.random.default_rng(5))
    assert (res.n.sum(axis=1) == 20).all()  # last cohort has 2 patients
    assert all(r.endswith(MAX_PATIENTS_REASON) for r in res.reason)
    assert (res.selected >= 0).all()
    assert res.steps == 8  # first decision + 7 cohorts (3*6 + 2)


def test_prob_tox_exceeds_matches_analysis():
    n, t, _ = H("1NNN 2TNT").counts()
    s = BatchState.from_history(H("1NNN 2TNT"))
    np.testing.assert_array_equal(crm().prob_tox_exceeds(s, 0.3),
                                  post.prob_tox_exceeds(n, t, SK, 0.3))
    np.testing.assert_array_equal(crm().posterior(s).mean, post.crm_posterior(n, t, SK).mean)
    with pytest.raises(TypeError, match="no probability model"):
        ThreePlusThree(n_doses=5).prob_tox_exceeds(s, 0.3)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(target=1.0), "target"),
    (dict(target=0.0), "target"),
    (dict(skeleton=[0.1, 0.1, 0.3]),
     "skeleton must be strictly increasing probabilities in (0, 1), got [0.1, 0.1, 0.3]"),
    (dict(skeleton=[0.3, 0.2]), "skeleton must be strictly increasing"),
    (dict(skeleton=[0.0, 0.2]), "skeleton must be strictly increasing"),
    (dict(skeleton=[0.2, 1.0]), "skeleton must be strictly increasing"),
    (dict(skeleton=[]), "skeleton must be strictly increasing"),
    (dict(prior_sd=0.0), "prior_sd"),
    (dict(cohort_size=0), "cohort_size"),
    (dict(max_patients=2), "max_patients must be at least cohort_size (3), got 2"),
    (dict(start_dose=5), "start_dose must be a 0-based index of a skeleton dose (0..4), got 5"),
    (dict(start_dose=-1), "start_dose"),
    (dict(tartget=0.3), "tartget"),
])
def test_crm_validation_names_the_field(kwargs, fragment):
    with pytest.raises(ValidationError) as err:
        crm(**kwargs)
    assert fragment in str(err.value)


def test_registry_and_defaults():
    assert lookup("design", "crm") is CRM
    assert lookup("modifier", "dont_skip_doses") is DontSkipDoses
    assert lookup("modifier", "stop_at_n") is StopAtN
    assert lookup("modifier", "stop_when_too_toxic") is StopWhenTooToxic
    c = crm()
    assert c.prior_sd == pytest.approx(math.sqrt(1.34))
    assert (c.cohort_size, c.start_dose, c.max_patients) == (3, 0, 30)
    assert CRM(**{"target": 0.3, "skeleton": [0.1, 0.3], "max_patients": 12}).skeleton == (
        0.1, 0.3)


# ------------------------------------------------------------------------------ modifiers
def test_modifiers_forward_attributes():
    base = crm(cohort_size=2, max_patients=24, start_dose=1)
    m = StopWhenTooToxic(StopAtN(DontSkipDoses(base), n=12), threshold=0.3, prob=0.9)
    assert (m.cohort_size, m.max_patients, m.start_dose) == (2, 24, 1)
    s = BatchState.from_history(H("2NTN"))
    np.testing.assert_array_equal(m.prob_tox_exceeds(s, 0.3), base.prob_tox_exceeds(s, 0.3))


def test_dont_skip_doses_caps_escalation_only():
    # escalation is capped at highest tried + 1
    assert crm().decide(H("1NNN")).next_dose >= 2
    assert DontSkipDoses(crm()).decide(H("1NNN")).next_dose == 1
    # capped relative to the highest dose tried, not the current one
    d = DontSkipDoses(crm()).decide(H("1NNN 2NNN 3NNN 1NNN"))
    assert d.next_dose == 3
    # de-escalation by several levels is allowed
    text = "2NNN 4TTT"  # from dose 4 down to dose 2
    plain = crm().decide(H(text))
    assert plain.next_dose == 1
    d = DontSkipDoses(crm()).decide(H(text))
    assert d.next_dose == plain.next_dose
    assert d.reasons == plain.reasons
    # the start dose is kept, the recommendation is the parent's
    assert DontSkipDoses(crm(start_dose=3)).decide(H("")).next_dose == 3
    d = DontSkipDoses(crm()).decide(H("2NNN"))
    assert d.recommended == 3 and d.next_dose == 2
    assert d.reasons[-1] == "dont_skip_doses: capped at one level above the highest dose tried"
    # without the modifier the CRM skips from dose 2 to dose 4
    assert crm().decide(H("2NNN")).next_dose == 3


def test_dont_skip_doses_in_simulation_never_skips():
    design = DontSkipDoses(crm(max_patients=24))
    rng = np.random.default_rng(2)
    T, D = 3000, 5
    n = np.zeros((T, D), np.int64)
    tox = np.zeros((T, D), np.int64)
    state = BatchState.empty(T, D)
    for _ in range(8):
        dec = design.decide_batch(state)
        if dec.stop.all():
            break
        highest = state.highest_tried
        go = ~dec.stop
        assert (dec.next_dose[go] <= np.maximum(highest[go] + 1, 0)).all()
        rows = np.flatnonzero(go)
        dlt = rng.binomial(3, np.array([0.02, 0.05, 0.1, 0.2, 0.3])[dec.next_dose[rows]])
        n[rows, dec.next_dose[rows]] += 3
        tox[rows, dec.next_dose[rows]] += dlt
        cur = state.current.copy()
        cur[rows] = dec.next_dose[rows]
        lct = state.last_cohort_tox.copy()
        lct[rows] = dlt
        state = BatchState(n.copy(), tox.copy(), np.zeros_like(n), cur,
                           np.where(cur >= 0, 3, 0), lct)


def test_stop_at_n():
    m = StopAtN(crm(), n=6)
    assert not m.decide(H("1NNN")).stop
    d = m.decide(H("1NNN 2NNN"))
    assert d.stop and d.recommended == crm().decide(H("1NNN 2NNN")).recommended
    assert d.reasons[-1] == "stop: 6 patients reached"
    # parent stop reasons are not duplicated
    d = StopAtN(crm(max_patients=6), n=6).decide(H("1NNN 2NNN"))
    assert d.reasons[-1] == MAX_PATIENTS_REASON and len(d.reasons) == 2
    with pytest.raises(ValidationError, match="n"):
        StopAtN(crm(), n=0)


HIGH = [0.3, 0.4, 0.5, 0.6, 0.7]


def test_stop_when_too_toxic_fires_on_toxic_data_only():
    base = crm(skeleton=HIGH, target=0.3)
    m = StopWhenTooToxic(base, threshold=0.35, prob=0.8)
    s = BatchState.from_history(H("1TTT"))
    assert base.prob_tox_exceeds(s, 0.35)[0, 0] > 0.8
    d = m.decide(H("1TTT"))
    assert d.stop and d.next_dose is None and d.recommended is None
    assert d.reasons[-1] == "stop: P(tox at dose 1 > 0.35) > 0.8"
    assert d.admissible == (False,) * 5
    s = BatchState.from_history(H("1NNN"))
    assert base.prob_tox_exceeds(s, 0.35)[0, 0] < 0.8
    d = m.decide(H("1NNN"))
    assert not d.stop and d.next_dose is not None
    # no data: never evaluated
    assert not m.decide(H("")).stop


def test_stop_when_too_toxic_evaluates_with_any_data_and_other_doses():
    # data only at dose 3 still informs dose 1 through the model
    m = StopWhenTooToxic(crm(skeleton=HIGH, target=0.3), threshold=0.35, prob=0.8)
    assert m.decide(H("3TTT")).stop
    # a reference dose above the lowest
    m2 = StopWhenTooToxic(crm(skeleton=HIGH, target=0.3), dose=2, threshold=0.6, prob=0.5)
    d = m2.decide(H("1NTN 2TTN"))
    p = crm(skeleton=HIGH, target=0.3).prob_tox_exceeds(
        BatchState.from_history(H("1NTN 2TTN")), 0.6)[0, 2]
    assert d.stop == (p > 0.5)
    with pytest.raises(ValueError, match="dose index below 5"):
        StopWhenTooToxic(crm(), dose=5, threshold=0.3, prob=0.5).decide(H("1NNN"))


def test_stop_when_too_toxic_overrides_the_final_selection():
    base = crm(skeleton=HIGH, target=0.3, max_patients=6)
    final = base.decide(H("1TTT 1TTN"))
    assert final.stop and final.recommended == 0
    d = StopWhenTooToxic(base, threshold=0.35, prob=0.8).decide(H("1TTT 1TTN"))
    assert d.stop and d.recommended is None
    assert d.reasons[-2:] == (MAX_PATIENTS_REASON, "stop: P(tox at dose 1 > 0.35) > 0.8")


def test_modifier_validation():
    with pytest.raises(ValidationError, match="threshold"):
        StopWhenTooToxic(crm(), threshold=1.5, prob=0.9)
    with pytest.raises(ValidationError, match="prob"):
        StopWhenTooToxic(crm(), threshold=0.3, prob=0.0)
    with pytest.raises(ValidationError, match="parent"):
        StopAtN(parent="crm", n=3)
    with pytest.raises(ValidationError, match="extra"):
        DontSkipDoses(crm(), extra=1)


def test_modifiers_on_three_plus_three():
    m = StopAtN(ThreePlusThree(n_doses=5), n=6)
    d = m.decide(H("1NNN 2NNN"))
    assert d.stop and d.recommended == 1
    # refused when built (so `trialsim validate` reports it), not when first used
    with pytest.raises(ValueError, match="toxicity model"):
        StopWhenTooToxic(ThreePlusThree(n_doses=5), threshold=0.3, prob=0.9)


# ------------------------------------------------------ batch vs single-trial agreement
def _random_states(rng, T, D, cohort=3):
    n = rng.integers(0, 4, size=(T, D)) * cohort * rng.integers(0, 2, size=(T, D))
    n[0] = 0
    tox = rng.binomial(n, 0.3)
    tried = n > 0
    cur = np.where(tried.any(axis=1), np.argmax(tried * rng.random((T, D)), axis=1), NO_DOSE)
    lcn = np.where(cur >= 0, cohort, 0)
    lct = np.where(cur >= 0, np.minimum(tox[np.arange(T), np.maximum(cur, 0)], cohort), 0)
    return BatchState(n, tox, np.zeros_like(n), cur.astype(np.int64), lcn, lct)


def _history_of(state: BatchState, i: int) -> TrialHistory:
    """A history with the counts of trial i whose last cohort is at the current dose."""
    D = state.n_doses
    h = TrialHistory(D)
    order = [d for d in range(D) if d != state.current[i]] + (
        [int(state.current[i])] if state.current[i] >= 0 else [])
    for d in order:
        k, t = int(state.n[i, d]), int(state.tox[i, d])
        if k:
            h = h.add_cohort(d, [True] * t + [False] * (k - t))
    return h


DESIGNS = [
    crm(),
    crm(max_patients=9),
    DontSkipDoses(crm(start_dose=2)),
    StopAtN(DontSkipDoses(crm()), n=12),
    StopWhenTooToxic(DontSkipDoses(crm(skeleton=HIGH, target=0.3)), threshold=0.35, prob=0.7),
    DontSkipDoses(StopWhenTooToxic(crm(), dose=1, threshold=0.3, prob=0.6)),
]


@pytest.mark.parametrize("design", DESIGNS)
def test_decide_agrees_with_decide_batch(design):
    rng = np.random.default_rng(42)
    state = _random_states(rng, 150, 5)
    batch = design.decide_batch(state)
    assert batch.reason.dtype.kind == "U"
    assert batch.next_dose.dtype == np.int64 and batch.recommended.dtype == np.int64
    assert batch.stop.dtype == bool and batch.admissible.shape == (150, 5)
    assert (batch.next_dose[batch.stop] == NO_DOSE).all()
    for i in range(150):
        single = design.decide(_history_of(state, i))
        assert single == batch.item(i), i
        assert design.decide_batch(state.subset(np.array([i]))).item(0) == batch.item(i)


def test_dont_skip_doses_relative_to_highest_tried_or_current():
    """After doses 1, 2, 3 and back to 1 the CRM wants dose 5: capped at 4 (one above the
    highest tried) or at 2 (one above the current dose, as dfcrm's restrict = TRUE)."""
    h = "1NNN 2NNN 3NNN 1NNN"
    assert crm().decide(H(h)).next_dose == 4
    assert DontSkipDoses(crm()).decide(H(h)).next_dose == 3
    d = DontSkipDoses(crm(), relative_to="current").decide(H(h))
    assert d.next_dose == 1 and d.recommended == 4
    assert d.reasons[-1] == "dont_skip_doses: capped at one level above the current dose"


def test_coherent_escalation_holds_after_a_toxic_cohort():
    """1 DLT in the last cohort of 3 (1/3 >= 0.25): the CRM's escalation from dose 2 to 4 is
    held at dose 2; the recommendation is untouched; a cohort below the target does not hold."""
    from trialsim.designs import CoherentEscalation

    h = "3NNN 3NNN 3NNN 2TNN"
    assert crm().decide(H(h)).next_dose == 3
    d = CoherentEscalation(crm()).decide(H(h))
    assert d.next_dose == 1 and d.recommended == 3 and d.reasons[-1].startswith("coherent")
    assert CoherentEscalation(crm(), threshold=0.4).decide(H(h)).next_dose == 3   # 1/3 < 0.4
    with pytest.raises(ValueError, match="needs a threshold"):
        CoherentEscalation(ThreePlusThree(n_doses=5))
    assert CoherentEscalation(ThreePlusThree(n_doses=5), threshold=0.3).decide(
        H("1NNN 1TNN")).next_dose == 0     # 3+3 escalates after 1/6; the last cohort had 1/3


def test_cohort_sizes_single_patients_until_the_first_dlt():
    from trialsim.designs import CohortSizes

    m = CohortSizes(crm(), initial=1)
    assert m.decide(H("")).cohort_size == 1
    assert m.decide(H("1N 2N 3N")).cohort_size == 1
    d = m.decide(H("1N 2N 3T"))
    assert d.cohort_size == 3 and d.next_dose == crm().decide(H("1N 2N 3T")).next_dose
    with pytest.raises(ValueError, match="cannot change the cohorts"):
        CohortSizes(ThreePlusThree(n_doses=5))


def test_cohort_sizes_in_simulation():
    """With single patients until the first DLT, trials with no DLT at all have cohorts of one
    throughout, and every trial still stops at max_patients."""
    import trialsim as ts

    study = ts.from_dict({"doses": [1, 2, 3, 4, 5], "truth": {"tox": [0.001, 0.002, 0.003,
                                                                       0.005, 0.01]},
                          "design": {"type": "boin", "target": 0.3, "max_patients": 24,
                                     "modifiers": [{"type": "cohort_sizes", "initial": 1}]}})
    sims = ts.simulate(study, n_trials=500, seed=4)
    a = sims.arrays
    assert (a.n.sum(axis=1) == 24).all()
    no_dlt = a.tox.sum(axis=1) == 0
    assert no_dlt.any()
    assert (a.patient_cohort[no_dlt].max(axis=1) == 23).all()       # 24 cohorts of one


@pytest.mark.parametrize("variant", [{}, {"model": "logistic"},
                                     {"method": "likelihood", "startup": (3, 3, 3, 3, 3)},
                                     {"model": "logistic", "method": "likelihood",
                                      "startup": (1, 1, 1, 1, 1)}])
def test_one_more_dlt_never_raises_the_crm_next_dose(variant):
    """Coherence of the one-parameter model (Cheung 2005): turning one patient's outcome into a
    DLT raises every plug-in estimate, so the next dose never goes up (hypothesis, 300 states).
    Power and logistic models, Bayesian and likelihood estimates; for a start-up design the
    property is the model's, so states before the first DLT are left out (whether a start-up
    sequence is coherent is a property of the sequence: Cheung 2005, dfcrm's ``cohere``)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(st.integers(0, 9), min_size=5, max_size=5),
           st.lists(st.integers(0, 9), min_size=5, max_size=5), st.integers(0, 4))
    def check(ns, ys, where):
        n = np.array(ns, np.int64)
        y = np.minimum(np.array(ys, np.int64), n)
        if n.sum() == 0 or y[where] >= n[where] or ("startup" in variant and y.sum() == 0):
            return
        more = y.copy()
        more[where] += 1
        one = lambda v: np.array([v], np.int64)  # noqa: E731
        cur = int(np.flatnonzero(n)[-1])
        design = crm(max_patients=100, **variant)
        before = design.decide_batch(BatchState(n[None], y[None], np.zeros((1, 5), np.int64),
                                                one(cur), one(3), one(0)))
        after = design.decide_batch(BatchState(n[None], more[None], np.zeros((1, 5), np.int64),
                                               one(cur), one(3), one(0)))
        assert after.next_dose[0] <= before.next_dose[0]
        assert after.recommended[0] <= before.recommended[0]

    check()
