"""Accelerated titration: decisions by hand (cohort sizes 1, 2, 3 set per decision) and the
simulated operating characteristics against an exact recursion over every patient outcome."""
from __future__ import annotations

import pytest

import trialsim as ts
from tests.helpers.oc_compare import assert_matches_exact
from tests.helpers.accelerated_exact import exact_accelerated_titration
from trialsim.designs import AcceleratedTitration


def test_decisions_by_hand():
    d = AcceleratedTitration(n_doses=4)
    cases = {  # history: (next dose, next cohort size, stop, recommended)
        "": (0, 1, False, None),
        "1N 2N": (2, 1, False, 1),
        "1N 2T": (1, 2, False, 0),                 # first DLT: 2 more there
        "1N 2T 2NN": (1, 3, False, 0),             # 1 of 3: 3 more
        "1N 2T 2NN 2NNN": (2, 3, False, 1),        # 1 of 6: escalate in cohorts of 3
        "1N 2T 2NT": (None, None, True, 0),        # 2 of 3: stop, the dose below
        "1N 2N 3N 4N": (3, 2, False, 3),           # top dose without DLT: expand
        "1T 1TN": (None, None, True, None),
    }
    for h, (nxt, size, stop, rec) in cases.items():
        x = d.decide(h)
        assert (x.next_dose, x.cohort_size, x.stop, x.recommended) == (nxt, size, stop, rec), h


@pytest.mark.parametrize("tox", [[0.05, 0.10, 0.20, 0.35, 0.50], [0.3, 0.45, 0.6, 0.7, 0.8],
                                 [0.01, 0.02, 0.05, 0.1, 0.15]])
def test_matches_exact_enumeration(tox):
    ex = exact_accelerated_titration(tox)
    study = ts.from_dict({"doses": [1, 2, 3, 4, 5], "truth": {"tox": tox},
                          "design": {"type": "accelerated_titration"}})
    a = ts.simulate(study, n_trials=40_000, seed=12).arrays
    assert_matches_exact(a, ex)
