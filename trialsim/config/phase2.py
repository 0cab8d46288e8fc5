"""A phase II study file → :class:`~trialsim.phase2.study.Phase2Study`.

Top-level keys: ``name``, ``description``, ``doses`` (placebo 0 first), ``dose_unit``,
``population``, ``pk``, ``response: {efficacy: {type: madrs_timecourse, ...}}``, ``design``
(a phase II design, e.g. ``{type: parallel, allocation: [...], n_total: N}``), ``visits_h``,
``endpoint``, ``safety`` (acute adverse effects by name), ``dropout``, ``analysis``,
``decision``, ``control`` (an active placebo), ``simulation`` and ``scenarios`` (named
variants of the world, read by :mod:`trialsim.config.study`).
"""
from __future__ import annotations

import copy
import re

import numpy as np

from trialsim.config.build import (build, construct, describe_value, expect_mapping,
                                   finite_number, path_key)
from trialsim.config.collect import Collector
from trialsim.config.conduct import conduct_section
from trialsim.errors import ConfigError
from trialsim.phase2.study import (ActiveControl, Analysis, Decision, Dropout, Endpoint,
                                   Phase2Study)
from trialsim.pk import check_metrics
from trialsim.response.safety import SafetyMeasure
from trialsim.response.timecourse import MadrsTimeCourse
from trialsim.spec import validation_context

TOP_KEYS = ("name", "description", "doses", "dose_unit", "population", "pk", "response",
            "design", "visits_h", "endpoint", "safety", "dropout", "analysis", "decision",
            "simulation", "scenarios", "run", "control", "conduct")
#: Conduct keys of escalation trials only (a phase II patient is enrolled on arrival, so waits
#: for a chair, never for a place; is followed to the last of the study's visits_h; dropout is
#: the study's dropout: section).
ESCALATION_CONDUCT = ("window_h", "visits_h", "read_out_h", "dropout_per_week", "max_wait_days")


def phase2_from_dict(doc: dict, parts: dict, source: str | None) -> Phase2Study:
    """Build the phase II study; ``parts`` holds what the common loader already checked
    (name, description, doses, dose_unit, population, pk, simulation)."""
    checks = Collector()
    for k in doc:
        if k not in TOP_KEYS:
            checks.errors.append(ConfigError(f"unknown top-level key of a phase II study; "
                                             f"expected one of: {', '.join(TOP_KEYS)}",
                                             (path_key(k),)))
    doses = parts["doses"]
    n = len(doses) if doses else None
    ctx = {"n_doses": n} if n else {}
    safety = checks.attempt(_safety, doc, parts)
    if safety is not None:
        ctx["safety_names"] = tuple(safety)
    with validation_context(**ctx):
        design = checks.attempt(lambda: build("phase2_design", doc["design"], ("design",)))
        efficacy = checks.attempt(_efficacy, doc)
        visits = checks.attempt(_visits, doc)
        endpoint = checks.attempt(_section, doc, "endpoint", Endpoint, {})
        dropout = checks.attempt(_section, doc, "dropout", Dropout, {})
        analysis = checks.attempt(_section, doc, "analysis", Analysis, None)
        decision = checks.attempt(_section, doc, "decision", Decision, {})
        control = (checks.attempt(_section, doc, "control", ActiveControl, None)
                   if doc.get("control") is not None else None)
    if doses is not None and doses[0] != 0:
        checks.errors.append(ConfigError("a phase II study needs placebo: the first dose must "
                                         "be 0", ("doses", 0)))
    checks.raise_any()
    pop = parts["population"]
    if efficacy.baseline not in pop.covariates:
        raise ConfigError(f"the efficacy model needs the population covariate "
                          f"{efficacy.baseline!r} (the baseline score)", ("population",))
    for c in design.strata:
        if c not in pop.covariates:
            raise ConfigError(f"{c!r} is not a population covariate (known: "
                              f"{', '.join(pop.covariates) or 'none'})", ("design", "strata", c))
    for i, c in enumerate(analysis.covariates):
        if c not in pop.covariates:
            raise ConfigError(f"ANCOVA covariate {c!r} is not a population covariate",
                              ("analysis", "covariates", i))
        if endpoint.binary:
            raise ConfigError("covariates apply to a continuous endpoint (change)",
                              ("analysis", "covariates"))
    p2 = getattr(design, "period2_h", None)
    if p2 is not None and p2 not in visits:
        raise ConfigError(f"period2_h ({p2:g} h) must be one of visits_h {list(visits)}: "
                          "non-response is judged there", ("design", "period2_h"))
    if analysis.missing == "mmrm" and endpoint.binary:
        raise ConfigError("missing: mmrm models the MADRS change over visits: it needs "
                          "endpoint type change (use completers or locf for response or "
                          "remission)", ("analysis", "missing"))
    if endpoint.visit_h not in visits:
        raise ConfigError(f"the primary visit ({endpoint.visit_h:g} h) must be one of visits_h "
                          f"{list(visits)}", ("endpoint", "visit_h"))
    if dropout.no_response_hazard_ratio != 1 and dropout.response_visit_h not in visits:
        raise ConfigError(f"the visit judging response for dropout ({dropout.response_visit_h:g}"
                          f" h) must be one of visits_h {list(visits)}",
                          ("dropout", "response_visit_h"))
    _check_size(design, analysis, doc["design"])
    _check_looks(design, analysis)
    _check_models(analysis, doses)
    conduct = _conduct(doc, design) if doc.get("conduct") is not None else None
    resolved = {k: copy.deepcopy(doc[k]) for k in TOP_KEYS if k in doc}
    resolved.update({"name": parts["name"], "doses": list(doses),
                     "dose_unit": parts["dose_unit"]})
    try:
        return Phase2Study(parts["name"], tuple(doses), parts["dose_unit"], pop, parts["pk"],
                           efficacy, design, visits, endpoint, dropout, analysis, decision,
                           safety, resolved, source, control=control, conduct=conduct)
    except ValueError as e:
        raise ConfigError(str(e), ("design",)) from None


#: Fewest patients an arm may expect: the analysis compares every arm's mean with placebo's.
MIN_PER_ARM = 2


def _check_looks(design, analysis) -> None:
    """An adaptive design's interims: the first has at least MIN_PER_ARM patients per arm to
    analyse, and no interim's efficacy level exceeds the final ``alpha`` (stopping for
    efficacy more easily at a look than at the end inflates the type I error)."""
    interims = getattr(design, "interims", None)
    if not interims:
        return
    if interims[0] < MIN_PER_ARM * design.n_arms:
        raise ConfigError(f"the first interim comes after {interims[0]} patients: the analysis "
                          f"needs at least {MIN_PER_ARM} per arm ({MIN_PER_ARM * design.n_arms}"
                          f" for {design.n_arms} arms)", ("design", "interims"))
    levels = [design.efficacy_level(k) for k in range(len(interims))]
    if max(levels) > analysis.alpha:
        raise ConfigError(f"an interim's efficacy level ({max(levels):g}) exceeds the final "
                          f"analysis.alpha ({analysis.alpha:g}): interim levels are smaller "
                          "(e.g. Haybittle-Peto's 0.001)", ("design", "efficacy_p"))


def _check_size(design, analysis, node) -> None:
    """Every arm expects at least MIN_PER_ARM patients, and the ANCOVA (a mean per arm and a
    slope per covariate) keeps at least as many residual degrees of freedom as arms.  (The
    design ``n_total: 3`` for 5 arms ran and reported a power of 0 with no fits.)"""
    per_arm = getattr(design, "expected_per_arm", None)
    smallest = float(np.min(per_arm)) if per_arm is not None else design.n_total / design.n_arms
    need = design.n_arms * 2 + len(analysis.covariates)
    if smallest < MIN_PER_ARM or design.n_total < need:
        key = "n_per_arm" if "n_per_arm" in node else "n_total"
        raise ConfigError(f"{design.n_total} patients for {design.n_arms} arms (the smallest "
                          f"expecting {smallest:.3g}): the analysis needs at least "
                          f"{MIN_PER_ARM} per arm and {need} in all (a mean per arm and a "
                          f"slope per covariate, and as many residual degrees of freedom as "
                          "arms)", ("design", key))


def _conduct(doc, design):
    """The phase II ``conduct:`` section: sites, screening, chairs and opening hours."""
    node = expect_mapping(doc["conduct"], ("conduct",), "the conduct section (sites:, ...)")
    for k in ESCALATION_CONDUCT:
        if k in node:
            raise ConfigError("applies to escalation trials: a phase II patient is enrolled "
                              "as they arrive (waiting only for a chair at their site) and "
                              "followed to the last of visits_h (dropout: the dropout "
                              "section)", ("conduct", k))
    if getattr(design, "accrual_per_week", None) is not None:
        raise ConfigError("give either conduct: (sites) or accrual_per_week, not both: the "
                          "calendar decides who enrols during each interim",
                          ("design", "accrual_per_week"))
    return conduct_section(doc)


def _efficacy(doc) -> MadrsTimeCourse:
    resp = expect_mapping(doc.get("response"), ("response",), "the efficacy time course")
    for k in resp:
        if k != "efficacy":
            raise ConfigError("unknown key; a phase II study's response has efficacy: "
                              "{type: madrs_timecourse, ...}", ("response", path_key(k)))
    if "efficacy" not in resp:
        raise ConfigError("required key is missing: the efficacy model",
                          ("response", "efficacy"))
    m = build("response", resp["efficacy"], ("response", "efficacy"))
    if not isinstance(m, MadrsTimeCourse):
        raise ConfigError("a phase II study needs a clinical-score time course "
                          "(type: madrs_timecourse)", ("response", "efficacy", "type"))
    return m


def _safety(doc, parts) -> dict[str, SafetyMeasure]:
    """The ``safety:`` section: measure name → :class:`SafetyMeasure`."""
    if "safety" not in doc:
        return {}
    node = expect_mapping(doc["safety"], ("safety",),
                          "safety measures by name, e.g. {dissociation: {emax: ..., ...}}")
    if len(node) > 10:
        raise ConfigError(f"at most 10 safety measures, got {len(node)}", ("safety",))
    out = {}
    for name, spec_ in node.items():
        path = ("safety", path_key(name))
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", name):
            raise ConfigError("a safety measure's name is a word of letters, digits and _ "
                              f"(at most 40), got {describe_value(name)}", path)
        m = construct(SafetyMeasure, dict(expect_mapping(spec_, path, "a safety measure")),
                      path)
        pop, pk = parts["population"], parts["pk"]
        if m.baseline is not None and m.baseline not in pop.covariates:
            raise ConfigError(f"{m.baseline!r} is not a population covariate",
                              path + ("baseline",))
        if pk is None:
            raise ConfigError("a safety measure is driven by drug concentrations: the study "
                              "needs a pk section", path)
        try:
            check_metrics(pk, m.metric_names())
        except ValueError as e:
            raise ConfigError(str(e), path + ("exposure",)) from None
        out[name] = m
    return out


def _visits(doc) -> tuple[float, ...]:
    v = doc.get("visits_h")
    if not isinstance(v, list) or not v:
        raise ConfigError(f"expected a non-empty list of visit times in hours, got "
                          f"{describe_value(v)}", ("visits_h",))
    out = [finite_number(x, ("visits_h", i), "a visit time in hours") for i, x in enumerate(v)]
    if any(x <= 0 or x > 1e5 for x in out) or any(b <= a for a, b in zip(out, out[1:])):
        raise ConfigError(f"visit times must be increasing hours in (0, 1e5], got {out}",
                          ("visits_h",))
    if len(out) > 50:
        raise ConfigError("at most 50 visits", ("visits_h",))
    return tuple(out)


def _section(doc, key, cls, default):
    if key not in doc:
        if default is None:
            raise ConfigError(f"required key is missing: the {key} section", (key,))
        return construct(cls, default, (key,))
    node = expect_mapping(doc[key], (key,), f"the {key} settings")
    return construct(cls, dict(node), (key,))


def _check_models(analysis: Analysis, doses) -> None:
    from trialsim.analysis.doseresponse.models import Candidates

    try:
        Candidates.from_models(doses, analysis.models, analysis.off, analysis.scal)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e), ("analysis", "models")) from None

