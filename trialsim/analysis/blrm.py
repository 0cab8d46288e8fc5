"""The two-parameter Bayesian logistic regression model of Neuenschwander, Branson & Gsponer
(2008, Stat Med 27:2420-2439), batched over trials.

Model: ``logit P(DLT at dose d) = log(alpha) + beta * log(d / d_ref)`` with ``beta > 0``, prior
``(log alpha, log beta) ~ N(mean, Sigma)``.  The posterior probability that each dose's DLT rate
is at or above given cut points is computed by quadrature on a grid centred on the posterior
mode and sheared along the posterior correlation (:mod:`._blrm_kernels`), accurate to about
1e-4 (checked against adaptive SciPy integration in ``tests/reference/blrm.py``).  Trials in the
same state (same patients and DLTs per dose) are computed once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logit

from trialsim.analysis._blrm_kernels import blrm_exceed_kernel
from trialsim.analysis.states import unique_rows

#: Grid of the quadrature: nodes along log(beta) and log(alpha), and the half-widths ``v`` of
#: its standardised coordinates ``sinh(v)`` (3.5 reaches 16.5 standard deviations).
G_BETA, G_ALPHA, HALF_WIDTH, HALF_WIDTH_BETA = 24, 56, 3.5, 3.0


@dataclass(frozen=True)
class BLRMPrior:
    """Bivariate normal prior of ``(log alpha, log beta)``: means, standard deviations and
    correlation."""

    mean: tuple[float, float]
    sd: tuple[float, float]
    corr: float = 0.0

    def precision(self) -> np.ndarray:
        s1, s2 = self.sd
        cov = np.array([[s1 * s1, self.corr * s1 * s2], [self.corr * s1 * s2, s2 * s2]])
        return np.linalg.inv(cov)


def prob_at_or_above(n: np.ndarray, tox: np.ndarray, doses, reference_dose: float,
                     prior: BLRMPrior, cuts) -> np.ndarray:
    """``P(p_d >= cut_k | data)`` for every trial, dose and cut: shape (T, D, K).

    ``n``, ``tox`` (T, D) patients and DLTs per dose; ``doses`` (D,) positive, in the unit of
    ``reference_dose``; ``cuts`` (K,) DLT rates in (0, 1)."""
    n = np.atleast_2d(np.asarray(n, np.int64))
    tox = np.atleast_2d(np.asarray(tox, np.int64))
    x = np.log(np.asarray(doses, float) / float(reference_dose))
    cuts = np.asarray(cuts, float)
    if n.shape != tox.shape or n.shape[1] != x.size:
        raise ValueError(f"n and tox need shape (T, {x.size}), got {n.shape} and {tox.shape}")
    if not np.all((cuts > 0) & (cuts < 1)):
        raise ValueError(f"cuts must lie in (0, 1), got {cuts.tolist()}")
    un, uy, inverse = unique_rows(n, tox)
    P = prior.precision()
    out = np.empty((un.shape[0], x.size, cuts.size))
    mode = np.empty((un.shape[0], 2))
    blrm_exceed_kernel(un.astype(float), uy.astype(float), x, float(prior.mean[0]), float(prior.mean[1]),
                       float(P[0, 0]), float(P[0, 1]), float(P[1, 1]), logit(cuts), G_ALPHA,
                       G_BETA, HALF_WIDTH, HALF_WIDTH_BETA, out, mode)
    return out[inverse]
