"""CRM variants against R dfcrm 0.2-2.1 (Cheung 2011): the one-parameter logistic model, the
likelihood CRM and the two-stage design with a rule-based start-up.

Decisions on fixed histories are compared with dfcrm's ``crm()`` fit by fit; operating
characteristics with dfcrm's ``crmsim`` (tests/fixtures/crm_variants_reference.json, 10,000
trials per run, written by make_crm_variants_fixture.R) within Monte Carlo error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import trialsim as ts
from tests.helpers.oc_compare import assert_oc_close
from trialsim.designs import CRM
from trialsim.outcomes import TrialHistory

SK = (0.05, 0.12, 0.25, 0.40, 0.55)
STARTUP = (3, 3, 3, 3, 3)
REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures"
                  / "crm_variants_reference.json").read_text())
RESTRICT = [{"type": "dont_skip_doses", "relative_to": "current"},
            {"type": "coherent_escalation"}]


def H(text: str) -> TrialHistory:
    return TrialHistory.parse(text, 5)


def crm(**kw) -> CRM:
    return CRM(**{"target": 0.25, "skeleton": SK, "max_patients": 24, **kw})


# dfcrm `crm(skeleton, 0.25, tox, level, model=, method=)$mtd` (1-based) for
# (empiric bayes, empiric mle, logistic bayes, logistic mle).
DFCRM_MTD = [
    ("1NNN 2NNN 3NTN", (3, 3, 4, 3)),
    ("1NNN 2NTN", (2, 2, 2, 2)),
    ("1NNN 2NNN 3NNN 4TTN", (4, 4, 4, 4)),
    ("1NNN 2NNN 3NNN 4NNN 5NTN", (5, 5, 5, 5)),
    ("1TNN", (1, 1, 1, 1)),
    ("1NNN 2NNN 3TNN 2NNN 3NNN", (4, 4, 4, 4)),
    ("1NNN 2NNN 3NNN 4NTT 3NNT 2NNN", (3, 3, 3, 3)),
]
VARIANTS = [("empiric", "bayes"), ("empiric", "likelihood"), ("logistic", "bayes"),
            ("logistic", "likelihood")]


@pytest.mark.parametrize("history, mtds", DFCRM_MTD)
def test_model_decisions_match_dfcrm_crm(history, mtds):
    for (model, method), mtd in zip(VARIANTS, mtds):
        d = crm(model=model, method=method, startup=STARTUP).decide(H(history))
        assert d.next_dose == d.recommended == mtd - 1, (model, method)


@pytest.mark.parametrize("method", ["bayes", "likelihood"])
def test_startup_walks_up_until_the_first_dlt(method):
    """Worked example of a two-stage design (dfcrm's vector x0 = 1,1,1,2,2,2,...,5,5,5,5,...):
    one cohort per dose until a DLT, the top dose after the sequence, then the model."""
    design = crm(method=method, startup=STARTUP)
    walk = ["", "1NNN", "1NNN 2NNN", "1NNN 2NNN 3NNN", "1NNN 2NNN 3NNN 4NNN",
            "1NNN 2NNN 3NNN 4NNN 5NNN", "1NNN 2NNN 3NNN 4NNN 5NNN 5NNN"]
    for k, h in enumerate(walk):
        d = design.decide(H(h))
        assert d.next_dose == min(k, 4), h
        assert d.reasons[0].startswith("start" if k == 0 else "start-up"), d.reasons
    d = design.decide(H("1NNN 2NTN"))
    assert d.next_dose == 1 and d.reasons[0].startswith("stay")
    bigger = crm(method=method, startup=(1, 1, 2, 2, 3), start_dose=1, cohort_size=1)
    path = ["", "2N", "2N 3N", "2N 3N 3N", "2N 3N 3N 4N", "2N 3N 3N 4N 4N"]
    assert [bigger.decide(H(h)).next_dose for h in path] == [1, 2, 2, 3, 3, 4]


def test_likelihood_estimate_without_heterogeneity_is_at_the_bound():
    """No DLT after the whole start-up: the bounded MLE puts every estimate near 0, so the
    highest dose is recommended (dfcrm falls back on a vague-prior fit, which recommends the
    prior MTD); DLTs only: the lowest dose."""
    d = crm(method="likelihood", startup=STARTUP).decide(H("1NNN 2NNN 3NNN 4NNN 5NNN"))
    assert d.recommended == 4
    assert crm(method="likelihood", startup=STARTUP).decide(H("3TTT")).recommended == 0


def test_variant_validation():
    with pytest.raises(ValidationError, match="needs a startup"):
        crm(method="likelihood")
    with pytest.raises(ValidationError, match="one patient count per dose"):
        crm(startup=(3, 3))
    with pytest.raises(ValidationError, match="below expit"):
        crm(model="logistic", skeleton=(0.1, 0.5, 0.97), intercept=3.0)
    with pytest.raises(ValidationError):
        crm(model="probit")
    lik = crm(method="likelihood", startup=STARTUP)
    assert not lik.toxicity_model and crm(model="logistic").toxicity_model
    with pytest.raises(ValueError, match="with these settings has none"):
        ts.from_dict({"doses": [1, 2, 3, 4, 5], "truth": {"tox": [0.1] * 5},
                      "design": {"type": "crm", "target": 0.25, "skeleton": list(SK),
                                 "max_patients": 24, "method": "likelihood",
                                 "startup": list(STARTUP),
                                 "modifiers": [{"type": "stop_when_too_toxic", "threshold": 0.3,
                                                "prob": 0.9}]}})


def test_logistic_prob_tox_exceeds_is_the_posterior_probability():
    """P(p_1 > 0.3) after 3 DLTs in 3 at dose 1 is high and rises with the data; with no data it
    is the prior probability of the cut (a ~ N(0, 1.34))."""
    from scipy import stats

    from trialsim.designs import BatchState
    design = crm(model="logistic")
    empty = BatchState.empty(1, 5)
    c = np.log((np.log(0.3 / 0.7) - 3) / (np.log(np.array(SK) / (1 - np.array(SK))) - 3))
    np.testing.assert_allclose(design.prob_tox_exceeds(empty, 0.3)[0],
                               stats.norm.cdf(c / np.sqrt(1.34)), rtol=1e-10)
    toxic = BatchState.from_history(H("1TTT"))
    assert design.prob_tox_exceeds(toxic, 0.3)[0, 0] > 0.9


@pytest.mark.parametrize("name", sorted(REF["runs"]))
def test_reproduces_dfcrm_crmsim(name):
    """Selection, patients and DLTs per dose of each dfcrm ``crmsim`` run within Monte Carlo
    error.  For the likelihood CRM, trials with no DLT at all get dfcrm's vague-prior fallback
    (the prior MTD, dose 3: see make_crm_variants_fixture.R), where trialsim keeps the bounded
    MLE (the highest dose); the reference selection is moved accordingly."""
    r, des = REF["runs"][name], REF["design"]
    design = {"type": "crm", "target": des["target"], "skeleton": des["skeleton"],
              "max_patients": des["n"], "cohort_size": des["mcohort"], "model": r["model"],
              "method": "likelihood" if r["method"] == "mle" else "bayes",
              "intercept": des["intcpt"], "prior_sd": float(np.sqrt(des["prior_var"])),
              "modifiers": RESTRICT if r["restrict"] else []}
    if r["two_stage"]:
        design["startup"] = [3, 3, 3, 3, 3]
    study = ts.from_dict({"doses": [1, 2, 3, 4, 5], "target": des["target"],
                          "truth": {"tox": r["true_p"]}, "design": design})
    sims = ts.simulate(study, n_trials=20_000, seed=1009)
    a = sims.arrays
    assert (a.n.sum(axis=1) == des["n"]).all()
    sel = np.array(r["mtd_selection"])
    if r["method"] == "mle" and r["n_no_heterogeneity"]:
        assert (a.tox.sum(axis=1) == des["n"]).sum() == 0     # the fallback cases are no-DLT
        moved = r["n_no_heterogeneity"] / r["nsim"]
        sel[2] -= moved
        sel[4] += moved
        no_dlt = a.tox.sum(axis=1) == 0
        assert (a.selected[no_dlt] == 4).all()
    assert_oc_close(a, r["nsim"], sel, r["mean_patients"], r["mean_dlts"])
