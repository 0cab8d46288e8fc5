"""MCP-Mod against published, printed examples: (1) the planMM example of Bornkamp, Pinheiro &
Bretz (2009, JSS; the biom design of Bretz, Pinheiro & Branson 2005), contrasts, correlations
and critical value (at the end of this file); (2) the multiple contrast test on the IBScovars
data in the DoseFinding documentation (the package README, "Performing multiple contrast
tests": ``Mods(linear = NULL, emax = 0.2, quadratic = -0.17, doses = 0:4)``, ``MCTtest(dose,
resp, IBScovars, models, addCovars = ~ gender)``), whose output prints the optimal contrasts,
their correlation and the t statistics to three decimals and the adjusted p-values computed
with mvtnorm's default accuracy (absolute error 1e-3).

The ANCOVA (dose groups plus gender) depends on the data only through each dose-by-gender
cell's size, mean and within-cell sum of squares, which the fixture holds
(tests/fixtures/ibscovars_cells.json); the test rebuilds patients with exactly those."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trialsim.analysis import mcpmod

CELLS = json.loads((Path(__file__).resolve().parents[1] / "fixtures"
                    / "ibscovars_cells.json").read_text())

PRINTED_CONTRASTS = [[-0.616, -0.889, -0.815], [-0.338, 0.135, -0.140], [0.002, 0.226, 0.294],
                     [0.315, 0.252, 0.407], [0.638, 0.276, 0.254]]
PRINTED_CORR = [[1.000, 0.768, 0.843], [0.768, 1.000, 0.948], [0.843, 0.948, 1.000]]
PRINTED_T = {"emax": 3.208, "quadratic": 3.083, "linear": 2.640}
PRINTED_P = {"emax": 0.00128, "quadratic": 0.00228, "linear": 0.00848}


def _patients():
    dose, resp, gender = [], [], []
    for d, g, n, m, ss in zip(CELLS["dose"], CELLS["gender"], CELLS["n"], CELLS["mean"],
                              CELLS["ss"]):
        e = np.arange(n, dtype=float)
        e -= e.mean()
        e /= np.sqrt((e ** 2).sum())              # mean 0, sum of squares 1
        resp += list(m + np.sqrt(ss) * e)
        dose += [d] * n
        gender += [g] * n
    return np.array(dose, float), np.array(resp), np.array(gender, float)


def test_ibscovars_example_as_printed():
    dose, resp, gender = _patients()
    assert dose.size == 369
    res = mcpmod(dose, resp, models={"linear": None, "emax": 0.2, "quadratic": -0.17},
                 covariates=gender, delta=0.2)
    test = res.test
    assert list(test.labels) == ["linear", "emax", "quadratic"]
    np.testing.assert_allclose(test.contrasts, PRINTED_CONTRASTS, atol=5e-4 + 1e-12)
    np.testing.assert_allclose(test.corr, PRINTED_CORR, atol=5e-4 + 1e-12)
    for i, m in enumerate(test.labels):
        assert abs(test.t[i] - PRINTED_T[m]) <= 5e-4 + 1e-12, m
        # the printed p-values carry mvtnorm's default error (1e-3); ours are within 1e-5
        assert abs(test.p_adjusted[i] - PRINTED_P[m]) <= 1e-3, m
    assert test.critical_value < test.t.max()                  # a dose-response signal


# Bornkamp, Pinheiro & Bretz (2009), "MCPMod: an R package for the design and analysis of
# dose-finding studies", J Stat Softw 29(7), section 3.2: planMM(mods2, doses, n = 20,
# alpha = 0.05, twoSide = FALSE, scal = 1.2) on the biom doses of Bretz, Pinheiro & Branson
# (2005), as printed in the MCPMod package vignette (p. 11).  The printed critical value comes
# from mvtnorm's randomised integration (builds of the vignette print 2.135-2.141).
BIOM_DOSES = [0, 0.05, 0.2, 0.6, 1]
MODS2 = {"linear": None, "emax": [0.05, 0.2], "beta": [0.5, 1],
         "logistic": [[0.25, 0.09], [0.7, 0.06]]}
PLANMM_CONTRASTS = {  # columns linear, emax1, emax2, betaMod, logistic1, logistic2
    "linear": [-0.437, -0.378, -0.201, 0.271, 0.743],
    "emax1": [-0.799, -0.170, 0.207, 0.362, 0.399],
    "emax2": [-0.643, -0.361, 0.061, 0.413, 0.530],
    "beta": [-0.714, -0.043, 0.452, 0.498, -0.192],
    "logistic1": [-0.478, -0.435, -0.147, 0.519, 0.540],
    "logistic2": [-0.267, -0.267, -0.267, -0.083, 0.883]}
PLANMM_CORR = [[1.000, 0.766, 0.912, 0.229, 0.945, 0.905],
               [0.766, 1.000, 0.949, 0.774, 0.828, 0.525],
               [0.912, 0.949, 1.000, 0.606, 0.956, 0.686],
               [0.229, 0.774, 0.606, 1.000, 0.448, -0.130],
               [0.945, 0.828, 0.956, 0.448, 1.000, 0.717],
               [0.905, 0.525, 0.686, -0.130, 0.717, 1.000]]


def test_planmm_example_of_bornkamp_pinheiro_bretz_2009_as_printed():
    from trialsim.analysis import mvt
    from trialsim.analysis.doseresponse import (Candidates, contrast_correlation,
                                                optimal_contrasts)

    cands = Candidates.from_models(BIOM_DOSES, MODS2, scal=1.2)
    assert cands.labels == ("linear", "emax1", "emax2", "beta", "logistic1", "logistic2")
    S = np.eye(5) / 20
    C = optimal_contrasts(cands.shapes(), S)
    np.testing.assert_allclose(C, np.array([PLANMM_CONTRASTS[k] for k in cands.labels]).T,
                               atol=5e-4 + 1e-12)
    R = contrast_correlation(C, S)
    np.testing.assert_allclose(R, PLANMM_CORR, atol=5e-4 + 1e-12)
    crit = mvt.MaxDistribution(R, 95.0, False).quantile(0.95)   # 100 patients, 5 groups
    assert abs(crit - 2.141) <= 0.005
