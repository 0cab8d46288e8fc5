"""Optimal contrasts and the multiple contrast test of MCP-Mod.

For a candidate shape ``mu`` (k doses) and estimates with covariance proportional to ``S``,
the contrast maximising the non-centrality of ``c'est / sd(c'est)`` under that shape is
(Bretz, Pinheiro & Branson 2005, eq. 3; Pinheiro et al. 2014 for a general ``S``)

    c ∝ S⁻¹ (mu − (1'S⁻¹mu / 1'S⁻¹1) 1),

scaled to unit Euclidean norm, with ``sum(c) = 0`` and ``c'mu > 0`` (the direction of the
effect).  With ``S = diag(1/n_i)`` this is ``c_i ∝ n_i (mu_i − mean_n(mu))``.  The test
statistics ``T_m = c_m'est / sqrt(c_m'S c_m)`` (``S`` the estimated covariance) are jointly
multivariate t with the residual degrees of freedom (normal for ``df = inf``) and correlation
``R = cor(C'SC)``; the critical value and the adjusted p-values come from the distribution of
their maximum (:mod:`trialsim.analysis.mvt`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trialsim.analysis import mvt


def optimal_contrasts(shapes: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Unit-norm optimal contrasts, one column per candidate shape: ``shapes`` (k, M),
    ``S`` (k, k) the covariance (up to a factor) of the dose-level estimates."""
    mu = np.asarray(shapes, dtype=float)
    S = np.asarray(S, dtype=float)
    k = mu.shape[0]
    if S.shape != (k, k):
        raise ValueError(f"S must be ({k}, {k}) for {k} doses, got {S.shape}")
    Sinv = np.linalg.inv(S)
    w = Sinv.sum(axis=1)                                   # S⁻¹ 1
    mean = (w @ mu) / w.sum()                              # 1'S⁻¹mu / 1'S⁻¹1, per column
    C = Sinv @ (mu - mean[None, :])
    C -= C.mean(axis=0, keepdims=True)                     # exact zero sum (rounding)
    norm = np.sqrt((C * C).sum(axis=0))
    if np.any(norm <= 1e-12):
        raise ValueError("a candidate shape is constant over the doses: no contrast")
    C /= norm
    sign = np.sign((C * mu).sum(axis=0))
    return C * np.where(sign == 0, 1.0, sign)


def contrast_correlation(C: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Correlation of the contrast estimates ``C'est`` when ``cov(est) ∝ S``."""
    V = C.T @ S @ C
    sd = np.sqrt(np.diag(V))
    R = V / np.outer(sd, sd)
    np.fill_diagonal(R, 1.0)
    return (R + R.T) / 2


@dataclass(frozen=True)
class ContrastTest:
    """The multiple contrast test: ``contrasts`` (k, M), their correlation ``corr`` (M, M),
    statistics ``t`` (M,), multiplicity-adjusted p-values ``p_adjusted`` (M,) (each ±
    ``p_error``), the ``critical_value`` at level ``alpha``, the degrees of freedom ``df``
    (``inf``: normal) and the candidate ``labels``."""

    labels: tuple[str, ...]
    contrasts: np.ndarray
    corr: np.ndarray
    t: np.ndarray
    p_adjusted: np.ndarray
    p_error: np.ndarray
    critical_value: float
    df: float
    alpha: float
    two_sided: bool

    @property
    def significant(self) -> tuple[str, ...]:
        """Candidates whose adjusted p-value is below ``alpha``, strongest first."""
        order = np.argsort(-self.t)
        return tuple(self.labels[i] for i in order if self.p_adjusted[i] < self.alpha)

    @property
    def reject(self) -> bool:
        """Whether the flat dose-response is rejected (a dose-response signal)."""
        return bool(np.any(self.p_adjusted < self.alpha))


def contrast_test(estimates, S, shapes: np.ndarray, labels, df: float = np.inf,
                  alpha: float = 0.025, two_sided: bool = False,
                  contrasts: np.ndarray | None = None) -> ContrastTest:
    """The multiple contrast test of the dose-level ``estimates`` (k,) with estimated
    covariance ``S`` (k, k), for the candidate ``shapes`` (k, M) (or given ``contrasts``)."""
    est = np.asarray(estimates, dtype=float)
    S = np.asarray(S, dtype=float)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    C = optimal_contrasts(shapes, S) if contrasts is None else np.asarray(contrasts, float)
    R = contrast_correlation(C, S)
    t = (C.T @ est) / np.sqrt(np.einsum("km,kl,lm->m", C, S, C))
    stat = np.abs(t) if two_sided else t
    dist = mvt.MaxDistribution(R, df, two_sided)
    crit = dist.quantile(1 - alpha)
    p = np.empty(t.size)
    err = np.empty(t.size)
    for m, x in enumerate(stat):
        pilot = 1.0 - dist.cdf_at(float(x), mvt.FIRST_M).value
        # 1e-5 (three standard errors) where a p-value can matter, 1e-4 elsewhere
        pr = dist.cdf(float(x), abseps=1e-5 if pilot < 0.2 else 1e-4)
        p[m], err[m] = min(max(1.0 - pr.value, 0.0), 1.0), pr.error
    return ContrastTest(tuple(labels), C, R, t, p, err, float(crit), float(df), float(alpha),
                        bool(two_sided))
