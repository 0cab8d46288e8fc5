"""Eligibility criteria on covariates (``population: {eligibility: ...}``): enrolled patients
are drawn from each criterion's truncated distribution (checked against SciPy's truncated
distributions), the other covariates keep their draws, the share of eligible arrivals is the
product of the criteria's shares, the timed path screens arrivals out with that probability
(checked against the Poisson accrual of eligible patients), and bad criteria name their YAML
path."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import integrate, stats

import trialsim as ts
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.population import Categorical, Eligibility, LogNormal, Normal, Population, Uniform

Z = 4.5
RNG_N = 200_000


def _draw(pop: Population, name: str) -> np.ndarray:
    pts = pop.draw_from(np.random.default_rng(1), RNG_N)
    return pts.covariates[name].ravel()


@pytest.mark.parametrize("dist, rule, ref", [
    (Normal(mean=33, sd=5), Eligibility(low=30, high=40),
     stats.truncnorm(-3 / 5, 7 / 5, loc=33, scale=5)),
    (Normal(mean=33, sd=5), Eligibility(low=45), stats.truncnorm(12 / 5, np.inf, loc=33, scale=5)),
    (Uniform(low=18, high=70), Eligibility(high=65), stats.uniform(18, 47)),
])
def test_draws_follow_the_truncated_distribution(dist, rule, ref):
    """Mean and sd within Monte Carlo error of SciPy's truncated distribution, every draw
    within the bounds, and the eligible share equal to the CDF mass."""
    pop = Population({"x": dist}, {"x": rule})
    x = _draw(pop, "x")
    lo = -np.inf if rule.low is None else rule.low
    hi = np.inf if rule.high is None else rule.high
    assert ((x >= lo) & (x <= hi)).all()
    assert abs(x.mean() - ref.mean()) < Z * ref.std() / np.sqrt(x.size)
    assert abs(x.std() - ref.std()) < Z * ref.std() / np.sqrt(x.size)
    np.testing.assert_allclose(stats.kstest(x, ref.cdf).statistic, 0, atol=0.005)
    mass = (1 if rule.high is None else dist.cdf(rule.high)) - \
        (0 if rule.low is None else dist.cdf(rule.low))
    assert pop.p_eligible == pytest.approx(float(mass), rel=1e-12)


def test_lognormal_weight_cap_against_quadrature():
    """Weight log-normal (median 80 kg, cv 0.2) capped at 100 kg: the mean of the eligible
    part against its integral."""
    dist = LogNormal(median=80, cv=0.2)
    ref = stats.lognorm(s=np.sqrt(np.log1p(0.04)), scale=80)
    pop = Population({"w": dist}, {"w": Eligibility(high=100)})
    x = _draw(pop, "w")
    mass = ref.cdf(100)
    mean = integrate.quad(lambda v: v * ref.pdf(v), 0, 100)[0] / mass
    sd = np.sqrt(integrate.quad(lambda v: (v - mean) ** 2 * ref.pdf(v), 0, 100)[0] / mass)
    assert x.max() <= 100 and abs(x.mean() - mean) < Z * sd / np.sqrt(x.size)
    assert pop.p_eligible == pytest.approx(mass, rel=1e-12)


def test_categorical_levels_are_renormalised():
    pop = Population({"g": Categorical(probs={"a": 0.5, "b": 0.3, "c": 0.2})},
                     {"g": Eligibility(levels=("a", "c"))})
    x = _draw(pop, "g")
    assert set(np.unique(x)) == {0, 2}
    p = 0.5 / 0.7
    assert abs((x == 0).mean() - p) < Z * np.sqrt(p * (1 - p) / x.size)
    assert pop.p_eligible == pytest.approx(0.7)


def test_other_covariates_keep_their_draws_and_shares_multiply():
    """One uniform per covariate whatever the criteria: a criterion on one covariate leaves
    the others bit for bit, and a criterion covering the whole support changes nothing."""
    covs = {"m": Normal(mean=33, sd=5), "age": Uniform(low=18, high=70)}
    free = Population(covs).draw(3, 0, np.arange(20), 10)
    some = Population(covs, {"m": Eligibility(low=30)}).draw(3, 0, np.arange(20), 10)
    np.testing.assert_array_equal(free.covariates["age"], some.covariates["age"])
    np.testing.assert_array_equal(free.u, some.u)
    whole = Population(covs, {"age": Eligibility(low=0, high=100)}).draw(3, 0, np.arange(20), 10)
    np.testing.assert_array_equal(free.covariates["age"], whole.covariates["age"])
    both = Population(covs, {"m": Eligibility(low=30), "age": Eligibility(high=44)})
    assert both.p_eligible == pytest.approx((1 - stats.norm.cdf(-0.6)) * 0.5, rel=1e-12)


def _study(eligibility: dict | None, conduct: dict | None = None):
    doc = {"doses": [1, 2, 3, 4, 5], "target": 0.3,
           "population": {"m": {"dist": "normal", "mean": 33, "sd": 5},
                          "age": {"dist": "uniform", "low": 18, "high": 70}},
           "response": {"toxicity": {"type": "logistic", "exposure": "dose",
                                     "x50": 4.0, "slope": 2.0}},
           "design": {"type": "crm", "target": 0.3, "skeleton": [0.05, 0.12, 0.25, 0.4, 0.55],
                      "cohort_size": 1, "max_patients": 12}}
    if eligibility is not None:
        doc["population"]["eligibility"] = eligibility
    if conduct is not None:
        doc["conduct"] = conduct
    return doc


def test_timed_path_screens_out_the_ineligible():
    """2 arrivals per week, 20 % screen failures for other reasons, and criteria keeping 27.4 %
    (MADRS >= 36) x 50 % (age <= 44): eligible patients arrive as a Poisson process of rate
    2 x 0.8 x 0.137, so 12 patients take 12 / that weeks on average (Gamma), and the screened
    fail in proportion 1 - 0.8 x 0.137."""
    doc = _study({"m": {"min": 36}, "age": {"max": 44}},
                 {"sites": [{"rate_per_week": 2.0}], "window_h": 0, "screen_fail": 0.2})
    study = ts.from_dict(doc)
    p = (1 - stats.norm.cdf(0.6)) * 0.5
    assert study.scenario.population.p_eligible == pytest.approx(p, rel=1e-12)
    s = ts.simulate(study, 2000, seed=4)
    weeks = s.calendar.accrual_h / 168
    rate = 2 * 0.8 * p
    assert abs(weeks.mean() - 12 / rate) < Z * weeks.std(ddof=1) / np.sqrt(weeks.size)
    fail = s.calendar.screen_failed.sum() / s.calendar.screened.sum()
    q = 1 - 0.8 * p
    assert abs(fail - q) < Z * np.sqrt(q * (1 - q) / s.calendar.screened.sum())
    assert (s.arrays.patient_dose >= 0).sum() == 12 * 2000


@pytest.mark.parametrize("rule, path, what", [
    ({"weight": {"min": 1}}, ("population", "eligibility", "weight"), "not a population"),
    ({"m": {"min": 40, "max": 30}}, ("population", "eligibility", "m"), "must be below"),
    ({"m": {"min": "high"}}, ("population", "eligibility", "m", "min"), "finite number"),
    ({"m": {"above": 3}}, ("population", "eligibility", "m", "above"), "min and/or max"),
    ({"m": {"levels": ["a"]}}, ("population", "eligibility", "m"),
     "give levels for a categorical"),
    ({"m": {"min": 80}}, ("population", "eligibility", "m"), "no patient"),
    ({"m": 30}, ("population", "eligibility", "m"), "min"),
])
def test_bad_criteria_name_their_path(rule, path, what):
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        ts.from_dict(_study(rule))
    errors = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert any(tuple(x.path) == path and what in x.message for x in errors), \
        [(x.path, x.message) for x in errors]


def test_a_criterion_can_bound_a_covariate_a_model_needs_positive():
    """mg/kg dosing needs weight > 0: a normal weight fails unless a criterion bounds it."""
    doc = yaml_flagship()
    doc["population"]["weight_kg"] = {"dist": "normal", "mean": 80, "sd": 16}
    with pytest.raises((ConfigError, ConfigErrors), match="weight_kg > 0"):
        ts.from_dict(copy.deepcopy(doc))
    doc["population"]["eligibility"] = {"weight_kg": {"min": 45, "max": 140}}
    study = ts.from_dict(doc)
    assert 0.97 < study.scenario.population.p_eligible < 0.99


def test_a_uniform_weight_from_zero_is_refused_under_mg_kg():
    """A uniform from 0 kg can draw weights as near 0 as rounding allows (5.6e-15 kg with
    100 kg above it): its own bound, 0, is what the check sees and names."""
    doc = yaml_flagship()
    doc["population"]["weight_kg"] = {"dist": "uniform", "low": 0, "high": 100}
    with pytest.raises((ConfigError, ConfigErrors), match="weight_kg > 0.*from 0 to 100"):
        ts.from_dict(copy.deepcopy(doc))
    doc["population"]["weight_kg"]["low"] = 40
    assert ts.from_dict(doc).scenario.population.extremes("weight_kg") == (40.0, 100.0)
    # a truncated normal's bound likewise (an eligibility min of 0 was refused, this was not)
    doc["population"]["weight_kg"] = {"dist": "truncated_normal", "mean": 80, "sd": 16,
                                      "low": 0, "high": 150}
    with pytest.raises((ConfigError, ConfigErrors), match="weight_kg > 0.*from 0 to 150"):
        ts.from_dict(copy.deepcopy(doc))


def test_a_linear_covariate_effect_is_checked_against_the_population_before_the_run():
    """Perez-Ruixo's hepatic flow, 151 L/h less 2.19 L/h a year above 60, is negative past
    129 years: an age distribution reaching there is refused when the study is read (it was
    caught only once a patient drew such an age), and an eligibility maximum mends it."""
    doc = yaml_flagship("esketamine_in_trd.yaml")
    doc["population"]["age_years"] = {"dist": "normal", "mean": 70, "sd": 20}
    with pytest.raises((ConfigError, ConfigErrors),
                       match=r"linear, age_years on Qh\) needs Qh > 0, but age_years from -95.85 "
                             r"to 234.2 .* gives Qh from -230.5 to 151") as e:
        ts.from_dict(copy.deepcopy(doc))
    errors = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert tuple(errors[0].path) == ("population", "age_years")
    doc["population"]["eligibility"] = {"age_years": {"min": 18, "max": 100}}
    ts.from_dict(doc)


SEX = {"dist": "categorical", "probs": {"female": 0.6, "male": 0.4}}


@pytest.mark.parametrize("effect, path, words", [
    # by name without levels: applied to nobody (codes never equal names)
    ({"factors": {"female": 0.5}}, ("pk", "covariate_effects", 0, "levels"),
     "factors by category name need levels: ['female', 'male']"),
    # levels in another order: the females' factor went to the males
    ({"factors": {"female": 0.5}, "levels": ["male", "female"]},
     ("pk", "covariate_effects", 0, "levels"), "not sex's categories in the population's order"),
    ({"factors": {"Female": 0.5}, "levels": ["female", "male"]},
     ("pk", "covariate_effects", 0, "factors"), "'Female' is not a category of sex"),
    ({"factors": {2: 0.5}}, ("pk", "covariate_effects", 0, "factors"), "code 2 is not"),
    ({"covariate": "weight_kg", "factors": {"female": 0.5}}, ("pk", "covariate_effects", 0),
     "weight_kg is lognormal"),
])
def test_a_categorical_effect_must_match_the_population_s_categories(effect, path, words):
    """A categorical PK effect is matched on category codes; every mismatch with the
    population's categories had run with the factor on the wrong patients or on none."""
    doc = yaml_flagship()
    doc["population"]["sex"] = SEX
    doc["pk"]["covariate_effects"] = [{"type": "categorical", "covariate": "sex",
                                       "parameter": "CL", **effect}]
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        ts.from_dict(copy.deepcopy(doc))
    errors = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert any(tuple(x.path) == path and words in x.message for x in errors), \
        [(x.path, x.message) for x in errors]
    doc["pk"]["covariate_effects"][0].update(covariate="sex", factors={"female": 0.5},
                                             levels=["female", "male"])
    pk = ts.from_dict(doc).scenario.pk
    from trialsim.pk.variability import individual_parameters
    v = individual_parameters(pk, {"sex": np.array([0, 1]), "weight_kg": np.array([70.0, 70.0])},
                              np.zeros((2, pk.n_eta)))
    assert v["CL"][0] == pytest.approx(0.5 * v["CL"][1])


def test_a_model_reading_a_number_refuses_a_categorical_covariate():
    """A categorical baseline MADRS (codes 0 and 1 read as scores) and a linear effect of a
    categorical age ran; both are refused at the covariate."""
    doc = yaml_flagship()
    doc["population"]["age_years"] = {"dist": "categorical", "probs": {"young": 0.5, "old": 0.5}}
    doc["pk"]["covariate_effects"] = [{"type": "linear", "covariate": "age_years",
                                       "parameter": "CL", "slope": -0.1}]
    with pytest.raises((ConfigError, ConfigErrors), match="a covariate effect needs age_years "
                                                          "as a number, but it is categorical"):
        ts.from_dict(doc)
    doc = yaml_flagship()
    doc["population"]["baseline_madrs"] = {"dist": "categorical",
                                           "probs": {"mild": 0.5, "severe": 0.5}}
    with pytest.raises((ConfigError, ConfigErrors), match="needs baseline_madrs as a number"):
        ts.from_dict(doc)


def yaml_flagship(name: str = "ketamine_iv_trd.yaml") -> dict:
    import yaml
    from pathlib import Path
    doc = yaml.safe_load((Path(__file__).parents[1] / "configs" / name).read_text())
    doc.pop("conduct", None)
    doc.pop("simulation", None)
    return doc


def test_criteria_that_keep_almost_nobody_are_refused_before_the_calendar_runs():
    """Eligibility keeping one arrival in 600,000 (weight >= 200 kg of a lognormal with median
    80): validate ran the probe trials' calendars for over ten minutes; the study is refused
    at once, at the sites' arrival rates, with the eligible rate."""
    import yaml
    from pathlib import Path
    doc = yaml.safe_load((Path(__file__).parents[1] / "configs" / "ketamine_iv_trd.yaml")
                         .read_text())
    doc["population"]["eligibility"] = {"weight_kg": {"min": 200}}
    with pytest.raises((ConfigError, ConfigErrors), match=r"eligible patients arrive about once "
                                                          r"every [\d,]+ weeks") as e:
        ts.from_dict(doc)
    errors = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert tuple(errors[0].path) == ("conduct", "sites")
