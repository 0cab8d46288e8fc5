"""Hostile study files: every example study, mutated at random (every leaf or node replaced by
a wrong type, an out-of-range number, NaN/inf, an empty or mismatched list, unknown keys and
types, or deleted).  Whatever the mutation, loading either raises a ConfigError that names a
YAML path and says what was expected, or gives a valid study that simulates.  Nothing else:
no other exception, no NaN in the results.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import trialsim as ts
from trialsim.config import read_yaml
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.phase2 import Phase2Study

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "sweeps" not in p.parts)
DOCS = {f.name: read_yaml(f) for f in FILES}
HOSTILE = [
    None, True, False, "x", "", "1e-1", [], {}, [1, 2], {"a": 1}, 0, -1, 1, 2, 3, 0.5, -0.5,
    1e308, -1e308, 10**400, -(10**400), float("inf"), float("-inf"), float("nan"), 1e-320,
    2**63, 1e6, 1e12, "cmax", "mg", ["a"], [None], [float("nan")], [1e308, 1e308],
]


def _paths(x, prefix=()):
    """Every node path of a parsed YAML document (mapping keys and list indices)."""
    out = [prefix]
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _paths(v, prefix + (i,))
    return out


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _mutate(doc, path, op, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value if op == "replace" else doc
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    node = parent[key]
    if op == "replace":
        parent[key] = value
    elif op == "delete":
        del parent[key]
    elif op == "unknown_key" and isinstance(node, dict):
        node["zz_unknown"] = value
    elif op == "unknown_type" and isinstance(node, dict):
        node["type" if "type" in node else "dist" if "dist" in node else "zz"] = "no_such_type"
    elif op == "shorten" and isinstance(node, list):
        parent[key] = node[:-1]
    elif op == "lengthen" and isinstance(node, list):
        parent[key] = node + node[-1:]
    elif op == "scale" and _is_number(node):
        x = node * value
        parent[key] = round(x) if isinstance(node, int) and math.isfinite(x) else x
    else:
        parent[key] = value
    return doc


OPS = ["scale"] * 8 + ["replace", "replace", "replace", "delete", "unknown_key", "unknown_type",
                      "shorten", "lengthen"]
#: Factors for "scale": plausible changes (the study should still run) and hostile ones.
FACTORS = [0.5, 0.9, 1.1, 2.0, 3.0, 10.0, 0.1, 0, -1, 1e300, float("nan")]


@st.composite
def mutated_documents(draw):
    name = draw(st.sampled_from(sorted(DOCS)))
    doc = DOCS[name]
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        op = draw(st.sampled_from(OPS))
        paths = _paths(doc)[1:]
        if op == "scale":
            paths = [p for p in paths if _is_number(_get(doc, p))] or paths
        path = draw(st.sampled_from(paths))
        value = draw(st.sampled_from(FACTORS if op == "scale" else HOSTILE))
        try:
            doc = _mutate(doc, path, op, value)
        except (KeyError, IndexError, TypeError, OverflowError):
            pass
    return name, doc


def _check_error(e: ConfigError) -> None:
    errors = e.errors if isinstance(e, ConfigErrors) else [e]
    for err in errors:
        assert err.path, f"a ConfigError without a YAML path: {err}"
        assert err.message and len(err.message) < 2000, err
        for leak in ("Traceback", "Unable to parse input string", "f(a) and f(b)",
                     "object has no attribute", "unhashable", "codec can't"):
            assert leak not in err.message, f"an unclear message: {err}"


def _check_runs(study) -> None:
    sims = ts.simulate(study, n_trials=2, seed=1)
    trials, patients = sims.trials, sims.patients
    k = len(getattr(study, "scenarios", None) or {}) or 1      # a phase II scenario set
    assert len(trials) == 2 * k and trials.n_patients.ge(1).all()
    if isinstance(study, Phase2Study):
        assert patients.arm.between(0, study.n_doses - 1).all()
        assert trials.p_min.dropna().between(0, 1).all()
        assert trials.n_analysed.le(trials.n_patients).all()
        return
    assert patients.dose_index.between(0, study.n_doses - 1).all()
    truth = study.scenario.truth(1, 0, np.asarray(study.doses, float), study.dose_unit,
                                 **({"n": 300} if hasattr(study.scenario, "pk") else {}))
    for p in (truth.tox, truth.eff):
        if p is not None:
            assert np.all((p >= 0) & (p <= 1)), p


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_documents())
def test_mutated_study_is_refused_clearly_or_simulates(case):
    name, doc = case
    try:
        study = ts.from_dict(doc, name_default="fuzz")
    except ConfigError as e:
        event(f"{name}: refused")
        _check_error(e)
        return
    event(f"{name}: simulated")
    _check_runs(study)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_unmutated_examples_load(name):
    ts.from_dict(DOCS[name], name_default="x")


def test_mutations_cover_the_hostile_kinds():
    """The strategy produces each kind of damage (a guard against a silently weak fuzzer)."""
    doc = DOCS["crm_direct.yaml"]
    assert _mutate(doc, ("design", "cohort_size"), "replace", True)["design"]["cohort_size"] is True
    assert "target" not in _mutate(doc, ("design", "target"), "delete", None)["design"]
    assert _mutate(doc, ("design",), "unknown_type", None)["design"]["type"] == "no_such_type"
    assert len(_mutate(doc, ("truth", "tox"), "shorten", None)["truth"]["tox"]) == 4
    assert math.isnan(_mutate(doc, ("doses", 0), "replace", float("nan"))["doses"][0])
