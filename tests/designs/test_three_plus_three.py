"""3+3 without de-escalation: rules on mini-language histories, validation, the exact
enumeration helper against hand algebra, and the design against the exact enumeration by
Monte Carlo."""
from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
from pydantic import ValidationError

import trialsim as ts
from tests.designs.lockstep import run_lockstep
from tests.helpers.oc_compare import assert_matches_exact
from tests.helpers.three_plus_three_exact import exact_three_plus_three
from trialsim.designs import NO_DOSE, BatchState, ThreePlusThree
from trialsim.designs.three_plus_three import (ESCALATE_0_OF_3, ESCALATE_1_OF_6, START,
                                               STAY_1_OF_3, STAY_TOP, STOP_TOP, STOP_TOXIC)
from trialsim.outcomes import TrialHistory
from trialsim.registry import lookup


def decide(text: str, n_doses: int = 5, start_dose: int = 0):
    design = ThreePlusThree(n_doses=n_doses, start_dose=start_dose)
    return design.decide(TrialHistory.parse(text, n_doses=n_doses))


# ---------------------------------------------------------------------------------- rules
# (history, next dose (1-based, None = stop), selected/recommended dose (1-based or None),
#  reason)
CASES = [
    ("", 1, None, START),
    ("1NNN", 2, 1, ESCALATE_0_OF_3),
    ("1NTN", 1, None, STAY_1_OF_3),
    ("1TNN", 1, None, STAY_1_OF_3),
    ("1NTN 1NNN", 2, 1, ESCALATE_1_OF_6),
    ("1NTN 1NNT", None, None, STOP_TOXIC),
    ("1NTN 1TTT", None, None, STOP_TOXIC),
    ("1TTN", None, None, STOP_TOXIC),
    ("1TTT", None, None, STOP_TOXIC),
    ("1NNN 2NTN", 2, 1, STAY_1_OF_3),
    ("1NNN 2NTN 2NNN", 3, 2, ESCALATE_1_OF_6),
    ("1NNN 2NTN 2NTN", None, 1, STOP_TOXIC),
    ("1NNN 2TTN", None, 1, STOP_TOXIC),
    ("1NNN 2NNN 3TNT", None, 2, STOP_TOXIC),
    ("1NNN 2NNN 3NNN 4NNN", 5, 4, ESCALATE_0_OF_3),
    ("1NNN 2NNN 3NNN 4NNN 5NNN", 5, 5, STAY_TOP),
    ("1NNN 2NNN 3NNN 4NNN 5NNN 5NNN", None, 5, STOP_TOP),
    ("1NNN 2NNN 3NNN 4NNN 5NNN 5NTN", None, 5, STOP_TOP),
    ("1NNN 2NNN 3NNN 4NNN 5NNN 5TTN", None, 4, STOP_TOXIC),
    ("1NNN 2NNN 3NNN 4NNN 5NTN", 5, 4, STAY_1_OF_3),
    ("1NNN 2NNN 3NNN 4NNN 5NTN 5NNN", None, 5, STOP_TOP),
    ("1NNN 2NNN 3NNN 4NNN 5NTN 5NTN", None, 4, STOP_TOXIC),
    ("1NNN 2NNN 3NNN 4NNN 5TTT", None, 4, STOP_TOXIC),
]


@pytest.mark.parametrize("text, next_dose, selected, reason", CASES)
def test_rules_on_histories(text, next_dose, selected, reason):
    d = decide(text)
    assert d.stop == (next_dose is None)
    assert d.next_dose == (None if next_dose is None else next_dose - 1)
    assert d.recommended == (None if selected is None else selected - 1)
    assert d.reasons == (reason,)


def test_one_dose_design():
    assert decide("", n_doses=1).next_dose == 0
    assert decide("1NNN", n_doses=1).reasons == (STAY_TOP,)
    assert decide("1NNN 1NNT", n_doses=1).recommended == 0
    d = decide("1NTN 1TNN", n_doses=1)
    assert d.stop and d.recommended is None


def test_start_dose_above_the_lowest():
    assert decide("", start_dose=2).next_dose == 2
    assert decide("3NNN", start_dose=2).next_dose == 3
    # stopping for toxicity at the starting dose selects no dose (the dose below is untried)
    d = decide("3TTN", start_dose=2)
    assert d.stop and d.recommended is None
    assert decide("3NNN 4TTN", start_dose=2).recommended == 2
    # escalation README example: get_three_plus_three(num_doses = 5) %>% fit('2NTN')
    # recommends dose 2 (brockk/escalation README.md)
    assert decide("2NTN", start_dose=1).next_dose == 1


def test_admissible_excludes_the_toxic_dose_and_above():
    assert decide("1NNN 2NNN 3TNT").admissible == (True, True, False, False, False)
    assert decide("1NNN 2NTN").admissible == (True,) * 5


@pytest.mark.parametrize("text, fragment", [
    ("1NN", "cohort 1 has 2 patients"),
    ("1NNNN", "cohort 1 has 4 patients"),
    ("1NNN 2NN", "cohort 2 has 2 patients"),
    ("2NNN", "cohort 1 was given dose 2 but the rules prescribe dose 1"),
    ("1NNN 3NNN", "cohort 2 was given dose 3"),
    ("1NTN 2NNN", "cohort 2 was given dose 2 but the rules prescribe dose 1"),
    ("1NNN 1NNN", "cohort 2 was given dose 1 but the rules prescribe dose 2"),
    ("1TTN 1NNN", "prescribe to stop"),
    ("1NNN 2NNN 1NNN", "cohort 3 was given dose 1"),
])
def test_impossible_histories_raise(text, fragment):
    with pytest.raises(ValueError, match="impossible 3\\+3 history") as err:
        decide(text)
    assert fragment in str(err.value)


def _state(n, tox, current, last_n=3):
    one = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
    n, tox = np.array([n], np.int64), np.array([tox], np.int64)
    return BatchState(n, tox, np.zeros_like(n), one(current), one(last_n), one(0))


@pytest.mark.parametrize("n, tox, current, last_n, fragment", [
    ([3, 0, 0], [0, 0, 0], 0, 2, "last cohort"),
    ([4, 0, 0], [0, 0, 0], 0, 3, "0, 3 or 6 patients"),
    ([3, 0, 3], [0, 0, 0], 2, 3, "without gaps"),
    ([3, 3, 0], [1, 0, 0], 1, 3, "did not meet the escalation rule"),
    ([6, 3, 0], [0, 0, 0], 1, 3, "did not meet the escalation rule"),
    ([6, 0, 0], [0, 0, 0], 0, 3, "would not have been expanded"),
    ([6, 0, 0], [5, 0, 0], 0, 3, "would not have been expanded"),
    ([3, 3, 0], [0, 0, 0], 0, 3, "without gaps"),
])
def test_impossible_batch_states_raise(n, tox, current, last_n, fragment):
    design = ThreePlusThree(n_doses=3)
    with pytest.raises(ValueError, match="impossible 3\\+3 state in trial 0") as err:
        design.decide_batch(_state(n, tox, current, last_n))
    assert fragment in str(err.value)


def test_wrong_number_of_doses_raises():
    with pytest.raises(ValueError, match="3 doses but the trial state has 4"):
        ThreePlusThree(n_doses=3).decide_batch(BatchState.empty(2, 4))


def test_spec_fields_and_validation():
    d = ThreePlusThree(n_doses=4)
    assert (d.cohort_size, d.max_patients, d.start_dose) == (3, 24, 0)
    assert lookup("design", "three_plus_three") is ThreePlusThree
    with pytest.raises(ValidationError, match="n_doses"):
        ThreePlusThree(n_doses=0)
    with pytest.raises(ValidationError, match="start_dose must be a 0-based dose index below "
                                              "n_doses=4, got 4"):
        ThreePlusThree(n_doses=4, start_dose=4)
    with pytest.raises(ValidationError, match="cohort_size"):
        ThreePlusThree(n_doses=4, cohort_size=3)  # a property, not a field
    with pytest.raises(Exception):
        d.n_doses = 5  # frozen


def test_first_decision_for_a_batch():
    dec = ThreePlusThree(n_doses=5, start_dose=1).decide_batch(BatchState.empty(4, 5))
    assert (dec.next_dose == 1).all() and not dec.stop.any()
    assert (dec.recommended == NO_DOSE).all() and (dec.reason == START).all()
    assert dec.reason.dtype.kind == "U"


# ----------------------------------------------------------------- exact enumeration helper
def test_exact_one_dose_matches_hand_algebra():
    # D = 1, q = 1 - p.  The first 3 are always expanded to 6 unless >= 2 DLTs:
    #   P(expand) = q^3 + 3 p q^2;  P(select) = q^3 (q^3 + 3 p q^2) + 3 p q^2 q^3
    #             = q^6 + 6 p q^5   (= P(at most 1 DLT in 6): the same event)
    #   E[n] = 3 + 3 P(expand);  E[DLTs] = p E[n]  (Wald).
    for p in [F(1, 2), F(1, 10), F(3, 7)]:
        q = 1 - p
        ex = exact_three_plus_three([p])
        assert ex.select[0] == q**6 + 6 * p * q**5
        assert ex.none == 1 - (q**6 + 6 * p * q**5)
        assert ex.expected_n[0] == 3 + 3 * (q**3 + 3 * p * q**2)
        assert ex.expected_tox[0] == p * ex.expected_n[0]
    ex = exact_three_plus_three([F(1, 2)])
    assert ex.select[0] == F(7, 64) and ex.expected_n[0] == F(9, 2)


def test_exact_two_doses_matches_hand_algebra():
    # D = 2.  Clearing dose 1 (not the top): P(esc_1) = q1^3 + 3 p1 q1^2 * q1^3 = q1^3 + 3 p1 q1^5.
    # Dose 2 is the top: selected iff at most 1 DLT in its 6 patients: P(top) = q2^6 + 6 p2 q2^5.
    #   P(none) = 1 - P(esc_1);  P(select 1) = P(esc_1) (1 - P(top));  P(select 2) = P(esc_1) P(top)
    #   E[n_1] = 3 + 3 * 3 p1 q1^2;  E[n_2] = P(esc_1) (3 + 3 (q2^3 + 3 p2 q2^2)).
    p1, p2 = F(1, 5), F(2, 5)
    q1, q2 = 1 - p1, 1 - p2
    esc1 = q1**3 + 3 * p1 * q1**5
    top = q2**6 + 6 * p2 * q2**5
    ex = exact_three_plus_three([p1, p2])
    assert ex.none == 1 - esc1
    assert ex.select == (esc1 * (1 - top), esc1 * top)
    assert ex.expected_n == (3 + 9 * p1 * q1**2, esc1 * (3 + 3 * (q2**3 + 3 * p2 * q2**2)))
    assert ex.expected_tox == (p1 * ex.expected_n[0], p2 * ex.expected_n[1])
    # numerically: P(esc_1) at p = 0.2 is 0.512 + 0.6 * 0.32768 = 0.708608
    assert float(esc1) == pytest.approx(0.708608, abs=1e-12)


def test_exact_escalation_probability_of_a_dose():
    # P(escalate from a non-top dose with DLT rate p) = q^3 + 3 p q^5, the classic 3+3 curve
    # (0.729 + 0.3 * 0.59049 = 0.906147 at p = 0.1, and so on)
    for p, expected in [(0.1, 0.906147), (0.2, 0.708608), (0.3, 0.494263), (0.4, 0.309312),
                        (0.5, 0.171875), (0.6, 0.082432)]:
        ex = exact_three_plus_three([p, 0.99])
        assert ex.reach[1] == pytest.approx(expected, abs=1e-12)


def test_exact_probabilities_sum_to_one_and_start_dose():
    ex = exact_three_plus_three([0.05, 0.1, 0.3, 0.45, 0.6])
    assert sum(ex.select) + ex.none == pytest.approx(1.0, abs=1e-14)
    ex = exact_three_plus_three([F(1, 3)] * 4, start_dose=2)
    assert ex.select[:2] == (0, 0) and ex.reach[:2] == (0, 0) and ex.reach[2] == 1
    assert sum(ex.select) + ex.none == 1


# ---------------------------------------------------------- design vs exact, Monte Carlo
SCENARIOS = [
    ([0.05, 0.10, 0.30, 0.45, 0.60], 0),
    ([0.01, 0.02, 0.03, 0.04, 0.05], 0),  # flat and safe: mostly selects the top dose
    ([0.45, 0.60, 0.70, 0.80, 0.90], 0),  # very toxic: mostly no dose
    ([0.10, 0.20, 0.35, 0.50], 1),  # starts at dose 2
]


@pytest.mark.parametrize("p, start", SCENARIOS)
def test_simulated_operating_characteristics_match_exact(p, start):
    N = 20_000
    design = ThreePlusThree(n_doses=len(p), start_dose=start)
    res = run_lockstep(design, p, N, np.random.default_rng(20240611 + start))
    ex = exact_three_plus_three(p, start_dose=start)
    D = len(p)

    # selection: binomial SE; + 1/N allows for the granularity of one trial
    observed = np.bincount(res.selected + 1, minlength=D + 1) / N  # [none, dose 1, ...]
    exact = np.array([ex.none, *ex.select], dtype=float)
    se = np.sqrt(exact * (1 - exact) / N)
    assert np.all(np.abs(observed - exact) <= 4 * se + 1 / N), (observed, exact)

    # patients per dose: SE from the exact variance of n_d
    mean_n = res.n.mean(axis=0)
    se_n = np.sqrt(np.array(ex.var_n, dtype=float) / N)
    assert np.all(np.abs(mean_n - np.array(ex.expected_n, float)) <= 4 * se_n + 3 / N)

    # DLTs per dose: SE from the sample SD
    mean_t = res.tox.mean(axis=0)
    se_t = res.tox.std(axis=0, ddof=1) / np.sqrt(N)
    assert np.all(np.abs(mean_t - np.array(ex.expected_tox, float)) <= 4 * se_t + 1 / N)

    # every trial ended by a 3+3 rule, never by the max_patients cap
    assert set(res.reason) <= {STOP_TOXIC, STOP_TOP}
    assert res.n.max() <= 6


def test_monte_carlo_check_can_fail():
    # the same comparison with a wrong rule (select the stopping dose itself) must fail
    p = [0.05, 0.10, 0.30, 0.45, 0.60]
    res = run_lockstep(ThreePlusThree(n_doses=5), p, 20_000, np.random.default_rng(1))
    ex = exact_three_plus_three(p)
    wrong = res.selected.copy()
    toxic = res.reason == STOP_TOXIC
    wrong[toxic] += 1
    observed = np.bincount(wrong + 1, minlength=6) / 20_000
    exact = np.array([ex.none, *ex.select], dtype=float)
    se = np.sqrt(exact * (1 - exact) / 20_000)
    assert not np.all(np.abs(observed - exact) <= 4 * se + 1 / 20_000)


def test_batch_agrees_with_single_trial_decisions():
    # states visited by a simulation, decided as one batch and one at a time
    p = [0.1, 0.2, 0.3, 0.4, 0.5]
    design = ThreePlusThree(n_doses=5)
    rng = np.random.default_rng(7)
    T = 300
    state = BatchState.empty(T, 5)
    for _ in range(6):
        dec = design.decide_batch(state)
        for i in range(T):
            one = design.decide_batch(state.subset(np.array([i])))
            assert one.item(0) == dec.item(i)
        go = ~dec.stop
        if not go.any():
            break
        dose = np.where(go, dec.next_dose, 0)
        dlt = np.where(go, rng.binomial(3, np.asarray(p)[dose]), 0)
        n, tox = state.n.copy(), state.tox.copy()
        rows = np.flatnonzero(go)
        n[rows, dose[rows]] += 3
        tox[rows, dose[rows]] += dlt[rows]
        cur = np.where(go, dose, state.current)
        lcn = np.where(go, 3, state.last_cohort_n)
        lct = np.where(go, dlt, state.last_cohort_tox)
        state = BatchState(n, tox, np.zeros_like(n), cur, lcn, lct)


# ----------------------------------------------------------------- with de-escalation
def test_deescalation_decisions_by_hand():
    from trialsim.designs import ThreePlusThree

    d = ThreePlusThree(n_doses=4, deescalate=True)
    cases = {  # history: (next dose, stop, recommended, stop code)
        "1NNN 2NNN 3TTN": (1, False, 1, None),                # 3 more at dose 2
        "1NNN 2NNN 3TTN 2NNT": (None, True, 1, "mtd_confirmed"),
        "1NNN 2NNN 3TTN 2NTT": (0, False, 0, None),           # de-escalate again
        "1NNN 2NNN 3TTN 2NTT 1TTN": (None, True, None, "toxic"),
        "1NNN 2NTN 2NNN 3TTN": (None, True, 1, "toxic"),      # dose 2 already has 6
        "1TTN": (None, True, None, "toxic"),
    }
    for h, (nxt, stop, rec, code) in cases.items():
        x = d.decide(h)
        assert (x.next_dose, x.stop, x.recommended, x.stop_code) == (nxt, stop, rec, code), h


@pytest.mark.parametrize("tox", [[0.05, 0.10, 0.20, 0.35, 0.50], [0.3, 0.45, 0.6, 0.7, 0.8],
                                 [0.01, 0.02, 0.05, 0.1, 0.15]])
def test_deescalation_matches_exact_enumeration(tox):
    """Selection, patients and DLTs per dose of 40,000 simulated trials within 4.5 Monte Carlo
    SEs of the exact values (recursion over every cohort outcome)."""
    from tests.helpers.three_plus_three_deesc_exact import exact_three_plus_three_deescalate

    ex = exact_three_plus_three_deescalate(tox)
    study = ts.from_dict({"doses": [1, 2, 3, 4, 5], "truth": {"tox": tox},
                          "design": {"type": "three_plus_three", "deescalate": True}})
    a = ts.simulate(study, n_trials=40_000, seed=11).arrays
    assert_matches_exact(a, ex)
