"""YAML study file → validated, frozen :class:`~trialsim.study.Study`.

Top-level keys (see ``docs/config.md``): ``name``, ``description``, ``doses``, ``dose_unit``,
``target``, either ``truth`` (direct truth) or ``population`` / ``pk`` / ``response``
(mechanistic), ``design``, and ``simulation`` (default ``n_trials`` and ``seed`` for the CLI).
Every error names the file, the YAML path and what was expected; all errors found in the
independent sections are reported together.  A study that loads has also been run on a few
virtual patients (:mod:`trialsim.config.probe`), so whatever a run would reject is reported
here, with its YAML path.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from trialsim.config import pk as pk_config
from trialsim.config.collect import Collector
from trialsim.config.conduct import check_conduct, conduct_section
from trialsim.config.build import (build, check_keys, construct, describe_value, expect_mapping,
                                   finite_number, path_key, to_config)
from trialsim.config.overrides import apply_overrides, set_path
from trialsim.config.probe import probe, probe_phase2
from trialsim.config.reader import read_yaml
from trialsim.config.phase2 import phase2_from_dict
from trialsim.config.population import check_covariates, population_section
from trialsim.designs.backfill import backfill_of
from trialsim.designs.modifiers import Modifier
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.pk import check_metrics
from trialsim.registry import names
from trialsim.rng import MAX_SEED
from trialsim.simulate import DEFAULT_MAX_MEMORY_GB, MAX_TRIALS, ResourceError, check_memory
from trialsim.spec import validation_context
from trialsim.study import DirectTruth, Mechanistic, Study

#: ``run`` holds what ``trialsim run`` records in the study.yaml it writes (seed, trial count,
#: version); it is ignored on load, so that file runs again as it is.
TOP_KEYS = ("name", "description", "doses", "dose_unit", "target", "truth", "population", "pk",
            "response", "design", "simulation", "run", "conduct")
DOSE_UNITS = ("mg", "mg/kg", "")
DEFAULT_TARGET = 0.30
#: Most dose levels in a study, and the largest dose (mg or mg/kg).
MAX_DOSES = 100
MAX_DOSE = 1e6
#: A study name is one safe folder name (it names the default output folder).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SIMULATION_KEYS = ("n_trials", "seed")


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Study:
    """Load and validate a study file (``overrides`` as for :func:`apply_overrides`)."""
    if overrides is None:
        overrides = ()
    if isinstance(overrides, str) or not isinstance(overrides, (list, tuple)):
        raise TypeError(f"overrides must be a list of 'dotted.path=value' strings, got "
                        f"{type(overrides).__name__}")
    doc = read_yaml(path)
    try:
        doc = apply_overrides(doc, overrides)
        return from_dict(doc, name_default=safe_name(Path(path).stem), source=str(path))
    except ConfigError as e:
        raise e.at((), str(path)) from None


def safe_name(text: str) -> str:
    """``text`` turned into a valid study name (unsafe characters become ``-``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:100]
    return name or "study"


def from_dict(doc: Any, name_default: str = "study", source: str | None = None) -> Study:
    """Build a Study from an already-parsed mapping (``source``: where it came from, kept on
    the study)."""
    checks = Collector()
    attempt = checks.attempt
    expect_mapping(doc, (), "the study's top-level keys")
    for k in doc:
        if k not in TOP_KEYS:
            checks.errors.append(ConfigError(f"unknown top-level key; expected one of: "
                                             f"{', '.join(TOP_KEYS)}", (path_key(k),)))
    if _is_phase2(doc):
        return _phase2(doc, name_default, source)
    own = [k for k in PHASE2_ONLY if k in doc]
    if own:
        raise ConfigError(f"a study with {', '.join(own)} is a phase II study: expected a phase "
                          f"II design type ({', '.join(names('phase2_design'))})",
                          ("design", "type"))
    name = attempt(_name, doc, name_default)
    description = attempt(_description, doc)
    doses = attempt(_doses, doc)
    unit = attempt(_dose_unit, doc)
    design = attempt(_design, doc, doses)
    scenario = attempt(_scenario, doc, doses, unit)
    target = attempt(_target, doc, design)
    sim = attempt(_simulation, doc)
    conduct = attempt(conduct_section, doc) if "conduct" in doc else None
    checks.raise_any()
    if design.needs_efficacy and not scenario.has_efficacy:
        raise ConfigError(f"{design_to_config(design)['type']} decides on efficacy too: give "
                          "response probabilities (truth.eff) or an efficacy model "
                          "(response.efficacy)", ("design", "type"))
    if design.backfills and backfill_of(design).need_response and not scenario.has_efficacy:
        raise ConfigError("backfill opens a dose once a response is seen there (need_response): "
                          "give response probabilities (truth.eff) or an efficacy model, or set "
                          "need_response: false", ("design", "modifiers"))
    check_conduct(design_to_config(design)["type"], design,
                  None if conduct is None else conduct.screening(scenario.population.p_eligible))
    resolved: dict[str, Any] = {"name": name}
    if description is not None:
        resolved["description"] = description
    resolved.update({"doses": list(doses), "dose_unit": unit, "target": target})
    for k in ("truth", "population", "pk", "response", "conduct"):
        if k in doc:
            resolved[k] = copy.deepcopy(doc[k])
    resolved["design"] = design_to_config(design)
    if sim:
        resolved["simulation"] = sim
    try:
        study = Study(name=name, doses=tuple(doses), dose_unit=unit, scenario=scenario,
                      design=design, target=target, config=resolved, source=source,
                      conduct=conduct)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), ("design",)) from None
    probe(study)
    _check_run_memory(study, sim)
    return study


def _check_run_memory(study, sim: dict) -> None:
    """``simulation.n_trials`` within the default memory limit (ConfigError at that path)."""
    if "n_trials" in sim:
        try:
            check_memory(study, sim["n_trials"], DEFAULT_MAX_MEMORY_GB)
        except ResourceError as e:
            raise ConfigError(str(e), ("simulation", "n_trials")) from None


def _is_phase2(doc) -> bool:
    """Whether the design names a phase II design (``type: parallel``, ...)."""
    node = doc.get("design")
    return (isinstance(node, dict) and isinstance(node.get("type"), str)
            and node["type"] in names("phase2_design"))


#: Keys only a phase II study has (a design type that is not a phase II one is then wrong).
PHASE2_ONLY = ("visits_h", "endpoint", "analysis", "decision", "safety", "dropout", "scenarios",
               "control")
#: What a phase II scenario may change: the world and what the control arm receives, not the
#: trial (design, doses, visits, analysis and decision stay those of the study).
SCENARIO_KEYS = ("population", "pk", "response", "safety", "dropout", "control")
MAX_SCENARIOS = 50


def _phase2(doc, name_default, source):
    if "scenarios" not in doc:
        return _phase2_study(doc, name_default, source)
    doc = dict(doc)
    node = doc.pop("scenarios")
    base = _phase2_study(doc, name_default, source)
    node = expect_mapping(node, ("scenarios",), "scenarios by name, each a mapping of dotted "
                          "paths to values, e.g. {flat: {response.efficacy.emax: 0}}")
    if not 1 <= len(node) <= MAX_SCENARIOS:
        raise ConfigError(f"expected 1 to {MAX_SCENARIOS} scenarios, got {len(node)}",
                          ("scenarios",))
    scenarios = {}
    for name, changes in node.items():
        where = ("scenarios", path_key(name))
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,59}",
                                                         name):
            raise ConfigError("a scenario's name is a word of letters, digits, _ . - (at most "
                              f"60), got {describe_value(name)}", where)
        changes = expect_mapping({} if changes is None else changes, where,
                                 "dotted paths and their values, e.g. {response.efficacy.emax: 0}")
        sdoc = copy.deepcopy(doc)
        sdoc["name"] = base.name
        for key, value in changes.items():
            top = str(key).split(".")[0]
            if top not in SCENARIO_KEYS:
                raise ConfigError(f"a scenario changes the world, not the trial: paths start "
                                  f"with one of {', '.join(SCENARIO_KEYS)}", where + (str(key),))
            for path, v in _scenario_changes(doc, str(key), value):
                set_path(sdoc, path, copy.deepcopy(v), where + (path,))
        try:
            scenarios[name] = _phase2_study(sdoc, name_default, source)
        except ConfigErrors as e:
            raise ConfigErrors([_in_scenario(x, where) for x in e.errors]) from None
        except ConfigError as e:
            raise _in_scenario(e, where) from None
    config = dict(base.config)
    config["scenarios"] = copy.deepcopy(node)
    study = dataclasses.replace(base, scenarios=scenarios, config=config)
    _check_run_memory(study, config.get("simulation") or {})     # every scenario's results
    return study


def _scenario_changes(doc: dict, key: str, value):
    """The dotted paths and values of one scenario change: a mapping without ``type:`` merges
    into the mapping the study has at ``key`` (``response: {efficacy: {emax: 0}}`` is
    ``response.efficacy.emax: 0``, as ``--set`` writes it); any other value, or a mapping
    with ``type:`` (another model), replaces what is there."""
    here: Any = doc
    for part in key.split("."):
        here = here.get(part) if isinstance(here, dict) else None
    if isinstance(value, dict) and value and "type" not in value and isinstance(here, dict):
        for k, v in value.items():
            yield from _scenario_changes(doc, f"{key}.{k}", v)
    else:
        yield key, value


def _in_scenario(e: ConfigError, where: tuple) -> ConfigError:
    return ConfigError(f"in scenario {where[1]!r}: {e.message}", where + tuple(e.path))


def _phase2_study(doc, name_default, source):
    checks = Collector()
    study = None
    for k in doc:
        if not isinstance(k, str):
            checks.errors.append(ConfigError("top-level keys must be names", (path_key(k),)))
    parts = {"name": checks.attempt(_name, doc, name_default),
             "doses": checks.attempt(_doses, doc), "dose_unit": checks.attempt(_dose_unit, doc),
             "population": checks.attempt(population_section, doc.get("population", {})),
             "pk": checks.attempt(_pk, doc) if "pk" in doc else None,
             "simulation": checks.attempt(_simulation, doc)}
    checks.attempt(_description, doc)
    try:
        study = phase2_from_dict(doc, parts, source) if not checks.errors else None
    except ConfigErrors as e:
        checks.errors.extend(e.errors)
    except ConfigError as e:
        checks.errors.append(e)
    checks.raise_any()
    if study.pk is not None:
        if study.efficacy.exposure != "dose":
            try:
                check_metrics(study.pk, [study.efficacy.exposure])
            except ValueError as e:
                raise ConfigError(str(e), ("response", "efficacy", "exposure")) from None
    elif study.efficacy.exposure != "dose":
        raise ConfigError(f"exposure {study.efficacy.exposure!r} needs a pk section (or use "
                          "exposure: dose)", ("response", "efficacy", "exposure"))
    check_covariates(study.population, None, study.efficacy, study.pk, study.dose_unit)
    probe_phase2(study)
    _check_run_memory(study, parts["simulation"] or {})
    return study


def _name(doc, default: str) -> str:
    name = doc.get("name", default)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError("expected a study name of letters, digits, '.', '_' and '-' (at most "
                          "100, starting with a letter or digit; it names the output folder), "
                          f"got {describe_value(name)}", ("name",))
    return name


def _description(doc) -> str | None:
    if "description" not in doc:
        return None
    d = doc["description"]
    if not isinstance(d, str):
        raise ConfigError(f"expected a text, got {describe_value(d)}", ("description",))
    return d


def _number_list(value, path, what) -> list[float]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"expected a non-empty list of {what}, got {describe_value(value)}", path)
    return [finite_number(v, path + (i,), f"a number ({what})") for i, v in enumerate(value)]


def _doses(doc) -> list[float]:
    if "doses" not in doc:
        raise ConfigError("required key is missing: the list of dose levels", ("doses",))
    doses = _number_list(doc["doses"], ("doses",), "dose levels")
    if len(doses) > MAX_DOSES:
        raise ConfigError(f"expected at most {MAX_DOSES} dose levels, got {len(doses)}", ("doses",))
    for i, d in enumerate(doses):
        if not 0 <= d <= MAX_DOSE:
            raise ConfigError(f"dose levels must be >= 0 and <= {MAX_DOSE:g}, got {d:g}",
                              ("doses", i))
    if any(b <= a for a, b in zip(doses, doses[1:])):
        raise ConfigError(f"dose levels must be strictly increasing, got {doses}", ("doses",))
    return doses


def _dose_unit(doc) -> str:
    unit = doc.get("dose_unit", "")
    if not isinstance(unit, str) or unit not in DOSE_UNITS:
        raise ConfigError(f"expected one of {', '.join(repr(u) for u in DOSE_UNITS)}, got "
                          f"{describe_value(unit)}", ("dose_unit",))
    if "pk" in doc and unit not in ("mg", "mg/kg"):
        raise ConfigError("a study with a pk section needs dose_unit 'mg' or 'mg/kg'",
                          ("dose_unit",))
    return unit


def _target(doc, design) -> float:
    if "target" in doc:
        t = finite_number(doc["target"], ("target",), "a toxicity probability")
        if not 0 < t < 1:
            raise ConfigError(f"expected a toxicity probability strictly between 0 and 1, got "
                              f"{t:g}", ("target",))
        return t
    return float(getattr(design, "target", DEFAULT_TARGET)) if design is not None else \
        DEFAULT_TARGET


def _simulation(doc) -> dict:
    if "simulation" not in doc:
        return {}
    sim = expect_mapping(doc["simulation"], ("simulation",), "n_trials and seed")
    out = {}
    for k, v in sim.items():
        if k not in SIMULATION_KEYS:
            raise ConfigError(f"unknown key; expected one of: {', '.join(SIMULATION_KEYS)}",
                              ("simulation", path_key(k)))
        low, high = (1, MAX_TRIALS) if k == "n_trials" else (0, MAX_SEED)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ConfigError(f"expected an integer from {low} to {high:,}, got "
                              f"{describe_value(v)}", ("simulation", k))
        out[k] = v
    return out


#: Design fields a study file sets from its top-level ``doses`` (the YAML leaves them out).
DOSE_FIELDS = ("n_doses", "doses")


def _design(doc, doses):
    if "design" not in doc:
        raise ConfigError("required key is missing: the design ({type: ..., ...})", ("design",))
    node = dict(expect_mapping(doc["design"], ("design",), "a design with a 'type:' key"))
    mods = node.pop("modifiers", [])
    n_doses = len(doses) if doses else None
    if n_doses is None and "doses" in doc:
        return None    # the doses have errors of their own; the design is checked against them
    inject = dict(zip(DOSE_FIELDS, (n_doses, tuple(doses)))) if n_doses else {}
    ctx = {"n_doses": n_doses} if n_doses else {}
    checks = Collector()        # the design's errors and every modifier's, reported together
    with validation_context(**ctx):
        design = checks.attempt(lambda: build("design", node, ("design",), **inject))
        if not isinstance(mods, list):
            checks.errors.append(ConfigError(f"expected a list of modifiers, got "
                                             f"{describe_value(mods)}", ("design", "modifiers")))
            mods = []
        for i, m in enumerate(mods):
            design = checks.attempt(_modifier, m, design, ("design", "modifiers", i))
    checks.raise_any()
    if not isinstance(getattr(design, "n_doses", None), int):
        raise ConfigError(f"{type(design).__name__} gives no n_doses: a design states its number "
                          "of dose levels (a field n_doses, or a property of its other fields, "
                          "as the CRM's skeleton)", ("design",))
    if n_doses is not None and design.n_doses != n_doses:
        raise ConfigError(f"the design has {design.n_doses} dose levels but the study has "
                          f"{n_doses}", ("design",))
    return design


def _modifier(m, parent, path: tuple):
    """The modifier ``m`` wrapped around ``parent``; with no parent (it had errors of its own)
    only the modifier's type and keys are checked."""
    m = dict(expect_mapping(m, path, "a modifier with a 'type:' key"))
    if "parent" in m:
        raise ConfigError("'parent' is set by the order of the list, not in YAML",
                          path + ("parent",))
    if parent is None:
        check_keys("modifier", m, path, given=("parent",))
        return None
    return build("modifier", dict(m, parent=parent), path)


def design_to_config(design) -> dict:
    """The resolved design mapping, modifiers flattened back into a list (innermost first)."""
    mods = []
    while isinstance(design, Modifier):
        cfg = to_config(design)
        cfg.pop("parent", None)
        mods.append(cfg)
        design = design.parent
    out = to_config(design)
    if mods:
        out["modifiers"] = mods[::-1]
    return out


def _scenario(doc, doses, unit):
    has_truth = "truth" in doc
    mech = [k for k in ("population", "pk", "response") if k in doc]
    if has_truth and mech:
        raise ConfigError(f"state the truth either directly (truth) or mechanistically "
                          f"({', '.join(mech)}), not both", ("truth",))
    if has_truth:
        return _direct_truth(doc["truth"], doses)
    if "response" not in doc:
        raise ConfigError("state the truth: a 'truth:' mapping of probabilities per dose, or "
                          "'population:', 'pk:' and 'response:' sections", ("truth",))
    checks = Collector()
    population = checks.attempt(population_section, doc.get("population", {}))
    pk = checks.attempt(_pk, doc) if "pk" in doc else None
    models = checks.attempt(_responses, doc["response"], pk, "pk" in doc)
    checks.raise_any()
    tox, eff = models
    check_covariates(population, tox, eff, pk, unit)
    try:
        return Mechanistic(population=population, toxicity=tox, efficacy=eff, pk=pk)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e), ("response",)) from None


def _pk(doc):
    try:
        return pk_config.from_config(doc["pk"])
    except ConfigError as e:
        raise e.at(("pk",)) from None


def _responses(node, pk, pk_given: bool):
    resp = expect_mapping(node, ("response",), "toxicity and efficacy models")
    for k in resp:
        if k not in ("toxicity", "efficacy"):
            raise ConfigError("unknown key; expected toxicity or efficacy",
                              ("response", path_key(k)))
    if "toxicity" not in resp:
        raise ConfigError("required key is missing: the toxicity model", ("response", "toxicity"))
    tox = build("response", resp["toxicity"], ("response", "toxicity"))
    eff = build("response", resp["efficacy"], ("response", "efficacy")) if "efficacy" in resp \
        else None
    for key, m in (("toxicity", tox), ("efficacy", eff)):
        if m is None or m.exposure == "dose":
            continue
        path = ("response", key, "exposure")
        if pk is None and pk_given:
            continue  # the pk section has errors of its own
        if pk is None:
            raise ConfigError(f"exposure {m.exposure!r} needs a pk section (or use exposure: "
                              "dose)", path)
        try:
            check_metrics(pk, [m.exposure])
        except ValueError as e:
            raise ConfigError(str(e), path) from None
    return tox, eff


def _direct_truth(node, doses) -> DirectTruth:
    node = expect_mapping(node, ("truth",), "tox (and optionally eff) probabilities per dose")
    out = {}
    for k, v in node.items():
        if k not in ("tox", "eff"):
            raise ConfigError("unknown key; expected tox or eff", ("truth", path_key(k)))
        probs = _number_list(v, ("truth", k), "probabilities")
        for i, p in enumerate(probs):
            if not 0 <= p <= 1:
                raise ConfigError(f"expected a probability between 0 and 1, got {p:g}",
                                  ("truth", k, i))
        if doses is not None and len(probs) != len(doses):
            raise ConfigError(f"expected one probability per dose ({len(doses)}), got "
                              f"{len(probs)}", ("truth", k))
        out[k] = tuple(probs)
    if "tox" not in out:
        raise ConfigError("required key is missing: true toxicity probabilities per dose",
                          ("truth", "tox"))
    if any(b < a for a, b in zip(out["tox"], out["tox"][1:])):
        raise ConfigError(f"toxicity probabilities must not decrease with dose, got "
                          f"{list(out['tox'])}", ("truth", "tox"))
    return construct(DirectTruth, {"tox": out["tox"], "eff": out.get("eff")}, ("truth",))


def study_to_yaml(study: Study, **extra) -> str:
    """The fully resolved configuration of ``study`` (plus ``extra`` keys) as YAML text."""
    doc = dict(study.config)
    doc.update(extra)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
