"""Stopping rules combined with | and & (and any/all in YAML): which rules fire, the reasons and
stop codes they report, which withdraw the selection, and their checks."""
from __future__ import annotations

import numpy as np
import pytest

import trialsim as ts
from trialsim.designs import (BOIN, CRM, AllOf, AnyOf, BatchState, NAtRecommended, NPatients,
                              StopWhen, TargetProbability, TooToxic)
from trialsim.errors import ConfigError
from trialsim.outcomes import TrialHistory

SK = (0.05, 0.12, 0.25, 0.40, 0.55)


def crm() -> CRM:
    return CRM(target=0.25, skeleton=SK, max_patients=36)


def test_operators_build_any_and_all():
    a, b, c = NPatients(n=12), NAtRecommended(n=6), NPatients(n=30)
    assert a | b == AnyOf(rules=(a, b)) and a & b == AllOf(rules=(a, b))
    assert (a | b) & c == AllOf(rules=(AnyOf(rules=(a, b)), c))


def test_any_reports_the_first_rule_that_fired_and_all_needs_every_rule():
    h = "1NNN 2NNN 3NTN 3NNT"        # 12 patients; 6 at dose 3, which the CRM recommends
    d0 = crm().decide(h)
    assert d0.recommended == 2
    d = StopWhen(parent=crm(), rule=NPatients(n=30) | NAtRecommended(n=6)).decide(h)
    assert d.stop and d.stop_code == "n_at_recommended" and d.recommended == 2
    assert d.reasons[-1] == "stop: 6 patients at the recommended dose"
    d = StopWhen(parent=crm(), rule=NPatients(n=12) | NAtRecommended(n=6)).decide(h)
    assert d.stop_code == "n_reached"                     # the first listed that fired
    assert not StopWhen(parent=crm(), rule=NPatients(n=30) & NAtRecommended(n=6)).decide(h).stop
    d = StopWhen(parent=crm(), rule=NPatients(n=12) & NAtRecommended(n=6)).decide(h)
    assert d.stop and d.stop_code == "n_reached+n_at_recommended"
    assert d.reasons[-1] == "stop: 12 patients treated and 6 patients at the recommended dose"


def test_toxicity_rules_withdraw_the_selection_and_others_keep_it():
    h = TrialHistory.parse("1TTN", 5)
    p = crm().prob_tox_exceeds(BatchState.from_history(h), 0.35)[0, 0]
    d = StopWhen(parent=crm(), rule=TooToxic(threshold=0.35, prob=p - 1e-6)).decide(h)
    assert d.stop and d.recommended is None and d.stop_code == "too_toxic"
    assert not StopWhen(parent=crm(), rule=TooToxic(threshold=0.35, prob=p + 1e-6)).decide(h).stop
    d = StopWhen(parent=crm(), rule=NPatients(n=3)).decide(h)
    assert d.stop and d.recommended == crm().decide(h).recommended


def test_a_toxicity_stop_at_max_patients_reports_its_own_code():
    """A trial that reaches max_patients and is then found too toxic ends with no dose: its
    stop code says both, ``max_patients+too_toxic`` (as the stopping modifier and the
    stop_when rule)."""
    h = TrialHistory.parse("1TTN 1TNN", 5)
    small = CRM(target=0.25, skeleton=SK, max_patients=6)
    p = small.prob_tox_exceeds(BatchState.from_history(h), 0.25)[0, 0]
    assert small.decide(h).stop_code == "max_patients"
    for design in (StopWhen(parent=small, rule=TooToxic(threshold=0.25, prob=p - 1e-6)),
                   ts.designs.StopWhenTooToxic(parent=small, dose=0, threshold=0.25,
                                               prob=p - 1e-6)):
        d = design.decide(h)
        assert d.stop and d.recommended is None and d.stop_code == "max_patients+too_toxic"
        assert d.reasons[-2:] == ("stop: max_patients reached",
                                  f"stop: P(tox at dose 1 > 0.25) > {p - 1e-6:g}")
    d = StopWhen(parent=small, rule=TooToxic(threshold=0.25, prob=p + 1e-6)).decide(h)
    assert d.stop_code == "max_patients" and d.recommended is not None


def test_target_probability_is_the_posterior_mass_at_the_recommended_dose():
    h = TrialHistory.parse("1NNN 2NNN 3NNT 3NNN 3NTN", 5)
    s = BatchState.from_history(h)
    rec = crm().decide(h).recommended
    mass = (crm().prob_tox_exceeds(s, 0.2) - crm().prob_tox_exceeds(s, 0.35))[0, rec]
    for prob, stops in ((mass - 1e-6, True), (mass + 1e-6, False)):
        rule = TargetProbability(lower=0.2, upper=0.35, prob=prob)
        d = StopWhen(parent=crm(), rule=rule).decide(h)
        assert d.stop is stops and (not stops or d.stop_code == "precise")


def test_yaml_rule_trees_round_trip_and_errors_name_the_path():
    doc = {"doses": [1, 2, 3, 4, 5], "truth": {"tox": [0.05, 0.1, 0.2, 0.35, 0.5]},
           "design": {"type": "crm", "target": 0.25, "skeleton": list(SK), "max_patients": 36,
                      "modifiers": [{"type": "stop_when", "rule": {
                          "type": "any", "rules": [
                              {"type": "too_toxic", "threshold": 0.35, "prob": 0.9},
                              {"type": "all", "rules": [
                                  {"type": "n_at_recommended", "n": 9},
                                  {"type": "target_probability", "lower": 0.2, "upper": 0.35,
                                   "prob": 0.5}]}]}}]}}
    study = ts.from_dict(doc)
    again = ts.from_dict(dict(doc, design=study.config["design"]))
    assert again.design == study.design
    sims = ts.simulate(study, n_trials=200, seed=2)
    assert set(np.unique(sims.arrays.stop_code)) <= {
        "too_toxic", "n_at_recommended+precise", "max_patients", "max_patients+too_toxic"}
    doc["design"]["modifiers"][0]["rule"]["rules"][0]["type"] = "no_such_rule"
    with pytest.raises(ConfigError, match=r"design\.modifiers\[0\].*no_such_rule"):
        ts.from_dict(doc)


def test_rules_on_posterior_probabilities_need_a_toxicity_model():
    with pytest.raises(ValueError, match="needs a design with a toxicity model"):
        StopWhen(parent=BOIN(n_doses=5, target=0.3, max_patients=30),
                 rule=NPatients(n=12) | TooToxic(threshold=0.35, prob=0.9))
    StopWhen(parent=BOIN(n_doses=5, target=0.3, max_patients=30), rule=NPatients(n=12))


@pytest.mark.parametrize("rule, message", [
    # a reference dose beyond the doses: the rule never fired, and every trial ran to size
    (TooToxic(dose=9, threshold=0.25, prob=0.9), "too_toxic: dose must be a 0-based dose index "
                                                 "below 5, got 9"),
    (NPatients(n=12) | NPatients(n=100), "n_patients: n must be at most the design's "
                                         "max_patients (36), got 100"),
    (NAtRecommended(n=40) & NPatients(n=12), "n_at_recommended: n must be at most"),
])
def test_rules_that_could_never_fire_are_refused(rule, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StopWhen(parent=crm(), rule=rule)
