"""Limits shared by every simulation path: argument checks and the memory a run may use."""
from __future__ import annotations

import numpy as np

#: Most trials one call simulates (sweeps split larger runs into tasks).
MAX_TRIALS = 10**9
#: Memory (GiB) a run may need unless the caller raises the limit.
DEFAULT_MAX_MEMORY_GB = 8.0
GIB = 1024.0**3


class ResourceError(ValueError):
    """A run would need more memory than allowed."""


def count(x: object, what: str, low: int = 0, high: int | None = None) -> int:
    """``x`` as an int in ``[low, high]``: ``TypeError`` for a non-integer (``True`` is not
    an integer here), ``ValueError`` out of range; messages name ``what``."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {x!r}")
    if x < low or (high is not None and x > high):
        bound = f"from {low} to {high:,}" if high is not None else f">= {low}"
        raise ValueError(f"{what} must be an integer {bound}, got {x}")
    return int(x)


def check_memory_limit(need_bytes: float, what: str, max_memory_gb: float) -> None:
    """``ResourceError`` when ``need_bytes`` exceed ``max_memory_gb`` GiB."""
    if isinstance(max_memory_gb, bool) or not isinstance(max_memory_gb, (int, float)) \
            or not max_memory_gb > 0:
        raise ValueError(f"max_memory_gb must be a positive number, got {max_memory_gb!r}")
    need = need_bytes / GIB
    if need > max_memory_gb:
        raise ResourceError(
            f"{what} need about {need:,.1f} GiB of memory, more than the limit of "
            f"{max_memory_gb:g} GiB: simulate fewer trials (or fewer patients per trial), or "
            "raise the limit (--max-memory-gb, or max_memory_gb= in Python)")
