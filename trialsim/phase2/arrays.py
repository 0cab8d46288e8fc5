"""The arrays a batch of phase II trials leaves (per trial, arm and patient)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.stack import PerTrial


@dataclass(frozen=True)
class Phase2Arrays(PerTrial):
    """Per trial (``T``), arm (``D``) and patient (``N``): ``arm`` (T, N) randomised arm,
    ``dropout_h`` (T, N) dropout time (inf: none), ``y`` (T, N) the endpoint as analysed (NaN:
    not analysed), ``n`` / ``analysed`` (T, D) randomised / analysed patients, ``observed``
    (T, D) the arm estimates (the analysed mean change, or rate), ``analysable`` (T,) enough
    analysed patients for MCP-Mod (at least 2 on every arm, 1 for a binary endpoint, and a
    residual degree of freedom; else no-go), ``signal`` (T,), ``p_min``
    (T,) the smallest adjusted p-value where computed, ``selected`` (T,) model index (−1
    none), ``td`` (T,) estimated target dose, ``fitted`` (T, D) fitted effect over placebo,
    ``forward`` (T,) index of the dose taken forward (−1: no-go); per safety measure ``S``:
    ``event``, ``peak``, ``resolved_h`` (T, N, S) and ``event_rate`` (T, S, D) per arm;
    adaptive designs: ``n_interims`` (T,) interims held, ``stopped`` (T,) 0 ran to the end, 1
    stopped for efficacy, 2 for futility, ``dropped`` (T, D) arms dropped at an interim, and
    ``arm`` −1 for patients never enrolled (the trial stopped before them); sequential
    parallel comparison: ``arm2`` (T, N) the period-2 arm (−1: not re-randomised) and ``y2``
    (T, N) the period-2 endpoint."""

    trials: np.ndarray
    arm: np.ndarray
    dropout_h: np.ndarray
    y: np.ndarray
    n: np.ndarray
    analysed: np.ndarray
    observed: np.ndarray
    analysable: np.ndarray
    signal: np.ndarray
    p_min: np.ndarray
    selected: np.ndarray
    td: np.ndarray
    fitted: np.ndarray
    forward: np.ndarray
    event: np.ndarray
    peak: np.ndarray
    resolved_h: np.ndarray
    event_rate: np.ndarray
    n_interims: np.ndarray
    stopped: np.ndarray
    dropped: np.ndarray
    arm2: np.ndarray
    y2: np.ndarray
