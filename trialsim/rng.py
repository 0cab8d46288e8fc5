"""The SeedSequence tree.

Trial ``k`` of scenario ``s`` under root seed ``seed`` owns
``SeedSequence(seed, spawn_key=(s, k))``.  Named sub-streams are its children at fixed
indices, ``SeedSequence(seed, spawn_key=(s, k, STREAMS[name]))``, so any worker can rebuild
any trial's numbers without the others, whatever the batching, and adding a stream never
shifts an existing one.  Study-level quantities (for example a Monte Carlo estimate of the
population-average truth) use ``spawn_key=(TRUTH_SCENARIO_KEY, s)``, outside any trial's key.
"""
from __future__ import annotations

import numpy as np

#: Fixed child indices of a trial's SeedSequence.  Append only; never renumber.
STREAMS: dict[str, int] = {
    "patients": 0,  # covariates, IIV random effects, latent uniforms of the virtual patients
    "accrual": 1,   # arrival times (timed path)
    "conduct": 2,   # dropout, visit jitter, clinic events (timed path)
    "model": 3,     # MCMC or other randomised computations inside a design
}

#: First spawn-key element used for study-level (not per-trial) streams.
TRUTH_SCENARIO_KEY = 2**31 - 1


def trial_seed(seed: int, scenario: int, trial: int) -> np.random.SeedSequence:
    """The SeedSequence of one trial."""
    return np.random.SeedSequence(seed, spawn_key=(scenario, trial))


def stream(seed: int, scenario: int, trial: int, name: str) -> np.random.Generator:
    """The Generator of one named sub-stream of one trial."""
    try:
        idx = STREAMS[name]
    except KeyError:
        raise KeyError(f"unknown random stream {name!r}; known: {sorted(STREAMS)}") from None
    ss = np.random.SeedSequence(seed, spawn_key=(scenario, trial, idx))
    return np.random.Generator(np.random.PCG64(ss))


def study_stream(seed: int, scenario: int, purpose: int = 0) -> np.random.Generator:
    """A Generator for study-level Monte Carlo (e.g. the population-average truth)."""
    ss = np.random.SeedSequence(seed, spawn_key=(TRUTH_SCENARIO_KEY, scenario, purpose))
    return np.random.Generator(np.random.PCG64(ss))


def check_seed(seed: object) -> int:
    """A root seed must be a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
