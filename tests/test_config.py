"""Every config in configs/ loads; bad configs give errors naming file, YAML path and expectation."""
from pathlib import Path

import pytest
import yaml

import trialsim as ts
from trialsim.cli import main
from trialsim.config import apply_overrides
from trialsim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
#: Study files (sweep files under configs/sweeps/ are loaded in tests/test_sweep.py).
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "sweeps" not in p.parts)

GOOD = {"doses": [1, 2, 3, 4, 5], "truth": {"tox": [0.05, 0.10, 0.30, 0.45, 0.60]},
        "design": {"type": "crm", "target": 0.30, "skeleton": [0.05, 0.12, 0.25, 0.40, 0.55],
                   "cohort_size": 3, "max_patients": 30}}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_loads(path):
    study = ts.load(path)
    assert study.n_doses == len(yaml.safe_load(path.read_text())["doses"])


def test_there_are_configs():
    assert any(p.name == "ketamine_iv_trd.yaml" for p in CONFIGS)
    assert len([p for p in CONFIGS if "examples" in p.parts]) >= 2


def write(tmp_path, doc, name="study.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc))
    return p


def override(**changes):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    return apply_overrides(doc, [f"{k.replace('__', '.')}={yaml.safe_dump(v).strip()}" if not isinstance(v, str)
                                 else f"{k.replace('__', '.')}={v}" for k, v in changes.items()])


BAD = [
    # (document, path in message, words expected in the message)
    (override(truth__tox__2=1.3), "truth.tox[2]", "probability between 0 and 1"),
    (override(doses__0=-1), "doses[0]", ">= 0"),
    (override(doses=[1, 3, 2, 4, 5]), "doses", "strictly increasing"),
    (override(design__skeleton=[0.05, 0.25, 0.12, 0.40, 0.55]), "design.skeleton", "increasing"),
    (override(design__skeleton=[0.05, 0.12, 0.25, 0.40]), "design.skeleton", "one skeleton probability per dose"),
    (override(design__target=1.3), "design.target", ""),
    (override(design__cohort_sise=3), "design.cohort_sise", "unknown key"),
    (override(design__type="crn"), "design.type", "unknown design type 'crn'"),
    (override(truth__tox=[0.1, 0.2]), "truth.tox", "one probability per dose"),
    (override(color="red"), "color", "unknown top-level key"),
    (override(design__modifiers=[{"type": "stop_at_n", "m": 3}]), "design.modifiers[0].m", "unknown key"),
    # a rule that can never fire (the trial ends at max_patients first)
    (override(design__modifiers=[{"type": "stop_at_n", "n": 40}]), "design.modifiers[0].n",
     "at most the design's max_patients"),
    (override(design__modifiers=[{"type": "cohort_sizes", "initial": 50}]),
     "design.modifiers[0].initial", "at most the design's max_patients (30)"),
    # degenerate or ignored CRM settings
    (override(design__prior_sd=1e-12), "design.prior_sd", "greater than or equal to 0.01"),
    (override(design__intercept=7), "design.intercept", "applies to model: logistic"),
    (override(design__startup=[30, 30, 30, 30, 30]), "design.startup",
     "would take the whole trial"),
    (override(design__max_patients="thirty"), "design.max_patients", ""),
    (override(target=0), "target", "strictly between 0 and 1"),
    # the design's check of the study's doses is reported where the doses are written
    (override(doses=[0, 1, 2, 3, 4], design={"type": "blrm", "max_patients": 30}), "doses",
     "positive and strictly increasing"),
    (override(truth__eff=[0.1, 0.2, 0.3, 0.4, 0.5],
              design={"type": "efftox", "efficacy_hurdle": 0.5, "toxicity_hurdle": 0.3,
                      "eff0": 0.5, "tox1": 0.65, "eff_star": 0.7, "tox_star": 0.25,
                      "prior_mean": [0, 0, 0], "prior_sd": [1, 1, 1, 1, 1, 1, 1]}),
     "design.prior_mean", "expected 6 values, got 3"),
    (override(truth__eff=[0.1, 0.2, 0.3, 0.4, 0.5],
              design={"type": "efftox", "efficacy_hurdle": 0.5, "toxicity_hurdle": 0.3,
                      "eff0": 0.5, "tox1": 0.65, "eff_star": 0.7, "tox_star": 0.25,
                      "prior_mean": [0] * 6, "prior_sd": [1] * 7}),
     "design.prior_sd", "expected at most 6 values, got 7"),
]


@pytest.mark.parametrize("doc, where, words", BAD, ids=[b[1] for b in BAD])
def test_bad_config_messages(tmp_path, doc, where, words):
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as exc:
        ts.load(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert f": {where}: " in msg
    assert words in msg


def test_all_section_errors_reported_together(tmp_path):
    doc = override(truth__tox__0=2, design__target=-1)
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as exc:
        ts.load(path)
    text = str(exc.value)
    assert "truth.tox[0]" in text and "design.target" in text


def test_modifier_errors_are_reported_with_the_design_errors(tmp_path):
    """A design that cannot be built does not hide its modifiers' errors: their types and keys
    are checked too, in the same report."""
    doc = override(design__target=1.3, design__modifiers=[
        {"type": "dont_skip_dose"}, {"type": "stop_when_too_toxic", "dose": 0, "threshold": 0.3},
        {"type": "stop_at_n", "m": 3}])
    with pytest.raises(ConfigError) as exc:
        ts.load(write(tmp_path, doc))
    paths = [e.path for e in exc.value.errors]
    assert paths == [("design", "target"), ("design", "modifiers", 0, "type"),
                     ("design", "modifiers", 1, "prob"), ("design", "modifiers", 2, "m"),
                     ("design", "modifiers", 2, "n")]
    doc = override(design__modifiers=[{"type": "stop_at_n", "n": 0}, {"type": "stop_at_n"}])
    with pytest.raises(ConfigError) as exc:       # after a modifier with errors
        ts.load(write(tmp_path, doc))
    assert [e.path for e in exc.value.errors] == [("design", "modifiers", 0, "n"),
                                                  ("design", "modifiers", 1, "n")]


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("doses: [1, 2\ndesign: {type: crm\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: .*not valid YAML at line \d+"):
        ts.load(p)


def test_unsafe_yaml_is_rejected(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("doses: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ts.load(p)


def test_overrides_and_resolved_config(tmp_path):
    path = write(tmp_path, GOOD)
    study = ts.load(path, overrides=["design.target=0.25", "design.skeleton.0=0.02",
                                     "design.skeleton[1]=0.11"])   # as error paths print it
    assert study.design.target == 0.25 and study.design.skeleton[:2] == (0.02, 0.11)
    resolved = study.config["design"]
    assert resolved["type"] == "crm" and resolved["target"] == 0.25
    assert "prior_sd" in resolved  # defaults are written out
    # the resolved config loads back to an equal design
    again = ts.from_dict(study.config)
    assert again.design == study.design


def test_validate_command(tmp_path, capsys):
    good = write(tmp_path, GOOD, "good.yaml")
    bad = write(tmp_path, override(truth__tox__2=1.3), "bad.yaml")
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "good.yaml: OK" in out and "truth.tox[2]" in out
    assert main(["validate", str(good), "--set", "design.target=1.5"]) == 1    # as run's --set
    assert "good.yaml: design.target" in capsys.readouterr().out


def test_validate_checks_a_sweep_file_as_a_sweep(tmp_path, capsys):
    """A sweep file was read as a study (eight 'unknown top-level key' errors); now every cell
    is checked as ``trialsim sweep`` checks it, and an error names the cell and the path."""
    write(tmp_path, GOOD, "good.yaml")
    sweep = tmp_path / "s.yaml"
    sweep.write_text("study: good.yaml\nn_trials: 10\nseed: 1\n"
                     "axes: {design.target: [0.2, 0.3]}\n")
    assert main(["validate", str(sweep)]) == 0
    assert "s.yaml: OK (a sweep of 2 cells)" in capsys.readouterr().out
    sweep.write_text("study: good.yaml\nn_trials: 10\nseed: 1\n"
                     "axes: {design.target: [0.2, 1.5]}\n")
    assert main(["validate", str(sweep)]) == 1
    out = capsys.readouterr().out
    assert "s.yaml: 1 error" in out and "cell 1 (design.target=1.5)" in out, out
    assert main(["validate", str(sweep), "--set", "n_trials=3"]) == 1
    assert "--set changes study files" in capsys.readouterr().out
