"""The interval designs (BOIN, mTPI-2, Keyboard, i3+3): published boundaries, decision tables
and operating characteristics of independent implementations, worked examples decision by
decision, the isotonic selection, and properties.

Reference implementations (fixtures written by R scripts beside them; the tests never need R):
``tests/fixtures/boin_reference.json`` from R BOIN 2.7.2 (``get.boundary``, ``select.mtd``,
``get.oc`` with 100,000 trials per scenario), ``make_boin_fixtures.R``;
``tests/fixtures/interval_reference.json`` from R Keyboard 0.1.3 (``get.boundary.kb``,
``get.oc.kb``) and FIND 0.1.1 (Ji & Zhang; ``get_decision_mtpi2``, ``run_sim_mtpi2``,
``get_decision_i3plus3``, ``run_sim_i3plus3``), ``make_interval_fixtures.R``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trialsim as ts
from tests.helpers.oc_compare import assert_oc_close
from trialsim.analysis.isotonic import isotonic_select, pava
from trialsim.designs import BOIN, MTPI2, NO_DOSE, BatchState, I3Plus3, Keyboard
from trialsim.outcomes import TrialHistory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INTERVAL = json.loads((FIXTURES / "interval_reference.json").read_text())
BOIN_REF = json.loads((FIXTURES / "boin_reference.json").read_text())
CODE = {"E": 1, "S": 0, "D": -1, "DU": -1}
CLASSES = {"mtpi2": MTPI2, "keyboard": Keyboard, "i3plus3": I3Plus3}


def H(text: str, n_doses: int = 5) -> TrialHistory:
    return TrialHistory.parse(text, n_doses)


# ---------------------------------------------------------------------------- boundaries
@pytest.mark.parametrize("ref", BOIN_REF["get_boundary"], ids=lambda r: f"target={r['target']}")
def test_boin_boundaries_match_r_boin_get_boundary(ref):
    """lambda_e, lambda_d to 1e-12 and the escalate / de-escalate / eliminate counts for
    n = 1..30 of R BOIN's get.boundary(target, ncohort = 10, cohortsize = 3)."""
    b = BOIN(n_doses=5, target=ref["target"], max_patients=30)
    np.testing.assert_allclose(b.boundaries, (ref["lambda_e"], ref["lambda_d"]), rtol=1e-12)
    rows = b.decision_table(30)
    assert [r["escalate_if_y_le"] for r in rows] == ref["escalate_if_ntox_le"]
    assert [r["deescalate_if_y_ge"] for r in rows] == ref["deescalate_if_ntox_ge"]
    assert [r["eliminate_if_y_ge"] for r in rows] == ref["eliminate_if_ntox_ge"]


@pytest.mark.parametrize("case", BOIN_REF["select_mtd"], ids=lambda c: c["description"][:40])
def test_boin_selection_matches_r_boin_select_mtd(case):
    """The MTD of R BOIN's select.mtd (default, boundMTD = TRUE, extrasafe = TRUE) on 35
    hand-picked count vectors (ties, untried doses, elimination, all below/above target), and
    the isotonic estimates it uses."""
    kw = dict(n_doses=5, target=case["target"], max_patients=100)
    n, y = case["npts"], case["ntox"]
    as_r = lambda d: 99 if d < 0 else int(d) + 1  # noqa: E731
    assert as_r(BOIN(**kw).select(n, y)) == case["mtd"]
    assert as_r(BOIN(**kw, bound_mtd=True).select(n, y)) == case["mtd_boundMTD"]
    assert as_r(BOIN(**kw, extra_safe=True).select(n, y)) == case["mtd_extrasafe"]
    elim = np.logical_or.accumulate(BOIN(**kw).lookup(np.array(n), np.array(y))[1])
    assert elim.tolist() == case["eliminated"]
    _, est = isotonic_select(np.array([n]), np.array([y]), ~elim[None], case["target"])
    ref = np.array([np.nan if v is None else v for v in case["iso_admissible"]])
    np.testing.assert_allclose(est[0], ref, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("run", BOIN_REF["get_oc"],
                         ids=lambda r: f"{r['target']}-{r['scenario']}"
                                       f"{'-extrasafe' if r['extrasafe'] else ''}")
def test_boin_operating_characteristics_match_r_boin_get_oc(run):
    """Selection (and no selection), patients and DLTs per dose of R BOIN's get.oc (100,000
    trials; 12 cohorts of 3 from dose 1; 4 scenarios at targets 0.3 and 0.25, the most toxic
    also with extrasafe) within Monte Carlo error of 20,000 trialsim trials."""
    design = {"type": "boin", "target": run["target"], "max_patients": 36,
              "extra_safe": run["extrasafe"]}
    sims = _simulate(design, run["p_true"], 20_000, run["target"])
    assert_oc_close(sims.arrays, run["ntrial"], np.array(run["selpercent"]) / 100,
                    run["npatients"], run["ntox"], run["no_selection_percent"] / 100)


@pytest.mark.parametrize("block", ["target_0.3", "target_0.25"])
@pytest.mark.parametrize("name", ["mtpi2", "keyboard", "i3plus3"])
def test_decision_tables_match_the_r_packages(block, name):
    """Every (n, y) for n = 1..18: E/S/D as R FIND (mTPI-2, i3+3) and R Keyboard decide, and
    elimination (DU) exactly where they apply it (n >= 3)."""
    ref = INTERVAL["decision_tables"][block]
    design = CLASSES[name](n_doses=5, target=ref["target"], eps1=ref["eps1"], eps2=ref["eps2"],
                          max_patients=36)
    move, elim = design.tables(18)
    for n, row in ref[name]["decision"].items():
        n = int(n)
        got = [int(move[n, y]) for y in range(n + 1)]
        assert got == [CODE[c] for c in row], (n, row)
        assert [bool(elim[n, y]) for y in range(n + 1)] == [c == "DU" and n >= 3 for c in row]


def test_i3plus3_differs_from_mtpi2_only_where_one_dlt_fewer_escalates():
    """Liu, Wang & Ji (2020): i3+3 stays where mTPI-2 de-escalates at (y, n) = (1, 3) and (2, 6)
    for target 0.25 — the cells that make the designs differ with cohorts of 3."""
    kw = dict(n_doses=5, target=0.25, max_patients=36)
    i3, mt = I3Plus3(**kw).tables(36)[0], MTPI2(**kw).tables(36)[0]
    diff = {(int(y), int(n)) for n, y in zip(*np.nonzero(i3 != mt))}
    assert diff == {(1, 1), (1, 2), (1, 3), (2, 6), (3, 10), (6, 20), (9, 30)}
    assert all(i3[n, y] == 0 and mt[n, y] == -1 for y, n in diff)


# ---------------------------------------------------------------------------- worked examples
def test_boin_worked_example_decision_by_decision():
    """Target 0.3 (lambda_e 0.236, lambda_d 0.358, elimination at 3/3, 4/6, 5/9 ...), a trial
    written out by hand from Liu & Yuan's rules."""
    b = BOIN(n_doses=5, target=0.3, max_patients=18)
    steps = [("", 0, "start"),
             ("1NNN", 1, "escalate"),            # 0/3 <= 0.236
             ("1NNN 2NTN", 1, "stay"),           # 1/3 = 0.333 between
             ("1NNN 2NTN 2NNN", 2, "escalate"),  # 1/6 = 0.167
             ("1NNN 2NTN 2NNN 3TTT", 1, "de-escalate"),   # 3/3: dose 3 and above eliminated
             ("1NNN 2NTN 2NNN 3TTT 2NNT", 1, "stay")]     # 2/9 = 0.222 escalates but dose 3 is out
    for text, nxt, why in steps:
        d = b.decide(H(text))
        assert d.next_dose == nxt and d.reasons[0].startswith(why), (text, d)
    d = b.decide(H("1NNN 2NTN 2NNN 3TTT 2NNT 2NTN"))   # 18 patients: stop
    assert d.stop and d.stop_code == "max_patients"
    assert d.admissible == (True, True, False, False, False)
    # isotonic estimates on doses 1-2: (0.05/3.1, 3.05/12.1) -> dose 2 is closest to 0.3
    assert d.recommended == 1


def test_lowest_dose_eliminated_stops_with_no_dose():
    for cls in (BOIN, MTPI2, Keyboard, I3Plus3):
        d = cls.example().decide(H("1TTT"))
        assert d.stop and d.recommended is None and d.stop_code == "too_toxic"
        assert d.next_dose is None and not any(d.admissible)


def test_extra_safe_stops_earlier_at_the_lowest_dose():
    """P(p > 0.3 | 2/3, Beta(1, 1)) = 0.9163: above cutoff_eli - offset = 0.90, below 0.95."""
    plain = BOIN(n_doses=5, target=0.3, max_patients=30)
    safe = BOIN(n_doses=5, target=0.3, max_patients=30, extra_safe=True)
    assert not plain.decide(H("1TNT")).stop
    d = safe.decide(H("1TNT"))
    assert d.stop and d.recommended is None and d.stop_code == "too_toxic"


def test_n_earlystop_stops_and_keeps_the_selection():
    """BOIN (as R BOIN 2.7.2's get.oc and R bfboin) stops at n_earlystop only when the next
    cohort would stay; Keyboard (as R Keyboard's get.oc.kb) whatever the move."""
    b = BOIN(n_doses=3, target=0.3, max_patients=30, n_earlystop=9)
    d = b.decide(H("1NNN 2NTN 2NNN 2NTT", 3))        # 3/9 at dose 2: stay
    assert d.stop and d.stop_code == "n_at_dose" and d.recommended == 1
    d = b.decide(H("1NNN 2NTN 2NNN 2NNT", 3))        # 2/9 <= 0.236 x 9: escalate, go on
    assert not d.stop and d.next_dose == 2
    assert b.decide(H("1NNN 2NNN 3NNN 3NNN 3NNT", 3)).stop   # escalate at the top: stays
    kb = Keyboard(n_doses=3, target=0.3, max_patients=30, n_earlystop=9)
    d = kb.decide(H("1NNN 2NTN 2NNN 2NNT", 3))
    assert d.stop and d.stop_code == "n_at_dose"


EARLYSTOP = json.loads((FIXTURES / "boin_earlystop_reference.json").read_text())


@pytest.mark.parametrize("ref", EARLYSTOP["results"], ids=lambda r: f"scenario{r['scenario']}")
def test_n_earlystop_operating_characteristics_as_r_boin(ref):
    """R BOIN 2.7.2 get.oc with n.earlystop = 9 (target 0.25, 10 cohorts of 3, 10,000 trials;
    the toxicity scenarios of Zhao et al. 2024 Table 3; tests/fixtures/
    make_boin_earlystop_fixture.R): selection per dose and of no dose, and patients per dose,
    within Monte Carlo error of 3,000 trials."""
    study = ts.from_dict({"doses": [1, 2, 3, 4, 5], "target": 0.25,
                          "truth": {"tox": ref["p_true"]},
                          "design": {"type": "boin", "target": 0.25, "max_patients": 30,
                                     "n_earlystop": 9}})
    a = ts.simulate(study, 3000, seed=ref["scenario"]).arrays
    sel = np.asarray(ref["selection_pct"]) / 100
    assert_oc_close(a, EARLYSTOP["ntrial"], sel, ref["patients_mean"], None,
                    no_selection=ref["stop_pct"] / 100)


def test_moves_at_the_edges():
    b = BOIN(n_doses=2, target=0.3, max_patients=30)
    assert b.decide(H("1NNN 2NNN", 2)).next_dose == 1      # escalate at the top: stay
    assert b.decide(H("1NTT", 2)).next_dose == 0           # de-escalate at the lowest: stay


# ---------------------------------------------------------------------------- selection
def test_pava_against_hand_computed_fits():
    np.testing.assert_allclose(pava([0.1, 0.3, 0.2, 0.4]), [0.1, 0.25, 0.25, 0.4])
    np.testing.assert_allclose(pava([0.5, 0.1, 0.3], [1, 3, 1]), [0.2, 0.2, 0.3])
    np.testing.assert_allclose(pava([3, 2, 1]), [2, 2, 2])


def test_isotonic_selection_ties_and_eligibility():
    """Pooled doses: above the target the lowest, below it the highest (Liu & Yuan 2015, 2.3)."""
    n = np.array([[3, 3, 0, 0], [3, 3, 0, 0], [6, 6, 3, 0], [0, 0, 0, 0]])
    y = np.array([[2, 1, 0, 0], [0, 0, 0, 0], [1, 2, 3, 0], [0, 0, 0, 0]])
    elig = np.ones_like(n, bool)
    elig[2, 2:] = False
    dose, est = isotonic_select(n, y, elig, 0.3)
    # trial 0: 2/3, 1/3 pooled to 0.5 > 0.3 -> the lower dose; trial 1: both 0/3 -> the higher
    assert dose.tolist() == [0, 1, 1, NO_DOSE]
    assert est[0, 0] == est[0, 1] and np.isnan(est[0, 2])
    assert np.isnan(est[2, 2])


# ---------------------------------------------------------------------------- properties
interval_designs = st.sampled_from([BOIN.example(3), MTPI2.example(3), Keyboard.example(3),
                                    I3Plus3.example(3)])


@st.composite
def states(draw):
    n = np.array([draw(st.integers(0, 4)) * 3 for _ in range(3)], np.int64)
    cur = draw(st.integers(0, 2))
    n[cur] = max(n[cur], 3)
    tox = np.array([draw(st.integers(0, int(k))) for k in n], np.int64)
    return n, tox, cur


def _state(n, tox, cur):
    one = lambda v: np.array([v], np.int64)  # noqa: E731
    return BatchState(n[None], tox[None], np.zeros((1, 3), np.int64), one(cur), one(3), one(0))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(interval_designs, states())
def test_one_more_dlt_never_raises_the_next_dose(design, s):
    n, tox, cur = s
    if tox[cur] == n[cur] or n.sum() >= design.max_patients:
        return
    before = design.decide_batch(_state(n, tox, cur))
    more = tox.copy()
    more[cur] += 1
    after = design.decide_batch(_state(n, more, cur))
    if not after.stop[0] and not before.stop[0]:
        assert after.next_dose[0] <= before.next_dose[0]
    assert not (before.stop[0] and not after.stop[0] and before.stop_code[0] == "too_toxic")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(interval_designs, states(), st.integers(0, 3), st.integers(0, 3))
def test_the_move_depends_only_on_the_current_dose(design, s, dn, dy):
    """Changing the counts at other doses (without eliminating anything) leaves the move."""
    n, tox, cur = s
    other = (cur + 1) % 3
    n2, t2 = n.copy(), tox.copy()
    n2[other] += 3 * dn
    t2[other] = min(t2[other] + dy, n2[other])
    if n2.sum() >= design.max_patients:
        return
    a = design.decide_batch(_state(n, tox, cur))
    b = design.decide_batch(_state(n2, t2, cur))
    if a.admissible[0].all() and b.admissible[0].all():
        assert a.next_dose[0] == b.next_dose[0] and a.reason[0] == b.reason[0]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(interval_designs, states())
def test_decide_on_history_text_equals_the_batch(design, s):
    n, tox, cur = s
    parts = []
    for d in [i for i in range(3) if i != cur] + [cur]:
        for k in range(0, n[d], 3):
            t = min(max(tox[d] - k, 0), 3)
            parts.append(f"{d + 1}" + "T" * t + "N" * (3 - t))
    text = " ".join(parts)
    if not text or n.sum() >= design.max_patients:
        return
    assert design.decide(H(text, 3)) == design.decide_batch(_state(n, tox, cur)).item(0)


# ---------------------------------------------------------------------------- OC vs R
def _simulate(design: dict, p_true, n_trials: int, target: float):
    doc = {"doses": list(range(1, len(p_true) + 1)), "target": target,
           "truth": {"tox": list(p_true)}, "design": design}
    return ts.simulate(ts.from_dict(doc), n_trials=n_trials, seed=2026)


OC_CASES = [(block, sc, name) for block in ("target_0.3", "target_0.25")
            for sc in ("scenario_1", "scenario_2", "scenario_3")
            for name in ("mtpi2", "keyboard", "i3plus3")]


@pytest.mark.parametrize("block, scenario, name", OC_CASES)
def test_operating_characteristics_match_the_r_packages(block, scenario, name):
    """Selection, patients and DLTs per dose of R FIND's run_sim_mtpi2 / run_sim_i3plus3 and R
    Keyboard's get.oc.kb (10,000 trials at target 0.3, 4,000 at 0.25; 5 doses, 12 cohorts of
    3, start at dose 1) within Monte Carlo error of 20,000 trialsim trials."""
    case = INTERVAL["operating_characteristics"][block][scenario]
    ref = case.get(name) or case["mtpi2"]   # target 0.3: i3+3 is identical to mTPI-2 there
    if name not in case:
        pytest.skip(f"no {name} run in the fixture for {block} {scenario}")
    target = case["target"]
    sims = _simulate({"type": name, "target": target, "max_patients": 36}, case["p_true"],
                     20_000, target)
    assert_oc_close(sims.arrays, ref["ntrial"], np.array(ref["selection_pct"]) / 100,
                    ref["mean_patients"], ref["mean_dlts"], ref["no_selection_pct"] / 100)
