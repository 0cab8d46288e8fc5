"""The optimal-biological-dose selection of BOIN12 (Lin et al. 2020), batched over trials: the
isotonic toxicity estimates, the authors' model-averaged unimodal efficacy estimates and the
estimated utility of each dose (numba kernels in :mod:`trialsim.analysis._boin12_kernels`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.analysis import _boin12_kernels as _k


@dataclass(frozen=True)
class OBDSelection:
    """``dose`` (T,) the selected 0-based dose (-1: none); ``tox``, ``eff`` (T, D) the smoothed
    estimates; ``utility`` (T, D) the estimated utility (NaN at doses that take no part)."""

    dose: np.ndarray
    tox: np.ndarray
    eff: np.ndarray
    utility: np.ndarray


def select_obd(n, tox, eff, excluded, target: float,
               utilities: tuple[float, float, float, float]) -> OBDSelection:
    """BOIN12's selection for each trial: ``n``, ``tox``, ``eff`` (T, D) counts, ``excluded``
    (T, D) doses that may not be selected (eliminated), ``target`` the DLT target, utilities of
    (response only, both, neither, DLT only).  See :func:`~trialsim.analysis._boin12_kernels.
    boin12_select_kernel`."""
    n = np.ascontiguousarray(n, dtype=np.int64)
    T, D = n.shape
    out = np.empty(T, np.int64)
    est = np.empty((3, T, D))
    _k.boin12_select_kernel(n, np.ascontiguousarray(tox, dtype=np.int64),
                            np.ascontiguousarray(eff, dtype=np.int64),
                            np.ascontiguousarray(excluded, dtype=np.bool_), float(target),
                            *map(float, utilities), out, est[0], est[1], est[2])
    return OBDSelection(out, est[0], est[1], est[2])


def unimodal_fit(y, w, mode: int) -> np.ndarray:
    """R ``Iso::ufit``'s fit of ``y`` (weights ``w``) with its peak at the 0-based ``mode``."""
    y = np.ascontiguousarray(y, dtype=float)
    k = y.size
    out = np.empty(k)
    _k.unimodal_fit(y, np.ascontiguousarray(w, dtype=float), int(mode), out, np.empty(9 * k),
                    np.empty(2 * k, np.int64))
    return out
