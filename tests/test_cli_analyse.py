"""``trialsim analyse DATA.csv --models PLAN.yaml``: MCP-Mod on a trial's data from the command
line, printed and written as JSON; bad input named by file, YAML path or CSV row and column.

Reference values for the example data (examples/ketamine_phase2_trial.csv, one simulated
trial) were computed with R DoseFinding 1.0.3: ``MCPMod(dose_mg_per_kg, madrs_change_24h, d,
models = Mods(linear = NULL, emax = 0.1, sigEmax = c(0.3, 3), exponential = 0.5, quadratic =
-0.85, doses = c(0, 0.1, 0.2, 0.5, 1), direction = "decreasing"), addCovars = ~baseline_madrs,
Delta = 8, selModel = "AIC", alpha = 0.025)`` on the rows with a response.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "ketamine_phase2_trial.csv"
PLAN = ROOT / "examples" / "ketamine_mcpmod_plan.yaml"

R_T = {"linear": 6.473390, "emax": 7.002877, "sig_emax": 6.149211, "exponential": 5.915014,
       "quadratic": 4.988105}
R_AIC = {"linear": 669.5490, "emax": 663.5056, "sig_emax": 664.2441, "exponential": 673.1815,
         "quadratic": 667.8418}
R_EMAX = {"e0": -4.331532562, "emax": -15.852815560, "ed50": 0.182374040}
R_TD = {"linear": 0.6653594, "emax": 0.1857923, "sig_emax": 0.1862258, "exponential": 0.7340538,
        "quadratic": 0.3852817}


def test_analyse_example_matches_dosefinding(tmp_path, capsys):
    out = tmp_path / "res.json"
    assert main(["analyse", str(DATA), "--models", str(PLAN), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "99 patients at 5 doses (1 row without a response left out)" in text
    assert "Target dose TD(delta = 8): 0.1858" in text
    doc = json.loads(out.read_text())
    res = doc["result"]
    for m, t in R_T.items():
        assert res["t"][m] == pytest.approx(t, abs=5e-6)
    assert res["signal"] is True
    for m, a in R_AIC.items():
        assert res["fits"][m]["aic"] == pytest.approx(a, abs=2e-4)
    emax = res["fits"]["emax"]["params"]
    for k, v in R_EMAX.items():
        assert emax[k] == pytest.approx(v, rel=1e-4)
    assert res["selected"] == "emax"
    for m, td in R_TD.items():
        assert res["target"]["by_model"][m] == pytest.approx(td, rel=2e-5)
    assert res["target"]["dose"] == pytest.approx(R_TD["emax"], rel=2e-5)
    assert doc["n_patients"] == 99 and doc["rows_without_response"] == 1
    assert doc["plan"]["direction"] == "decreasing"
    # the phase II decision rule: the smallest studied dose at or above TD(8) = 0.1858
    assert "Dose to take forward (the smallest studied dose at or above the target dose): 0.2" \
        in text
    assert doc["take_forward"]["dose"] == 0.2


def test_no_signal_takes_no_dose_forward(tmp_path, capsys):
    """The example's responses shuffled across patients: no dose-response signal, no-go."""
    import numpy as np
    import pandas as pd

    d = pd.read_csv(DATA)
    d["madrs_change_24h"] = np.random.default_rng(3).permutation(d["madrs_change_24h"].to_numpy())
    data = tmp_path / "flat.csv"
    d.to_csv(data, index=False)
    out = tmp_path / "flat.json"
    assert main(["analyse", str(data), "--models", str(PLAN), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "no dose-response signal" in text and "none, no-go (no dose-response signal)" in text
    assert json.loads(out.read_text())["take_forward"]["dose"] is None


def test_default_output_is_named_after_the_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["analyse", str(DATA), "--models", str(PLAN)]) == 0
    assert (tmp_path / "ketamine_phase2_trial.mcpmod.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ketamine_phase2_trial.mcpmod.json"]


def _plan(tmp_path, text):
    p = tmp_path / "plan.yaml"
    p.write_text(text)
    return p


def _csv(tmp_path, text):
    p = tmp_path / "data.csv"
    p.write_text(text)
    return p


GOOD_CSV = "dose,response\n" + "".join(f"{d},{0.1 * i + d}\n" for i in range(8)
                                       for d in (0, 0.5, 1, 2))


@pytest.mark.parametrize("plan, data, expected", [
    ("models: {emax: 0.2}\nalpha: 0.025\n", GOOD_CSV,
     "plan.yaml: give exactly one of delta"),
    ("models: {emax: 0.2}\ndelta: 0.3\nselection: BIC\n", GOOD_CSV, "plan.yaml: selection"),
    ("models: {emax: -1}\ndelta: 0.3\n", GOOD_CSV, "plan.yaml: models:"),
    ("models: {cubic: 1}\ndelta: 0.3\n", GOOD_CSV, "plan.yaml: models:"),
    ("models: [emax]\ndelta: 0.3\n", GOOD_CSV, "plan.yaml: models: expected a mapping"),
    ("models: {emax: 0.2}\ndelta: 0.3\ncolumns: {dose: dosis}\n", GOOD_CSV,
     "data.csv: column 'dosis' not found"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n0,1\n0.5,abc\n",
     "data.csv: line 3, column 'response': expected a number, got 'abc'"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n0,1\n,2\n",
     "data.csv: line 3, column 'dose': a value is missing"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n0,1\n-0.5,2\n1,3\n",
     "data.csv: doses must be >= 0 (placebo 0), got -0.5"),
    ("models: {emax: 0.2}\ndelta: 0.3\nendpoint: binary\n", GOOD_CSV,
     "a binary endpoint takes 0 or 1"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n", "has a header but no data rows"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n0,1\n0,2\n",
     "data.csv:"),
    # no responses at all; none in one arm (placebo); no variation; an exact fit
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n0,\n0.5,NA\n1,\n",
     "data.csv: column 'response': no patient has a response"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n" + "".join(f"0,\n0.5,{i}\n1,{2 * i}\n" for i in range(4)),
     "data.csv: column 'response': no patient at placebo (dose 0) has a response"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n" + "0,1\n0.5,1\n1,1\n" * 4,
     "every response is 1: no variation"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", "dose,response\n" + "0,0\n0.5,1\n1,2\n" * 4,
     "fit the responses exactly"),
    # covariates that are another role's column, or twice the same; collinear ones
    ("models: {emax: 0.2}\ndelta: 0.3\ncovariates: [dose]\n", GOOD_CSV,
     "plan.yaml: covariates: covariate 'dose' is the dose column"),
    ("models: {emax: 0.2}\ndelta: 0.3\ncovariates: [response]\n", GOOD_CSV,
     "plan.yaml: covariates: covariate 'response' is the response column"),
    ("models: {emax: 0.2}\ndelta: 0.3\ncovariates: [b, b]\n", GOOD_CSV,
     "plan.yaml: covariates: covariate 'b' is listed twice"),
    ("models: {emax: 0.2}\ndelta: 0.3\ncovariates: [b, c]\n",
     "dose,response,b,c\n" + "".join(f"{d},{i + d},{i % 3},{2 * (i % 3)}\n" for i in range(8)
                                      for d in (0, 0.5, 1)),
     "collinear with the doses or with each other"),
    # a patient twice; one dose written two ways
    ("models: {emax: 0.2}\ndelta: 0.3\ncolumns: {patient: id}\n",
     "id,dose,response\n" + "".join(f"P{i},{i % 3 / 2},{i}\n" for i in range(12)) + "P4,0.5,3\n",
     "data.csv: line 14, column 'id': patient P4 has an earlier row"),
    ("models: {emax: 0.2}\ndelta: 0.3\n", GOOD_CSV + "0.5000000001,3\n",
     "doses 0.5 and 0.5000000001 differ by less than a millionth"),
])
def test_bad_input_is_named(tmp_path, capsys, plan, data, expected):
    p, d = _plan(tmp_path, plan), _csv(tmp_path, data)
    out = tmp_path / "out.json"
    assert main(["analyse", str(d), "--models", str(p), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_output_to_a_folder_is_refused(tmp_path, capsys):
    assert main(["analyse", str(DATA), "--models", str(PLAN), "--out", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err


VISITS = ROOT / "examples" / "ketamine_phase2_visits.csv"
MMRM_PLAN = ROOT / "examples" / "ketamine_mmrm_plan.yaml"
#: R nlme 3.1: gls(madrs_change ~ 0 + arm:visit + visit:bc, correlation = corSymm(form = ~ vi |
#: patient), weights = varIdent(form = ~ 1 | visit), method = "REML") on the rows with a
#: response, bc the baseline centred over the patients: the arm means at 24 h.
R_MMRM_24H = [-5.54317932, -11.02884306, -14.04780764, -16.94407146, -16.33306039]


def test_analyse_long_data_by_the_repeated_measures_model(tmp_path, capsys):
    out = tmp_path / "mm.json"
    assert main(["analyse", str(VISITS), "--models", str(MMRM_PLAN), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "100 patients at 5 doses, 4 visits" in text and "96 patients seen there" in text
    doc = json.loads(out.read_text())
    est = doc["result"]["endpoint_estimates"]
    assert est["estimates"] == pytest.approx(R_MMRM_24H, abs=2e-6)
    assert doc["longitudinal"]["primary_visit"] == 24
    # the same numbers from the Python API
    import numpy as np
    import pandas as pd
    from trialsim.analysis.doseresponse import analyse
    from trialsim.analysis.longitudinal import mmrm

    d = pd.read_csv(VISITS)
    Y = d.pivot(index="patient", columns="visit_h", values="madrs_change").to_numpy()
    per = d.groupby("patient").first()
    levels = np.unique(per["dose_mg_per_kg"])
    fit = mmrm(Y, np.searchsorted(levels, per["dose_mg_per_kg"]), 5, 1,
               per["baseline_madrs"].to_numpy())
    res = analyse(fit.to_dose_estimates(levels), {"linear": None, "emax": 0.1,
                  "sig_emax": [0.3, 3], "exponential": 0.5, "quadratic": -0.85},
                  delta=8.0, direction="decreasing")
    assert list(doc["result"]["t"].values()) == pytest.approx(list(res.test.t), rel=1e-12)
    assert doc["result"]["target"]["dose"] == pytest.approx(res.dose, rel=1e-9)


def test_long_data_take_text_patient_ids(tmp_path, capsys):
    """Subject ids such as ``P001`` (they had to be numbers): the same analysis as with the
    numeric ids."""
    import pandas as pd

    d = pd.read_csv(VISITS)
    mixed = d.astype({"patient": object})
    mixed.loc[::2, "patient"] = [f"{p}.0" for p in d["patient"][::2]]   # 1 and 1.0: one id
    mixed_ids = tmp_path / "mixed.csv"
    mixed.to_csv(mixed_ids, index=False)
    d["patient"] = [f"P{p:03d}" for p in d["patient"]]
    text_ids = tmp_path / "visits.csv"
    d.to_csv(text_ids, index=False)
    outs = []
    for data in (VISITS, text_ids, mixed_ids):
        outs.append(tmp_path / f"{data.stem}-{len(outs)}.json")
        assert main(["analyse", str(data), "--models", str(MMRM_PLAN), "--out",
                     str(outs[-1])]) == 0
    one, *others = (json.loads(o.read_text())["result"] for o in outs)
    for two in others:
        assert list(two["t"].values()) == pytest.approx(list(one["t"].values()), rel=1e-9)
        assert two["target"]["dose"] == pytest.approx(one["target"]["dose"], rel=1e-9)
        assert two["selected"] == one["selected"]


@pytest.mark.parametrize("rows,plan_extra,expected", [
    ("patient,dose,visit,y\n1,0,24,1\n2,0,24,2\n3,1,4,3\n3,1,24,\n", {},
     "no patient at dose 1 has a response at the primary visit (visit 24)"),
    ("patient,dose,visit,y\n1,0,24,1\n1,0,24,2\n2,1,24,3\n", {}, "has visit 24 twice"),
    ("patient,dose,visit,y\n1,0,4,1\n2,1,4,3\n", {}, "primary_visit 24 is not a value"),
    ("patient,dose,visit,y\n1,0,4,1\n1,1,24,2\n2,1,24,3\n", {}, "same on every visit"),
    ("patient,dose,visit,y\n1,0,24,1\n", {"endpoint": "binary"}, "continuous endpoint"),
])
def test_bad_long_data_is_named(tmp_path, capsys, rows, plan_extra, expected):
    import yaml

    data = tmp_path / "d.csv"
    data.write_text(rows)
    plan = {"models": {"linear": None}, "delta": 1.0, "columns": {"dose": "dose",
            "response": "y"}, "longitudinal": {"primary_visit": 24}, **plan_extra}
    plan_file = tmp_path / "p.yaml"
    plan_file.write_text(yaml.safe_dump(plan))
    assert main(["analyse", str(data), "--models", str(plan_file),
                 "--out", str(tmp_path / "o.json")]) != 0
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
