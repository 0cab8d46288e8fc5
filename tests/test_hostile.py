"""Hostile and careless use: every case ends with a clear error (file, YAML path or option,
what was expected), a non-zero exit, no traceback, and no output written; an earlier run's
results are never destroyed or mixed.  Cases from the review of the foundation."""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import trialsim as ts
from trialsim.cli import main
from trialsim.config import read_yaml
from trialsim.errors import ConfigError
from trialsim.store import write_outputs

ROOT = Path(__file__).resolve().parents[1]
CRM = ROOT / "configs" / "examples" / "crm_direct.yaml"
FLAGSHIP = ROOT / "configs" / "ketamine_iv_trd.yaml"
IN_STUDY = ROOT / "configs" / "esketamine_in_trd.yaml"
MM = ROOT / "configs" / "examples" / "mm_crm.yaml"


def _doc(path: Path) -> dict:
    return read_yaml(path)


def _set(doc: dict, path: tuple, value) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def _refused(doc: dict, path: tuple, *words: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        ts.from_dict(doc, name_default="x")
    errs = getattr(ei.value, "errors", [ei.value])
    hit = [e for e in errs if e.path[:len(path)] == path]
    assert hit, f"no error at {path}: {[str(e) for e in errs]}"
    for w in words:
        assert any(w in e.message for e in hit), f"{w!r} not in {[str(e) for e in hit]}"
    return hit[0]


# ----------------------------------------------------------------------- silent acceptance
@pytest.mark.parametrize("path", [("design", "start_dose"), ("design", "cohort_size"),
                                  ("design", "prior_sd"), ("design", "max_patients")])
def test_true_is_not_a_number(path):
    _refused(_set(_doc(CRM), path, True), path, "got True")


@pytest.mark.parametrize("path,value", [
    (("population", "weight_kg", "median"), float("inf")),
    (("population", "weight_kg", "median"), 1e308),
    (("population", "weight_kg", "cv"), 1e308),
    (("response", "toxicity", "x50"), float("inf")),
    (("response", "toxicity", "x50"), 1e308),
    (("response", "toxicity", "slope"), 1e308),
    (("response", "efficacy", "ec50"), float("inf")),
    (("response", "efficacy", "hill"), 1e308),
    (("pk", "horizon_h"), 1e308),
    (("doses", 4), float("inf")),
    (("doses", 4), 1e308),
    (("doses", 4), 10**400),
])
def test_non_finite_and_huge_numbers_are_refused(path, value):
    _refused(_set(_doc(FLAGSHIP), path, value), path)


@pytest.mark.parametrize("route,words", [
    ({"type": "schedule", "events": [{"time_h": 0, "fraction": 0, "duration_h": 0.67}]},
     ("no drug",)),
    ({"type": "infusion", "duration_h": 1e308}, ("less than or equal",)),
    ({"type": "infusion", "duration_h": 1e5}, ("ends after horizon_h",)),
    ({"type": "infusion", "duration_h": 40}, ("for 40 h ends after horizon_h = 24 h",)),
    ({"type": "schedule", "events": [{"time_h": 30, "duration_h": 0.67}]}, ("delivers",)),
])
def test_regimens_that_deliver_no_drug_are_refused(route, words):
    _refused(_set(_doc(FLAGSHIP), ("pk", "route"), route), ("pk", "route"), *words)


@pytest.mark.parametrize("name", ["../escaped", "/abs", "", ".", "a/b", None, "a\nb", 3,
                                  "x" * 200])
def test_unsafe_study_names_are_refused(name):
    _refused(_set(_doc(CRM), ("name",), name), ("name",), "study name")


def test_duplicate_keys_and_yaml_1_2_floats(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text(CRM.read_text() + "\ndoses: [1, 2, 3, 4, 5]\n")
    with pytest.raises(ConfigError, match="given twice") as ei:
        ts.load(f)
    assert str(f) in str(ei.value)
    f.write_text(CRM.read_text().replace("doses: [1, 2, 3, 4, 5]", "doses: [1e-1, 2e-1, 3e-1, 4e-1, 5e-1]"))
    assert ts.load(f).doses == (0.1, 0.2, 0.3, 0.4, 0.5)


def test_yaml_alias_bomb_and_recursion_are_refused(tmp_path):
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, (prev, cur) in enumerate(zip("abcdef", "bcdefg")):
        bomb.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(bomb) + "\nname: *g\n")
    with pytest.raises(ConfigError, match="expands to more than"):
        ts.load(f)
    f.write_text("name: &n [*n]\n")
    with pytest.raises(ConfigError, match="refers to itself"):
        ts.load(f)


def test_non_utf8_file_names_the_file_and_validate_goes_on(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(CRM.read_bytes().replace(b"crm-direct", b"crm-\x80"))
    assert main(["validate", str(bad), str(CRM)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: not UTF-8 text" in out and f"{CRM}: OK" in out


def test_sections_given_as_null_or_wrong_types(tmp_path):
    _refused(_set(_doc(CRM), ("simulation",), None), ("simulation",), "expected a mapping")
    _refused(_set(_doc(MM), ("pk", "route", "type"), []), ("pk", "route", "type"), "name")
    _refused(_set(_doc(MM), ("pk", "solver"), {"max_steps": 1}), ("pk",), "max_steps")
    _refused(_set(_doc(MM), ("pk", "iiv", "Vmax"), 1e308), ("pk", "iiv", "Vmax"), "CV")


def test_design_checks_happen_at_validate():
    doc = _doc(CRM)
    doc["design"] = {"type": "three_plus_three", "modifiers": [
        {"type": "stop_when_too_toxic", "threshold": 0.3, "prob": 0.9}]}
    _refused(doc, ("design", "modifiers", 0), "toxicity model")
    doc["design"] = {"type": "three_plus_three", "n_doses": 4}
    _refused(doc, ("design", "n_doses"), "5 doses")
    _refused(_set(_doc(CRM), ("design", "skeleton"), [0.1, 0.2]), ("design", "skeleton"),
             "one skeleton probability per dose")
    _refused(_set(_doc(CRM), ("design", "max_patients"), 10**9), ("design", "max_patients"))
    doc = _doc(FLAGSHIP)
    doc["design"]["modifiers"][1]["dose"] = 7
    _refused(doc, ("design", "modifiers", 1, "dose"), "below 5")


def test_run_time_only_errors_now_have_paths():
    _refused(_set(_doc(FLAGSHIP), ("response", "toxicity", "exposure"), "auc_weird"),
             ("response", "toxicity", "exposure"), "unknown exposure metric")
    doc = _doc(FLAGSHIP)
    del doc["pk"]["ke0"]
    _refused(doc, ("response", "toxicity", "exposure"), "effect compartment")
    _refused(_set(_doc(FLAGSHIP), ("population", "baseline_madrs"),
                  {"dist": "normal", "mean": 33, "sd": 5}), ("population", "baseline_madrs"),
             "[0, 60]")
    _refused(_set(_doc(FLAGSHIP), ("population", "weight_kg"),
                  {"dist": "normal", "mean": 80, "sd": 20}), ("population", "weight_kg"), "> 0")
    # a weight in grams (or tonnes) would scale every mg/kg dose by 1000
    for median in (80_000, 0.08):
        _refused(_set(_doc(FLAGSHIP), ("population", "weight_kg"),
                      {"dist": "lognormal", "median": median, "cv": 0.2}),
                 ("population", "weight_kg"), "grams or tonnes?")
    _refused(_set(_doc(FLAGSHIP), ("response", "efficacy", "waning_h"), 0.001),
             ("response", "efficacy"), "waning_h")


def test_target_reads_through_modifiers():
    """The study's target defaults to the design's, also through modifiers (it used to fall
    back to 0.30 when the design was wrapped)."""
    doc = _doc(CRM)
    doc["design"]["target"] = 0.25
    doc["design"]["modifiers"] = [{"type": "dont_skip_doses"}]
    study = ts.from_dict(doc)
    assert study.target == 0.25 and study.design.target == 0.25
    sims = ts.simulate(study, 200, seed=2)
    assert sims.metrics().attrs["true_mtd"] == 3.0    # true tox 0.30 at dose 3 vs 0.1 at 2


# ----------------------------------------------------------------------------- the API
def test_api_misuse_raises_clear_errors():
    study = ts.load(CRM)
    with pytest.raises(TypeError, match="trialsim.load"):
        ts.simulate(str(CRM), 10, 1)
    with pytest.raises(TypeError, match="needs a Study"):
        ts.simulate(None, 10, 1)
    with pytest.raises(TypeError, match="n_trials"):
        ts.simulate(study, True, 1)
    with pytest.raises(TypeError, match="n_trials"):
        ts.simulate(study, 2.5, 1)
    with pytest.raises(ValueError, match="n_trials"):
        ts.simulate(study, 0, 1)
    with pytest.raises(ValueError, match="seed"):
        ts.simulate(study, 10, -1)
    with pytest.raises(ValueError, match="GiB"):
        ts.simulate(study, 10**8, 1)
    with pytest.raises(ValueError, match="n_trials must be an integer from 1"):
        ts.simulate(study, 10**12, 1)
    with pytest.raises(TypeError, match="progress"):
        ts.simulate(study, 10, 1, progress="x")
    assert ts.load(CRM, overrides=None) == study
    with pytest.raises(TypeError, match="overrides"):
        ts.load(CRM, overrides={"design.target": 0.2})
    with pytest.raises(ValueError, match="n_doses"):
        ts.TrialHistory.parse("1NNN", 10**12)
    with pytest.raises(ValueError, match="n_doses"):
        ts.TrialHistory(n_doses=2.5)
    with pytest.raises(TypeError, match="path of a YAML file"):
        ts.load(None)
    with pytest.raises(ConfigError, match="mapping"):
        ts.from_dict([])
    assert study.design.decide("1NNN") == study.design.decide(ts.TrialHistory.parse("1NNN", 5))
    with pytest.raises(TypeError, match="TrialHistory"):
        study.design.decide(None)
    with pytest.raises(TypeError, match="text"):
        ts.TrialHistory.parse(123, 5)


# ----------------------------------------------------------------------------- the CLI
def test_cli_option_misuse(tmp_path, capsys):
    out = tmp_path / "o"
    for args, code, words in [
        (["--trials", "0"], 2, "positive integer"),
        (["--trials", "abc"], 2, "positive integer"),
        (["--seed", "-1"], 2, "integer >= 0"),
        (["--max-memory-gb", "0"], 2, "positive number"),
        (["--out", ""], 1, "--out: expected a folder path"),
        (["--out", "/dev/null"], 1, "not a folder"),
        (["--out", str(CRM)], 1, "not a folder"),
        (["--out", str(CRM / "sub")], 1, "not a folder"),
        (["--out", str(tmp_path / ("x" * 300))], 1, "too long"),
        (["--out", str(ROOT)], 1, "trialsim did not write"),
        (["--set", "design.target=["], 1, "--set"),
        (["--set", "=3"], 1, "--set"),
        (["--set", "doses.9=1"], 1, "--set"),
        (["--trials", str(10**8)], 1, "GiB"),
        (["--trials", str(10**12)], 1, "n_trials must be an integer from 1"),
    ]:
        if code == 2:
            with pytest.raises(SystemExit) as ei:
                main(["run", str(CRM), "--out", str(out), *args])
            assert ei.value.code == 2
        else:
            t0 = time.perf_counter()
            assert main(["run", str(CRM), "--trials", "50", *args] if "--trials" not in args
                        else ["run", str(CRM), *args]) == code, args
            assert time.perf_counter() - t0 < 30, "refused only after simulating"
        err = capsys.readouterr().err
        assert words in err, (args, err)
        assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_show_describes_one_type(capsys):
    assert main(["show", "design", "crm"]) == 0
    text = capsys.readouterr().out
    assert "skeleton" in text and "target" in text and "prior_sd" in text
    # keys' types in YAML words, not Python's typing reprs
    assert "  model: empiric | logistic, default 'empiric'" in text
    assert "  startup: list of int or null, default None" in text
    assert "Annotated" not in text and "FieldInfo" not in text and "Literal" not in text
    assert main(["show", "design", "boin"]) == 0
    assert "  n_doses: int, from the study's doses (leave it out)" in capsys.readouterr().out
    assert main(["show", "design", "efftox"]) == 0
    assert "  prior_mean: list of 6 float, required" in capsys.readouterr().out
    assert main(["show", "route", "infusion"]) == 0
    assert "duration_h" in capsys.readouterr().out
    assert main(["show", "design", "nope"]) == 1
    assert "known design types" in capsys.readouterr().err


def test_stale_temporaries_are_cleaned_and_old_results_survive_a_failed_write(tmp_path):
    out = tmp_path / "res"
    assert main(["run", str(CRM), "--trials", "40", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    stale = tmp_path / ".res.tmp-999999999-abc"
    stale.mkdir()
    (stale / "summary.csv").write_text("half")

    def boom(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_outputs(out, {"summary.csv": lambda p: p.write_text("new"), "metrics.csv": boom})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_replace_that_fails_midway_keeps_the_old_folder(tmp_path, monkeypatch):
    out = tmp_path / "res"
    write_outputs(out, {"summary.csv": lambda p: p.write_text("old")})
    real = os.rename
    calls = []

    def flaky(a, b):
        calls.append((a, b))
        if len(calls) == 2:          # the new folder cannot be moved into place
            raise OSError(28, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(os, "rename", flaky)
    with pytest.raises(OSError):
        write_outputs(out, {"summary.csv": lambda p: p.write_text("new")})
    monkeypatch.setattr(os, "rename", real)
    assert (out / "summary.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_cleanly_and_keep_earlier_results(tmp_path, sig, code):
    out = tmp_path / "res"
    assert main(["run", str(CRM), "--trials", "30", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trialsim.cli", "run", str(FLAGSHIP), "--trials", "200000",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path)
    line = proc.stdout.readline()          # the run announces itself once the study is loaded
    assert "simulating" in line, line
    time.sleep(1.5)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert "nothing was written" in stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_during_start_up_end_cleanly(tmp_path, sig, code):
    """The command's entry point (trialsim_entry, outside the package) catches a signal while
    the package is still importing numpy, numba and the rest."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, trialsim_entry; sys.exit(trialsim_entry.main())",
         "run", str(FLAGSHIP), "--trials", "100", "--out", str(tmp_path / "res")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(0.2)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "nothing was written" in stderr, stderr
    assert not (tmp_path / "res").exists()


def test_a_reader_that_leaves_ends_the_command_quietly(tmp_path):
    """``trialsim table ... | head -1``: the pipe closes under the printing; the command ends
    with SIGPIPE's status (141) and says nothing."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trialsim.cli", "table", str(CRM), "--cohorts", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.readline()
    proc.stdout.close()                      # the reader leaves
    assert proc.wait(timeout=120) == 141
    assert proc.stderr.read() == b""


def test_ctrl_c_stops_a_sweep_after_the_tasks_in_flight(tmp_path):
    """Ctrl-C (SIGINT to the process group) during a sweep on worker processes: the tasks not
    started are dropped (before, every queued task still ran), nothing is half-written, the
    message says the finished tasks are kept, and the same command then finishes the rest."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"study": str(FLAGSHIP), "n_trials": 24000, "seed": 3,
                                     "chunk": 800, "axes": {"design.target": [0.25]}}))
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "trialsim.cli", "sweep", str(sweep), "--out", str(out),
           "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    cells = out / "cells" / "00000"
    t0 = time.perf_counter()
    while len(list(cells.glob("trials-*.parquet"))) < 2 and proc.poll() is None:
        assert time.perf_counter() - t0 < 120
        time.sleep(0.05)
    at_signal = len(list(cells.glob("trials-*.parquet")))
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "finished tasks are kept" in stderr and "Traceback" not in stderr, stderr
    done = sorted(p.name for p in cells.iterdir())
    assert all(n.startswith("trials-") and n.endswith(".parquet") for n in done), done
    assert len(done) <= at_signal + 3 < 30      # the two in flight and one queued, at most
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"({len(done)} already done)" in again.stdout
    assert len(list(cells.glob("trials-*.parquet"))) == 30


def test_devices_pipes_and_folders_are_not_read(tmp_path, capsys):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    assert main(["validate", str(fifo), "/dev/zero", str(tmp_path)]) == 1
    assert time.perf_counter() - t0 < 10
    out = capsys.readouterr().out
    assert out.count("not a regular file") == 2 and "is a folder" in out


@pytest.mark.parametrize("path,value", [
    (("response", "toxicity", "slope"), 1e-320), (("response", "toxicity", "x50"), 1e-320),
    (("response", "efficacy", "ec50"), 1e-320), (("response", "efficacy", "hill"), 1e-320),
    (("pk", "route", "events", 0, "fraction"), 1.5)])
def test_values_that_remove_the_dose_response_are_refused(path, value):
    _refused(_set(_doc(FLAGSHIP), path, value), path[:3])


def test_results_folder_honours_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_outputs(tmp_path / "res", {"a.csv": lambda p: p.write_text("x")})
    finally:
        os.umask(old)
    assert (tmp_path / "res").stat().st_mode & 0o777 == 0o755
