"""IIV draws reproduce omega; seeds reproduce draws; allometry and covariate effects are exact."""
from __future__ import annotations

import numpy as np
import pytest

from trialsim.config.pk import from_config
from trialsim.pk.variability import (Allometry, CategoricalEffect, LinearEffect, Omega,
                                     draw_eta, individual_parameters)

OMEGA3 = Omega.from_variances({"V1": 0.084, "CL": 0.026, "ka": 0.3}, {("V1", "CL"): 0.023, ("CL", "ka"): -0.02})


def test_draws_reproduce_omega_within_monte_carlo_error():
    n = 200_000
    eta = draw_eta(OMEGA3, np.random.default_rng(2024), n)
    om = OMEGA3.array()
    s = np.cov(eta, rowvar=False)
    # SE of a sample covariance of normals: sqrt((s_ij^2 + s_ii s_jj) / n)
    se = np.sqrt((om ** 2 + np.outer(np.diag(om), np.diag(om))) / n)
    assert np.all(np.abs(s - om) < 4.5 * se)
    assert np.all(np.abs(eta.mean(axis=0)) < 4.5 * np.sqrt(np.diag(om) / n))


def test_same_seed_same_etas_and_prefix_stable():
    a = draw_eta(OMEGA3, np.random.default_rng(7), 50)
    b = draw_eta(OMEGA3, np.random.default_rng(7), 50)
    c = draw_eta(OMEGA3, np.random.default_rng(8), 50)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(draw_eta(OMEGA3, np.random.default_rng(7), 80)[:50], a)


def test_draw_eta_from_spec_and_empty_omega():
    spec = from_config({"model": "s_ketamine_fanta"})
    assert spec.eta_names == ("V1", "CL") and spec.n_eta == 2
    assert draw_eta(spec, np.random.default_rng(0), 4).shape == (4, 2)
    assert draw_eta(Omega(), np.random.default_rng(0), 3).shape == (3, 0)


def test_cv_conversion_and_correlation():
    om = Omega.from_cv({"CL": 0.3, "V1": 0.2}, {("CL", "V1"): 0.5})
    w2 = np.log1p(np.array([0.09, 0.04]))
    np.testing.assert_allclose(np.diag(om.array()), w2, rtol=1e-15)
    assert om.array()[0, 1] == pytest.approx(0.5 * np.sqrt(w2[0] * w2[1]), rel=1e-15)
    assert om.cv()["CL"] == pytest.approx(0.3, rel=1e-14)
    eta = draw_eta(om, np.random.default_rng(1), 100_000)
    cl = np.exp(eta[:, 0])
    assert cl.std() / cl.mean() == pytest.approx(0.3, rel=0.02)


@pytest.mark.parametrize("matrix,msg", [(((1.0, 2.0), (2.0, 1.0)), "positive definite"),
                                        (((1.0, 0.1), (0.2, 1.0)), "symmetric"),
                                        (((1.0,),), "matrix")])
def test_bad_omega_rejected(matrix, msg):
    with pytest.raises(ValueError, match=msg):
        Omega(("CL", "V1"), matrix)


def _spec(**kw):
    return from_config({"model": "s_ketamine_fanta", **kw})


def test_allometry_exact():
    spec = _spec(iiv=None)
    w = np.array([35.0, 70.0, 140.0])
    v = individual_parameters(spec, {"weight_kg": w}, np.zeros((3, 0)))
    np.testing.assert_array_equal(v["CL"], 95.2 * (w / 70) ** 0.75)
    np.testing.assert_array_equal(v["V1"], 133.0 * (w / 70))
    np.testing.assert_array_equal(v["Q2"], 23.2)          # peripherals not scaled (Otto 2021)
    with pytest.raises(ValueError, match="weight_kg"):
        individual_parameters(spec, {}, np.zeros((3, 0)))


def test_iiv_applies_log_normally_in_eta_order():
    spec = _spec()
    eta = np.array([[0.1, -0.2], [0.0, 0.3]])
    v = individual_parameters(spec, {"weight_kg": np.array([70.0, 70.0])}, eta)
    np.testing.assert_allclose(v["V1"], 133.0 * np.exp(eta[:, 0]), rtol=1e-15)
    np.testing.assert_allclose(v["CL"], 95.2 * np.exp(eta[:, 1]), rtol=1e-15)


def test_categorical_and_linear_effects_exact():
    spec = _spec(iiv=None, allometry=False, covariate_effects=[
        {"type": "categorical", "covariate": "sex", "parameter": "CL", "factors": {"female": 0.8},
         "levels": ["female", "male"]},
        {"type": "categorical", "covariate": "site", "parameter": "V1", "factors": {2: 1.5}},
        {"type": "linear", "covariate": "age_years", "parameter": "CL", "slope": -1.0, "above": 60}])
    cov = {"sex": np.array([0, 1, 0]), "site": np.array([2, 1, 0]), "age_years": np.array([40.0, 70.0, 80.0])}
    v = individual_parameters(spec, cov, np.zeros((3, 0)))
    np.testing.assert_array_equal(v["CL"], [95.2 * 0.8, (95.2 - 10.0), (95.2 - 20.0) * 0.8])
    np.testing.assert_array_equal(v["V1"], [133.0 * 1.5, 133.0, 133.0])
    with pytest.raises(ValueError, match="sex"):
        individual_parameters(spec, {"site": cov["site"], "age_years": cov["age_years"]}, np.zeros((3, 0)))
    eff = CategoricalEffect(covariate="sex", parameter="CL", factors={"female": 0.5})
    np.testing.assert_array_equal(eff.multiplier(np.array(["male", "female", "female"])), [1.0, 0.5, 0.5])


def test_logit_random_effect_and_optional_covariates_perez_ruixo():
    spec = from_config({"model": "esketamine_in_perez_ruixo"})
    j = spec.eta_names.index("FRn")
    eta = np.zeros((3, spec.n_eta))
    eta[:, j] = [-1.0, 0.0, 2.0]
    v = individual_parameters(spec, {}, eta)     # race and age optional: reference patients
    lo = np.log(0.54 / 0.46)
    np.testing.assert_allclose(v["FRn"], 1 / (1 + np.exp(-(lo + eta[:, j]))), rtol=1e-15)
    v2 = individual_parameters(spec, {"japanese": np.array([1, 0, 0]), "asian": np.array([1, 1, 0]),
                                      "age_years": np.array([70.0, 50.0, 61.0])}, np.zeros((3, spec.n_eta)))
    np.testing.assert_allclose(v2["FRn"], [0.54 * 1.34, 0.54, 0.54], rtol=1e-15)
    np.testing.assert_allclose(v2["kel"], [1.11 * 0.36, 1.11 * 0.36, 1.11], rtol=1e-15)
    np.testing.assert_allclose(v2["Qh"], [151 - 21.9, 151, 151 - 2.19], rtol=1e-14)


def test_a_linear_effect_that_drives_a_parameter_out_of_range_is_refused():
    """Perez-Ruixo's hepatic flow falls by 2.19 L/h a year above 60: at 130 years it is
    151 - 2.19 x 70 < 0, which gave an AUC of 2.6e96 ng h/mL; now an error names the effect,
    the covariate value and the parameter."""
    spec = from_config({"model": "esketamine_in_perez_ruixo"})
    ok = individual_parameters(spec, {"age_years": np.array([128.0])}, np.zeros((1, spec.n_eta)))
    assert ok["Qh"][0] == pytest.approx(151 - 2.19 * 68)
    with pytest.raises(ValueError, match=r"linear, age_years on Qh\): a patient with age_years "
                                         r"130 gets Qh -2\.3"):
        individual_parameters(spec, {"age_years": np.array([50.0, 130.0])},
                              np.zeros((2, spec.n_eta)))


def test_a_cv_of_zero_is_no_variability_there():
    """``iiv: {CL: 0}`` (the documented range is CV >= 0) means no random effect on CL; it
    failed as 'omega must be positive definite'.  A correlation with it is dropped."""
    assert from_config({"model": "s_ketamine_fanta", "iiv": {"CL": 0}}).omega.names == ()
    spec = from_config({"model": "s_ketamine_fanta",
                        "iiv": {"cv": {"CL": 0.3, "V1": 0}, "correlation": {"CL": {"V1": 0.5}}}})
    assert spec.omega.names == ("CL",)
    np.testing.assert_allclose(spec.omega.matrix, [[np.log(1 + 0.3 ** 2)]], rtol=1e-12)
