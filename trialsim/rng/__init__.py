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

from trialsim.rng import _kernels

#: Fixed child indices of a trial's SeedSequence.  Append only; never renumber.
STREAMS: dict[str, int] = {
    "patients": 0,  # covariates, IIV random effects, latent uniforms of the virtual patients
    "accrual": 1,   # arrival times (timed path)
    "conduct": 2,   # dropout, visit jitter, clinic events (timed path)
    "model": 3,     # randomised computations inside a design (e.g. randomised next doses)
    "allocation": 4,  # randomisation of patients to arms (phase II)
    "dropout": 5,   # dropout times (phase II)
    "safety": 6,    # sensitivities and noise of the acute safety measures (phase II)
    "period2": 7,   # the second period of a sequential parallel comparison design (phase II)
    "onset": 8,     # when within its observation window each patient's DLT would occur (timed)
}

#: First spawn-key element used for study-level (not per-trial) streams.
TRUTH_SCENARIO_KEY = 2**31 - 1


def trial_seed(seed: int, scenario: int, trial: int) -> np.random.SeedSequence:
    """The SeedSequence of one trial."""
    return np.random.SeedSequence(seed, spawn_key=(scenario, trial))


def stream(seed: int, scenario: int, trial: int, name: str) -> np.random.Generator:
    """The Generator of one named sub-stream of one trial."""
    ss = np.random.SeedSequence(seed, spawn_key=(scenario, trial, _stream_index(name)))
    return np.random.Generator(np.random.PCG64(ss))


def stream_uniforms(seed: int, scenario: int, trials: np.ndarray, name: str, n: int) -> np.ndarray:
    """Uniforms (len(trials), n), row i bitwise equal to
    stream(seed, scenario, trials[i], name).random(n).

    Computed in bulk by a numba kernel (``trialsim.rng._kernels``) instead of building one
    Generator per trial.  ``trials`` is a 1-D array of non-negative integers below 2**64.
    """
    idx = _stream_index(name)
    seed = check_seed(seed)
    scenario = _nonneg_int(scenario, "scenario")
    n = _nonneg_int(n, "n")
    t = np.asarray(trials)
    if t.ndim != 1:
        raise ValueError(f"trials must be 1-D, got shape {t.shape}")
    if t.size == 0:
        return np.empty((0, n), np.float64)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"trials must be integers, got dtype {t.dtype}")
    if t.dtype.kind == "i" and t.min() < 0:
        raise ValueError("trials must be non-negative")
    # Entropy words as numpy assembles them: the seed zero-padded to the pool size (a spawn
    # key is present), then the spawn key (scenario, trial, idx), each int split into uint32.
    head = _uint32_words(seed)
    head += [0] * (_kernels.POOL_SIZE - len(head))
    prefix = np.array(head + _uint32_words(scenario), dtype=np.uint32)
    suffix = np.array(_uint32_words(idx), dtype=np.uint32)
    return _kernels.uniforms(prefix, t.astype(np.uint64), suffix, n)


def study_stream(seed: int, scenario: int, purpose: int = 0) -> np.random.Generator:
    """A Generator for study-level Monte Carlo (e.g. the population-average truth)."""
    ss = np.random.SeedSequence(seed, spawn_key=(TRUTH_SCENARIO_KEY, scenario, purpose))
    return np.random.Generator(np.random.PCG64(ss))


def _stream_index(name: str) -> int:
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"unknown random stream {name!r}; known: {sorted(STREAMS)}") from None


def _nonneg_int(x: object, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {x!r}")
    return int(x)


def _uint32_words(x: int) -> list[int]:
    """``x`` as uint32 words, lowest first; ``[0]`` for 0 (numpy's ``_int_to_uint32_array``)."""
    words = [x & 0xFFFFFFFF]
    x >>= 32
    while x:
        words.append(x & 0xFFFFFFFF)
        x >>= 32
    return words


#: Root seeds lie in [0, MAX_SEED] (the bulk kernel is checked against numpy up to it).
MAX_SEED = 2**160


def check_seed(seed: object) -> int:
    """A root seed must be an integer in [0, 2**160]."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
            not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to 2**160, got {seed!r}")
    return int(seed)
