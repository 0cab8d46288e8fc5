"""Longitudinal model of repeated measures (MMRM) for dose-ranging trials: the arm means at
a primary visit from all visits, for generalised MCP-Mod.

Model.  Patient ``i`` (arm ``a_i`` in 0..D-1, covariates ``x_i`` (q,), e.g. baseline MADRS;
``q`` may be 0) has responses ``y_ij`` (change from baseline or score) at visits
``j = 1..V``::

    y_ij = mu[a_i, j] + gamma_j' (x_i - xbar) + e_ij,     e_i ~ N_V(0, Sigma)

with one mean per arm and visit (saturated), visit-specific covariate slopes ``gamma_j`` and
an unstructured ``Sigma`` (V × V); missing values are missing at random (MAR).  ``xbar`` is
the mean covariate of the patients in the likelihood (those with at least one observed
visit), so ``mu[:, visit]`` are the arm means at the primary visit adjusted to the overall
mean of the covariates — the estimates returned, with their D × D covariance.

Two fits of the same model:

* :func:`mmrm` (one trial, any missing pattern, e.g. intermittent visits in real data):
  direct maximisation of the likelihood (``ml``) or restricted likelihood (``reml``, Patterson
  & Thompson 1971) over the log-Cholesky factor of ``Sigma``, the means profiled out by
  generalised least squares (as in Jennrich & Schluchter 1986).
* :func:`mmrm_batch` (many simulated trials, MONOTONE dropout): the closed form of the
  factored likelihood (Anderson 1957, *JASA* 52:200–203; Little & Rubin, *Statistical Analysis
  with Missing Data*, 3rd ed. 2019, ch. 7).  Under monotone MAR dropout the likelihood is a
  product of independent regressions — visit 1 on (arm, covariates) among the patients seen at
  visit 1, visit j on (arm, covariates, y_1..y_{j-1}) among those seen at visit j — with
  distinct parameters, so each is fitted by least squares.  The mean of visit j in arm d at
  ``xbar`` is the prediction of regression j at (arm d, ``xbar``, the estimated means of the
  earlier visits in arm d); the delta method over the independent factors gives their
  covariance ``sum_k lambda_k² s_k² W_k (Z_k'Z_k)^-1 W_k'`` (``lambda_k`` the derivative of the
  primary mean with respect to visit k's means — the same for every arm — and ``W_k`` the
  prediction points).  Only visits up to the primary one enter.

Residual variances.  ``reml`` (default): ``s_j² = RSS_j / (n_j - D - q)`` — the variance of
each regression corrected for the D + q mean parameters, not for the j - 1 coefficients on
earlier visits.  That is exactly the REML estimate under monotone dropout (the map from the
means to the regressions' intercepts is triangular with unit Jacobian, so the restricted
likelihood factorises too and each factor's REML variance has ``n_j - D - q`` in the
denominator; tested against the direct REML fit), and with complete data it reproduces
ANCOVA at the primary visit exactly, estimates and covariance.  ``ml``: ``RSS_j / n_j``
(smaller by the factor ``(n_j - D - q) / n_j``, too optimistic in small trials).  The
"unbiased" per-regression choice ``RSS_j / (n_j - D - q - (j - 1))`` would overstate the
variance of complete data.  The arm means themselves are the same under ML and REML.

Covariance of the estimates.  The inverse observed information (Kenward & Molenberghs 1998,
*Stat Sci* 13:236–247: under MAR the expected information ``(X' Sigma^-1 X)^-1`` ignores the
estimation of ``Sigma`` and is too small).  The direct fit computes it analytically in the
parameterisation (means, modified Cholesky factor of ``Sigma`` — Pourahmadi 1999,
*Biometrika* 86:677–690), which is exactly the factored-likelihood parameterisation: at the
ML estimate this is the delta-method covariance of the factored form (parameterisation
invariant); at the REML estimate (the ML log-likelihood's Hessian at the REML variances)
it is the factored form's covariance with REML variances on monotone data.

Degrees of freedom (t reference): ``n_visit - D - q``, the residual degrees of freedom of the
primary-visit cell-means model among the patients observed at the primary visit.  With
complete data that is ANCOVA's (exact t); with dropout the variance combines the visits'
factors (df ``n_j - D - q``, ``n_j >= n_visit``), whose Satterthwaite df lies between the
smallest one (this) and their sum — a conservative choice without the Kenward–Roger machinery.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from trialsim.analysis import _longitudinal_kernels as K
from trialsim.analysis.doseresponse.batch import BatchEstimates
from trialsim.analysis.doseresponse.estimates import DoseEstimates, from_general

METHODS = ("reml", "ml", "factored")


@dataclass(frozen=True)
class LongitudinalEstimates:
    """Arm means at the primary visit from the longitudinal model of one trial.

    ``estimates`` (D,) response units, ``cov`` (D, D) their estimated covariance, ``df`` the
    degrees of freedom of a t reference, ``n`` (D,) patients per arm observed at the primary
    visit, ``sigma`` (V, V) the estimated within-patient covariance, ``method`` reml | ml |
    factored, ``visit`` the primary visit's index."""

    estimates: np.ndarray
    cov: np.ndarray
    df: float
    n: np.ndarray
    sigma: np.ndarray
    method: str
    visit: int

    def to_dose_estimates(self, doses) -> DoseEstimates:
        """Generalised MCP-Mod input: ``doses`` (D,) of the arms 0..D-1 (placebo included)."""
        return from_general(doses, self.estimates, self.cov, self.df, self.n)


# ---------------------------------------------------------------------------------------
# Inputs


def _check(y, arm, n_arms, visit, covariates, batch: bool):
    """Validated ``(y (..., N, V) float, arm (..., N) int64, x (..., N, q) float)``."""
    lead = "(T, N, V)" if batch else "(N, V)"
    y = np.asarray(y, dtype=float)
    if y.ndim != (3 if batch else 2) or 0 in y.shape:
        raise ValueError(f"y must be a non-empty array {lead} (NaN where missing), got shape "
                         f"{y.shape}")
    if np.isinf(y).any():
        raise ValueError("y must hold finite numbers or NaN (missing)")
    if isinstance(n_arms, bool) or not isinstance(n_arms, (int, np.integer)) or n_arms < 1:
        raise ValueError(f"n_arms must be a positive integer, got {n_arms!r}")
    V = y.shape[-1]
    if isinstance(visit, bool) or not isinstance(visit, (int, np.integer)) \
            or not 0 <= visit < V:
        raise ValueError(f"visit must be an integer index in 0..{V - 1} (the primary visit "
                         f"among the {V} columns of y), got {visit!r}")
    a = np.asarray(arm)
    if a.shape != y.shape[:-1]:
        raise ValueError(f"arm must have shape {y.shape[:-1]} (one arm per patient), got "
                         f"{a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"arm must hold integers 0..{n_arms - 1}, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= n_arms):
        raise ValueError(f"arm must hold integers 0..{n_arms - 1}, got values in "
                         f"{a.min()}..{a.max()}")
    if covariates is None:
        x = np.zeros(y.shape[:-1] + (0,))
    else:
        x = np.asarray(covariates, dtype=float)
        if x.shape == y.shape[:-1]:
            x = x[..., None]
        if x.ndim != y.ndim or x.shape[:-1] != y.shape[:-1]:
            q = "(T, N) or (T, N, q)" if batch else "(N,) or (N, q)"
            raise ValueError(f"covariates must have shape {q} matching y {y.shape}, got "
                             f"{np.shape(covariates)}")
        if not np.all(np.isfinite(x)):
            raise ValueError("covariates must be finite numbers for every patient")
    return y, a.astype(np.int64), x


# ---------------------------------------------------------------------------------------
# Closed form (monotone dropout)


def mmrm_batch(y, arm, n_arms: int, visit: int, covariates=None, method: str = "reml"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The longitudinal model of ``T`` trials with monotone dropout, in closed form.

    ``y`` (T, N, V) responses, NaN from a patient's dropout on (a patient missing at visit 0
    is left out); ``arm`` (T, N) integers 0..n_arms-1; ``visit`` the primary visit's index;
    ``covariates`` (T, N) or (T, N, q) or None; ``method`` reml | ml (residual variances, see
    the module docstring).  Returns ``(est (T, D), cov (T, D, D), df (T,), valid (T,))``;
    a trial is invalid (``est`` 0, ``cov`` identity, ``df`` 1) when an arm has fewer than 2
    patients at the primary visit or a regression is singular or has no residual df."""
    y, arm, x = _check(y, arm, n_arms, visit, covariates, batch=True)
    if method not in ("reml", "ml"):
        raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
    seen = ~np.isnan(y)
    if (seen[..., 1:] & ~seen[..., :-1]).any():
        t, i, j = np.argwhere(seen[..., 1:] & ~seen[..., :-1])[0]
        raise ValueError("mmrm_batch needs monotone dropout (once missing, missing at every "
                         f"later visit): trial {t}, patient {i} is missing at visit {j} but "
                         f"seen at visit {j + 1}; use mmrm() for intermittent missing data")
    est, cov, df, valid, _ = _factored(y[..., :visit + 1], arm, x, int(n_arms), int(visit),
                                       method == "reml")
    cov[~valid] = np.eye(int(n_arms))
    est[~valid] = 0.0
    df[~valid] = 1.0
    return est, cov, df, valid


def _factored(y, arm, x, D: int, visit: int, reml: bool):
    """The closed-form kernel on checked monotone inputs ``y`` (T, N, V): ``(est, cov, df,
    valid, sigma (T, V, V))``."""
    T, V = y.shape[0], y.shape[-1]
    est, cov = np.zeros((T, D)), np.zeros((T, D, D))
    df, valid = np.ones(T), np.zeros(T, bool)
    sigma = np.zeros((T, V, V))
    K.factored_batch(np.ascontiguousarray(y), np.ascontiguousarray(arm),
                     np.ascontiguousarray(x), D, visit, reml, est, cov, df, valid, sigma)
    return est, cov, df, valid, sigma


def batch_estimates(doses, y, arm, visit: int, covariates=None, method: str = "reml"
                    ) -> BatchEstimates:
    """:func:`mmrm_batch` as the batched MCP-Mod's input (kind ``general``): ``doses`` (D,)
    sorted with placebo first, the arms 0..D-1 in that order."""
    d = np.asarray(doses, dtype=float)
    if d.ndim != 1 or d.size < 2 or d[0] != 0 or np.any(np.diff(d) <= 0):
        raise ValueError("doses must be increasing, with placebo (0) first")
    est, cov, df, valid = mmrm_batch(y, arm, d.size, visit, covariates, method)
    return BatchEstimates(d, est, cov, df, "general", valid)


# ---------------------------------------------------------------------------------------
# Direct likelihood (any missing pattern)


@dataclass(frozen=True)
class _Group:
    """Patients sharing a missing pattern: ``obs`` (k,) visits seen, ``X`` (n, k, p) their
    design rows, ``y`` (n, k)."""

    obs: np.ndarray
    X: np.ndarray
    y: np.ndarray


def _groups(y, arm, xc, D: int) -> list[_Group]:
    N, V = y.shape
    q = xc.shape[1]
    w = D + q
    X = np.zeros((N, V, V * w))
    for j in range(V):
        X[np.arange(N), j, j * w + arm] = 1.0
        X[:, j, j * w + D:(j + 1) * w] = xc
    seen = ~np.isnan(y)
    pats, inv = np.unique(seen, axis=0, return_inverse=True)
    out = []
    for g, pat in enumerate(pats):
        rows = np.flatnonzero(inv.ravel() == g)
        obs = np.flatnonzero(pat)
        out.append(_Group(obs, X[np.ix_(rows, obs)], y[np.ix_(rows, obs)]))
    return out


def _gls(groups, S: np.ndarray, p: int):
    """GLS means given ``S`` (V, V): ``(beta (p,), M = X'S^-1X (p, p), logdet, quad)``."""
    M = np.zeros((p, p))
    u = np.zeros(p)
    logdet = 0.0
    cache = []
    for g in groups:
        c = linalg.cho_factor(S[np.ix_(g.obs, g.obs)], lower=True)
        P = linalg.cho_solve(c, np.eye(g.obs.size))
        logdet += 2.0 * g.y.shape[0] * np.log(np.diag(c[0])).sum()
        PX = np.einsum("ab,nbp->nap", P, g.X)
        M += np.einsum("nap,naq->pq", g.X, PX)
        u += np.einsum("nap,na->p", PX, g.y)
        cache.append(P)
    beta = np.linalg.solve(M, u)
    quad = 0.0
    for g, P in zip(groups, cache):
        r = g.y - g.X @ beta
        quad += np.einsum("na,ab,nb->", r, P, r)
    return beta, M, logdet, quad, cache


def _objective(groups, S: np.ndarray, p: int, reml: bool):
    """``(-loglik (up to a constant), F)``: the negative (restricted) profile log-likelihood
    and its gradient ``F`` (V, V) with respect to ``S`` (``d f = tr(F dS)``)."""
    V = S.shape[0]
    beta, M, logdet, quad, Ps = _gls(groups, S, p)
    f = 0.5 * (logdet + quad)
    F = np.zeros((V, V))
    Minv = np.linalg.inv(M) if reml else None
    if reml:
        f += 0.5 * np.linalg.slogdet(M)[1]
    for g, P in zip(groups, Ps):
        r = g.y - g.X @ beta
        Pr = r @ P
        Gg = 0.5 * (g.y.shape[0] * P - Pr.T @ Pr)
        if reml:
            H = np.einsum("nap,pq,nbq->ab", g.X, Minv, g.X)
            Gg -= 0.5 * P @ H @ P
        F[np.ix_(g.obs, g.obs)] += Gg
    return f, F


def _chol(theta: np.ndarray, V: int) -> np.ndarray:
    L = np.zeros((V, V))
    L[np.tril_indices(V)] = theta
    L[np.diag_indices(V)] = np.exp(np.diag(L))
    return L


def _unchol(L: np.ndarray) -> np.ndarray:
    L = L.copy()
    L[np.diag_indices(L.shape[0])] = np.log(np.diag(L))
    return L[np.tril_indices(L.shape[0])]


def _start(y, arm, D: int) -> np.ndarray:
    """Pairwise covariance of the residuals from the observed arm-by-visit means (diagonal
    when that is not positive definite)."""
    V = y.shape[1]
    r = np.full(y.shape, np.nan)
    for d in range(D):
        m = arm == d
        r[m] = y[m] - np.nanmean(y[m], axis=0)
    S = np.zeros((V, V))
    for j in range(V):
        for k in range(j + 1):
            both = ~np.isnan(r[:, j]) & ~np.isnan(r[:, k])
            S[j, k] = S[k, j] = np.mean(r[both, j] * r[both, k]) if both.sum() > 1 else 0.0
    var = np.maximum(np.diag(S), 1e-8 * max(np.max(np.diag(S)), 1e-300) + 1e-300)
    if np.linalg.eigvalsh(S).min() <= 1e-6 * var.max():
        S = np.diag(var)
    return S


def _maximise(groups, V: int, p: int, reml: bool, S0: np.ndarray, scale: float):
    """Minimise the negative (restricted) profile log-likelihood over the log-Cholesky factor
    of ``Sigma``: BFGS, then Newton steps on a finite-difference Hessian of the analytic
    gradient until the step is below 1e-10.  Returns ``Sigma``."""

    def fun(theta):
        L = _chol(theta, V)
        try:
            f, F = _objective(groups, L @ L.T, p, reml)
        except (linalg.LinAlgError, np.linalg.LinAlgError):
            return np.inf, np.zeros_like(theta)
        G = 2.0 * F @ L
        G[np.diag_indices(V)] *= np.diag(L)
        return f / scale, G[np.tril_indices(V)] / scale

    theta = _unchol(np.linalg.cholesky(S0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = optimize.minimize(fun, theta, jac=True, method="BFGS",
                                options={"gtol": 1e-7, "maxiter": 2000})
    theta = res.x
    f, g = fun(theta)
    for _ in range(20):
        h = 1e-5 * np.maximum(1.0, np.abs(theta))
        H = np.empty((theta.size, theta.size))
        for k in range(theta.size):
            e = np.zeros_like(theta)
            e[k] = h[k]
            H[:, k] = (fun(theta + e)[1] - fun(theta - e)[1]) / (2 * h[k])
        H = 0.5 * (H + H.T)
        w, Q = np.linalg.eigh(H)
        step = -Q @ ((Q.T @ g) / np.maximum(np.abs(w), 1e-8 * np.abs(w).max()))
        for _ in range(30):
            f_new, g_new = fun(theta + step)
            if f_new <= f + 1e-14 * abs(f):
                break
            step = 0.5 * step
        else:
            break
        theta, f, g = theta + step, f_new, g_new
        if np.max(np.abs(step)) < 1e-10:
            break
    if not np.max(np.abs(g)) < 1e-6:
        raise RuntimeError("the likelihood maximisation did not converge (gradient "
                           f"{np.max(np.abs(g)):.2g}); is the covariance identifiable (enough "
                           "patients seen at each visit and pair of visits)?")
    L = _chol(theta, V)
    return L @ L.T


def _sigma_derivatives(S: np.ndarray):
    """First and second derivatives of ``S = U diag(d) U'`` (``U = T^-1``, ``T`` unit lower
    triangular) with respect to ``T``'s entries below the diagonal then ``d``:
    ``(S_a (K, V, V), S_ab (K, K, V, V))``."""
    V = S.shape[0]
    L = np.linalg.cholesky(S)
    d = np.diag(L) ** 2
    U = L / np.diag(L)
    Dm = np.diag(d)
    pairs = [(j, k) for j in range(V) for k in range(j)]
    nt = len(pairs)
    Kn = nt + V
    dU = np.stack([-np.outer(U[:, j], U[k, :]) for j, k in pairs]) if nt else \
        np.zeros((0, V, V))
    Sa = np.zeros((Kn, V, V))
    Sab = np.zeros((Kn, Kn, V, V))
    for a in range(nt):
        Sa[a] = dU[a] @ Dm @ U.T + U @ Dm @ dU[a].T
    for j in range(V):
        Sa[nt + j] = np.outer(U[:, j], U[:, j])
    for a, (ja, ka) in enumerate(pairs):
        for b, (jb, kb) in enumerate(pairs):
            # d2U = U E_b U E_a U + U E_a U E_b U, E_(j,k) the unit matrix at (j, k)
            d2U = (U[kb, ja] * np.outer(U[:, jb], U[ka, :])
                   + U[ka, jb] * np.outer(U[:, ja], U[kb, :]))
            Sab[a, b] = (d2U @ Dm @ U.T + dU[a] @ Dm @ dU[b].T + dU[b] @ Dm @ dU[a].T
                         + U @ Dm @ d2U.T)
        for j in range(V):
            E = np.zeros((V, V))
            E[j, j] = 1.0
            Sab[a, nt + j] = Sab[nt + j, a] = dU[a] @ E @ U.T + U @ E @ dU[a].T
    return Sa, Sab


def _information_cov(groups, S: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """The means' block (p, p) of the inverse observed information of the ML log-likelihood
    at ``(beta, S)``, in the parameterisation (means, modified Cholesky factor of ``S``)."""
    p = beta.size
    V = S.shape[0]
    Sa, Sab = _sigma_derivatives(S)
    Kn = Sa.shape[0]
    Hbb = np.zeros((p, p))
    Hba = np.zeros((p, Kn))
    Haa = np.zeros((Kn, Kn))
    G = np.zeros((V, V))
    for g in groups:
        o = np.ix_(g.obs, g.obs)
        P = np.linalg.inv(S[o])
        n = g.y.shape[0]
        r = g.y - g.X @ beta
        Pr = r @ P                                               # (n, k)
        Sg = Sa[:, g.obs][:, :, g.obs]                           # (K, k, k)
        Y = np.einsum("kab,nb->kna", Sg, Pr)                     # S_a P r
        PY = np.einsum("ab,knb->kna", P, Y)                      # P S_a P r
        A = np.einsum("ab,kbc->kac", P, Sg)                      # P S_a
        Hbb -= np.einsum("nap,ab,nbq->pq", g.X, P, g.X)
        Hba -= np.einsum("nap,kna->pk", g.X, PY)
        Haa += 0.5 * n * np.einsum("kab,lba->kl", A, A) - np.einsum("kna,lna->kl", Y, PY)
        G[o] += 0.5 * (Pr.T @ Pr - n * P)
    Haa += np.einsum("ab,klab->kl", G, Sab)
    H = np.block([[Hbb, Hba], [Hba.T, Haa]])
    return np.linalg.inv(-H)[:p, :p]


def _check_cells(y, arm, D: int, visit: int) -> None:
    seen = ~np.isnan(y)
    V = y.shape[1]
    for d in range(D):
        if not seen[arm == d, visit].any():
            raise ValueError(f"arm {d} has no patient observed at the primary visit {visit}: "
                             "its mean there cannot be estimated")
        for j in range(V):
            if not seen[arm == d, j].any():
                raise ValueError(f"arm {d} has no patient observed at visit {j}: the "
                                 "saturated model needs every arm seen at every visit "
                                 "(drop that visit's column)")
    both = seen.T.astype(float) @ seen.astype(float)
    j, k = np.unravel_index(np.argmin(both), both.shape)
    if both[j, k] < 2:
        raise ValueError(f"visits {j} and {k} are observed together in {int(both[j, k])} "
                         "patient(s): their covariance cannot be estimated")


def mmrm(y, arm, n_arms: int, visit: int, covariates=None, method: str = "reml"
         ) -> LongitudinalEstimates:
    """The longitudinal model of one trial (see the module docstring).

    ``y`` (N, V) responses with NaN where missing (any pattern for ``reml``/``ml``; monotone
    for ``factored``, the closed form with REML variances); ``arm`` (N,) integers
    0..n_arms-1; ``visit`` the primary visit's index; ``covariates`` (N,) or (N, q) or None.
    Patients with no observed visit are left out.  Raises ValueError for bad input (also
    monotone data with a visit seen in no more patients than its regression has parameters,
    ``D + q + j``: the likelihood is unbounded), and RuntimeError if the likelihood
    maximisation does not converge."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    y, arm, x = _check(y, arm, n_arms, visit, covariates, batch=False)
    keep = ~np.isnan(y).all(axis=1)
    y, arm, x = y[keep], arm[keep], x[keep]
    D, q = int(n_arms), x.shape[1]
    N, V = y.shape
    _check_cells(y, arm, D, visit)
    n = np.bincount(arm[~np.isnan(y[:, visit])], minlength=D).astype(float)
    df = float(n.sum() - D - q)
    p = V * (D + q)
    if df < 1 or N - D - q < 1:
        raise ValueError(f"{int(n.sum())} patients at the primary visit leave no degrees of "
                         f"freedom for {D} arms and {q} covariates")
    seen = ~np.isnan(y)
    if not (seen[:, 1:] & ~seen[:, :-1]).any():
        # monotone: the likelihood is that of the regressions of visit j on the arms, the
        # covariates and the j earlier visits; with no residual df one is fitted exactly and
        # the likelihood is unbounded (Sigma singular)
        nj = seen.sum(axis=0)
        short = np.flatnonzero(nj < D + q + np.arange(V) + 1)
        if short.size:
            j = int(short[0])
            hint = ("; drop the columns of the visits after the primary one (they do not "
                    "inform it under monotone dropout)") if j > visit else ""
            raise ValueError(f"visit {j} is observed in {int(nj[j])} patient(s), fewer than the "
                             f"{D + q + j + 1} an unstructured covariance needs there (more "
                             f"than {D} arms + {q} covariates + {j} earlier visits){hint}")
    if method == "factored":
        return _factored_single(y, arm, x, D, visit, n, df)
    xc = x - x.mean(axis=0)
    groups = _groups(y, arm, xc, D)
    if np.linalg.matrix_rank(sum(np.einsum("nap,naq->pq", g.X, g.X) for g in groups)) < p:
        raise ValueError("the covariates are collinear with the arms among the observed "
                         "visits")
    S = _maximise(groups, V, p, method == "reml", _start(y, arm, D), float(np.sum(~np.isnan(y))))
    beta = _gls(groups, S, p)[0]
    C = _information_cov(groups, S, beta)
    idx = visit * (D + q) + np.arange(D)
    cov = C[np.ix_(idx, idx)]
    return LongitudinalEstimates(beta[idx], 0.5 * (cov + cov.T), df, n, S, method, int(visit))


def _factored_single(y, arm, x, D, visit, n, df) -> LongitudinalEstimates:
    seen = ~np.isnan(y)
    if (seen[:, 1:] & ~seen[:, :-1]).any():
        raise ValueError("method 'factored' needs monotone dropout (once missing, missing at "
                         "every later visit); use 'reml' or 'ml' for intermittent data")
    est, cov, _, valid, sigma = _factored(y[None], arm[None], x[None], int(D), int(visit), True)
    if not valid[0]:
        raise ValueError("the factored fit is singular: an arm with fewer than 2 patients at "
                         "the primary visit, too few patients at some visit for its "
                         "regression, or collinear covariates")
    return LongitudinalEstimates(est[0], cov[0], df, n, sigma[0], "factored", int(visit))
