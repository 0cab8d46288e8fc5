"""Distinct trial states: trials advancing in lockstep share few, so posteriors are computed
once per state (CRM, BLRM)."""
from __future__ import annotations

import math

import numpy as np


def unique_rows(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct rows of the non-negative int arrays taken together (e.g. ``(n, tox)``), each
    array's part, and the inverse map: ``n == n_u[inverse]``.

    Trials advancing in lockstep share few distinct states (for 10,000 CRM trials of 30
    patients, at most ~1,300 at any step), so each posterior is computed once per state.
    """
    x = np.concatenate(arrays, axis=1)
    base = int(x.max(initial=0)) + 1
    if x.shape[1] * math.log2(base) < 62:  # pack each row into one int64 key
        key = x @ (base ** np.arange(x.shape[1], dtype=np.int64))
    else:
        x = np.ascontiguousarray(x)
        key = x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return (*(a[first] for a in arrays), inverse.ravel())
