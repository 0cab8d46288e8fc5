"""The HTML report of a run or sweep folder: what was simulated, the true curves, the operating
characteristics of every cell with Monte Carlo SEs side by side, and selection and allocation
charts.  One self-contained file (CSS and SVG inline); the tables also go to CSV beside it."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from trialsim.report import figures

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}figure{margin:1em 0}
pre{background:#f7f7f7;padding:0.7em;font-size:0.8em;overflow-x:auto}
figure svg{max-width:100%;height:auto}div.wide{overflow-x:auto}"""


def _read(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, list[str]]:
    """``(info, summary, metrics, axes)`` of a sweep or run folder; a run is one cell."""
    if (folder / "sweep.json").exists():
        plan = json.loads((folder / "sweep.json").read_text())
        if not (folder / "metrics.csv").exists():
            raise ValueError(f"{folder}: the sweep's tables are not collected yet: run "
                             f"'trialsim collect {folder}' (or the sweep again, which resumes)")
        summary = pd.read_csv(folder / "summary.csv", dtype={"dose": str})
        metrics = pd.read_csv(folder / "metrics.csv")
        axes = list(plan["cells"][0]["labels"]) if plan["cells"] else []
        return plan, summary, metrics, axes
    if not (folder / "study.yaml").exists():
        raise ValueError(f"{folder} is neither a run folder (study.yaml, summary.csv, "
                         "metrics.csv) nor a sweep folder (sweep.json): nothing to report")
    config = yaml.safe_load((folder / "study.yaml").read_text())
    summary = pd.read_csv(folder / "summary.csv", dtype={"dose": str})
    metrics = pd.read_csv(folder / "metrics.csv")
    summary.insert(0, "cell", 0)
    metrics.insert(0, "cell", 0)
    plan = {"source": config.get("name", "study"), "cells": [{"index": 0, "labels": {},
                                                              "config": config}],
            "n_trials": config.get("simulation", {}).get("n_trials"),
            "seed": config.get("simulation", {}).get("seed")}
    return plan, summary, metrics, []


def _durations(folder: Path, plan: dict, label_of: dict[int, str]) -> dict[str, np.ndarray]:
    """Trial durations (weeks) by label, where the trials ran in calendar time: per cell of a
    sweep (``label_of``: cell → label); for a run, its trials, or with phase II scenarios one
    histogram where they share their calendar, else one per scenario."""
    import pyarrow.parquet as pq
    out = {}
    if (folder / "sweep.json").exists():
        for c in plan["cells"]:
            files = sorted((folder / "cells" / f"{c['index']:05d}").glob("trials-*.parquet"))
            cols = [pq.read_schema(f).names for f in files[:1]]
            if files and "calendar.duration_h" in cols[0]:
                out[label_of[c["index"]]] = np.concatenate([
                    pq.read_table(f, columns=["calendar.duration_h"]).column(0).to_numpy()
                    for f in files]) / 168.0
    elif (folder / "trials.parquet").exists():
        names = pq.read_schema(folder / "trials.parquet").names
        if "duration_weeks" in names:
            t = pd.read_parquet(folder / "trials.parquet",
                                columns=["duration_weeks"] + (["scenario"] if "scenario" in names
                                                              else []))
            if "scenario" not in t:
                return {label_of[0]: t["duration_weeks"].to_numpy()}
            by = {f"scenario={k}": g["duration_weeks"].to_numpy()
                  for k, g in t.groupby("scenario", sort=False)}
            first = next(iter(by.values()))
            if all(np.array_equal(w, first) for w in by.values()):
                return {"every scenario (one calendar)": first}
            return by
    return out


def _pk_figure(config: dict, unit: str) -> str | None:
    """The base study's concentration-time bands (studies with a PK model)."""
    from trialsim.config.study import from_dict
    from trialsim.report.pk import pk_profiles
    if "pk" not in config:
        return None
    study = from_dict(config, name_default=config.get("name", "study"))
    out = pk_profiles(study)
    if out is None:
        return None
    times, q = out
    return figures.pk_bands(times, q, study.doses, unit)


def _groups(plan: dict, summary: pd.DataFrame, metrics: pd.DataFrame,
            axes: list[str]) -> tuple[list[str], list[str]]:
    """Number the (cell, phase II scenario) groups in column ``group`` of both tables; return
    their labels and the label columns (the axes, and ``scenario`` where present)."""
    cols = list(axes) + (["scenario"] if "scenario" in summary.columns and "scenario" not in axes
                         else [])   # a sweep's scenarios are cells, labelled by an axis
    names = {c["index"]: c["config"].get("name", "study") for c in plan["cells"]}
    keys = list(dict.fromkeys(zip(summary["cell"], *[summary[c] for c in cols])))
    index = {k: i for i, k in enumerate(keys)}
    for df in (summary, metrics):
        df.insert(0, "group", [index[k] for k in zip(df["cell"], *[df[c] for c in cols])])
    labels = [", ".join(f"{c}={v}" for c, v in zip(cols, k[1:])) or names[k[0]] for k in keys]
    return labels, cols


def comparison(metrics: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """One row per group (cell, and phase II scenario), one column per metric:
    ``value (SE)``; phase II groups add the truth they are judged against (``true_td``,
    ``true_forward``)."""
    m = metrics.copy()
    m["text"] = [f"{_num(v)} ({_num(s)})" if pd.notna(s) else _num(v)
                 for v, s in zip(m["value"], m["se"])]
    wide = m.pivot(index=["group", "cell", *cols], columns="metric", values="text")
    order = list(dict.fromkeys(metrics["metric"]))
    wide = wide[order]
    wide.columns.name = None
    wide = wide.reset_index()
    for c in ("true_td", "true_forward"):
        if c in metrics:
            truth = metrics.groupby("group")[c].first()
            wide[c] = [_num(v) if pd.notna(v) else "none" for v in truth.loc[wide["group"]]]
    return wide.drop(columns="group")


def _num(x: float) -> str:
    """2 decimals, or 3 significant digits below 1 (a target dose's bias in mg/kg)."""
    return f"{x:.2f}" if abs(x) >= 1 or x == 0 else f"{x:.3g}"


def _table(df: pd.DataFrame) -> str:
    return ('<div class="wide">' + df.to_html(index=False, border=0, na_rep="",
                                              float_format=lambda x: f"{x:.3f}") + "</div>")


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``out``) and the report's tables as CSV into ``folder``;
    returns the HTML path."""
    folder = Path(folder)
    plan, summary, metrics, axes = _read(folder)
    labels, cols = _groups(plan, summary, metrics, axes)
    cfg0 = plan["cells"][0]["config"]
    unit = cfg0.get("dose_unit", "") or ""
    comp = comparison(metrics, cols)
    phase2 = "forward_pct" in summary.columns
    parts = [f"<h1>{html.escape(str(plan.get('source')))}</h1>",
             f"<p>{len(plan['cells'])} cell(s) &times; {plan.get('n_trials')} simulated trials, "
             f"seed {plan.get('seed')}; every cell on the same virtual patients (common random "
             "numbers). Monte Carlo standard errors in parentheses.</p>"]
    if axes:
        cells = pd.DataFrame([{"cell": c["index"], **c["labels"]} for c in plan["cells"]])
        parts += ["<h2>Cells</h2>", _table(cells)]
    parts += ["<h2>Operating characteristics, side by side</h2>", _table(comp)]
    if phase2:
        power = metrics[metrics["metric"] == "power_pct"]
        parts += ["<h2>Power</h2>",
                  f"<figure>{figures.by_group(power, labels, 'power_pct', 'Power (MCP-Mod test)', '% of trials')}</figure>",
                  "<h2>Fitted dose-response curves against the truth</h2>",
                  f"<figure>{figures.fitted_curves(summary, labels, unit)}</figure>",
                  "<h2>The dose taken forward</h2>",
                  f"<figure>{figures.bars(summary, labels, 'forward_pct', 'Dose taken forward', '% of trials')}</figure>"]
    else:
        parts += ["<h2>The truth</h2>",
                  f"<figure>{figures.truth_curves(summary, labels, unit)}</figure>",
                  "<h2>Selection</h2>",
                  f"<figure>{figures.bars(summary, labels, 'selected_pct', 'Selected dose', '% of trials')}</figure>",
                  "<h2>Allocation</h2>",
                  f"<figure>{figures.bars(summary, labels, 'patients_mean', 'Patients per dose', 'mean patients per trial')}</figure>"]
    pk = _pk_figure(cfg0, unit)
    if pk:
        whose = (f" of cell 0 ({html.escape(labels[0])}; other cells' may differ)"
                 if len(plan["cells"]) > 1 else "")
        parts += [f"<h2>Pharmacokinetics{whose}</h2>", f"<figure>{pk}</figure>"]
    first_group = summary.drop_duplicates("cell").set_index("cell")["group"]
    weeks = _durations(folder, plan, {c: labels[g] for c, g in first_group.items()})
    if weeks:
        parts += ["<h2>Trial duration</h2>", f"<figure>{figures.durations(weeks)}</figure>"]
    parts.append("<h2>Per dose</h2>")
    for g, label in enumerate(labels):
        keep = [x for x in summary.columns if x not in ("group", "cell", *cols)]
        parts += [f"<h3>{html.escape(label)}</h3>",
                  _table(summary[summary["group"] == g][keep])]
    parts += ["<h2>Study</h2>", "<pre>" + html.escape(yaml.safe_dump(
        cfg0, sort_keys=False)) + "</pre>"]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(str(plan.get('source')))} - trialsim report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    path = Path(out) if out is not None else folder / "report.html"
    _atomic(path, page)
    _atomic(folder / "report_comparison.csv", comp.to_csv(index=False))
    return path


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
