"""Designs compared on common random numbers (trialsim.compare)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import trialsim as ts
from trialsim.designs import BOIN

STUDY = ts.load(Path(__file__).resolve().parents[1] / "configs" / "examples" / "boin_direct.yaml")
INTERVAL = {"target": 0.3, "max_patients": 36}


def test_designs_with_identical_decisions_give_identical_trials():
    """At target 0.3 with cohorts of 3, mTPI-2, Keyboard and i3+3 make the same decisions in every
    reachable state (R FIND / Keyboard agree), so on the same patients every per-trial metric
    is equal: the paired differences are exactly 0."""
    df = ts.compare(STUDY, {k: {"type": k, **INTERVAL} for k in ("mtpi2", "keyboard", "i3plus3")},
                    n_trials=2000, seed=3)
    assert (df["diff"] == 0).all() and (df["diff_se"] == 0).all()


def test_paired_differences_are_more_precise_than_the_designs_own_errors():
    df = ts.compare(STUDY, {"boin": BOIN(n_doses=5, **INTERVAL),
                            "mtpi2": {"type": "mtpi2", **INTERVAL}}, n_trials=4000, seed=3)
    row = df[(df.design == "mtpi2") & (df.metric == "correct_selection_pct")].iloc[0]
    assert 0 < row.diff_se < 0.5 * row.se
    base = df[df.design == "boin"]
    alone = ts.simulate(STUDY, n_trials=4000, seed=3).metrics().set_index("metric")
    np.testing.assert_allclose(base.set_index("metric")["value"], alone.loc[base.metric, "value"])


def test_bad_designs_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        ts.compare(STUDY, {}, n_trials=10, seed=1)
    with pytest.raises(TypeError, match="a Design or its configuration"):
        ts.compare(STUDY, {"x": "boin"}, n_trials=10, seed=1)
    with pytest.raises(ValueError, match="3 doses"):
        ts.compare(STUDY, {"x": BOIN(n_doses=3, **INTERVAL)}, n_trials=10, seed=1)


def test_correct_selection_is_not_differenced_across_designs_with_different_goals():
    """BOIN12 is scored against the optimal dose, BOIN against the MTD: subtracting their
    correct selections would compare different questions, so those differences are NaN and
    ``scored_against`` names each goal; the other metrics are still paired."""
    study = ts.load(Path(__file__).resolve().parents[1] / "configs" / "examples" / "boin12.yaml")
    df = ts.compare(study, {"boin12": study.design,
                            "boin": {"type": "boin", "target": 0.35, "max_patients": 36}},
                    n_trials=300, seed=1).set_index(["design", "metric"])
    for metric in ("correct_selection_pct", "benchmark_correct_pct"):
        assert df.loc[("boin12", metric), "scored_against"] == "optimal dose (dose 3)"
        assert df.loc[("boin", metric), "scored_against"] == "MTD (dose 5)"
        assert np.isnan(df.loc[("boin", metric), "diff"])
    assert df.loc[("boin", "no_selection_pct"), "scored_against"] == ""
    assert np.isfinite(df.loc[("boin", "no_selection_pct"), "diff_se"])
