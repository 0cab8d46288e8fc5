"""YAML study file → validated, frozen :class:`~trialsim.study.Study`.

Top-level keys (see ``docs/config.md``): ``name``, ``description``, ``doses``, ``dose_unit``,
``target``, either ``truth`` (direct truth) or ``population`` / ``pk`` / ``response``
(mechanistic), ``design``, and ``simulation`` (default ``n_trials`` and ``seed`` for the CLI).
Every error names the file, the YAML path and what was expected; all errors found in the
independent sections are reported together.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from trialsim.config.build import build, construct, expect_mapping, to_config
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.population import Population
from trialsim.study import DirectTruth, Mechanistic, Study

TOP_KEYS = ("name", "description", "doses", "dose_unit", "target", "truth", "population", "pk",
            "response", "design", "simulation")
DOSE_UNITS = ("mg", "mg/kg", "")
DEFAULT_TARGET = 0.30


def read_yaml(path: str | Path) -> dict:
    """Parse a YAML file safely; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read file: {e.strerror}", (), str(path)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(e, 'problem', e)}", (), str(path)) from None
    if not isinstance(doc, dict):
        raise ConfigError("a study file must be a YAML mapping of top-level keys", (), str(path))
    return doc


def apply_overrides(doc: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``dotted.path=value`` overrides (value parsed as YAML) to a copy of ``doc``.

    List elements are addressed by index: ``design.skeleton.0=0.03``.
    """
    doc = copy.deepcopy(doc)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like dotted.path=value", ("--set",))
        key, raw = item.split("=", 1)
        parts = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
        if not all(str(p) for p in parts):
            raise ConfigError(f"override {item!r} has an empty path element", ("--set",))
        value = yaml.safe_load(raw)
        node: Any = doc
        for i, p in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            try:
                node = node[p]
            except (KeyError, IndexError, TypeError):
                if isinstance(node, dict):
                    node[p] = [] if isinstance(nxt, int) else {}
                    node = node[p]
                else:
                    raise ConfigError(f"override {item!r}: no element {p!r}", tuple(parts[:i + 1])) from None
        last = parts[-1]
        try:
            node[last] = value
        except (IndexError, TypeError):
            raise ConfigError(f"override {item!r}: cannot set element {last!r}", tuple(parts)) from None
    return doc


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Study:
    """Load and validate a study file (``overrides`` as for :func:`apply_overrides`)."""
    doc = read_yaml(path)
    try:
        doc = apply_overrides(doc, overrides)
        return from_dict(doc, name_default=Path(path).stem)
    except ConfigError as e:
        raise e.at((), str(path)) from None


def from_dict(doc: dict, name_default: str = "study") -> Study:
    """Build a Study from an already-parsed mapping."""
    errors: list[ConfigError] = []

    def attempt(fn, *args):
        try:
            return fn(*args)
        except ConfigErrors as e:
            errors.extend(e.errors)
        except ConfigError as e:
            errors.append(e)
        return None

    expect_mapping(doc, (), "the study's top-level keys")
    for k in doc:
        if k not in TOP_KEYS:
            errors.append(ConfigError(f"unknown top-level key; expected one of: {', '.join(TOP_KEYS)}", (k,)))
    name = str(doc.get("name", name_default))
    doses = attempt(_doses, doc)
    unit = attempt(_dose_unit, doc)
    design = attempt(_design, doc, doses)
    scenario = attempt(_scenario, doc, doses)
    target = attempt(_target, doc, design)
    attempt(_simulation, doc)
    if errors:
        raise ConfigErrors(errors)
    resolved = {"name": name}
    if "description" in doc:
        resolved["description"] = doc["description"]
    resolved.update({"doses": list(doses), "dose_unit": unit, "target": target})
    for k in ("truth", "population", "pk", "response"):
        if k in doc:
            resolved[k] = copy.deepcopy(doc[k])
    resolved["design"] = design_to_config(design)
    if "simulation" in doc:
        resolved["simulation"] = doc["simulation"]
    return Study(name=name, doses=tuple(doses), dose_unit=unit, scenario=scenario, design=design,
                 target=target, config=resolved)


def _number_list(value, path, what) -> list[float]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"expected a non-empty list of {what}, got {value!r}", path)
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ConfigError(f"expected a number ({what}), got {v!r}", path + (i,))
        out.append(float(v))
    return out


def _doses(doc) -> list[float]:
    if "doses" not in doc:
        raise ConfigError("required key is missing: the list of dose levels", ("doses",))
    doses = _number_list(doc["doses"], ("doses",), "dose levels")
    for i, d in enumerate(doses):
        if d < 0:
            raise ConfigError(f"dose levels must be >= 0, got {d}", ("doses", i))
    if any(b <= a for a, b in zip(doses, doses[1:])):
        raise ConfigError(f"dose levels must be strictly increasing, got {doses}", ("doses",))
    return doses


def _dose_unit(doc) -> str:
    unit = doc.get("dose_unit", "")
    if unit not in DOSE_UNITS:
        raise ConfigError(f"expected one of {DOSE_UNITS}, got {unit!r}", ("dose_unit",))
    if "pk" in doc and unit not in ("mg", "mg/kg"):
        raise ConfigError("a study with a pk section needs dose_unit 'mg' or 'mg/kg'", ("dose_unit",))
    return unit


def _target(doc, design) -> float:
    if "target" in doc:
        t = doc["target"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
            raise ConfigError(f"expected a toxicity probability strictly between 0 and 1, got {t!r}", ("target",))
        return float(t)
    return float(getattr(design, "target", DEFAULT_TARGET)) if design is not None else DEFAULT_TARGET


def _simulation(doc) -> None:
    sim = doc.get("simulation")
    if sim is None:
        return
    expect_mapping(sim, ("simulation",), "n_trials and seed")
    for k, v in sim.items():
        if k not in ("n_trials", "seed"):
            raise ConfigError("unknown key; expected one of: n_trials, seed", ("simulation", k))
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if k == "n_trials" else 0):
            raise ConfigError(f"expected an integer {'>= 1' if k == 'n_trials' else '>= 0'}, got {v!r}",
                              ("simulation", k))


def _design(doc, doses):
    if "design" not in doc:
        raise ConfigError("required key is missing: the design ({type: ..., ...})", ("design",))
    node = dict(expect_mapping(doc["design"], ("design",), "a design with a 'type:' key"))
    mods = node.pop("modifiers", [])
    n_doses = len(doses) if doses else None
    inject = {"n_doses": n_doses} if n_doses else {}
    design = build("design", node, ("design",), **inject)
    skel = getattr(design, "skeleton", None)
    if skel is not None and n_doses is not None and len(skel) != n_doses:
        raise ConfigError(f"expected one skeleton probability per dose ({n_doses}), got {len(skel)}",
                          ("design", "skeleton"))
    if getattr(design, "start_dose", 0) >= (n_doses or 10**9):
        raise ConfigError(f"start_dose must index one of the {n_doses} doses (0-based)", ("design", "start_dose"))
    if not isinstance(mods, list):
        raise ConfigError(f"expected a list of modifiers, got {mods!r}", ("design", "modifiers"))
    for i, m in enumerate(mods):
        path = ("design", "modifiers", i)
        m = dict(expect_mapping(m, path, "a modifier with a 'type:' key"))
        if "parent" in m:
            raise ConfigError("'parent' is set by the order of the list, not in YAML", path + ("parent",))
        m["parent"] = design
        design = build("modifier", m, path)
    return design


def design_to_config(design) -> dict:
    """The resolved design mapping, modifiers flattened back into a list (innermost first)."""
    mods = []
    while hasattr(design, "parent"):
        cfg = to_config(design)
        cfg.pop("parent", None)
        mods.append(cfg)
        design = design.parent
    out = to_config(design)
    if mods:
        out["modifiers"] = mods[::-1]
    return out


def _scenario(doc, doses):
    has_truth = "truth" in doc
    mech = [k for k in ("population", "pk", "response") if k in doc]
    if has_truth and mech:
        raise ConfigError(f"state the truth either directly (truth) or mechanistically ({', '.join(mech)}), "
                          "not both", ("truth",))
    if has_truth:
        return _direct_truth(doc["truth"], doses)
    if "response" not in doc:
        raise ConfigError("state the truth: a 'truth:' mapping of probabilities per dose, or "
                          "'population:', 'pk:' and 'response:' sections", ("truth",))
    population = _population(doc.get("population") or {})
    pk = None
    if "pk" in doc:
        from trialsim.pk.config import from_config
        try:
            pk = from_config(expect_mapping(doc["pk"], ("pk",), "a PK model"))
        except ConfigError as e:
            raise e.at(("pk",)) from None
    resp = expect_mapping(doc["response"], ("response",), "toxicity and efficacy models")
    for k in resp:
        if k not in ("toxicity", "efficacy"):
            raise ConfigError("unknown key; expected toxicity or efficacy", ("response", k))
    if "toxicity" not in resp:
        raise ConfigError("required key is missing: the toxicity model", ("response", "toxicity"))
    tox = build("response", resp["toxicity"], ("response", "toxicity"))
    eff = build("response", resp["efficacy"], ("response", "efficacy")) if "efficacy" in resp else None
    for key, m in (("toxicity", tox), ("efficacy", eff)):
        if m is None:
            continue
        if not hasattr(m, "outcome"):
            raise ConfigError(f"response type {resp[key].get('type')!r} cannot give a binary {key} outcome",
                              ("response", key, "type"))
        if m.exposure != "dose" and pk is None:
            raise ConfigError(f"exposure {m.exposure!r} needs a pk section (or use exposure: dose)",
                              ("response", key, "exposure"))
        need = getattr(m, "baseline", None)
        if isinstance(need, str) and need not in population.covariates:
            raise ConfigError(f"needs the population covariate {need!r} (the baseline score)",
                              ("response", key, "baseline"))
    if pk is not None and doc.get("dose_unit") == "mg/kg" and "weight_kg" not in population.covariates:
        raise ConfigError("mg/kg dosing needs a weight_kg covariate in the population", ("population",))
    return construct(Mechanistic, dict(population=population, toxicity=tox, efficacy=eff, pk=pk), ())


def _population(node) -> Population:
    node = expect_mapping(node, ("population",), "covariate name → {dist: ..., ...}")
    covs = {name: build("distribution", d, ("population", name), key="dist") for name, d in node.items()}
    return Population(covs)


def _direct_truth(node, doses) -> DirectTruth:
    node = expect_mapping(node, ("truth",), "tox (and optionally eff) probabilities per dose")
    out = {}
    for k, v in node.items():
        if k not in ("tox", "eff"):
            raise ConfigError("unknown key; expected tox or eff", ("truth", k))
        probs = _number_list(v, ("truth", k), "probabilities")
        for i, p in enumerate(probs):
            if not 0 <= p <= 1:
                raise ConfigError(f"expected a probability between 0 and 1, got {p}", ("truth", k, i))
        if doses is not None and len(probs) != len(doses):
            raise ConfigError(f"expected one probability per dose ({len(doses)}), got {len(probs)}", ("truth", k))
        out[k] = tuple(probs)
    if "tox" not in out:
        raise ConfigError("required key is missing: true toxicity probabilities per dose", ("truth", "tox"))
    if any(b < a for a, b in zip(out["tox"], out["tox"][1:])):
        raise ConfigError(f"toxicity probabilities must not decrease with dose, got {list(out['tox'])}",
                          ("truth", "tox"))
    return DirectTruth(out["tox"], out.get("eff"))


def study_to_yaml(study: Study, **extra) -> str:
    """The fully resolved configuration of ``study`` (plus ``extra`` keys) as YAML text."""
    doc = dict(study.config)
    doc.update(extra)
    return yaml.safe_dump(doc, sort_keys=False)
