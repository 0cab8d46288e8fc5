"""The CRM against R dfcrm's ``crmsim`` (Cheung 2011; dfcrm 0.2-2.1): target 0.25, skeleton
(0.05, 0.12, 0.25, 0.40, 0.55), 24 patients in cohorts of 3 from dose 1, Bayesian power model
with prior variance 1.34.  ``restrict = TRUE`` is ``dont_skip_doses(relative_to: current)``
with ``coherent_escalation``.  Reference: tests/fixtures/crmsim_reference.json (10,000 trials
per scenario, make_crmsim_fixture.R); trialsim runs 20,000 trials on its own streams and every
selection proportion, mean patients and mean DLTs per dose must agree within Monte Carlo
error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import trialsim as ts
from tests.helpers.oc_compare import assert_oc_close

REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures"
                  / "crmsim_reference.json").read_text())
RESTRICT = [{"type": "dont_skip_doses", "relative_to": "current"},
            {"type": "coherent_escalation"}]


@pytest.mark.parametrize("name", sorted(REF["scenarios"]))
def test_crm_reproduces_dfcrm_crmsim(name):
    sc, des = REF["scenarios"][name], REF["design"]
    design = {"type": "crm", "target": des["target"], "skeleton": des["skeleton"],
              "max_patients": des["n"], "cohort_size": des["mcohort"],
              "prior_sd": float(np.sqrt(des["prior_var"])),
              "modifiers": RESTRICT if sc["restrict"] else []}
    study = ts.from_dict({"doses": [1, 2, 3, 4, 5], "target": des["target"],
                          "truth": {"tox": sc["true_p"]}, "design": design})
    sims = ts.simulate(study, n_trials=20_000, seed=1009)
    assert (sims.arrays.n.sum(axis=1) == des["n"]).all()      # crmsim has no early stop
    assert_oc_close(sims.arrays, sc["nsim"], sc["mtd_selection"], sc["mean_patients"],
                    sc["mean_dlts"])


def test_restrict_changes_patients_per_dose_beyond_monte_carlo_error():
    """The fixture can tell the restriction apart: without it dfcrm puts markedly fewer
    patients on dose 2 of scenario 1 (3.43 vs 6.03), so the test above checks the modifiers."""
    a, b = REF["scenarios"]["S1"], REF["scenarios"]["S1_unrestricted"]
    se = np.hypot(a["se_mean_patients"][1], b["se_mean_patients"][1])
    assert abs(a["mean_patients"][1] - b["mean_patients"][1]) > 20 * se
