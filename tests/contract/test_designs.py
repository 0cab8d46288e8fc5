"""The design contract, checked on every registered design and modifier (and chains of
modifiers), each class supplying its own example instance (``example`` / ``wrap``).  A new
design or modifier is covered here as soon as it is registered.

Trials are driven by the design itself on random outcomes, so every state checked is one the
design can reach.  At every step: ``decide(history)`` equals the batch decision of that trial;
dtypes and shapes are the contract's; a stop means no next dose and carries a reason and a
stop code; a continuing trial gets a dose; deciding twice gives the same decision and leaves
the design unchanged (purity); a batch decides like its parts.  Every design survives a round
trip through its YAML configuration.
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

import trialsim as ts
from trialsim.config.study import design_to_config
from trialsim.designs import NO_DOSE, BatchState, Design, Modifier
from trialsim.outcomes import TrialHistory
from trialsim.registry import lookup, names

N_DOSES = 5
TRUE_TOX = np.array([0.05, 0.12, 0.25, 0.4, 0.55])
TRUE_EFF = np.array([0.1, 0.3, 0.5, 0.55, 0.6])


def _bases() -> list[Design]:
    return [lookup("design", n).example(N_DOSES) for n in names("design")]


def _modified() -> list[Design]:
    """Every modifier around every base design that accepts it, and every ordered pair and
    the full chain of modifiers around the CRM."""
    out = []
    mods = [lookup("modifier", n) for n in names("modifier")]
    for base in _bases():
        for m in mods:
            if not m.accepts(base):     # e.g. backfill: interval designs only
                with pytest.raises(ValueError):
                    m.wrap(base)
                continue
            try:
                out.append(m.wrap(base))
            except ValueError as e:   # e.g. a rule that needs a toxicity model
                assert not base.toxicity_model or base.follow_up, e
    for name in ("crm", "boin"):
        base = lookup("design", name).example(N_DOSES)
        ok = []
        for m in mods:      # the modifiers that take this base
            try:
                m.wrap(base)
                ok.append(m)
            except ValueError:
                pass
        for m1, m2 in itertools.permutations(ok, 2):
            out.append(m2.wrap(m1.wrap(base)))
        chain: Design = base
        for m in ok:
            chain = m.wrap(chain)
        out.append(chain)
    return out


def _variants() -> list[Design]:
    """Settings that take a design down another code path than its example's."""
    crm = lookup("design", "crm").example(N_DOSES)
    startup = (3,) * N_DOSES
    return [dataclasses.replace(crm, model="logistic"),
            dataclasses.replace(crm, method="likelihood", startup=startup),
            dataclasses.replace(crm, model="logistic", startup=startup),
            dataclasses.replace(lookup("design", "tite_crm").example(N_DOSES), scheme="adaptive")]


DESIGNS = _bases() + _variants() + _modified()
#: Registered at collection (built-ins and installed plugins; tests that register more later
#: run the same checks on their own designs through the functions below).
COLLECTED = {kind: names(kind) for kind in ("design", "modifier")}
IDS = [design_to_config(d)["type"] + "".join(f"+{m['type']}" for m in
                                              design_to_config(d).get("modifiers", []))
       for d in DESIGNS]


def test_every_registered_type_is_covered():
    covered = {type(d).__name__ for d in DESIGNS}
    for kind, registered in COLLECTED.items():
        for n in registered:
            assert lookup(kind, n).__name__ in covered, f"{kind} {n} has no example"


def _check_shapes(d, T: int) -> None:
    assert d.next_dose.shape == (T,) and d.next_dose.dtype == np.int64
    assert d.stop.shape == (T,) and d.stop.dtype == bool
    assert d.recommended.shape == (T,) and d.recommended.dtype == np.int64
    assert d.admissible.shape == (T, N_DOSES) and d.admissible.dtype == bool
    assert d.reason.shape == (T,) and d.reason.dtype.kind == "U"
    assert d.stop_code.shape == (T,) and d.stop_code.dtype.kind == "U"


def _check_rules(d) -> None:
    stop = d.stop
    assert np.all(d.next_dose[stop] == NO_DOSE), "a stopped trial has a next dose"
    assert np.all((d.next_dose[~stop] >= 0) & (d.next_dose[~stop] < N_DOSES)), \
        "a continuing trial has no valid next dose"
    assert np.all((d.recommended >= NO_DOSE) & (d.recommended < N_DOSES))
    assert np.all(d.stop_code[stop] != ""), "a stop without a stop code"
    assert np.all(d.stop_code[~stop] == ""), "a stop code on a continuing trial"
    assert np.all(np.char.str_len(d.reason) > 0), "a decision without a reason"


@pytest.mark.parametrize("design", [d for d in DESIGNS if d.follow_up],
                         ids=[i for d, i in zip(DESIGNS, IDS) if d.follow_up])
def test_decisions_with_partial_follow_up_keep_the_contract(design):
    """Designs deciding with partial follow-up: random patients, DLTs seen and follow-up."""
    from trialsim.designs.base import FollowUp
    rng = np.random.default_rng(11)
    T, K = 64, 12
    k = rng.integers(1, K + 1, T)
    dose = np.where(np.arange(K)[None, :] < k[:, None], rng.integers(0, N_DOSES, (T, K)),
                    NO_DOSE)
    given = dose >= 0
    seen = given & (rng.random((T, K)) < 0.2)
    elapsed = rng.random((T, K)) * given
    onehot = dose[:, :, None] == np.arange(N_DOSES)
    n = onehot.sum(axis=1).astype(np.int64)
    tox = (onehot & seen[:, :, None]).sum(axis=1).astype(np.int64)
    last = dose[np.arange(T), k - 1]
    state = BatchState(n, tox, np.zeros_like(n), last, np.ones(T, np.int64),
                       seen[np.arange(T), k - 1].astype(np.int64), None,
                       FollowUp(dose, seen, elapsed))
    dec = design.decide_batch(state)
    _check_shapes(dec, T)
    _check_rules(dec)
    _same(dec, design.decide_batch(state))
    _same(dec, _concat(design.decide_batch(state.subset(np.arange(T // 2))),
                       design.decide_batch(state.subset(np.arange(T // 2, T)))))


def _same(a, b) -> None:
    for f in ("next_dose", "stop", "recommended", "admissible", "reason", "stop_code"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert (a.cohort_size is None) == (b.cohort_size is None)
    if a.cohort_size is not None:
        np.testing.assert_array_equal(a.cohort_size, b.cohort_size, err_msg="cohort_size")


@pytest.mark.parametrize("design", DESIGNS, ids=IDS)
def test_decisions_keep_the_contract(design):
    check_decisions(design)


def check_decisions(design: Design) -> None:
    """Drive trials with the design on random outcomes and check every decision."""
    rng = np.random.default_rng(7)
    T, D = 64, N_DOSES
    frozen = design_to_config(design)
    state = dataclasses.replace(BatchState.empty(T, D), u=rng.random(T))
    histories = [TrialHistory(D) for _ in range(T)]
    alive = np.ones(T, bool)
    for step in range(200):
        dec = design.decide_batch(state)
        _check_shapes(dec, T)
        _check_rules(dec)
        _same(dec, design.decide_batch(state))                     # purity
        half = T // 2                                               # a batch = its parts
        _same(dec, _concat(design.decide_batch(state.subset(np.arange(half))),
                           design.decide_batch(state.subset(np.arange(half, T)))))
        for i in np.flatnonzero(alive)[:8]:                         # decide == batch of one
            one = design.decide(histories[i], u=float(state.u[i]))
            item = dec.item(i)
            assert one == item, (histories[i].format(), one, item)
        alive &= ~dec.stop
        if not alive.any():
            break
        n, tox, eff = state.n.copy(), state.tox.copy(), state.eff.copy()
        both = state.eff_tox.copy()
        cur, lcn, lct = state.current.copy(), state.last_cohort_n.copy(), state.last_cohort_tox.copy()
        for i in np.flatnonzero(alive):
            dose = int(dec.next_dose[i])
            want = design.cohort_size if dec.cohort_size is None else int(dec.cohort_size[i])
            assert want >= 1, "a continuing trial needs a cohort of at least one patient"
            size = int(min(want, design.max_patients - n[i].sum()))
            t = rng.random(size) < TRUE_TOX[dose]
            e = rng.random(size) < TRUE_EFF[dose]
            n[i, dose] += size
            tox[i, dose] += t.sum()
            eff[i, dose] += e.sum()
            both[i, dose] += (t & e).sum()
            cur[i], lcn[i], lct[i] = dose, size, t.sum()
            histories[i] = histories[i].add_cohort(dose, t, e)
        state = BatchState(n, tox, eff, cur, lcn, lct, both, u=rng.random(T))
    else:
        pytest.fail("trials did not end within 200 cohorts")
    assert design_to_config(design) == frozen, "deciding changed the design"
    assert np.all(state.total <= design.max_patients)


def _concat(a, b):
    from trialsim.designs.base import BatchDecision
    sizes = None if a.cohort_size is None else np.concatenate([a.cohort_size, b.cohort_size])
    return BatchDecision(*(np.concatenate([getattr(a, f), getattr(b, f)])
                           for f in ("next_dose", "stop", "recommended", "admissible", "reason",
                                     "stop_code")), cohort_size=sizes)


@pytest.mark.parametrize("design", DESIGNS, ids=IDS)
def test_full_trials_stop_at_max_patients(design):
    full = BatchState(np.full((1, N_DOSES), 0, np.int64), np.zeros((1, N_DOSES), np.int64),
                      np.zeros((1, N_DOSES), np.int64), np.zeros(1, np.int64),
                      np.zeros(1, np.int64), np.zeros(1, np.int64))
    n = full.n.copy()
    n[0, 0] = design.max_patients
    state = BatchState(n, full.tox, full.eff, np.zeros(1, np.int64),
                       np.array([design.cohort_size]), np.zeros(1, np.int64))
    try:
        d = design.decide_batch(state)
    except ValueError:
        pytest.skip("the design refuses a state it cannot reach (e.g. 3+3 counts)")
    assert d.stop[0] and d.stop_code[0] != ""


@pytest.mark.parametrize("design", DESIGNS, ids=IDS)
def test_config_round_trip(design):
    check_round_trip(design)


def check_round_trip(design: Design) -> None:
    """YAML configuration → study → the same design."""
    doc = {"doses": list(range(1, N_DOSES + 1)),
           "truth": {"tox": TRUE_TOX.tolist(), "eff": TRUE_EFF.tolist()},
           "design": design_to_config(design)}
    if design.follow_up or design.backfills:      # runs on a calendar
        doc["conduct"] = {"sites": [{"rate_per_week": 1.0}], "window_h": 168}
    study = ts.from_dict(doc)
    assert study.design == design
    assert design_to_config(study.design) == doc["design"]


@pytest.mark.parametrize("design", DESIGNS, ids=IDS)
def test_modifiers_read_through_to_their_parent(design):
    if not isinstance(design, Modifier):
        pytest.skip("not a modifier")
    base = design.base_design
    for attr in ("n_doses", "cohort_size", "max_patients", "start_dose", "toxicity_model"):
        assert getattr(design, attr) == getattr(base, attr), attr
    if hasattr(base, "target"):
        assert design.target == base.target


def test_the_checks_can_fail():
    """A decision that stops without a stop code, or continues without a dose, is caught."""
    from trialsim.designs._common import make_decision

    T = 3
    bad = make_decision([0, 1, 2], [False, True, False], [0, 0, 0], np.ones((T, N_DOSES), bool),
                        ["a", "b", "c"])
    with pytest.raises(AssertionError, match="stop code"):
        _check_rules(bad)
    bad = make_decision([0, NO_DOSE, 2], [False, False, False], [0, 0, 0],
                        np.ones((T, N_DOSES), bool), ["a", "b", "c"])
    with pytest.raises(AssertionError, match="no valid next dose"):
        _check_rules(bad)


@pytest.mark.parametrize("name", sorted(COLLECTED["design"]))
def test_every_design_runs_on_the_mechanistic_flagship(name):
    """Every design runs on PK-driven truth (the ketamine escalation flagship's population, PK
    and response models) as on direct truth."""
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs"
                          / "ketamine_iv_trd.yaml").read_text())
    doc["design"] = design_to_config(lookup("design", name).example(len(doc["doses"])))
    doc.pop("simulation", None)
    sims = ts.simulate(ts.from_dict(doc), n_trials=50, seed=3)
    sel = sims.arrays.selected
    assert ((sel >= -1) & (sel < len(doc["doses"]))).all() and sims.arrays.n.sum() > 0
