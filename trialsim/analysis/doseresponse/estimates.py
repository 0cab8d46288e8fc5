"""Dose-level estimates for MCP-Mod, from patient data or given directly.

* ``normal`` (continuous endpoint): the cell-means linear model ``y ~ dose (factor) +
  covariates`` by least squares (ANCOVA when covariates are given, e.g. baseline MADRS):
  the dose coefficients, their covariance ``sigma² V`` and the residual degrees of freedom.
  Fitting a dose-response model to these estimates with the weight ``V⁻¹`` gives exactly the
  least-squares fit of the model (plus covariates) to the patients' data: the two residual
  sums of squares differ by the cell-means model's ``rss0``.
* ``binary``: logistic regression with the same terms (iteratively reweighted least squares),
  the logit-scale dose coefficients and their asymptotic covariance; an arm with no events
  (or only events) gets half an event and half a non-event added (Haldane–Anscombe), as a
  separated logistic fit has no maximum-likelihood estimate.
* ``general``: estimates and their covariance given (e.g. from a longitudinal model),
  degrees of freedom ``inf`` unless stated (generalised MCP-Mod, Pinheiro et al. 2014).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DoseEstimates:
    """Estimates at the dose levels and what the fits and tests need.

    ``doses`` (k,) sorted with placebo first, ``estimates`` (k,), ``cov`` (k, k) their
    estimated covariance, ``df`` the degrees of freedom of the test (``inf``: normal),
    ``n`` (k,) patients per dose, ``kind`` normal | binary | general.  For ``normal``:
    ``V`` (k, k) with ``cov = sigma2 · V``, ``rss0`` the residual sum of squares of the
    cell-means (+ covariates) model, ``n_obs`` and ``n_covariates``."""

    doses: np.ndarray
    estimates: np.ndarray
    cov: np.ndarray
    df: float
    n: np.ndarray
    kind: str
    V: np.ndarray | None = None
    rss0: float = 0.0
    n_obs: int = 0
    n_covariates: int = 0
    sigma2: float = float("nan")

    @property
    def weight(self) -> np.ndarray:
        """The weight matrix of the dose-response fits: ``V⁻¹`` (normal) or ``cov⁻¹``."""
        return np.linalg.inv(self.V if self.kind == "normal" else self.cov)


def _design(dose, covariates) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = np.asarray(dose, dtype=float).ravel()
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("dose must be a non-empty list of finite doses >= 0")
    levels, idx = np.unique(d, return_inverse=True)
    if levels[0] != 0 or levels.size < 2:
        raise ValueError("the data must include placebo (dose 0) and at least one active dose")
    X = np.zeros((d.size, levels.size))
    X[np.arange(d.size), idx] = 1.0
    Z = np.zeros((d.size, 0))
    if covariates is not None:
        Z = np.asarray(covariates, dtype=float).reshape(d.size, -1)
        if not np.all(np.isfinite(Z)):
            raise ValueError("covariates must be finite numbers")
    n = np.bincount(idx, minlength=levels.size).astype(float)
    return levels, np.hstack([X, Z]), n, idx


def from_normal(dose, response, covariates=None) -> DoseEstimates:
    """Cell means (ANCOVA with ``covariates`` (N,) or (N, q)) of a continuous endpoint."""
    levels, X, n, _ = _design(dose, covariates)
    y = np.asarray(response, dtype=float).ravel()
    if y.size != X.shape[0] or not np.all(np.isfinite(y)):
        raise ValueError("response must hold one finite number per patient")
    k, p = levels.size, X.shape[1]
    df = y.size - p
    if df < 1:
        raise ValueError(f"{y.size} patients leave no degrees of freedom for {p} parameters")
    tss = float(((y - y.mean()) ** 2).sum())
    if tss == 0.0:
        raise ValueError(f"every response is {y[0]:g}: no variation to analyse")
    if np.linalg.matrix_rank(X) < p:
        raise ValueError("the covariates are collinear with the doses or with each other")
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ (X.T @ y)
    resid = y - X @ beta
    rss0 = float(resid @ resid)
    if rss0 <= 1e-20 * tss:
        raise ValueError("the doses (and covariates) fit the responses exactly: no residual "
                         "variation to test against")
    sigma2 = rss0 / df
    V = XtX_inv[:k, :k]
    return DoseEstimates(levels, beta[:k], sigma2 * V, float(df), n, "normal", V, rss0,
                         int(y.size), p - k, sigma2)


def from_binary(dose, response, covariates=None, max_iter: int = 50) -> DoseEstimates:
    """Logit-scale dose effects of a binary endpoint (logistic regression, IRLS)."""
    levels, X, n, idx = _design(dose, covariates)
    y = np.asarray(response, dtype=float).ravel()
    if y.size != X.shape[0] or not np.all((y == 0) | (y == 1)):
        raise ValueError("response must hold 0 or 1 for each patient")
    k = levels.size
    events = np.bincount(idx, weights=y, minlength=k)
    pad = (events == 0) | (events == n)
    w_obs = np.ones(y.size)
    if pad.any():   # half an event and half a non-event in separated arms
        extra_d = np.repeat(np.flatnonzero(pad), 2)
        Xe = np.zeros((extra_d.size, X.shape[1]))
        Xe[np.arange(extra_d.size), extra_d] = 1.0
        if X.shape[1] > k:   # covariates at their mean for the added half-patients
            Xe[:, k:] = X[:, k:].mean(axis=0)
        X = np.vstack([X, Xe])
        y = np.concatenate([y, np.tile([1.0, 0.0], pad.sum())])
        w_obs = np.concatenate([w_obs, np.full(extra_d.size, 0.5)])
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        eta = X @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        W = w_obs * p * (1 - p)
        H = X.T @ (W[:, None] * X)
        step = np.linalg.solve(H, X.T @ (w_obs * (y - p)))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        raise ValueError("the logistic regression did not converge")
    eta = X @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    H = X.T @ ((w_obs * p * (1 - p))[:, None] * X)
    cov = np.linalg.inv(H)[:k, :k]
    return DoseEstimates(levels, beta[:k], cov, float("inf"), n, "binary")


def from_general(doses, estimates, cov, df: float = float("inf"), n=None) -> DoseEstimates:
    """Estimates and their covariance given (``df`` inf: a normal test)."""
    d = np.asarray(doses, dtype=float).ravel()
    est = np.asarray(estimates, dtype=float).ravel()
    S = np.atleast_2d(np.asarray(cov, dtype=float))
    order = np.argsort(d)
    d, est = d[order], est[order]
    k = d.size
    if est.size != k or S.shape != (k, k):
        raise ValueError(f"{k} doses need {k} estimates and a {k}x{k} covariance")
    S = S[np.ix_(order, order)]
    if d[0] != 0 or np.any(np.diff(d) <= 0):
        raise ValueError("doses must be distinct and include placebo (0)")
    if not np.all(np.isfinite(S)) or not np.allclose(S, S.T) or \
            np.any(np.linalg.eigvalsh((S + S.T) / 2) <= 0):
        raise ValueError("the covariance must be a symmetric positive definite matrix")
    nn = np.full(k, np.nan) if n is None else np.asarray(n, dtype=float)[order]
    return DoseEstimates(d, est, (S + S.T) / 2, float(df), nn, "general")
