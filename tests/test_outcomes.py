import numpy as np
import pytest
from hypothesis import given, strategies as st

from trialsim.outcomes import TrialHistory


def test_parse_counts():
    h = TrialHistory.parse("1NNN 2NTN 2TTB 3E", n_doses=4)
    n, t, e = h.counts()
    assert n.tolist() == [3, 6, 1, 0]
    assert t.tolist() == [0, 4, 0, 0]
    assert e.tolist() == [0, 1, 1, 0]
    assert h.cohort == (0, 0, 0, 1, 1, 1, 2, 2, 2, 3)


@pytest.mark.parametrize("bad", ["0NNN", "6N", "1", "1NXN", "N1"])
def test_parse_rejects(bad):
    with pytest.raises(ValueError, match="dose|cohort"):
        TrialHistory.parse(bad, n_doses=5)


cohort = st.tuples(st.integers(0, 4), st.lists(st.sampled_from("NTEB"), min_size=1, max_size=6))


@given(st.lists(cohort, max_size=12))
def test_round_trip(cohorts):
    text = " ".join(f"{d + 1}{''.join(ls)}" for d, ls in cohorts)
    h = TrialHistory.parse(text, n_doses=5)
    assert h.format() == text
    assert TrialHistory.parse(h.format(), 5) == h


def test_add_cohort_matches_parse():
    h = TrialHistory(5).add_cohort(0, [0, 0, 0]).add_cohort(1, [0, 1, 0], [1, 1, 0])
    assert h == TrialHistory.parse("1NNN 2EBN", 5)
