"""Several designs on the same virtual patients: operating characteristics side by side, with the
paired differences from the first design.

Every trial's patients (their tolerances, covariates and PK) come from the trial's own streams,
whatever the design, so running each design with the same seed compares them on common random
numbers: the differences between designs have a much smaller Monte Carlo error than either
design's operating characteristics (the SE of a paired difference is computed from the per-trial
differences)."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trialsim.config import from_dict
from trialsim.designs.base import Design
from trialsim.simulate import simulate
from trialsim.study import Study


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
    :meth:`Simulations.metrics`), and ``diff``, ``diff_se`` — the paired difference from the
    first design and its Monte Carlo SE (0 for the first design itself).
    """
    if not isinstance(designs, Mapping) or not designs:
        raise ValueError("designs must be a non-empty mapping of name -> design")
    rows, first = [], None
    for name, design in designs.items():
        sims = simulate(_with_design(study, design), n_trials, seed, scenario=scenario)
        per_trial = sims.trial_metrics()
        first = per_trial if first is None else first
        for metric, x in per_trial.items():
            d = x - first[metric] if metric in first else np.full_like(x, np.nan)
            n = x.size
            rows.append({"design": str(name), "metric": metric, "value": float(x.mean()),
                         "se": float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
                         "diff": float(d.mean()),
                         "diff_se": float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan})
    return pd.DataFrame(rows)
