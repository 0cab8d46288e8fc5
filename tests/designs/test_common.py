"""Shared helpers: reasons joined with "; ", and the max_patients stop."""
from __future__ import annotations

import numpy as np

from trialsim.designs import NO_DOSE, BatchState
from trialsim.designs._common import (MAX_PATIENTS_REASON, join_reasons, make_decision,
                                      stop_at_max_patients)


def test_join_reasons_only_where_masked_and_widens():
    r = np.array(["escalate", "", "stay"])
    out = join_reasons(r, "stop: a much longer reason than any before",
                       np.array([True, True, False]))
    assert out.tolist() == ["escalate; stop: a much longer reason than any before",
                            "stop: a much longer reason than any before", "stay"]
    assert out.dtype.kind == "U"
    assert join_reasons(r, "x", np.zeros(3, bool)).tolist() == r.tolist()


def test_stop_at_max_patients_keeps_recommendation_and_existing_stops():
    n = np.array([[3, 3], [6, 0], [3, 0]])
    state = BatchState(n, np.zeros_like(n), np.zeros_like(n), np.array([1, 0, 0]),
                       np.full(3, 3), np.zeros(3, np.int64))
    d = make_decision([1, 0, 1], [False, True, False], [1, NO_DOSE, 0], np.ones((3, 2), bool),
                      ["stay", "stop: rule", "escalate"])
    out = stop_at_max_patients(state, d, 6)
    assert out.stop.tolist() == [True, True, False]
    assert out.next_dose.tolist() == [NO_DOSE, NO_DOSE, 1]
    assert out.recommended.tolist() == [1, NO_DOSE, 0]
    assert out.reason.tolist() == [f"stay; {MAX_PATIENTS_REASON}", "stop: rule", "escalate"]
