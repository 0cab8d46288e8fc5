"""Isotonic regression of DLT rates and the isotonic MTD selection of the interval designs
(BOIN, mTPI-2, Keyboard, i3+3), batched over trials.

The selection is the one of Liu & Yuan (2015, section 2.3) as R BOIN's ``select.mtd`` computes
it: on the doses tried and not eliminated, the estimates ``(y + 0.05) / (n + 0.1)`` are smoothed
by pool-adjacent-violators weighted by their inverse Beta variance, and the dose closest to the
target is selected; among doses pooled to one estimate the lowest is taken if the estimate is
above the target and the highest if below.
"""
from __future__ import annotations

import numpy as np

from trialsim.analysis._isotonic_kernels import isotonic_select_kernel, pava_inplace

#: Pseudo-counts of the estimates ``(y + A) / (n + B)`` (R BOIN's ``select.mtd``).
A, B = 0.05, 0.1
#: Increment per dose that breaks ties between pooled doses.
TIE = 1e-10


def pava(x, w=None) -> np.ndarray:
    """The non-decreasing weighted least-squares fit to ``x`` (1-D; weights ``w``, default 1)."""
    x = np.array(x, dtype=float, copy=True)
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=float)
    if x.ndim != 1 or w.shape != x.shape:
        raise ValueError("pava takes 1-D x and weights of the same length")
    if not (np.isfinite(x).all() and np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("pava needs finite values and positive finite weights")
    k = x.size
    pava_inplace(x, w, k, np.empty(k), np.empty(k), np.empty(k, np.int64))
    return x


def isotonic_select(n: np.ndarray, tox: np.ndarray, eligible: np.ndarray, target: float,
                    upper: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """The isotonic MTD of each trial: ``(dose, estimates)``.

    ``n``, ``tox`` (T, D) patients and DLTs per dose; ``eligible`` (T, D) bool, doses that may
    be selected (e.g. not eliminated) — of those, doses with ``n > 0`` take part; a dose whose
    isotonic estimate exceeds ``upper`` is not selected (R BOIN's ``boundMTD`` with ``upper =
    lambda_d``).  Returns the selected dose index per trial (int64, ``-1`` where no dose
    qualifies) and the isotonic estimates (T, D), NaN at doses that take no part.
    """
    n = np.ascontiguousarray(n, dtype=np.int64)
    tox = np.ascontiguousarray(tox, dtype=np.int64)
    eligible = np.ascontiguousarray(np.broadcast_to(eligible, n.shape), dtype=np.bool_)
    T, D = n.shape
    dose = np.empty(T, np.int64)
    est = np.empty((T, D))
    isotonic_select_kernel(n, tox, eligible, float(target), A, B, TIE, float(upper), dose, est)
    return dose, est
