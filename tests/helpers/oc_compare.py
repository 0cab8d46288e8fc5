"""Operating characteristics of simulated escalation trials against a reference run (an R
package's simulation), within Monte Carlo error of both."""
from __future__ import annotations

import numpy as np

#: Combined standard errors allowed: a difference this large arises by chance about once in
#: 150,000 comparisons.
Z = 4.5


def assert_oc_close(arrays, n_ref: int, selection, patients, dlts, no_selection=None) -> None:
    """``arrays`` (a :class:`trialsim.results.TrialArrays`) against reference proportions of
    selection per dose (and of no selection), mean patients and mean DLTs per dose (``None``:
    not compared) from ``n_ref`` reference trials; the spread of the reference's per-trial counts is taken to be
    that of the simulated ones (same design, same truth under the null)."""
    T, D = arrays.n.shape
    sel = np.array([np.mean(arrays.selected == d) for d in range(D)])
    ref = np.asarray(selection, float)
    if no_selection is not None:
        sel = np.append(sel, np.mean(arrays.selected < 0))
        ref = np.append(ref, no_selection)
    p = (sel * T + ref * n_ref) / (T + n_ref)
    se = np.sqrt(p * (1 - p) * (1 / T + 1 / n_ref)) + 1e-12
    assert np.all(np.abs(sel - ref) <= Z * se), ("selection", sel.round(4), ref, se.round(4))
    for arr, r, what in ((arrays.n, patients, "patients"), (arrays.tox, dlts, "DLTs")):
        if r is None:
            continue
        mean, sd = arr.mean(axis=0), arr.std(axis=0, ddof=1)
        # a count with mean m has variance at least frac(m) * (1 - frac(m)) (the least spread
        # an integer variable with that mean can have): the floor for a rare dose that none
        # of the simulated trials reached (sample spread 0)
        frac = np.asarray(r, float) % 1.0
        sd = np.maximum(sd, np.sqrt(frac * (1 - frac)))
        se = sd * np.sqrt(1 / T + 1 / n_ref) + 1e-9
        assert np.all(np.abs(mean - np.asarray(r)) <= Z * se), (what, mean.round(3), r)


def assert_matches_exact(arrays, exact: dict) -> None:
    """Selection (and none), mean patients and DLTs per dose of simulated trials within ``Z``
    Monte Carlo SEs of exact values ``{"select": [...], "none": p, "n": [...], "tox": [...]}``."""
    T, D = arrays.n.shape
    sel = np.array([np.mean(arrays.selected == k) for k in range(D)]
                   + [np.mean(arrays.selected < 0)])
    p = np.array(list(exact["select"]) + [exact["none"]])
    assert abs(p.sum() - 1) < 1e-12
    assert np.all(np.abs(sel - p) <= Z * np.sqrt(p * (1 - p) / T) + 1e-12), (sel, p)
    for arr, key in ((arrays.n, "n"), (arrays.tox, "tox")):
        se = arr.std(axis=0, ddof=1) / np.sqrt(T) + 1e-12
        assert np.all(np.abs(arr.mean(axis=0) - np.array(exact[key])) <= Z * se), key


def assert_titesim_duration_close(duration_h: np.ndarray, run: dict, obswin_weeks: float) -> None:
    """Trial durations (h, first patient dosed to the last patient's window end) against an R
    dfcrm ``titesim`` run's (weeks, counted from time 0, where the first arrival comes on
    average ``obswin / rate`` later), within Monte Carlo error of both."""
    weeks = np.asarray(duration_h) / 168.0
    ref = run["duration_mean"] - obswin_weeks / run["rate_per_window"]
    se = np.hypot(weeks.std(ddof=1) / np.sqrt(weeks.size),
                  run["duration_sd"] / np.sqrt(run["nsim"]))
    assert abs(weeks.mean() - ref) <= Z * se, (weeks.mean(), ref, se)
