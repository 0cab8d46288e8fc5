"""Slow SciPy twin of :mod:`trialsim.analysis.blrm`: ``P(p_d >= cut | data)`` by nested adaptive
quadrature.  For fixed ``t2 = log beta`` the event is ``t1 >= logit(cut) - exp(t2) x_d``, so the
inner integral over ``t1 = log alpha`` runs from that bound; the outer one over ``t2``."""
from __future__ import annotations

import numpy as np
from scipy import integrate
from scipy.special import logit


def prob_at_or_above(n, tox, doses, reference_dose, mean, sd, corr, cut) -> np.ndarray:
    n, tox = np.asarray(n, float), np.asarray(tox, float)
    x = np.log(np.asarray(doses, float) / reference_dose)
    s1, s2 = sd
    cov = np.array([[s1 * s1, corr * s1 * s2], [corr * s1 * s2, s2 * s2]])
    P = np.linalg.inv(cov)

    def logpost(t1, t2):
        d = np.array([t1 - mean[0], t2 - mean[1]])
        eta = t1 + np.exp(t2) * x
        return -0.5 * d @ P @ d + np.sum(tox * eta - n * np.logaddexp(0.0, eta))

    # normalise around the mode
    from scipy.optimize import minimize
    m = minimize(lambda t: -logpost(*t), np.array(mean, float), method="Nelder-Mead",
                 options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}).x
    top = logpost(*m)
    f = lambda t1, t2: np.exp(logpost(t1, t2) - top)  # noqa: E731
    lo2, hi2 = m[1] - 12, m[1] + 12
    lo1, hi1 = m[0] - 40, m[0] + 40
    opts = dict(epsabs=1e-9, epsrel=1e-7, limit=100)

    def inner(t2, a):
        return integrate.quad(lambda t1: f(t1, t2), max(a, lo1), hi1, **opts)[0] if a < hi1 \
            else 0.0

    total = integrate.quad(lambda t2: inner(t2, -np.inf), lo2, hi2, **opts)[0]
    out = []
    for xd in x:
        num = integrate.quad(lambda t2: inner(t2, logit(cut) - np.exp(t2) * xd), lo2, hi2,
                             **opts)[0]
        out.append(num / total)
    return np.array(out)
