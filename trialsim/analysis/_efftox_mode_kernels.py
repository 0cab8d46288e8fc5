"""numba kernels of the EffTox posterior's mode (Thall & Cook 2004): the log posterior, its
gradient and Hessian, and Newton's method with Levenberg damping; the importance sampling around
the mode is :mod:`._efftox_kernels`.

Kernels take arrays and numbers only and never run with ``parallel=True``; the documented API
is :mod:`trialsim.analysis.efftox`.

Parameters ``theta = (alpha, beta, gamma, zeta, eta, psi)``; at coded dose ``x``:
``logit pi_T = alpha + beta x``, ``logit pi_E = gamma + zeta x + eta x^2``; with
``c = tanh(psi / 2) = (e^psi - 1) / (e^psi + 1)`` the four outcomes (efficacy a, toxicity b) have
``pi_ab = A_a(pi_E) A_b(pi_T) + s_ab c pi_E (1 - pi_E) pi_T (1 - pi_T)``, ``s = +1`` for
(0, 0) and (1, 1), ``-1`` otherwise.  Counts are ordered (neither, efficacy only, toxicity only,
both).
"""
from __future__ import annotations

import numba
import numpy as np

#: Sign of the association term for (neither, efficacy only, toxicity only, both).
_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
_A_EFF = np.array([0, 1, 0, 1])   # efficacy indicator of each outcome
_A_TOX = np.array([0, 0, 1, 1])   # toxicity indicator


@numba.njit(cache=True, inline="always")
def _expit_pair(eta):
    """``(p, 1 - p)`` for ``p = expit(eta)``, each computed without cancellation."""
    if eta >= 0.0:
        e = np.exp(-eta)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = np.exp(eta)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@numba.njit(cache=True)
def _log_post(th, counts, x, x2, mu, prec, used):
    """Log posterior (up to a constant) at ``th``; ``used`` lists the doses with patients."""
    v = 0.0
    for k in range(6):
        d = th[k] - mu[k]
        v -= 0.5 * prec[k] * d * d
    c = np.tanh(0.5 * th[5])
    for u in range(used.size):
        j = used[u]
        pe, qe = _expit_pair(th[2] + th[3] * x[j] + th[4] * x2[j])
        pt, qt = _expit_pair(th[0] + th[1] * x[j])
        g = c * pe * qe * pt * qt
        cj = counts[j]
        if cj[0] > 0:
            v += cj[0] * np.log(qe * qt + g)
        if cj[1] > 0:
            v += cj[1] * np.log(pe * qt - g)
        if cj[2] > 0:
            v += cj[2] * np.log(qe * pt - g)
        if cj[3] > 0:
            v += cj[3] * np.log(pe * pt + g)
    return v


@numba.njit(cache=True)
def _grad_hess(th, counts, x, x2, mu, prec, used, grad, hess):
    """Gradient and Hessian of the log posterior at ``th`` (into ``grad`` (6,), ``hess``
    (6, 6)): per dose, those of the log likelihood in ``(eta_E, eta_T, psi)`` by the chain
    rule, mapped onto the parameters by ``d eta_E = (0, 0, 1, x, x^2, 0)``,
    ``d eta_T = (1, x, 0, 0, 0, 0)``."""
    for a in range(6):
        grad[a] = -prec[a] * (th[a] - mu[a])
        for b in range(6):
            hess[a, b] = 0.0
        hess[a, a] = -prec[a]
    c = np.tanh(0.5 * th[5])
    c1 = 0.5 * (1.0 - c * c)          # dc/dpsi
    c2 = -c * c1                      # d2c/dpsi2
    g3 = np.empty(3)
    h3 = np.empty((3, 3))
    de = np.empty(3)                  # d pi / d (eta_E, eta_T, psi)
    jac = np.zeros((3, 6))
    for u in range(used.size):
        j = used[u]
        pe, qe = _expit_pair(th[2] + th[3] * x[j] + th[4] * x2[j])
        pt, qt = _expit_pair(th[0] + th[1] * x[j])
        ve, vt = pe * qe, pt * qt
        we, wt = ve * (qe - pe), vt * (qt - pt)         # d v / d eta
        ue, ut = ve - 6.0 * ve * ve, vt - 6.0 * vt * vt  # d2 v / d eta2
        for a in range(3):
            g3[a] = 0.0
            for b in range(3):
                h3[a, b] = 0.0
        for k in range(4):
            n = counts[j, k]
            if n == 0:
                continue
            s = _SIGN[k]
            ae = pe if _A_EFF[k] == 1 else qe
            at = pt if _A_TOX[k] == 1 else qt
            se = 1.0 if _A_EFF[k] == 1 else -1.0      # d ae / d eta_E = se * ve
            st = 1.0 if _A_TOX[k] == 1 else -1.0
            p = ae * at + s * c * ve * vt
            de[0] = se * ve * at + s * c * we * vt
            de[1] = ae * st * vt + s * c * ve * wt
            de[2] = s * c1 * ve * vt
            h00 = se * we * at + s * c * ue * vt
            h11 = ae * st * wt + s * c * ve * ut
            h01 = se * ve * st * vt + s * c * we * wt
            h02 = s * c1 * we * vt
            h12 = s * c1 * ve * wt
            h22 = s * c2 * ve * vt
            ip = 1.0 / p
            for a in range(3):
                g3[a] += n * de[a] * ip
            hh = ((h00, h01, h02), (h01, h11, h12), (h02, h12, h22))
            for a in range(3):
                for b in range(3):
                    h3[a, b] += n * (hh[a][b] * ip - de[a] * de[b] * ip * ip)
        jac[0, 2] = 1.0
        jac[0, 3] = x[j]
        jac[0, 4] = x2[j]
        jac[1, 0] = 1.0
        jac[1, 1] = x[j]
        jac[2, 5] = 1.0
        for a in range(6):
            for r in range(3):
                if jac[r, a] == 0.0:
                    continue
                grad[a] += jac[r, a] * g3[r]
                for b in range(6):
                    for q in range(3):
                        hess[a, b] += jac[r, a] * h3[r, q] * jac[q, b]


@numba.njit(cache=True)
def _cholesky(a, out):
    """Lower Cholesky factor of the 6x6 matrix ``a`` into ``out``; False if not positive
    definite."""
    m = a.shape[0]
    for i in range(m):
        for k in range(m):
            out[i, k] = 0.0
    for i in range(m):
        for k in range(i + 1):
            s = a[i, k]
            for r in range(k):
                s -= out[i, r] * out[k, r]
            if i == k:
                if s <= 0.0:
                    return False
                out[i, i] = np.sqrt(s)
            else:
                out[i, k] = s / out[k, k]
    return True


@numba.njit(cache=True)
def _chol_solve(low, b, out):
    """Solve ``low low^T out = b``."""
    m = b.size
    for i in range(m):
        s = b[i]
        for r in range(i):
            s -= low[i, r] * out[r]
        out[i] = s / low[i, i]
    for i in range(m - 1, -1, -1):
        s = out[i]
        for r in range(i + 1, m):
            s -= low[r, i] * out[r]
        out[i] = s / low[i, i]


@numba.njit(cache=True)
def _damped_factor(hess, neg_hess, low):
    """``neg_hess = -hess + damping I`` and its Cholesky factor ``low``, with the smallest
    damping in 0, 1e-6, 1e-5, ... that makes it positive definite (the identity if none up to
    1e30 does); returns the damping."""
    damp = 0.0
    for _ in range(38):
        for a in range(6):
            for b in range(6):
                neg_hess[a, b] = -hess[a, b]
            neg_hess[a, a] += damp
        if _cholesky(neg_hess, low):
            return damp
        damp = 1e-6 if damp == 0.0 else damp * 10.0
    for a in range(6):
        for b in range(6):
            neg_hess[a, b] = 1.0 if a == b else 0.0
            low[a, b] = neg_hess[a, b]
    return damp


@numba.njit(cache=True)
def _mode(counts, x, x2, mu, prec, used, th, neg_hess, low):
    """Posterior mode into ``th`` (started at the prior mean) by Newton's method with
    Levenberg damping where ``-H`` is not positive definite and step halving; ``neg_hess``
    gets ``-H`` at the mode, ``low`` its Cholesky factor (of ``-H + damping I`` if ``-H`` is
    not positive definite there)."""
    grad = np.empty(6)
    hess = np.empty((6, 6))
    step = np.empty(6)
    trial = np.empty(6)
    for k in range(6):
        th[k] = mu[k]
    lp = _log_post(th, counts, x, x2, mu, prec, used)
    for _ in range(200):
        _grad_hess(th, counts, x, x2, mu, prec, used, grad, hess)
        damp = _damped_factor(hess, neg_hess, low)
        _chol_solve(low, grad, step)
        t = 1.0
        improved = False
        for _ in range(60):
            for k in range(6):
                trial[k] = th[k] + t * step[k]
            new = _log_post(trial, counts, x, x2, mu, prec, used)
            if new >= lp:
                improved = True
                break
            t *= 0.5
        size = 0.0
        for k in range(6):
            size = max(size, abs(t * step[k]))
        if improved:
            for k in range(6):
                th[k] = trial[k]
            lp = new
        if not improved or (size < 1e-9 and damp == 0.0):
            break
    _grad_hess(th, counts, x, x2, mu, prec, used, grad, hess)
    _damped_factor(hess, neg_hess, low)
    return lp
