"""Sweep files: a base study and axes over dotted paths, expanded into cells.

```yaml
study: ketamine_iv_trd.yaml        # the base study: a file (relative to this one) or a mapping
n_trials: 2000                     # trials per cell
seed: 20261201                     # one seed for every cell: common random numbers
chunk: 500                         # trials per task (default 1000)
combine: grid                      # grid (every combination) or zip (the i-th of every axis)
axes:
  design.target: [0.2, 0.25, 0.3]  # a list of values for a dotted path
  truth:                           # or named values
    low: {tox: [0.02, 0.05, 0.1, 0.2, 0.3]}
    high: {tox: [0.1, 0.2, 0.3, 0.45, 0.6]}
```

Each axis value replaces the node at its path (list elements by index: ``design.skeleton.0``);
an axis named by several comma-separated paths (``design.target,target``) sets them all.
Every cell is validated as a study before anything runs; errors name the sweep file, the cell
and the YAML path.  A phase II study's ``scenarios:`` become cells of their own, one per
scenario (labelled ``scenario``), on the same seed: the same patients in every scenario, and
the same results as ``trialsim run``.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialsim.config.build import describe_value, expect_mapping
from trialsim.config.collect import Collector
from trialsim.config.overrides import set_path
from trialsim.config.reader import read_yaml
from trialsim.config.study import from_dict, safe_name
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.limits import MAX_TRIALS
from trialsim.rng import MAX_SEED

SWEEP_KEYS = ("study", "n_trials", "seed", "chunk", "combine", "axes")
DEFAULT_CHUNK = 1000
#: Most cells a sweep may have.
MAX_CELLS = 10_000


@dataclass(frozen=True)
class Cell:
    """One combination of axis values: its index, a label per axis (``{path: name}``) and the
    study document with the values applied."""

    index: int
    labels: dict
    doc: dict

    @property
    def name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.labels.items()) or "base"


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep: cells, trials per cell, seed, trials per task, and its identity (a hash
    of everything that determines the results)."""

    cells: tuple[Cell, ...]
    n_trials: int
    seed: int
    chunk: int
    source: str

    @property
    def key(self) -> str:
        # in the documents' own key order, which the population draws follow
        text = json.dumps({"cells": [c.doc for c in self.cells], "n": self.n_trials,
                           "seed": self.seed}, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (every cell built as a study)."""
    path = Path(path)
    doc = read_yaml(path, what="a sweep file")
    try:
        return _sweep(doc, path)
    except (ConfigError, ConfigErrors) as e:
        raise e.at((), str(path)) from None


def is_sweep_file(path: str | Path) -> bool:
    """Whether a YAML file is a sweep (it names a base ``study:``, which no study has); False
    where it cannot be read (reading it as a study then reports why)."""
    try:
        doc = read_yaml(path)
    except (ConfigError, ConfigErrors, TypeError):
        return False
    return "study" in doc


def _int(doc, key, low, high, default):
    v = doc.get(key, default)
    if v is None or isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise ConfigError(f"expected an integer from {low} to {high:,}, got {describe_value(v)}",
                          (key,))
    return v


def _base(doc: dict, path: Path) -> tuple[dict, str]:
    """The base study's mapping and the sweep's default name."""
    if "study" not in doc:
        raise ConfigError("required key is missing: the base study (a file name or a mapping)",
                          ("study",))
    base = doc["study"]
    if not isinstance(base, str):
        return (expect_mapping(base, ("study",), "a study mapping or the name of a study file"),
                safe_name(path.stem))
    study_path = (path.parent / base).resolve()
    try:
        return read_yaml(study_path), safe_name(study_path.stem)
    except ConfigError as e:
        raise ConfigError(f"the base study {study_path}: {e.message}", ("study",)) from None


def _combine(doc: dict) -> str:
    combine = doc.get("combine", "grid")
    if combine not in ("grid", "zip"):
        raise ConfigError(f"expected grid or zip, got {describe_value(combine)}", ("combine",))
    return combine


def _sweep(doc: dict, path: Path) -> Sweep:
    top = Collector()           # the top-level keys' errors, reported together
    for k in doc:
        if k not in SWEEP_KEYS:
            top.errors.append(ConfigError(f"unknown key; expected one of: "
                                          f"{', '.join(SWEEP_KEYS)}", (k,)))
    base, name = top.attempt(_base, doc, path) or (None, None)
    n_trials = top.attempt(_int, doc, "n_trials", 1, MAX_TRIALS, None)
    seed = top.attempt(_int, doc, "seed", 0, MAX_SEED, None)
    chunk = top.attempt(_int, doc, "chunk", 1, MAX_TRIALS, DEFAULT_CHUNK)
    combine = top.attempt(_combine, doc)
    axes = top.attempt(expect_mapping, doc.get("axes", {}), ("axes",),
                       "axes: dotted paths and their values")
    top.raise_any()
    values = {}
    for k, v in axes.items():
        if isinstance(v, dict) and v:
            values[str(k)] = [(str(n), x) for n, x in v.items()]
        elif isinstance(v, list) and v:
            values[str(k)] = [(_label(x), x) for x in v]
        else:
            raise ConfigError(f"expected a non-empty list of values or a mapping of named "
                              f"values, got {describe_value(v)}", ("axes", k))
    if combine == "zip":
        sizes = {k: len(v) for k, v in values.items()}
        if len(set(sizes.values())) > 1:
            raise ConfigError(f"zip needs axes of one length, got {sizes}", ("axes",))
        combos = list(zip(*values.values()))
    else:
        combos = list(itertools.product(*values.values()))
    if len(combos) > MAX_CELLS:
        raise ConfigError(f"{len(combos):,} cells; a sweep may have at most {MAX_CELLS:,}",
                          ("axes",))
    cells, errors = [], []
    for combo in combos:
        cdoc = copy.deepcopy(base)
        cdoc.setdefault("name", name)
        labels = {}
        for (axis, (label, value)) in zip(values, combo):
            for one in axis.split(","):       # "design.target,target": both get the value
                set_path(cdoc, one.strip(), copy.deepcopy(value), ("axes", axis))
            labels[axis] = label
        cell = Cell(len(cells), labels, cdoc)
        try:
            _check_task_memory(from_dict(cdoc, name_default=name), min(chunk, n_trials))
        except ConfigErrors as e:
            errors += [ConfigError(f"cell {cell.index} ({cell.name}): {x.message}", x.path)
                       for x in e.errors]
        except ConfigError as e:
            errors.append(ConfigError(f"cell {cell.index} ({cell.name}): {e.message}", e.path))
        else:
            cells += _scenario_cells(cell, len(cells))
            continue
        cells.append(cell)          # not expanded: its errors are raised below
    if errors:
        raise ConfigErrors(errors)
    if len(cells) > MAX_CELLS:
        raise ConfigError(f"{len(cells):,} cells with the study's scenarios; a sweep may have at "
                          f"most {MAX_CELLS:,}", ("axes",))
    return Sweep(tuple(cells), n_trials, seed, chunk, str(path))


def _check_task_memory(study, trials: int) -> None:
    """A task of ``trials`` trials must fit the default memory limit (sweeps have no option
    to raise it: their tasks are sized by ``chunk``)."""
    from trialsim.simulate import DEFAULT_MAX_MEMORY_GB, GIB, memory_need
    if getattr(study, "scenarios", None):       # each scenario is a cell of its own
        study = next(iter(study.scenarios.values()))
    need, what = memory_need(study, trials)
    if need > DEFAULT_MAX_MEMORY_GB * GIB:
        raise ConfigError(f"a task of {what} needs about {need / GIB:,.1f} GiB of memory, more "
                          f"than {DEFAULT_MAX_MEMORY_GB:g} GiB: lower chunk, the trials per "
                          "task", ("chunk",))


def _scenario_cells(cell: Cell, first: int) -> list[Cell]:
    """A valid cell of a phase II study with ``scenarios:`` as one cell per scenario (its
    changes applied, labelled ``scenario``), indexed from ``first``: the same seed gives every
    scenario the same patients, as ``trialsim run`` does; other cells as they are."""
    node = cell.doc.get("scenarios")
    if not node:
        return [Cell(first, cell.labels, cell.doc)]
    out = []
    for name, changes in node.items():
        sdoc = {k: copy.deepcopy(v) for k, v in cell.doc.items() if k != "scenarios"}
        for key, value in (changes or {}).items():
            set_path(sdoc, str(key), copy.deepcopy(value), ("scenarios", name, key))
        out.append(Cell(first + len(out), {**cell.labels, "scenario": str(name)}, sdoc))
    return out


def _label(x: Any) -> str:
    return format(x, "g") if isinstance(x, float) else str(x)
