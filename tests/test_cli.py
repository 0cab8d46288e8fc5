"""The front door: trialsim run / validate / show, and atomic outputs."""
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

import trialsim as ts
from trialsim.cli import main
from trialsim.store import write_outputs

ROOT = Path(__file__).resolve().parents[1]
CRM = ROOT / "configs" / "examples" / "crm_direct.yaml"


def test_run_writes_everything(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", str(CRM), "--trials", "300", "--seed", "4", "--out", str(out),
                 "--set", "design.target=0.25"]) == 0
    printed = capsys.readouterr().out
    assert "selected_pct" in printed and "correct_selection_pct" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.csv", "patients.parquet", "study.yaml", "summary.csv", "trials.parquet"]
    summary = pd.read_csv(out / "summary.csv")
    for col in ("dose", "true_tox", "selected_pct", "selected_se", "patients_mean", "dlt_mean"):
        assert col in summary.columns
    assert summary.dose.iloc[-1] == "none" and len(summary) == 6
    resolved = yaml.safe_load((out / "study.yaml").read_text())
    assert resolved["run"]["seed"] == 4 and resolved["run"]["n_trials"] == 300
    assert resolved["run"]["trialsim_version"] == ts.__version__
    assert resolved["design"]["target"] == 0.25
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 300
    meta = pq.read_schema(out / "trials.parquet").metadata
    assert yaml.safe_load(meta[b"trialsim.study"])["run"]["seed"] == 4
    # the run is reproducible from its resolved study.yaml
    again = ts.simulate(ts.load(CRM, ["design.target=0.25"]), 300, seed=4)
    pd.testing.assert_frame_equal(again.trials, trials)
    # nothing temporary left beside the output
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_resolved_study_yaml_loads_and_reproduces(tmp_path):
    out = tmp_path / "r"
    assert main(["run", str(CRM), "--trials", "100", "--seed", "8", "--out", str(out)]) == 0
    doc = yaml.safe_load((out / "study.yaml").read_text())
    doc.pop("run")
    sims = ts.simulate(ts.from_dict(doc), 100, seed=8)
    pd.testing.assert_frame_equal(sims.trials, pd.read_parquet(out / "trials.parquet"))


def test_failed_write_leaves_nothing(tmp_path):
    def boom(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_outputs(tmp_path / "out", {"a.csv": lambda p: p.write_text("x"), "b.csv": boom})
    assert list(tmp_path.iterdir()) == []


def test_run_reports_config_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("doses: [1, 2]\ntruth: {tox: [0.1, 1.2]}\ndesign: {type: three_plus_three}\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml: truth.tox[1]" in err
    assert not (tmp_path / "o").exists()


def test_show_lists_registered_types(capsys):
    assert main(["show", "design"]) == 0
    out = capsys.readouterr().out.split()
    assert "crm" in out and "three_plus_three" in out


def test_show_pk_prints_parameters_and_citation(capsys):
    assert main(["show", "pk"]) == 0
    names = capsys.readouterr().out.split()
    assert "ketamine_domino" in names and "esketamine_in_perez_ruixo" in names
    assert main(["show", "pk", "ketamine_domino"]) == 0
    text = capsys.readouterr().out
    assert "V1" in text and "PMID 7198883" in text
    # the route as a study file writes it (it was a Python repr)
    assert "default route: {type: infusion, duration_h: 0.666667}" in text
    assert main(["show", "pk", "nope"]) == 1


def test_table_prints_boundaries_and_pathways_and_writes_csv(tmp_path, capsys):
    """BOIN, target 0.3: after 0/3 escalate, 1/3 stay, 2/3 stay (de-escalation at the lowest
    dose), 3/3 stop (dose 1 eliminated); 2 cohorts give 1 + 4 + 3 * 4 rows (the stop has no
    children); the boundary table is R BOIN's (n = 3: <= 0, >= 2, >= 3)."""
    cfg = ROOT / "configs" / "examples" / "boin_direct.yaml"
    assert main(["table", str(cfg), "--cohorts", "2", "--out", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "boundaries at the current dose" in out and "dose-transition pathways" in out
    paths = pd.read_csv(tmp_path / "t" / "pathways.csv")
    assert len(paths) == 1 + 4 + 3 * 4
    first = paths[paths.cohort == 1].set_index("dlts")
    assert first.next_level.tolist()[:3] == [2, 1, 1] and bool(first.loc[3, "stop"])
    bounds = pd.read_csv(tmp_path / "t" / "boundaries.csv").set_index("patients_at_dose")
    assert bounds.loc[3].tolist() == [0, 2, 3]
    crm = ROOT / "configs" / "examples" / "crm_direct.yaml"     # no boundary table
    assert main(["table", str(crm), "--out", str(tmp_path / "t")]) == 0
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["pathways.csv"]  # replaced whole
    (tmp_path / "mine.txt").write_text("not trialsim's")
    assert main(["table", str(cfg), "--out", str(tmp_path)]) == 1
    assert "holds files trialsim did not write" in capsys.readouterr().err
    assert main(["table", str(cfg), "--set", "design.target=0.25"]) == 0      # as run's --set
    with_set = capsys.readouterr().out
    edited = tmp_path / "edited.yaml"
    edited.write_text(cfg.read_text().replace("target: 0.30,", "target: 0.25,"))
    assert main(["table", str(edited)]) == 0
    assert capsys.readouterr().out == with_set
    assert main(["table", str(cfg)]) == 0
    assert capsys.readouterr().out != with_set
    assert main(["table", str(cfg), "--history", "1NNN 9NNN"]) == 1
    assert "--history '1NNN 9NNN'" in capsys.readouterr().err


def test_table_header_gives_the_cohort_sizes_the_design_sets(tmp_path, capsys):
    """Accelerated titration treats one patient per dose, then expands the first dose with a
    DLT by two: the header says so instead of its nominal cohorts of 3."""
    cfg = tmp_path / "at.yaml"
    cfg.write_text("doses: [1, 2, 3, 4, 5]\ntarget: 0.3\ntruth: {tox: [0.05, 0.1, 0.2, 0.35, 0.5]}\n"
                   "design: {type: accelerated_titration}\n")
    assert main(["table", str(cfg)]) == 0
    assert ("over 2 cohorts of 1 or 2 patients (sizes set by the design; dose levels from 1)"
            in capsys.readouterr().out)


def test_a_short_history_s_table_keeps_its_columns_and_a_stop_says_only_why(capsys):
    """BLRM after 1NTT: no dose passes EWOC.  The header's columns stay apart (they ran
    together as 'outcomesnext') and the reason is the stop's alone (it began 'stay: ...')."""
    cfg = ROOT / "configs" / "examples" / "blrm_ewoc.yaml"
    assert main(["table", str(cfg), "--history", "1NTT", "--cohorts", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["outcomes", "next", "selects", "reason"]
    assert lines[3].split(None, 3) == ["1NTT", "stop", "-", "stop: no dose passes the overdose "
                                       "control (P(DLT rate >= upper) < overdose_prob)"]


def test_a_tite_crm_table_says_it_assumes_complete_follow_up(capsys):
    assert main(["table", str(ROOT / "configs" / "examples" / "tite_crm.yaml"),
                 "--cohorts", "1"]) == 0
    assert "followed to the end of the window here" in capsys.readouterr().out


def test_table_pathways_follow_decide_for_the_crm():
    from trialsim.designs.tables import dose_transition_pathways

    study = ts.load(ROOT / "configs" / "examples" / "crm_direct.yaml")
    df = dose_transition_pathways(study.design, study.doses, cohorts=3, history="1NNN")
    assert len(df) == 1 + 4 + 16 + 64
    for r in df.sample(20, random_state=1).itertuples():
        d = study.design.decide(r.path)
        assert r.next_level == d.next_dose + 1 and r.recommended_level == d.recommended + 1
