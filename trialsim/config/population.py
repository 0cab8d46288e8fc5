"""The ``population:`` section of a study (covariate distributions and eligibility criteria)
and the check that every covariate a model reads exists and stays in the range it accepts."""
from __future__ import annotations

import math

import numpy as np

from trialsim.config.build import build, describe_value, expect_mapping, path_key
from trialsim.errors import ConfigError
from trialsim.pk.variability import CategoricalEffect, LinearEffect
from trialsim.population import Eligibility, Population
from trialsim.population.distributions import Categorical


def check_covariates(population: Population, tox, eff, pk, unit: str) -> None:
    """Covariates the models read must exist, and every value their distribution can draw
    must lie in the range the model accepts."""
    inf = float("inf")
    need: dict[str, tuple[tuple, float, float, str]] = {}   # name -> (path, low, high, who)
    for key, m in (("toxicity", tox), ("efficacy", eff)):
        if m is not None:
            for cov, (lo, hi) in m.required_covariates().items():
                need[cov] = (("response", key), lo, hi, f"the {key} model")
    if pk is not None:
        if unit == "mg/kg":
            need.setdefault("weight_kg", (("dose_unit",), 0.0, inf, "mg/kg dosing"))
        if pk.allometry is not None:
            need.setdefault(pk.allometry.covariate, (("pk", "allometry"), 0.0, inf,
                                                     "allometric scaling"))
        for i, e in enumerate(pk.effects):
            if e.required and not isinstance(e, CategoricalEffect):
                need.setdefault(e.covariate, (("pk", "covariate_effects", i), -inf, inf,
                                              "a covariate effect"))
        _check_categorical_effects(population, pk)
    for cov, (path, lo, hi, who) in need.items():
        dist = population.covariates.get(cov)
        if dist is None:
            raise ConfigError(f"{who} needs the population covariate {cov!r}; add it under "
                              "population:", path)
        if isinstance(dist, Categorical):
            raise ConfigError(f"{who} needs {cov} as a number, but it is categorical "
                              f"({', '.join(dist.levels)})", ("population", cov))
        a, b = population.extremes(cov)
        positive = lo == 0.0 and hi == inf
        if (a <= 0 if positive else a < lo) or b > hi:
            want = "> 0" if positive else f"in [{lo:g}, {hi:g}]"
            raise ConfigError(f"{who} needs {cov} {want}, but its distribution can draw values "
                              f"from {a:.4g} to {b:.4g}: bound it (e.g. truncated_normal with "
                              "low and high, uniform, lognormal, or an eligibility min/max)",
                              ("population", cov))
    if pk is not None:
        _check_linear_effects(population, pk)


def _check_categorical_effects(population: Population, pk) -> None:
    """A categorical effect reads a categorical covariate, by its categories: draws are codes
    0..K-1 in the population's order, so factors given by name need ``levels`` equal to that
    order, and every factor must name a category (a mismatch applied the factor to another
    category, or to none, silently)."""
    for i, e in enumerate(pk.effects):
        dist = population.covariates.get(e.covariate)
        if not isinstance(e, CategoricalEffect) or dist is None:
            continue
        where = ("pk", "covariate_effects", i)
        if not isinstance(dist, Categorical):
            raise ConfigError(f"a categorical effect reads a categorical covariate, but "
                              f"{e.covariate} is {type(dist).__name__.lower()}", where)
        names = dist.levels
        if e.levels is not None and tuple(e.levels) != names:
            raise ConfigError(f"levels {list(e.levels)} are not {e.covariate}'s categories in "
                              f"the population's order, {list(names)}", where + ("levels",))
        for key in e.factors:
            named = isinstance(key, str) and not key.lstrip("-").isdigit()
            if named and key not in names:
                raise ConfigError(f"{key!r} is not a category of {e.covariate} (categories: "
                                  f"{', '.join(names)})", where + ("factors",))
            if named and e.levels is None:
                raise ConfigError(f"factors by category name need levels: {list(names)} (the "
                                  f"population's order; draws are codes 0..{len(names) - 1})",
                                  where + ("levels",))
            if not named and not 0 <= int(key) < len(names):
                raise ConfigError(f"code {key} is not a category of {e.covariate} (codes "
                                  f"0..{len(names) - 1}: {', '.join(names)})",
                                  where + ("factors",))


def _check_linear_effects(population: Population, pk) -> None:
    """Linear covariate effects must keep their parameter in range (> 0; below 1 on a logit
    scale) for every value the population can draw (its extremes: the shift is monotone)."""
    base = pk.structure.parameters()
    low, high = dict(base), dict(base)
    for i, e in enumerate(pk.effects):
        if not isinstance(e, LinearEffect) or e.covariate not in population.covariates:
            continue
        a, b = population.extremes(e.covariate)
        shifts = e.shift(np.array([a, b]))
        low[e.parameter] += float(shifts.min())
        high[e.parameter] += float(shifts.max())
        logit = e.parameter in pk.omega.names and pk.omega.scale(e.parameter) == "logit"
        top = 1.0 if logit else math.inf
        if not (low[e.parameter] > 0 and high[e.parameter] < top):
            want = "in (0, 1)" if logit else "> 0"
            raise ConfigError(
                f"pk: covariate effect {i + 1} (linear, {e.covariate} on {e.parameter}) needs "
                f"{e.parameter} {want}, but {e.covariate} from {a:.4g} to {b:.4g} (its "
                f"distribution's extremes) gives {e.parameter} from {low[e.parameter]:.4g} to "
                f"{high[e.parameter]:.4g}: bound the population's {e.covariate} (e.g. an "
                "eligibility min/max) or change the effect", ("population", e.covariate))


def population_section(node) -> Population:
    node = expect_mapping(node, ("population",), "covariate name → {dist: ..., ...}")
    covs = {}
    for name, d in node.items():
        if name == ELIGIBILITY:
            continue
        if not isinstance(name, str) or not name:
            raise ConfigError(f"covariate names must be text, got {describe_value(name)}",
                              ("population",))
        covs[name] = build("distribution", d, ("population", name), key="dist")
    _check_weight(covs.get(WEIGHT))
    rules = _eligibility(node.get(ELIGIBILITY, {}), covs)
    try:
        return Population(covs, rules)
    except ValueError as e:
        for name, rule in rules.items():    # the criterion at fault, where one alone fails
            try:
                Population(covs, {name: rule})
            except ValueError as one:
                raise ConfigError(str(one), ("population", ELIGIBILITY, path_key(name))) \
                    from None
        raise ConfigError(str(e), ("population", ELIGIBILITY)) from None


#: The key of the population section that holds the eligibility criteria (not a covariate).
ELIGIBILITY = "eligibility"
#: Body weight (kg): mg/kg doses and allometry read it; its median must be a plausible one.
WEIGHT, WEIGHT_MEDIAN_KG = "weight_kg", (0.5, 300.0)


def _check_weight(dist) -> None:
    """Refuse a body-weight distribution whose median is not a plausible weight in kg (one in
    grams or tonnes scales every mg/kg dose by 1000)."""
    if dist is None or isinstance(dist, Categorical):
        return
    median = float(dist.quantile(np.array([0.5]))[0])
    lo, hi = WEIGHT_MEDIAN_KG
    if not lo <= median <= hi:
        raise ConfigError(f"weight_kg is in kilograms: a median of {median:g} kg is not a body "
                          f"weight (expected {lo:g} to {hi:g} kg; grams or tonnes?)",
                          ("population", WEIGHT))


def _eligibility(node, covs: dict) -> dict[str, Eligibility]:
    """``eligibility: {covariate: {min: x, max: y} | {levels: [a, b]}}``."""
    where = ("population", ELIGIBILITY)
    node = expect_mapping(node, where, "covariate name → {min: ..., max: ...} or {levels: "
                                       "[...]}")
    rules = {}
    for name, rule in node.items():
        path = where + (path_key(name),)
        if name not in covs:
            raise ConfigError(f"not a population covariate (known: "
                              f"{', '.join(map(str, covs)) or 'none'})", path)
        rule = expect_mapping(rule, path, "{min: ..., max: ...} or {levels: [...]}")
        bad = [k for k in rule if k not in ("min", "max", "levels")]
        if bad or not rule:
            raise ConfigError("expected min and/or max (a continuous covariate) or levels (a "
                              "categorical one)", path + ((path_key(bad[0]),) if bad else ()))
        if "levels" in rule:
            levels = rule["levels"]
            if (not isinstance(levels, list) or not levels
                    or not all(isinstance(v, str) for v in levels)):
                raise ConfigError(f"expected a list of category names, got "
                                  f"{describe_value(levels)}", path + ("levels",))
            if len(rule) > 1:
                raise ConfigError("levels cannot be combined with min or max", path)
            rules[name] = Eligibility(levels=tuple(levels))
            continue
        bounds = {}
        for k in ("min", "max"):
            v = rule.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not math.isfinite(v)):
                raise ConfigError(f"expected a finite number, got {describe_value(v)}",
                                  path + (k,))
            bounds[k] = None if v is None else float(v)
        rules[name] = Eligibility(low=bounds["min"], high=bounds["max"])
    return rules
