"""Several designs on the same virtual patients: operating characteristics side by side, with the
paired differences from the first design.

Every trial's patients (their tolerances, covariates and PK) come from the trial's own streams,
whatever the design, so running each design with the same seed compares them on common random
numbers: the SE of a paired difference is computed from the per-trial differences, and it is
the smaller the more often the designs decide alike (several times smaller than either design's
own SE for designs that mostly agree; for designs that decide very differently it approaches
the root of the sum of their squared SEs).

Correct selection is scored against each design's own goal: the true MTD, or for
efficacy-toxicity designs the dose their criterion calls optimal under the truth.  Where a
design's goal is not the first design's dose, the paired differences of those two metrics
would compare different questions and are not given (NaN); the ``scored_against`` column
names each one's goal."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trialsim.config import from_dict
from trialsim.designs.base import Design
from trialsim.results import Simulations
from trialsim.simulate import simulate
from trialsim.study import Study

#: Metrics scored against a design's goal dose (the MTD, or the optimal dose).
GOAL_METRICS = ("correct_selection_pct", "benchmark_correct_pct")


def _with_design(study: Study, design: Any) -> Study:
    if isinstance(design, Design):
        if design.n_doses != study.n_doses:
            raise ValueError(f"the design has {design.n_doses} doses, the study {study.n_doses}")
        return dataclasses.replace(study, design=design)
    if isinstance(design, Mapping):
        return from_dict({**study.config, "design": dict(design)}, source=study.source)
    raise TypeError(f"a design is a Design or its configuration mapping, got "
                    f"{type(design).__name__}")


def compare(study: Study, designs: Mapping[str, Any], n_trials: int, seed: int,
            scenario: int = 0) -> pd.DataFrame:
    """Simulate ``study`` under each of ``designs`` (name -> :class:`Design` or its YAML-style
    mapping ``{type: ..., modifiers: [...]}``) on the same virtual patients.

    Returns one row per design and metric: ``design``, ``metric``, ``value``, ``se`` (as
    :meth:`Simulations.metrics`), ``diff``, ``diff_se`` — the paired difference from the
    first design and its Monte Carlo SE (0 for the first design itself; NaN for the correct
    selection metrics of a design whose goal dose differs from the first's) — and
    ``scored_against``: the goal of the correct selection metrics (``"MTD (dose 40)"``,
    ``"optimal dose (dose 30)"``; empty for the other metrics).
    """
    if not isinstance(designs, Mapping) or not designs:
        raise ValueError("designs must be a non-empty mapping of name -> design")
    rows, first, first_goal = [], None, None
    for name, design in designs.items():
        sims = simulate(_with_design(study, design), n_trials, seed, scenario=scenario)
        per_trial = sims.trial_metrics()
        goal = _goal(sims)
        if first is None:
            first, first_goal = per_trial, goal
        for metric, x in per_trial.items():
            comparable = metric in first and (metric not in GOAL_METRICS or goal == first_goal)
            d = x - first[metric] if comparable else np.full_like(x, np.nan)
            n = x.size
            rows.append({"design": str(name), "metric": metric, "value": float(x.mean()),
                         "se": float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
                         "diff": float(d.mean()),
                         "diff_se": float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
                         "scored_against": goal[1] if metric in GOAL_METRICS else ""})
    return pd.DataFrame(rows)


def _goal(sims: Simulations) -> tuple[int, str]:
    """The dose a design's correct selection is scored against, and its label."""
    d = sims.goal_dose
    what = "MTD" if sims.true_optimal_dose is None else "optimal dose"
    return d, f"{what} (" + (f"dose {sims.study.doses[d]:g})" if d >= 0 else "none acceptable)")
