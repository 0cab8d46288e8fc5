"""numba kernel of the batched longitudinal model (:func:`trialsim.analysis.longitudinal.
mmrm_batch`): the factored likelihood of a saturated-means, unstructured-covariance model
under monotone dropout, solved in closed form by sequential least squares, one trial at a
time (each trial's result depends on its own data only, whatever the batching).  Arrays and
numbers only.

Regression ``j`` (0-based visit) is fitted among the patients observed at visit ``j``:
``y_j ~ arm (D cell intercepts) + (x - xbar) (q slopes) + (y_k - c_k), k < j`` (previous
visits centred at their observed means ``c_k``, covariates at the mean ``xbar`` of the
patients observed at visit 0, for a better-conditioned system).
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: A pivot of the Cholesky factorisation below this fraction of its diagonal entry makes the
#: normal equations singular (an empty arm, or a regressor collinear with the others).
PIVOT_TOL = 1e-10


@njit(cache=True, error_model="numpy")
def _cholesky_inverse(A, p):
    """``(ok, inverse)`` of the symmetric positive definite ``A[:p, :p]`` by Cholesky."""
    L = np.zeros((p, p))
    for k in range(p):
        s = A[k, k]
        for m in range(k):
            s -= L[k, m] * L[k, m]
        if not (s > PIVOT_TOL * A[k, k]) or not (A[k, k] > 0.0):
            return False, L
        L[k, k] = np.sqrt(s)
        for i in range(k + 1, p):
            s = A[i, k]
            for m in range(k):
                s -= L[i, m] * L[k, m]
            L[i, k] = s / L[k, k]
    Li = np.zeros((p, p))                      # L^-1 (lower triangular)
    for k in range(p):
        Li[k, k] = 1.0 / L[k, k]
        for i in range(k + 1, p):
            s = 0.0
            for m in range(k, i):
                s -= L[i, m] * Li[m, k]
            Li[i, k] = s / L[i, i]
    Ainv = np.zeros((p, p))                    # A^-1 = L^-T L^-1
    for i in range(p):
        for k in range(i, p):
            s = 0.0
            for m in range(k, p):
                s += Li[m, i] * Li[m, k]
            Ainv[i, k] = s
            Ainv[k, i] = s
    return True, Ainv


@njit(cache=True, error_model="numpy")
def factored_batch(y, arm, x, n_arms, visit, reml, est, cov, df, valid, sigma):
    """Closed-form factored-likelihood fit of every trial.

    ``y`` (T, N, V) responses with NaN after dropout (monotone), ``arm`` (T, N) in
    0..n_arms-1, ``x`` (T, N, q) covariates, ``visit`` the primary visit (< V), ``reml``:
    residual variances ``RSS_j / (n_j - D - q)`` (else ``RSS_j / n_j``, maximum likelihood).
    Fills ``est`` (T, D) the primary-visit arm means at ``xbar``, ``cov`` (T, D, D) their
    delta-method covariance, ``df`` (T,) ``n_visit - D - q``, ``valid`` (T,) and ``sigma``
    (T, V, V) the implied covariance matrix of the V visits (all regressions are fitted)."""
    T, N, V = y.shape
    D = n_arms
    q = x.shape[2]
    P = D + q + V - 1
    for t in range(T):
        valid[t] = False
        xbar = np.zeros(q)
        n0 = 0
        for i in range(N):
            if y[t, i, 0] == y[t, i, 0]:
                n0 += 1
                for m in range(q):
                    xbar[m] += x[t, i, m]
        if n0 == 0:
            continue
        for m in range(q):
            xbar[m] /= n0
        c = np.zeros(V)                        # centre of each visit as a regressor
        for j in range(V):
            nj = 0
            for i in range(N):
                if y[t, i, j] == y[t, i, j]:
                    nj += 1
                    c[j] += y[t, i, j]
            if nj > 0:
                c[j] /= nj
        theta = np.zeros((V, P))
        Ainv = np.zeros((V, P, P))
        s2 = np.zeros(V)
        mean = np.zeros((V, D))                # arm means of each visit at xbar
        n_arm = np.zeros(D)
        ok = True
        z = np.zeros(P - D)
        for j in range(V):
            p = D + q + j
            A = np.zeros((p, p))
            b = np.zeros(p)
            nj = 0
            for i in range(N):
                yj = y[t, i, j]
                if yj != yj:
                    continue
                nj += 1
                a = arm[t, i]
                if j == visit:
                    n_arm[a] += 1.0
                for m in range(q):
                    z[m] = x[t, i, m] - xbar[m]
                for k in range(j):
                    z[q + k] = y[t, i, k] - c[k]
                A[a, a] += 1.0
                b[a] += yj
                for m in range(q + j):
                    A[a, D + m] += z[m]
                    b[D + m] += z[m] * yj
                    for l in range(m, q + j):
                        A[D + m, D + l] += z[m] * z[l]
            if nj - p < 1:
                ok = False
                break
            for m in range(p):
                for l in range(m):
                    A[m, l] = A[l, m]
            good, Ai = _cholesky_inverse(A, p)
            if not good:
                ok = False
                break
            for m in range(p):
                s = 0.0
                for l in range(p):
                    s += Ai[m, l] * b[l]
                theta[j, m] = s
                for l in range(p):
                    Ainv[j, m, l] = Ai[m, l]
            rss = 0.0
            for i in range(N):
                yj = y[t, i, j]
                if yj != yj:
                    continue
                r = yj - theta[j, arm[t, i]]
                for m in range(q):
                    r -= theta[j, D + m] * (x[t, i, m] - xbar[m])
                for k in range(j):
                    r -= theta[j, D + q + k] * (y[t, i, k] - c[k])
                rss += r * r
            s2[j] = rss / (nj - D - q) if reml else rss / nj
            if not (s2[j] > 0.0):
                ok = False
                break
            for d in range(D):
                mv = theta[j, d]
                for k in range(j):
                    mv += theta[j, D + q + k] * (mean[k, d] - c[k])
                mean[j, d] = mv
        if not ok:
            continue
        for d in range(D):
            if n_arm[d] < 2:
                ok = False
        if not ok:
            continue
        # adjoint of the primary mean to each visit's means: lam_k = d m_visit / d m_k
        lam = np.zeros(visit + 1)
        lam[visit] = 1.0
        for k in range(visit - 1, -1, -1):
            s = 0.0
            for j in range(k + 1, visit + 1):
                s += lam[j] * theta[j, D + q + k]
            lam[k] = s
        for d in range(D):
            est[t, d] = mean[visit, d]
            for e in range(D):
                cov[t, d, e] = 0.0
        w = np.zeros((D, P))
        for k in range(visit + 1):
            p = D + q + k
            for d in range(D):                 # the regressors at which m_k(d) is predicted
                for m in range(p):
                    w[d, m] = 0.0
                w[d, d] = 1.0
                for l in range(k):
                    w[d, D + q + l] = mean[l, d] - c[l]
            f = lam[k] * lam[k] * s2[k]
            for d in range(D):
                for e in range(d, D):
                    s = 0.0
                    for m in range(p):
                        for l in range(p):
                            s += w[d, m] * Ainv[k, m, l] * w[e, l]
                    cov[t, d, e] += f * s
        for d in range(D):
            for e in range(d):
                cov[t, d, e] = cov[t, e, d]
        # Sigma = U diag(s2) U' with U = T^-1, T unit lower triangular, T[j, k] = -Phi_jk
        U = np.zeros((V, V))
        for j in range(V):
            U[j, j] = 1.0
            for k in range(j - 1, -1, -1):
                s = 0.0
                for l in range(k, j):
                    s += theta[j, D + q + l] * U[l, k]
                U[j, k] = s
        for j in range(V):
            for k in range(V):
                s = 0.0
                for l in range(min(j, k) + 1):
                    s += U[j, l] * s2[l] * U[k, l]
                sigma[t, j, k] = s
        df[t] = n_arm.sum() - D - q
        valid[t] = True
