"""The HTML report: valid, self-contained (every figure inline, no external requests), from a
run folder and a sweep folder; rendered in headless chromium when one is installed."""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import trialsim as ts
from trialsim.cli import main
from trialsim.config.sweep import load_sweep
from trialsim.report import write_report
from trialsim.sweep import collect, run_sweep

VOID = {"meta", "br", "img", "hr", "input", "link", "path", "circle", "rect", "line",
        "polyline", "polygon", "use", "stop", "ellipse"}


class Checker(HTMLParser):
    """Tag balance, figures, and every URL-bearing attribute."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.svgs, self.urls, self.figures = [], [], 0, [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.svgs += 1
            size = dict(attrs)
            for k in ("width", "height"):      # every figure has a size
                if float(re.sub(r"[a-z]+$", "", size.get(k, "0"))) <= 0:
                    self.errors.append(f"svg without a {k}")
        if tag == "figure":
            self.figures += 1
        for k, v in attrs:
            if k in ("src", "href", "xlink:href") and v and not v.startswith("#"):
                self.urls.append(v)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def _check(path: Path) -> Checker:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    c = Checker()
    c.feed(text)
    assert not c.errors and not c.stack, (c.errors, c.stack)
    assert c.figures >= 3 and c.svgs == c.figures          # every figure is an inline SVG
    assert c.urls == []                                     # no external (or any) requests
    assert not re.search(r"url\((?!#)", text)
    # no URL but the SVG and XLink namespaces (matplotlib's metadata block is left out)
    assert set(re.findall(r"https?://[^\"'<> ]+", text)) <= {"http://www.w3.org/2000/svg",
                                                           "http://www.w3.org/1999/xlink"}
    return c


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rep")
    doc = {"study": {"name": "rep", "doses": [1, 2, 3], "truth": {"tox": [0.1, 0.25, 0.5]},
                     "design": {"type": "boin", "target": 0.25, "max_patients": 12}},
           "n_trials": 200, "seed": 1,
           "axes": {"design": {"boin": {"type": "boin", "target": 0.25, "max_patients": 12},
                               "crm": {"type": "crm", "target": 0.25,
                                       "skeleton": [0.1, 0.25, 0.4], "max_patients": 12}}}}
    (tmp / "s.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    run_sweep(load_sweep(tmp / "s.yaml"), tmp / "out", backend="serial")
    collect(tmp / "out")
    return tmp / "out"


def test_sweep_report_is_valid_and_self_contained(sweep_folder):
    path = write_report(sweep_folder)
    _check(path)
    text = path.read_text()
    assert "correct_selection_pct" in text and "design=crm" in text
    comp = (sweep_folder / "report_comparison.csv").read_text().splitlines()
    assert len(comp) == 3 and comp[0].startswith("cell,design,correct_selection_pct")


def test_run_folder_report_through_the_cli(tmp_path, capsys):
    cfg = Path(__file__).resolve().parents[1] / "configs" / "examples" / "boin12.yaml"
    assert main(["run", str(cfg), "--trials", "200", "--out", str(tmp_path / "run")]) == 0
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.html")]) == 0
    _check(tmp_path / "r.html")
    assert main(["report", str(tmp_path)]) != 0            # not a results folder
    assert "nothing to report" in capsys.readouterr().err


def test_simulations_display_as_tables_in_jupyter():
    study = ts.from_dict({"doses": [1, 2, 3], "truth": {"tox": [0.1, 0.25, 0.5]},
                          "design": {"type": "boin", "target": 0.25, "max_patients": 12}})
    html = ts.simulate(study, 50, seed=1)._repr_html_()
    assert html.count("<table") == 2 and "selected_pct" in html


def test_renders_in_headless_chromium(sweep_folder, tmp_path):
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(n)), None)
    if exe is None:
        pytest.skip("no chromium on this machine (Debian package 'chromium'): the page was "
                    "checked by parsing only")
    path = write_report(sweep_folder)
    shot = tmp_path / "shot.png"
    r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                        "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                        "--window-size=1200,3000", path.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
    assert "Uncaught" not in r.stderr and "CONSOLE" not in r.stderr.upper().replace(
        "CONSOLE(0)", "")


def test_timed_pk_study_shows_durations_and_concentration_bands(tmp_path):
    cfg = Path(__file__).resolve().parents[1] / "configs" / "ketamine_iv_trd.yaml"
    assert main(["run", str(cfg), "--trials", "100", "--out", str(tmp_path / "run")]) == 0
    path = write_report(tmp_path / "run")
    c = _check(path)
    text = path.read_text()
    assert "Trial duration" in text and "Pharmacokinetics" in text and c.figures == 5


def test_phase2_pk_study_report_shows_its_concentration_bands(tmp_path):
    """The phase II flagship (PK, scenarios) from a run folder: the report has the
    concentration bands of its population at its arms (it crashed: a phase II study is its
    own world, with no ``scenario``); placebo's band is 0."""
    from trialsim.report.pk import pk_profiles
    cfg = Path(__file__).resolve().parents[1] / "configs" / "ketamine_phase2_mcpmod.yaml"
    assert main(["run", str(cfg), "--trials", "40", "--out", str(tmp_path / "run")]) == 0
    path = write_report(tmp_path / "run")
    _check(path)
    assert "Pharmacokinetics" in path.read_text()
    # the six scenarios share one calendar: one duration histogram, said so (it was labelled
    # with the last scenario, over six copies of the trials)
    assert "every scenario (one calendar) (median" in path.read_text()
    assert "scenario=midazolam (median" not in path.read_text()
    study = ts.load(cfg)
    times, q = pk_profiles(study, n_patients=100, n_times=12)
    assert q.shape == (3, 12, len(study.doses)) and (q[:, :, 0] == 0).all()
    assert (q[1, :, 1:] > 0).all() and (q[0] <= q[1]).all() and (q[1] <= q[2]).all()


def test_phase2_sweep_with_scenarios_reports_every_scenario(tmp_path):
    """A sweep of a phase II study with scenarios (each a cell, labelled ``scenario``): one
    comparison row per cell, the target dose's bias to 3 significant digits; before it is
    collected, the report says to collect it."""
    cfg = Path(__file__).resolve().parents[1] / "configs" / "examples" / "phase2_adaptive.yaml"
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"study": str(cfg), "n_trials": 40, "seed": 2,
                                 "axes": {"analysis.delta": [5, 6]}}, sort_keys=False))
    sweep = load_sweep(p)
    run_sweep(sweep, tmp_path / "o", backend="serial")
    with pytest.raises(ValueError, match="trialsim collect"):
        write_report(tmp_path / "o")
    collect(tmp_path / "o")
    _check(write_report(tmp_path / "o"))
    import pandas as pd
    table = pd.read_csv(tmp_path / "o" / "report_comparison.csv")
    assert len(table) == len(sweep.cells) == 2 * len(yaml.safe_load(cfg.read_text())["scenarios"])
    assert list(table["scenario"][:4]) == list(yaml.safe_load(cfg.read_text())["scenarios"])
    bias = table["td_bias"].dropna()
    shown = [float(v.split(" ")[0]) for v in bias]     # more than 2 decimals where below 1
    assert len(shown) and any(abs(x) < 0.1 and x != round(x, 2) for x in shown)


def test_pk_bands_are_ordered_and_scale_with_the_dose():
    """The report's bands: 5th <= median <= 95th percentile; linear PK in mg/kg: the median
    profile at 1.0 mg/kg is 10 times that at 0.1 mg/kg (the same virtual patients)."""
    from trialsim.report.pk import pk_profiles
    study = ts.load(Path(__file__).resolve().parents[1] / "configs" / "ketamine_iv_trd.yaml")
    times, q = pk_profiles(study, n_patients=200, n_times=12)
    assert (q[0] <= q[1]).all() and (q[1] <= q[2]).all() and times[-1] == 24
    import numpy as np
    np.testing.assert_allclose(q[1, :, -1] / q[1, :, 0], 10.0, rtol=1e-9)


def test_a_sweep_s_pk_figure_names_its_cell(tmp_path):
    """The PK figure of a sweep is drawn from cell 0's study: its heading says so (it showed
    cell 0's concentrations unlabelled, as if every cell's)."""
    cfg = Path(__file__).resolve().parents[1] / "configs" / "ketamine_iv_trd.yaml"
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"study": str(cfg), "n_trials": 20, "seed": 2,
                                 "axes": {"pk.CL": [40, 200]}}, sort_keys=False))
    run_sweep(load_sweep(p), tmp_path / "o", backend="serial")
    collect(tmp_path / "o")
    text = write_report(tmp_path / "o").read_text()
    assert "<h2>Pharmacokinetics of cell 0 (pk.CL=40; other cells' may differ)</h2>" in text


def test_the_pk_figure_leaves_out_the_placebo_arm():
    """Phase II with saline: dose 0 has no concentration on the log axis, so no line and no
    legend entry (it was listed, with nothing drawn)."""
    import numpy as np

    from trialsim.report import figures
    times = np.linspace(1, 24, 12)
    q = np.stack([np.outer(np.exp(-times / 5), [0.0, 1.0, 2.0]) * f for f in (0.5, 1, 2)])
    svg = figures.pk_bands(times, q, [0.0, 0.5, 1.0], "mg/kg")
    assert "0.5 mg/kg" in svg and "1 mg/kg" in svg and ">0 mg/kg<" not in svg
    assert "0 mg/kg" not in svg.replace("0.5 mg/kg", "").replace("1 mg/kg", "")
