"""numba kernel of the EffTox posterior (Thall & Cook 2004): self-normalised importance sampling
on fixed quasi-random points around the posterior mode (:mod:`._efftox_mode_kernels`, whose
docstring states the model), the points doubled while EffTox's decision is in doubt.

Kernels take arrays and numbers only and never run with ``parallel=True``; the documented API
is :mod:`trialsim.analysis.efftox`.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from trialsim.analysis._efftox_mode_kernels import _cholesky, _expit_pair, _mode

#: Fewest effective pilot points whose weighted covariance replaces the Laplace proposal's.
MIN_PILOT_ESS = 32.0


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
            pt_s, summaries, start, stop):
    """The points ``theta_i = center + fac z_i`` (into ``theta``) for ``start <= i < stop``
    and their log importance weights up to a constant (into ``lw``); with ``summaries`` also
    every dose's linear predictors and probabilities.  ``has[j]``: dose ``j`` has patients.
    The log posterior is :func:`._efftox_mode_kernels._log_post`'s, with one logarithm per
    point (of the product over doses of the outcome probabilities' powers; taken early where
    the product nears underflow)."""
    J = x.size
    for i in range(start, stop):
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
                ee_s[j, i] = ee
                et_s[j, i] = et
                pe_s[j, i] = pe
                pt_s[j, i] = pt
            if has[j]:
                g = c * pe * qe * pt * qt
                cj = cs[j]
                lik *= (_ipow(qe * qt + g, cj[0]) * _ipow(pe * qt - g, cj[1])
                        * _ipow(qe * pt - g, cj[2]) * _ipow(pe * pt + g, cj[3]))
                if lik < 1e-200:       # one logarithm per point, none lost to underflow
                    v += np.log(lik)
                    lik = 1.0
        lw[i] = v + np.log(lik) - log_q[i]


@numba.njit(cache=True)
def _normalise(lw, n, w):
    """``w_i = exp(lw_i - max lw)`` for the first ``n`` points; returns their sum and sum of
    squares."""
    top = -np.inf
    for i in range(n):
        top = max(top, lw[i])
    tot = 0.0
    tot2 = 0.0
    for i in range(n):
        w[i] = math.exp(lw[i] - top)
        tot += w[i]
        tot2 += w[i] * w[i]
    return tot, tot2


@numba.njit(cache=True, inline="always")
def _utility(e, t, p, eff0, tox1):
    """EffTox's desirability of efficacy ``e`` and toxicity ``t`` (L^p contour ``p`` through
    ``(eff0, 0)`` and ``(1, tox1)``)."""
    return 1.0 - (((1.0 - e) / (1.0 - eff0)) ** p + (t / tox1) ** p) ** (1.0 / p)


@numba.njit(cache=True, inline="always")
def _share(a, f, est, q, inv):
    """A point's share of a summary's error by the delta method, as if the points were
    independent draws: ``a (f - est) - (f - q) inv`` (``a`` its normalised weight, ``f`` the
    summand there, ``est`` the estimate, ``q`` its exact value under the proposal, ``inv`` one
    over the number of points); the standard error is the root of the sum of squares."""
    return a * (f - est) - (f - q) * inv


@numba.njit(cache=True, inline="always")
def _slope(e, t, de, dt, p, eff0, tox1):
    """The utility's change per unit of efficacy (``de > 0``) or toxicity (``dt > 0``) across
    ``(e, t) +- (de, dt)`` (clipped to [0, 1]); 0 for a step of 0."""
    lo_e, hi_e = max(e - de, 0.0), min(e + de, 1.0)
    lo_t, hi_t = max(t - dt, 0.0), min(t + dt, 1.0)
    width = (hi_e - lo_e) + (hi_t - lo_t)
    if width == 0.0:
        return 0.0
    return (_utility(hi_e, hi_t, p, eff0, tox1) - _utility(lo_e, lo_t, p, eff0, tox1)) / width


@numba.njit(cache=True)
def _in_doubt(s, reach, rule, mean_eff, mean_tox, p_eff_above, p_tox_above, se_eff, se_tox,
              se_p_eff, se_p_tox, w, n, pe, pt, m_e, m_t, q_e, q_t):
    """Whether EffTox's decision on data set ``s`` could change if any summary moved by
    ``margin_se`` of its standard errors plus ``margin_abs`` (``rule = (p_e, p_t, p, eff0,
    tox1, margin_se, margin_abs)``; doses ``reach[s]`` within one level of those given; the
    first toxicity cut is the hurdle): no dose surely acceptable while some dose might be, or
    another dose that is or might be acceptable with a utility that close to the best surely
    acceptable dose's.  The utilities' difference has the delta method's standard error over
    the ``n`` points (``w``: normalised weights minus ``1/n``; ``pe``, ``pt`` (J, N) the
    points' probabilities; ``m_e``, ``m_t`` the means' estimates, ``q_e``, ``q_t`` their
    values under the proposal): the two doses' estimates come from the same points, so much
    of their error is shared."""
    p_e, p_t, up, eff0, tox1, ms, ma = rule[0], rule[1], rule[2], rule[3], rule[4], rule[5], \
        rule[6]
    J = reach.shape[1]
    sure = np.zeros(J, np.bool_)
    maybe = np.zeros(J, np.bool_)
    u = np.empty(J)
    best = -1
    for j in range(J):
        eg = p_eff_above[s, j] - p_e
        em = ms * se_p_eff[s, j] + ma
        tg = 1.0 - p_tox_above[s, j, 0] - p_t
        tm = ms * se_p_tox[s, j, 0] + ma
        sure[j] = reach[s, j] and eg > em and tg > tm
        maybe[j] = reach[s, j] and not sure[j] and eg >= -em and tg >= -tm
        u[j] = _utility(mean_eff[s, j], mean_tox[s, j], up, eff0, tox1)
        if sure[j] and (best < 0 or u[j] > u[best]):
            best = j
    if best < 0:
        return maybe.any()
    b = best
    ge_b = _slope(mean_eff[s, b], mean_tox[s, b], se_eff[s, b], 0.0, up, eff0, tox1)
    gt_b = _slope(mean_eff[s, b], mean_tox[s, b], 0.0, se_tox[s, b], up, eff0, tox1)
    inv = 1.0 / n
    for j in range(J):
        if j == b or not (sure[j] or maybe[j]):
            continue
        gap = u[b] - u[j]
        ge = _slope(mean_eff[s, j], mean_tox[s, j], se_eff[s, j], 0.0, up, eff0, tox1)
        gt = _slope(mean_eff[s, j], mean_tox[s, j], 0.0, se_tox[s, j], up, eff0, tox1)
        v = 0.0
        for i in range(n):       # each point's share of the difference's error
            a = w[i] + inv
            r = (ge_b * _share(a, pe[b, i], m_e[b], q_e[b], inv)
                 + gt_b * _share(a, pt[b, i], m_t[b], q_t[b], inv)
                 - ge * _share(a, pe[j, i], m_e[j], q_e[j], inv)
                 - gt * _share(a, pt[j, i], m_t[j], q_t[j], inv))
            v += r * r
        if gap <= ms * math.sqrt(v) + ma:
            return True
    return False


@numba.njit(cache=True)
def efftox_posterior_kernel(counts, x, x2, mu, prec, z1, log_q1, z, log_q, scale, scale2,
                            logit_eff_cut, logit_tox_cuts, h, hw, first, reach, rule,
                            mean_eff, mean_tox, p_eff_above, p_tox_above, ess, used_points,
                            se_eff, se_tox, se_p_eff, se_p_tox, want_se):
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

    The main pass takes the first ``first`` points, then doubles them (the points are nested:
    the first ``2^m`` of a Sobol sequence) while the EffTox decision is in doubt on them
    (:func:`_in_doubt` with ``reach`` (S, J) and ``rule``), up to all ``N``; ``first >= N``:
    all points at once.
    Out: posterior means of ``pi_E`` and ``pi_T`` (S, J); ``P(logit pi_E > logit_eff_cut)``
    (S, J); ``P(logit pi_T > logit_tox_cuts[k])`` (S, J, K); Kish's effective sample size of
    the main pass's weights (S,); the main points used (S,); and with ``want_se`` (or while
    doubling) the standard errors of the four summaries as if the points were independent
    draws, by the delta method (quasi-random points do better; else left as they are); those
    of the probabilities ``p`` at least ``sqrt(p (1 - p) / ess)``: where no point falls in a
    tail of the posterior that the proposal lacks, the delta method sees no error.
    """
    S, J = counts.shape[0], counts.shape[1]
    N, N1 = z.shape[0], z1.shape[0]
    K = logit_tox_cuts.size
    screening = first < N
    th = np.empty(6)
    neg_hess = np.empty((6, 6))
    low = np.empty((6, 6))
    fac = np.empty((6, 6))
    cov = np.empty((6, 6))
    center = np.empty(6)
    av = np.empty(6)
    raw1 = np.empty(N1)
    lw1 = np.empty(N1)
    th1 = np.empty((N1, 6))
    raw = np.empty(N)
    lw = np.empty(N)
    th_s = np.empty((N, 6))
    ee_s = np.empty((J, N))
    et_s = np.empty((J, N))
    pe_s = np.empty((J, N))
    pt_s = np.empty((J, N))
    pc_t = np.empty(K)
    r2_t = np.empty(K)
    m_e_j = np.empty(J)         # the means' estimates (before clipping to [0, 1])
    m_t_j = np.empty(J)
    mq_e = np.empty(J)          # summaries' exact values under the main proposal
    pq_e = np.empty(J)
    mq_t = np.empty(J)
    pq_t = np.empty((J, K))
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
        _sample(th, fac, z1, log_q1, cs, x, x2, mu, prec, has, th1, raw1, ee_s, et_s, pe_s,
                pt_s, False, 0, N1)
        tot, tot2 = _normalise(raw1, N1, lw1)
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
                if kind == 0:
                    mq_e[j] = _proposal_mean(loc, sd, h, hw)
                    pq_e[j] = _phi_upper((logit_eff_cut - loc) / sd)
                else:
                    mq_t[j] = _proposal_mean(loc, sd, h, hw)
                    for k in range(K):
                        pq_t[j, k] = _phi_upper((logit_tox_cuts[k] - loc) / sd)
        done = 0
        n = min(first, N)
        while True:
            _sample(center, fac, z, log_q, cs, x, x2, mu, prec, has, th_s, raw, ee_s, et_s,
                    pe_s, pt_s, True, done, n)
            tot, tot2 = _normalise(raw, n, lw)
            ess[s] = tot * tot / tot2
            used_points[s] = n
            for i in range(n):
                lw[i] = lw[i] / tot - 1.0 / n      # weight minus its proposal value
            se = want_se or screening
            inv = 1.0 / n
            for j in range(J):
                ee, et, pe, pt = ee_s[j], et_s[j], pe_s[j], pt_s[j]
                mc_e = 0.0
                pc_e = 0.0
                mc_t = 0.0
                for k in range(K):
                    pc_t[k] = 0.0
                for i in range(n):
                    w = lw[i]
                    mc_e += w * pe[i]
                    mc_t += w * pt[i]
                    if ee[i] > logit_eff_cut:
                        pc_e += w
                    for k in range(K):
                        if et[i] > logit_tox_cuts[k]:
                            pc_t[k] += w
                m_e, m_t, pr_e = mq_e[j] + mc_e, mq_t[j] + mc_t, pq_e[j] + pc_e
                m_e_j[j], m_t_j[j] = m_e, m_t
                mean_eff[s, j] = min(max(m_e, 0.0), 1.0)
                mean_tox[s, j] = min(max(m_t, 0.0), 1.0)
                p_eff_above[s, j] = min(max(pr_e, 0.0), 1.0)
                for k in range(K):
                    p_tox_above[s, j, k] = min(max(pq_t[j, k] + pc_t[k], 0.0), 1.0)
                if not se:
                    continue
                r2_me = 0.0
                r2_mt = 0.0
                r2_pe = 0.0
                for k in range(K):
                    r2_t[k] = 0.0
                for i in range(n):
                    a = lw[i] + inv
                    r2_me += _share(a, pe[i], m_e, mq_e[j], inv) ** 2
                    r2_mt += _share(a, pt[i], m_t, mq_t[j], inv) ** 2
                    f = 1.0 if ee[i] > logit_eff_cut else 0.0
                    r2_pe += _share(a, f, pr_e, pq_e[j], inv) ** 2
                    for k in range(K):
                        f = 1.0 if et[i] > logit_tox_cuts[k] else 0.0
                        r2_t[k] += _share(a, f, pq_t[j, k] + pc_t[k], pq_t[j, k], inv) ** 2
                se_eff[s, j] = math.sqrt(r2_me)
                se_tox[s, j] = math.sqrt(r2_mt)
                # a probability's at least that of ``ess`` independent draws from the posterior:
                # the points can all miss a tail that the proposal lacks
                v = p_eff_above[s, j]
                se_p_eff[s, j] = max(math.sqrt(r2_pe), math.sqrt(v * (1.0 - v) / ess[s]))
                for k in range(K):
                    v = p_tox_above[s, j, k]
                    se_p_tox[s, j, k] = max(math.sqrt(r2_t[k]),
                                            math.sqrt(v * (1.0 - v) / ess[s]))
            if n >= N or not _in_doubt(s, reach, rule, mean_eff, mean_tox, p_eff_above,
                                       p_tox_above, se_eff, se_tox, se_p_eff, se_p_tox, lw,
                                       n, pe_s, pt_s, m_e_j, m_t_j, mq_e, mq_t):
                break
            done = n
            n = min(2 * n, N)
