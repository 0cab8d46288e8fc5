"""Scenario sets of a phase II study: each scenario is the study with its overrides (the same
results as a study file written out by hand), all run on common random numbers (the same
patients, randomisation and dropout draws), a tabulated dose-response against its closed form,
and configuration errors that name the scenario and the path."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import trialsim as ts
from trialsim.cli import main
from trialsim.errors import ConfigError
from trialsim.phase2 import phase2_truth, simulate_phase2
from trialsim.phase2.scenarios import simulate_scenarios

from tests.phase2.test_phase2_oc import BASE

UMBRELLA = {"response.efficacy.table_exposure": [0, 0.25, 0.5, 0.75, 1.0],
            "response.efficacy.table_effect": [0, 0.5, 1.0, 0.8, 0.4]}


def with_scenarios(scenarios, **extra):
    doc = copy.deepcopy(BASE)
    doc["scenarios"] = scenarios
    doc["dropout"] = {"rate_per_week": 1.5, "no_response_hazard_ratio": 2.0}
    doc.update(extra)
    return ts.from_dict(doc)


def test_each_scenario_is_the_study_with_its_overrides():
    s = with_scenarios({"base": {}, "flat": {"response.efficacy.emax": 0},
                        "umbrella": UMBRELLA})
    assert list(s.scenarios) == ["base", "flat", "umbrella"]
    by_hand = copy.deepcopy(BASE)
    by_hand["dropout"] = {"rate_per_week": 1.5, "no_response_hazard_ratio": 2.0}
    by_hand["response"]["efficacy"].update(table_exposure=UMBRELLA[
        "response.efficacy.table_exposure"], table_effect=UMBRELLA["response.efficacy.table_effect"])
    sims = ts.simulate(s, 120, seed=6)
    alone = simulate_phase2(ts.from_dict(by_hand), 120, seed=6)
    for f in ("arm", "dropout_h", "y", "signal", "td", "forward"):
        np.testing.assert_array_equal(getattr(sims.results["umbrella"].arrays, f),
                                      getattr(alone.arrays, f), err_msg=f)


def test_a_nested_scenario_change_merges_as_a_dotted_one():
    """``flat: {response: {efficacy: {emax: 0}}}`` is ``response.efficacy.emax: 0`` (it
    replaced the whole response section: 'missing type:'), and so is ``--set``'s
    ``scenarios.flat.response.efficacy.emax``; a mapping with ``type:`` still replaces."""
    dotted = with_scenarios({"flat": {"response.efficacy.emax": 0}})
    nested = with_scenarios({"flat": {"response": {"efficacy": {"emax": 0}}}})
    assert nested.scenarios["flat"].efficacy == dotted.scenarios["flat"].efficacy
    assert nested.scenarios["flat"].efficacy != dotted.efficacy
    new = copy.deepcopy(BASE["response"]["efficacy"])
    new["emax"] = 0
    assert with_scenarios({"flat": {"response.efficacy": new}}).scenarios["flat"].efficacy \
        == dotted.scenarios["flat"].efficacy


def test_scenarios_share_patients_randomisation_and_dropout_draws():
    s = with_scenarios({"base": {}, "flat": {"response.efficacy.emax": 0},
                        "placebo_heavy": {"response.efficacy.placebo_plateau": 9.0}})
    sims = simulate_scenarios(s, 200, seed=3)
    a = {k: r.arrays for k, r in sims.results.items()}
    np.testing.assert_array_equal(a["base"].arm, a["flat"].arm)
    np.testing.assert_array_equal(a["base"].arm, a["placebo_heavy"].arm)
    # the placebo arm's outcomes do not depend on the drug effect: identical under flat
    plc = a["base"].arm == 0
    np.testing.assert_array_equal(a["base"].y[plc], a["flat"].y[plc])
    # a stronger placebo response shifts every placebo patient's change by the plateau
    # difference, except the rare scores held at MADRS 0
    d = a["placebo_heavy"].y[plc] - a["base"].y[plc]
    d = d[np.isfinite(d)]
    shift = -4.0 * (1 - 2.0 ** -24)
    assert np.isclose(d, shift, rtol=1e-9).mean() > 0.99
    assert ((d >= shift - 1e-9) & (d <= 0)).all()
    # the tables stack the scenarios
    m = sims.metrics()
    assert list(dict.fromkeys(m["scenario"])) == ["base", "flat", "placebo_heavy"]
    assert (sims.trials.groupby("scenario").size() == 200).all()


def test_tabulated_dose_response_matches_the_closed_form():
    """Exposure = dose, no spread in sensitivity: the true change is the placebo part minus
    emax times the table interpolated at the dose."""
    s = with_scenarios({"umbrella": UMBRELLA}).scenarios["umbrella"]
    tr = phase2_truth(s, seed=2)
    rel = np.array([0, 0.5, 1.0, 0.8, 0.4])
    expect = -5.0 * (1 - 2.0 ** -24) - 5.0 * rel
    np.testing.assert_allclose(tr.mean, expect, atol=4 * tr.mean_se.max())
    # TD(2) on the grid: 5 * interp(d) = 2 at relative 0.4, d = 0.2
    assert tr.td == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize("scenarios,path,words", [
    ({"x": {"design.n_total": 50}}, ("scenarios", "x", "design.n_total"), "world, not the trial"),
    ({"x": {"response.efficacy.emax": -1}}, ("scenarios", "x", "response", "efficacy", "emax"),
     "in scenario 'x'"),
    ({"x": {"response.efficacy.table_effect": [0, 2]}},
     ("scenarios", "x", "response", "efficacy"), "table_exposure"),
    ({"x": [1]}, ("scenarios", "x"), "mapping"),
    ({}, ("scenarios",), "1 to 50"),
    ({"bad name!": {}}, ("scenarios", "bad name!"), "scenario's name"),
])
def test_scenario_errors_name_the_scenario_and_path(scenarios, path, words):
    with pytest.raises(ConfigError) as ei:
        with_scenarios(scenarios)
    errs = getattr(ei.value, "errors", [ei.value])
    assert any(tuple(e.path[:len(path)]) == path and words in str(e) for e in errs), \
        [(e.path, str(e)) for e in errs]


def test_cli_runs_a_scenario_set_and_one_scenario(tmp_path, capsys):
    import yaml

    doc = copy.deepcopy(BASE)
    doc["scenarios"] = {"base": {}, "flat": {"response.efficacy.emax": 0}}
    cfg = tmp_path / "p2.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["run", str(cfg), "--trials", "30", "--out", str(tmp_path / "all")]) == 0
    out = capsys.readouterr().out
    assert "operating characteristics per scenario" in out and "flat" in out
    import pandas as pd
    m = pd.read_csv(tmp_path / "all" / "metrics.csv")
    assert set(m["scenario"]) == {"base", "flat"}
    # the resolved study.yaml loads back with its scenarios
    again = ts.load(tmp_path / "all" / "study.yaml")
    assert list(again.scenarios) == ["base", "flat"]
    assert main(["run", str(cfg), "--trials", "30", "--scenario", "flat",
                 "--out", str(tmp_path / "flat")]) == 0
    assert main(["run", str(cfg), "--trials", "30", "--scenario", "nope",
                 "--out", str(tmp_path / "nope")]) != 0
    assert "no scenario 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


def test_active_placebo_shifts_the_control_arm_only():
    """Midazolam-like control with effect 3 (no spread), peaking with the drug effect at 24 h:
    the control arm's true change is the placebo part minus 3 (g(24 h) = 1); the drug arms are
    untouched, patient for patient, under common random numbers."""
    s = with_scenarios({"saline": {}, "midazolam": {"control": {"name": "midazolam",
                                                                 "effect": 3.0}}})
    tr = phase2_truth(s.scenarios["midazolam"], seed=2)
    d = np.asarray(s.doses)
    expect = -5.0 * (1 - 2.0 ** -24) - 5.0 * d / (0.3 + d)
    expect[0] -= 3.0
    np.testing.assert_allclose(tr.mean, expect, atol=4 * tr.mean_se.max())
    sims = simulate_scenarios(s, 100, seed=5)
    a, b = sims.results["saline"].arrays, sims.results["midazolam"].arrays
    drug = a.arm > 0
    np.testing.assert_array_equal(a.y[drug], b.y[drug])
    plc = (a.arm == 0) & np.isfinite(a.y) & np.isfinite(b.y)
    d = b.y[plc] - a.y[plc]
    assert np.isclose(d, -3.0, rtol=1e-9).mean() > 0.99      # but scores held at MADRS 0
    assert ((d >= -3.0 - 1e-9) & (d <= 0)).all()


def test_active_placebo_profile_must_be_complete():
    with pytest.raises(ConfigError) as ei:
        with_scenarios({"m": {"control": {"effect": 3.0, "peak_h": 10}}})
    assert "onset_h" in str(ei.value) and "scenarios" in str(ei.value)
