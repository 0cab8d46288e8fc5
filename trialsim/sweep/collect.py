"""Combine a sweep's stored tasks into tables: per cell, the same operating characteristics a
single run of all its trials gives (``summary.csv``: per dose or arm; ``metrics.csv``: per
trial-level metric, each with its Monte Carlo SE), one row block per cell with the axis values
as columns."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from trialsim.sweep.run import PLAN_FILE
from trialsim.sweep.tasks import CALENDAR, table_to_arrays


def _arrays_class(name: str):
    from trialsim.phase2.arrays import Phase2Arrays
    from trialsim.results import TrialArrays
    return {"TrialArrays": TrialArrays, "Phase2Arrays": Phase2Arrays}[name]


def cell_simulations(out: Path, cell: dict, n_trials: int, seed: int):
    """The cell's results as one simulations object (task files read in trial order; where
    runs with different chunks left overlapping tasks, a chain of them covering the trials:
    a trial's results do not depend on its task); ``ValueError`` naming the missing trials if
    the tasks do not cover ``0 .. n_trials - 1``."""
    from trialsim.config.study import from_dict
    from trialsim.conduct.arrays import CalendarArrays
    spans = {}                                     # start -> (stop, file), the longest task
    for f in (out / "cells" / f"{cell['index']:05d}").glob("trials-*.parquet"):
        t = json.loads(pq.read_schema(f).metadata[b"trialsim"])["task"]
        if t["stop"] > spans.get(t["start"], (-1, None))[0]:
            spans[t["start"]] = (t["stop"], f)
    parts, cals, covered = [], [], 0
    kind = None
    while covered < n_trials and covered in spans:
        stop, f = spans[covered]
        table = pq.read_table(f)
        kind = json.loads(table.schema.metadata[b"trialsim"])["arrays"]
        parts.append(table_to_arrays(table, _arrays_class(kind)))
        cals.append(table_to_arrays(table, CalendarArrays, CALENDAR))
        covered = stop
    if covered != n_trials:
        has = f"trials 0..{covered - 1}" if covered else "no trials"
        raise ValueError(f"cell {cell['index']} has {has} of {n_trials}: run the sweep again "
                         "(it resumes) or the missing array tasks")
    study = from_dict(cell["config"], name_default=cell["config"].get("name", "study"))
    arrays = _arrays_class(kind).concat(parts)
    if kind == "TrialArrays":
        from trialsim.results import Simulations
        calendar = CalendarArrays.concat(cals) if cals and all(c is not None for c in cals) \
            else None
        return Simulations(study=study, seed=seed, scenario=0, arrays=arrays, calendar=calendar)
    from trialsim.phase2.results import Phase2Simulations
    calendar = CalendarArrays.concat(cals) if cals and all(c is not None for c in cals) \
        else None
    return Phase2Simulations(study=study, seed=seed, scenario=0, arrays=arrays,
                             calendar=calendar)


def collect(out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every cell of the sweep in ``out``; write and return ``(summary, metrics)``."""
    out = Path(out)
    try:
        plan = json.loads((out / PLAN_FILE).read_text())
    except (OSError, ValueError):
        raise ValueError(f"{out} holds no sweep ({PLAN_FILE} is missing or unreadable)") from None
    summaries, metrics = [], []
    for cell in plan["cells"]:
        sims = cell_simulations(out, cell, plan["n_trials"], plan["seed"])
        front = {"cell": cell["index"], **cell["labels"]}
        s, m = sims.summary(), sims.metrics()
        summaries.append(pd.concat([pd.DataFrame([front] * len(s)), s.reset_index(drop=True)],
                                   axis=1))
        metrics.append(pd.concat([pd.DataFrame([front] * len(m)), m.reset_index(drop=True)],
                                 axis=1))
    summary, metric = pd.concat(summaries, ignore_index=True), pd.concat(metrics, ignore_index=True)
    for name, df in (("summary.csv", summary), ("metrics.csv", metric)):
        tmp = out / f".{name}.tmp-{os.getpid()}"
        df.to_csv(tmp, index=False)
        os.replace(tmp, out / name)
    return summary, metric
