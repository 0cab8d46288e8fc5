"""MCP-Mod against the R package DoseFinding (with mvtnorm at tight tolerances): optimal
contrasts, contrast correlations, t statistics, adjusted p-values, critical values, model
fits (coefficients, AIC/gAIC) and target doses, on the package's ``biom`` data, on an ANCOVA
with unequal allocation and a decreasing effect, on a binary endpoint by generalised MCP-Mod
and on design-stage contrasts.  Reference values: ``tests/fixtures/dosefinding_reference.json``
made by ``tests/fixtures/make_dosefinding_fixtures.R`` (the tests never need R)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from trialsim.analysis import mcpmod
from trialsim.analysis.doseresponse import (Candidates, analyse, contrast_correlation,
                                            fit_model, from_binary, from_general, from_normal,
                                            optimal_contrasts)
from trialsim.analysis.mvt import MaxDistribution

REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures"
                  / "dosefinding_reference.json").read_text())
#: Our probabilities are accurate to 1e-5 (3 standard errors) and R's to about 1e-6 here.
P_TOL = 2e-5
#: Critical values: an error of 2e-6 in the probability is ~5e-5 in the quantile.
Q_TOL = 1e-4


def _models(d: dict) -> dict:
    return {k: v for k, v in d.items()}


def _labels_in_r_order(res) -> list[int]:
    """Our candidates in the order DoseFinding lists them (the same order as given)."""
    return list(range(len(res.test.labels)))


def _check_mct(res, ref) -> None:
    C = res.test.contrasts
    np.testing.assert_allclose(C, np.array(ref["contrasts"]), atol=1e-9)
    np.testing.assert_allclose(res.test.corr, np.array(ref["corr"]), atol=1e-9)
    np.testing.assert_allclose(res.test.t, ref["t"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.test.p_adjusted, ref["p"], atol=P_TOL)
    assert res.test.critical_value == pytest.approx(ref["crit"], abs=Q_TOL)


def _check_fits(res, ref, names, n_cov=0) -> None:
    for ours, theirs in names.items():
        if ours not in res.fits:
            continue
        f = res.fits[ours]
        r = ref["fits"][theirs]
        # the criterion at the optimum: ours is never worse than R's, and equal to 1e-6
        assert f.aic <= r["crit"] + 1e-6 * max(1, abs(r["crit"]))
        assert f.aic == pytest.approx(r["crit"], rel=1e-6, abs=1e-6)
        if not f.at_bound:
            coefs = np.array(r["coefs"])[:len(f.params)]
            np.testing.assert_allclose(list(f.params.values()), coefs, rtol=2e-3, atol=2e-4)


def test_biom_contrast_test_fits_and_target_dose():
    ref = REF["biom"]
    res = mcpmod(np.array(ref["dose"]), np.array(ref["resp"]), models=_models(ref["models"]),
                 alpha=0.025, delta=0.3, selection="average")
    _check_mct(res, ref["mct"])
    names = {"linear": "linear", "emax": "emax", "sig_emax": "sigEmax",
             "exponential": "exponential", "quadratic": "quadratic"}
    est = res.estimates
    for ours, theirs in names.items():
        f = fit_model(ours, est, extra=res.candidates.extra)
        r = ref["fits"][theirs]
        assert f.aic == pytest.approx(r["crit"], rel=1e-7), ours
        assert f.aic <= r["crit"] + 1e-7 * abs(r["crit"])
        if not f.at_bound:
            np.testing.assert_allclose(list(f.params.values()), r["coefs"], rtol=2e-3,
                                       atol=2e-4, err_msg=ours)
            if r["td"] is not None and r["td"] <= est.doses[-1]:
                from trialsim.analysis.doseresponse import target_dose
                assert target_dose(f.effect, 0.3, est.doses[-1]) == pytest.approx(
                    r["td"], rel=1e-3, abs=1e-4), ours


def test_ancova_unequal_allocation_decreasing_effect():
    ref = REF["ancova"]
    res = mcpmod(np.array(ref["dose"]), np.array(ref["resp"]), models=_models(ref["models"]),
                 alpha=0.025, delta=4.0, direction="decreasing",
                 covariates=np.array(ref["base"]))
    _check_mct(res, ref["mct"])
    names = {"linear": "linear", "emax": "emax", "sig_emax": "sigEmax",
             "exponential": "exponential", "logistic": "logistic", "beta": "betaMod",
             "linlog": "linlog"}
    est = res.estimates
    for ours, theirs in names.items():
        f = fit_model(ours, est, extra=res.candidates.extra)
        r = ref["fits"][theirs]
        assert f.aic <= r["crit"] + 1e-7 * abs(r["crit"]), ours
        if not f.at_bound:
            assert f.aic == pytest.approx(r["crit"], rel=1e-6), ours


def test_binary_endpoint_by_generalised_mcpmod():
    ref = REF["binary"]
    est = from_binary(np.array(ref["dose"]), np.array(ref["resp"]))
    np.testing.assert_allclose(est.estimates, ref["mu"], rtol=1e-7)
    np.testing.assert_allclose(est.cov, np.array(ref["S"]), rtol=1e-6)
    res = analyse(est, _models(ref["models"]), alpha=0.025, delta=0.5)
    _check_mct(res, ref["mct"])
    for ours, theirs in {"linear": "linear", "emax": "emax", "sig_emax": "sigEmax"}.items():
        f = fit_model(ours, est, extra=res.candidates.extra)
        r = ref["fits"][theirs]
        assert f.aic <= r["crit"] + 1e-8
        assert f.aic == pytest.approx(r["crit"], abs=1e-6), ours
    # the same from the estimates given directly
    gen = from_general(est.doses, ref["mu"], np.array(ref["S"]))
    np.testing.assert_allclose(analyse(gen, _models(ref["models"]), delta=0.5).test.t,
                               ref["mct"]["t"], rtol=1e-7)


def test_design_stage_contrasts_and_critical_values():
    ref = REF["design"]
    cands = Candidates.from_models([0, 0.05, 0.2, 0.6, 1.0], {
        "linear": None, "emax": 0.2, "sig_emax": [0.4, 3], "exponential": 0.5,
        "quadratic": -0.85})
    S = np.diag(1.0 / np.array(ref["weights"], float))
    C = optimal_contrasts(cands.shapes(), S)
    np.testing.assert_allclose(C, np.array(ref["contrasts"]), atol=1e-9)
    R = contrast_correlation(C, S)
    np.testing.assert_allclose(R, np.array(ref["corr"]), atol=1e-9)
    assert MaxDistribution(R, 95).quantile(0.975) == pytest.approx(ref["crit_one_sided_df95"],
                                                                   abs=Q_TOL)
    assert MaxDistribution(R, np.inf, two_sided=True).quantile(0.95) == pytest.approx(
        ref["crit_two_sided_normal"], abs=Q_TOL)


def test_result_is_reported_and_serialisable():
    ref = REF["biom"]
    res = mcpmod(np.array(ref["dose"]), np.array(ref["resp"]), models=_models(ref["models"]),
                 alpha=0.025, delta=0.3)
    text = res.summary()
    assert "critical value" in text and "Target dose" in text
    doc = json.loads(json.dumps(res.to_dict()))
    assert doc["signal"] is True and doc["selected"] in doc["fits"]
    assert math.isclose(doc["target"]["dose"], res.dose)
