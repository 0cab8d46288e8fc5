"""MCP-Mod against a published, printed example: the multiple contrast test on the IBScovars
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
