"""Operating characteristics through the public path (YAML → simulate → summary) against
exact values: the 3+3 by exhaustive enumeration of its rules (tests/helpers)."""
import numpy as np
import pytest

import trialsim as ts
from tests.helpers.three_plus_three_exact import exact_three_plus_three

N = 20_000
SCENARIOS = [
    [0.05, 0.10, 0.30, 0.45, 0.60],
    [0.02, 0.04, 0.06, 0.08, 0.10],
    [0.25, 0.50, 0.60, 0.70, 0.80],
]


@pytest.mark.parametrize("tox", SCENARIOS)
def test_three_plus_three_matches_exact_enumeration(tox):
    study = ts.from_dict({"doses": [1, 2, 3, 4, 5], "target": 0.3, "truth": {"tox": tox},
                          "design": {"type": "three_plus_three"}})
    s = ts.simulate(study, N, seed=2024).summary()
    exact = exact_three_plus_three(tox)
    sel_exact = np.array([*map(float, exact.select), float(exact.none)])
    # selection: binomial MC standard error from the exact probability (+1/N slack for rare events)
    se = np.sqrt(sel_exact * (1 - sel_exact) / N)
    np.testing.assert_array_less(np.abs(s.selected_pct / 100 - sel_exact), 4 * se + 1 / N)
    # expected patients per dose: tolerance from the simulated standard error
    en = np.array([float(x) for x in exact.expected_n])
    got, got_se = s.patients_mean.to_numpy()[:5], s.patients_se.to_numpy()[:5]
    np.testing.assert_array_less(np.abs(got - en), 4 * got_se + 1 / N)
    et = np.array([float(x) for x in exact.expected_tox])
    np.testing.assert_array_less(np.abs(s.dlt_mean.to_numpy()[:5] - et), 4 * s.dlt_se.to_numpy()[:5] + 1 / N)
