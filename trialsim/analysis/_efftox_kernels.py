"""numba kernel of the EffTox posterior (Thall & Cook 2004): the posterior mode by Newton's
method, then self-normalised importance sampling on fixed quasi-random points around it.

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

import math

import numba
import numpy as np

#: Sign of the association term for (neither, efficacy only, toxicity only, both).
_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
_A_EFF = np.array([0, 1, 0, 1])   # efficacy indicator of each outcome
_A_TOX = np.array([0, 0, 1, 1])   # toxicity indicator
#: Fewest effective pilot points whose weighted covariance replaces the Laplace proposal's.
MIN_PILOT_ESS = 32.0


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


@numba.njit(cache=True, inline="always")
def _phi_upper(v):
    """Standard normal upper tail ``P(N > v)``."""
    return 0.5 * math.erfc(v / math.sqrt(2.0))


@numba.njit(cache=True)
def _proposal_mean(loc, sd, h, hw):
    """``E[expit(loc + sd Z)]``, ``Z`` standard normal (nodes ``h``, weights ``hw``)."""
    m = 0.0
    for l in range(h.size):
        m += hw[l] * _expit_pair(loc + sd * h[l])[0]
    return m


@numba.njit(cache=True, inline="always")
def _ipow(v, n):
    """``v ** n`` for a small non-negative integer ``n`` (stored as a float)."""
    out = 1.0
    for _ in range(int(n)):
        out *= v
    return out


@numba.njit(cache=True)
def _sample(center, fac, z, log_q, cs, x, x2, mu, prec, has, theta, lw, ee_s, et_s, pe_s,
            pt_s, summaries):
    """The points ``theta_i = center + fac z_i`` (into ``theta``) and their weights
    (exponentiated, the largest 1; returns their sum and sum of squares); with ``summaries``
    also every dose's linear predictors and probabilities.  ``has[j]``: dose ``j`` has
    patients.  The log posterior is :func:`_log_post`'s, with one logarithm per point (of the
    product over doses of the outcome probabilities' powers; taken early where the product
    nears underflow)."""
    N, J = z.shape[0], x.size
    top = -np.inf
    for i in range(N):
        v = 0.0
        th = theta[i]
        for a in range(6):
            t = center[a]
            for b in range(6):
                t += fac[a, b] * z[i, b]
            th[a] = t
            d = t - mu[a]
            v -= 0.5 * prec[a] * d * d
        c = np.tanh(0.5 * th[5])
        lik = 1.0
        for j in range(J):
            if not (summaries or has[j]):
                continue
            ee = th[2] + th[3] * x[j] + th[4] * x2[j]
            et = th[0] + th[1] * x[j]
            pe, qe = _expit_pair(ee)
            pt, qt = _expit_pair(et)
            if summaries:
                ee_s[i, j] = ee
                et_s[i, j] = et
                pe_s[i, j] = pe
                pt_s[i, j] = pt
            if has[j]:
                g = c * pe * qe * pt * qt
                cj = cs[j]
                lik *= (_ipow(qe * qt + g, cj[0]) * _ipow(pe * qt - g, cj[1])
                        * _ipow(qe * pt - g, cj[2]) * _ipow(pe * pt + g, cj[3]))
                if lik < 1e-200:       # one logarithm per point, none lost to underflow
                    v += np.log(lik)
                    lik = 1.0
        lw[i] = v + np.log(lik) - log_q[i]
        if lw[i] > top:
            top = lw[i]
    tot = 0.0
    tot2 = 0.0
    for i in range(N):
        lw[i] = math.exp(lw[i] - top)
        tot += lw[i]
        tot2 += lw[i] * lw[i]
    return tot, tot2


@numba.njit(cache=True)
def _se(lw, v, exact_q, est, cut):
    """Standard error of a summary ``est = exact_q + sum_i lw_i f_i`` (``lw_i = w_i - 1/N``,
    normalised weights ``w``) as if the ``N`` points were independent draws: the delta method's
    ``sqrt(sum_i (w_i (f_i - est) - (f_i - exact_q) / N)^2)``.  ``f_i`` is ``v_i`` itself
    (``cut = -inf``) or the indicator ``v_i > cut``."""
    N = v.size
    inv = 1.0 / N
    t = 0.0
    for i in range(N):
        f = v[i] if cut == -np.inf else (1.0 if v[i] > cut else 0.0)
        r = (lw[i] + inv) * (f - est) - (f - exact_q) * inv
        t += r * r
    return math.sqrt(t)


@numba.njit(cache=True)
def efftox_posterior_kernel(counts, x, x2, mu, prec, z1, log_q1, z, log_q, scale, scale2,
                            logit_eff_cut, logit_tox_cuts, h, hw, mean_eff, mean_tox,
                            p_eff_above, p_tox_above, ess, se_eff, se_tox, se_p_eff, se_p_tox,
                            want_se):
    """Posterior summaries of ``S`` data sets (``counts`` (S, J, 4) float).

    For each, importance sampling in two passes on fixed standardised points (log proposal
    densities ``log_q1``, ``log_q`` up to a constant): a pilot on the Student-t points ``z1``
    around the mode with the inverse of ``-H`` there (:func:`_mode`), scaled by ``scale``; then
    the main pass on the normal points ``z`` with the pilot's weighted mean and covariance,
    scaled by ``scale2``.  With normalised
    weights ``w_i``, each summary ``E[f]`` is estimated as ``E_q[f] + sum_i (w_i - 1/N)
    f(theta_i)``: its exact value under the normal proposal (each ``f`` depends on one linear
    predictor, normal under the proposal: a normal tail, or :func:`_proposal_mean` on the
    rule ``h``, ``hw``) plus the importance-sampling correction (a control variate: the
    points' own error in ``E_q[f]`` cancels where the weights are near 1/N).
    The correction can carry an estimate just outside [0, 1]; estimates are clipped to it.
    Out: posterior means of ``pi_E`` and ``pi_T`` (S, J); ``P(logit pi_E > logit_eff_cut)``
    (S, J); ``P(logit pi_T > logit_tox_cuts[k])`` (S, J, K); Kish's effective sample size of
    the main pass's weights (S,); and with ``want_se`` the standard errors of the four
    summaries as if the points were independent draws (:func:`_se`; quasi-random points do
    better; else left as they are).
    """
    S, J = counts.shape[0], counts.shape[1]
    N, N1 = z.shape[0], z1.shape[0]
    K = logit_tox_cuts.size
    th = np.empty(6)
    neg_hess = np.empty((6, 6))
    low = np.empty((6, 6))
    fac = np.empty((6, 6))
    cov = np.empty((6, 6))
    center = np.empty(6)
    av = np.empty(6)
    lw1 = np.empty(N1)
    th1 = np.empty((N1, 6))
    lw = np.empty(N)
    th_s = np.empty((N, 6))
    ee_s = np.empty((N, J))
    et_s = np.empty((N, J))
    pe_s = np.empty((N, J))
    pt_s = np.empty((N, J))
    has = np.empty(J, np.bool_)
    for s in range(S):
        cs = counts[s]
        for j in range(J):
            has[j] = cs[j, 0] + cs[j, 1] + cs[j, 2] + cs[j, 3] > 0
        used = np.nonzero(has)[0]
        _mode(cs, x, x2, mu, prec, used, th, neg_hess, low)
        # pilot: theta = m + scale L^-T z (fac = scale L^-T, by columns)
        for b in range(6):
            for a in range(5, -1, -1):
                v = 1.0 if a == b else 0.0
                for r in range(a + 1, 6):
                    v -= low[r, a] * fac[r, b]
                fac[a, b] = v / low[a, a]
        for a in range(6):
            for b in range(6):
                fac[a, b] *= scale
        tot, tot2 = _sample(th, fac, z1, log_q1, cs, x, x2, mu, prec, has, th1, lw1, ee_s,
                            et_s, pe_s, pt_s, False)
        for a in range(6):
            v = 0.0
            for i in range(N1):
                v += lw1[i] * th1[i, a]
            center[a] = v / tot
        for a in range(6):
            for b in range(a + 1):
                v = 0.0
                for i in range(N1):
                    v += lw1[i] * (th1[i, a] - center[a]) * (th1[i, b] - center[b])
                cov[a, b] = v / tot
                cov[b, a] = cov[a, b]
        if tot * tot / tot2 >= MIN_PILOT_ESS and _cholesky(cov, low):
            for a in range(6):
                for b in range(6):
                    fac[a, b] = scale2 * low[a, b]
        else:   # too few effective pilot points for a covariance: keep the Laplace proposal
            for a in range(6):
                center[a] = th[a]
        tot, tot2 = _sample(center, fac, z, log_q, cs, x, x2, mu, prec, has, th_s, lw, ee_s,
                            et_s, pe_s, pt_s, True)
        ess[s] = tot * tot / tot2
        for i in range(N):
            lw[i] = lw[i] / tot - 1.0 / N      # weight minus its proposal value
        for j in range(J):
            for kind in range(2):
                # the linear predictor a^T theta: location a^T center, sd |fac^T a|
                for a in range(6):
                    av[a] = 0.0
                if kind == 0:
                    av[2], av[3], av[4] = 1.0, x[j], x2[j]
                else:
                    av[0], av[1] = 1.0, x[j]
                loc = 0.0
                for a in range(6):
                    loc += av[a] * center[a]
                nb = 0.0
                for b in range(6):
                    v = 0.0
                    for a in range(6):
                        v += fac[a, b] * av[a]
                    nb += v * v
                sd = math.sqrt(nb)
                mq = _proposal_mean(loc, sd, h, hw)
                if kind == 0:
                    pq = _phi_upper((logit_eff_cut - loc) / sd)
                    pc = 0.0
                    mc = 0.0
                    for i in range(N):
                        e = ee_s[i, j]
                        mc += lw[i] * pe_s[i, j]
                        if e > logit_eff_cut:
                            pc += lw[i]
                    mean_eff[s, j] = min(max(mq + mc, 0.0), 1.0)
                    p_eff_above[s, j] = min(max(pq + pc, 0.0), 1.0)
                    if want_se:
                        se_eff[s, j] = _se(lw, pe_s[:, j], mq, mq + mc, -np.inf)
                        se_p_eff[s, j] = _se(lw, ee_s[:, j], pq, pq + pc, logit_eff_cut)
                else:
                    mc = 0.0
                    for i in range(N):
                        mc += lw[i] * pt_s[i, j]
                    for k in range(K):
                        pq = _phi_upper((logit_tox_cuts[k] - loc) / sd)
                        pc = 0.0
                        for i in range(N):
                            if et_s[i, j] > logit_tox_cuts[k]:
                                pc += lw[i]
                        p_tox_above[s, j, k] = min(max(pq + pc, 0.0), 1.0)
                        if want_se:
                            se_p_tox[s, j, k] = _se(lw, et_s[:, j], pq, pq + pc,
                                                    logit_tox_cuts[k])
                    mean_tox[s, j] = min(max(mq + mc, 0.0), 1.0)
                    if want_se:
                        se_tox[s, j] = _se(lw, pt_s[:, j], mq, mq + mc, -np.inf)
