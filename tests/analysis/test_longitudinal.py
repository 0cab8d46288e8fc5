"""The longitudinal model (MMRM) of :mod:`trialsim.analysis.longitudinal` against independent
references:

* complete data: the batched closed form equals ANCOVA at the primary visit (numpy lstsq);
* monotone dropout: the batched closed form (factored likelihood) equals the direct (RE)ML fit;
* the direct ML fit equals a naive maximisation of the multivariate normal likelihood written
  out here (scipy BFGS; covariance from a finite-difference Hessian) on intermittent data, and
  nlme::gls(corSymm + varIdent) (a JSON fixture made by tests/fixtures/make_mmrm_fixture.R;
  R is never needed to run the tests);
* statistics: under MAR dropout the estimates are unbiased and their estimated variance is
  calibrated (completers-only ANCOVA is biased);
* batching: a trial's result is bit-for-bit the same whatever the batch it is in;
* input errors and trials that cannot be fitted.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

from trialsim.analysis import longitudinal as L
from trialsim.analysis.doseresponse.batch import BatchEstimates

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mmrm_nlme_reference.json"

SIGMA4 = np.array([[4.0, 2.6, 2.0, 1.6],
                   [2.6, 5.0, 3.2, 2.6],
                   [2.0, 3.2, 6.0, 4.0],
                   [1.6, 2.6, 4.0, 7.0]])


def _simulate(rng, T: int, n_arm, V: int, q: int, hazard: float, never: int = 0):
    """``T`` trials, arms with ``n_arm`` patients each (randomly ordered), ``q`` covariates,
    monotone dropout with ``hazard`` per visit after the first, ``never`` patients per trial
    never observed: ``(y (T, N, V), arm (T, N), x (T, N, q))``."""
    n_arm = np.asarray(n_arm)
    D = n_arm.size
    N = int(n_arm.sum())
    arm = np.stack([rng.permutation(np.repeat(np.arange(D), n_arm)) for _ in range(T)])
    x = rng.normal(30.0, 5.0, (T, N, q))
    mu = -np.outer(np.arange(D), np.linspace(0.5, 2.0, V))          # arm x visit
    S = SIGMA4[:V, :V]
    y = mu[arm] + rng.normal(size=(T, N, V)) @ np.linalg.cholesky(S).T
    y += (x - 30.0).sum(axis=-1, keepdims=True) * np.linspace(0.2, 0.5, V)
    leave = rng.random((T, N, V)) < hazard
    leave[..., 0] = False
    gone = np.cumsum(leave, axis=-1) > 0
    y[gone] = np.nan
    for t in range(T):
        y[t, rng.choice(N, never, replace=False)] = np.nan
    return y, arm, x


def _ancova(yv, arm, D: int, x):
    """Cell means at the mean covariate, their covariance ``s² (X'X)^-1`` and the residual df
    of ``y_visit ~ arm dummies + centred covariates`` among the patients observed."""
    o = ~np.isnan(yv)
    yv, arm, x = yv[o], arm[o], x[o]
    X = np.column_stack([np.eye(D)[arm], x - x.mean(axis=0)])
    b, *_ = np.linalg.lstsq(X, yv, rcond=None)
    r = yv - X @ b
    dfr = yv.size - X.shape[1]
    C = (r @ r / dfr) * np.linalg.inv(X.T @ X)
    return b[:D], C[:D, :D], dfr


# ---------------------------------------------------------------------------------------
# Complete data: ANCOVA


@pytest.mark.parametrize("q", [0, 2])
def test_complete_data_equals_ancova_at_every_visit(q):
    rng = np.random.default_rng(100 + q)
    D, V = 4, 4
    y, arm, x = _simulate(rng, 3, [12, 15, 11, 14], V, q, hazard=0.0)
    cv = x if q else None
    for visit in range(V):
        est, cov, df, valid = L.mmrm_batch(y, arm, D, visit, cv, "reml")
        est_ml, cov_ml, df_ml, _ = L.mmrm_batch(y, arm, D, visit, cv, "ml")
        assert valid.all()
        for t in range(y.shape[0]):
            b, C, dfr = _ancova(y[t, :, visit], arm[t], D, x[t])
            scale = np.abs(b).max() + 1.0
            np.testing.assert_allclose(est[t], b, rtol=0, atol=1e-10 * scale)
            np.testing.assert_allclose(cov[t], C, rtol=1e-10, atol=1e-12 * np.abs(C).max())
            assert df[t] == dfr == df_ml[t]
            # ML: the same means, variances smaller by (n - D - q) / n
            n = arm.shape[1]
            np.testing.assert_allclose(est_ml[t], b, rtol=0, atol=1e-10 * scale)
            np.testing.assert_allclose(cov_ml[t], C * dfr / n, rtol=1e-10,
                                       atol=1e-12 * np.abs(C).max())


# ---------------------------------------------------------------------------------------
# Monotone dropout: closed form = direct likelihood fit


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("q", [0, 1, 2])
def test_batch_closed_form_equals_direct_fit(method, q):
    rng = np.random.default_rng({0: 1, 1: 2, 2: 3}[q] + (10 if method == "ml" else 0))
    D, V = 3, 4
    y, arm, x = _simulate(rng, 2, [18, 22, 20], V, q, hazard=0.12, never=2)
    cv = x if q else None
    assert np.isnan(y[..., -1]).mean() > 0.2          # real dropout, every pattern present
    for visit in (1, V - 1):
        est, cov, df, valid = L.mmrm_batch(y, arm, D, visit, cv, method)
        assert valid.all()
        for t in range(y.shape[0]):
            r = L.mmrm(y[t], arm[t], D, visit, None if cv is None else cv[t], method)
            np.testing.assert_allclose(est[t], r.estimates, rtol=0, atol=1e-6)
            np.testing.assert_allclose(cov[t], r.cov, rtol=1e-4, atol=1e-4 * np.abs(r.cov).max())
            assert df[t] == r.df
            if method == "reml":                      # the single-trial closed form
                f = L.mmrm(y[t], arm[t], D, visit, None if cv is None else cv[t], "factored")
                np.testing.assert_array_equal(f.estimates, est[t])
                np.testing.assert_array_equal(f.cov, cov[t])
                np.testing.assert_allclose(f.sigma, r.sigma, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Direct fit: independent references


def _naive_data():
    """2 arms x 14 patients, 3 visits, one covariate; intermittent AND monotone gaps."""
    rng = np.random.default_rng(11)
    D, n, V = 2, 14, 3
    arm = np.repeat(np.arange(D), n)
    x = rng.normal(size=D * n)
    S = np.array([[1.0, 0.6, 0.4], [0.6, 1.5, 0.9], [0.4, 0.9, 2.0]])
    y = rng.multivariate_normal(np.zeros(V), S, D * n) + 0.5 * x[:, None] \
        + np.array([0.0, 1.0, 2.0]) * arm[:, None]
    y[[1, 5, 17], 1] = np.nan                      # intermittent
    y[[3, 8, 20, 25, 27], 2] = np.nan
    y[[9, 22], 1:] = np.nan
    y[12, 0] = np.nan                              # missing at the first visit only
    return y, arm, x, D, V


def _naive_nll(y, arm, xc, D, V):
    """Negative log-likelihood of (means V x D, slopes V, log-Cholesky of Sigma): each
    patient's observed sub-vector is N(mu[obs, arm] + gamma[obs] x, Sigma[obs, obs])."""
    rows = [(np.flatnonzero(~np.isnan(y[i])), i) for i in range(y.shape[0])
            if not np.isnan(y[i]).all()]

    def unpack(th):
        mu = th[:D * V].reshape(V, D)
        g = th[D * V:D * V + V]
        C = np.zeros((V, V))
        C[np.tril_indices(V)] = th[D * V + V:]
        C[np.diag_indices(V)] = np.exp(np.diag(C))
        return mu, g, C @ C.T

    def nll(th):
        mu, g, S = unpack(th)
        f = 0.0
        for o, i in rows:
            r = y[i, o] - mu[o, arm[i]] - g[o] * xc[i]
            So = S[np.ix_(o, o)]
            f += 0.5 * (o.size * np.log(2 * np.pi) + np.linalg.slogdet(So)[1]
                        + r @ np.linalg.solve(So, r))
        return f

    return nll, unpack


def test_direct_ml_fit_matches_naive_likelihood_maximisation():
    y, arm, x, D, V = _naive_data()
    seen = ~np.isnan(y).all(axis=1)
    xc = x - x[seen].mean()
    nll, unpack = _naive_nll(y, arm, xc, D, V)
    th0 = np.zeros(D * V + V + V * (V + 1) // 2)
    res = optimize.minimize(nll, th0, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    res = optimize.minimize(nll, res.x, method="BFGS", options={"gtol": 1e-10})
    th = res.x
    k, h = th.size, 1e-4
    H = np.empty((k, k))                           # central second differences
    for a in range(k):
        for b in range(a, k):
            ea = np.zeros(k)
            eb = np.zeros(k)
            ea[a] = h
            eb[b] = h
            H[a, b] = H[b, a] = (nll(th + ea + eb) - nll(th + ea - eb) - nll(th - ea + eb)
                                 + nll(th - ea - eb)) / (4 * h * h)
    C = np.linalg.inv(H)
    mu, _, S = unpack(th)
    for visit in range(V):
        r = L.mmrm(y, arm, D, visit, x, "ml")
        idx = visit * D + np.arange(D)
        np.testing.assert_allclose(r.estimates, mu[visit], rtol=0, atol=1e-5)
        np.testing.assert_allclose(r.cov, C[np.ix_(idx, idx)], rtol=1e-3,
                                   atol=1e-3 * np.abs(r.cov).max())
        np.testing.assert_allclose(r.sigma, S, rtol=1e-4, atol=1e-5)
    # the expected information (X' Sigma^-1 X)^-1 ignores the estimation of Sigma under MAR:
    # different enough for the comparison above to tell them apart
    M, _ = _gls(y, arm, xc, S, D)
    Ce = np.linalg.inv(M)
    idx = (V - 1) * (D + 1) + np.arange(D)
    r = L.mmrm(y, arm, D, V - 1, x, "ml")
    assert np.abs(Ce[np.ix_(idx, idx)] - r.cov).max() > 1e-2 * np.abs(r.cov).max()


def _gls(y, arm, xc, S, D):
    """``(X' S^-1 X, beta)`` over the observed sub-vectors, the columns visit-major (D arm
    means then the slope of each visit)."""
    V = y.shape[1]
    p = V * (D + 1)
    M, u = np.zeros((p, p)), np.zeros(p)
    for i in np.flatnonzero(~np.isnan(y).all(axis=1)):
        o = np.flatnonzero(~np.isnan(y[i]))
        X = np.zeros((o.size, p))
        X[np.arange(o.size), o * (D + 1) + arm[i]] = 1.0
        X[np.arange(o.size), o * (D + 1) + D] = xc[i]
        P = np.linalg.inv(S[np.ix_(o, o)])
        M += X.T @ P @ X
        u += X.T @ P @ y[i, o]
    return M, np.linalg.solve(M, u)


def _fixture():
    ref = json.loads(FIXTURE.read_text())
    y = np.array([[np.nan if v is None else v for v in row] for row in ref["y"]])
    return ref, y, np.array(ref["arm"]), np.array(ref["x"])


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_direct_fit_matches_nlme_gls(method):
    """nlme::gls(y ~ 0 + visit:arm + visit:xc, corSymm(~visit | id), varIdent(~1 | visit))
    on data with intermittent and monotone gaps and a patient never observed."""
    ref, y, arm, x = _fixture()
    means = np.array(ref[method]["means"])             # (V, D)
    S = np.array(ref[method]["sigma"])
    for visit in range(y.shape[1]):
        r = L.mmrm(y, arm, ref["n_arms"], visit, x, method)
        np.testing.assert_allclose(r.estimates, means[visit], rtol=0, atol=3e-5)
        np.testing.assert_allclose(r.sigma, S, rtol=1e-4, atol=1e-4 * np.abs(S).max())


def test_direct_ml_fit_is_at_least_as_likely_as_nlme():
    ref, y, arm, x = _fixture()
    D, V = ref["n_arms"], y.shape[1]
    seen = ~np.isnan(y).all(axis=1)
    xc = x - x[seen].mean()
    nll, _ = _naive_nll(y, arm, xc, D, V)
    r = L.mmrm(y, arm, D, 0, x, "ml")
    # the means profiled at our Sigma (GLS, written out here)
    beta = _gls(y, arm, xc, r.sigma, D)[1].reshape(V, D + 1)
    C = np.linalg.cholesky(r.sigma)
    C[np.diag_indices(V)] = np.log(np.diag(C))
    th = np.concatenate([beta[:, :D].ravel(), beta[:, D], C[np.tril_indices(V)]])
    assert -nll(th) >= ref["ml"]["loglik"] - 1e-8


# ---------------------------------------------------------------------------------------
# Statistical properties under MAR dropout


def test_mar_dropout_unbiased_calibrated_and_completers_biased():
    """Dropout before visit j with probability expit(-1.5 + 1.2 y_{j-1}) (worse patients
    leave): MAR.  The closed form is exactly unbiased (each regression is conditionally
    unbiased given the earlier visits), completers-only ANCOVA is not."""
    rng = np.random.default_rng(2024)
    R, D, n, V, visit = 2000, 3, 40, 3, 2
    N = D * n
    mu = np.array([[-1.0, -2.0, -3.0], [-1.5, -3.5, -5.0], [-2.0, -5.0, -7.0]])  # arm x visit
    gamma = np.array([0.3, 0.4, 0.5])
    S = SIGMA4[:V, :V]
    arm = np.tile(np.repeat(np.arange(D), n), (R, 1))
    x = rng.normal(0.0, 3.0, (R, N))
    # the estimates are adjusted to each trial's own mean covariate: make it the truth's (0)
    x -= x.mean(axis=1, keepdims=True)
    y = mu[arm] + gamma * x[..., None] + rng.normal(size=(R, N, V)) @ np.linalg.cholesky(S).T
    u = rng.random((R, N, V))
    for j in range(1, V):
        p = 1.0 / (1.0 + np.exp(1.5 - 1.2 * y[..., j - 1]))
        gone = np.isnan(y[..., j - 1]) | (u[..., j] < p)
        y[..., j][gone] = np.nan
    assert 0.15 < np.isnan(y[..., visit]).mean() < 0.3
    est, cov, df, valid = L.mmrm_batch(y, arm, D, visit, x, "reml")
    assert valid.all()
    truth = mu[:, visit]
    se = est.std(axis=0, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(est.mean(axis=0) - truth) < 4 * se), (est.mean(axis=0) - truth) / se
    # estimated vs empirical variance; MC standard error of the ratio by the delta method
    v_hat = np.einsum("tdd->td", cov)
    err2 = (est - truth) ** 2
    ratio = v_hat.mean(axis=0) / err2.mean(axis=0)
    rse = ratio * np.sqrt(v_hat.var(axis=0) / v_hat.mean(axis=0) ** 2
                          + err2.var(axis=0) / err2.mean(axis=0) ** 2) / np.sqrt(R)
    assert np.all(np.abs(ratio - 1) < 4 * rse), (ratio, rse)
    # the same for the treatment differences (what MCP-Mod's contrasts use)
    c = est[:, 1:] - est[:, :1]
    vc = v_hat[:, 1:] + v_hat[:, :1] - 2 * cov[:, 0, 1:]
    e2 = (c - (truth[1:] - truth[0])) ** 2
    ratio_c = vc.mean(axis=0) / e2.mean(axis=0)
    rse_c = ratio_c * np.sqrt(vc.var(axis=0) / vc.mean(axis=0) ** 2
                              + e2.var(axis=0) / e2.mean(axis=0) ** 2) / np.sqrt(R)
    assert np.all(np.abs(ratio_c - 1) < 4 * rse_c), (ratio_c, rse_c)
    # ML: the same means, smaller variances
    est_ml, cov_ml, _, _ = L.mmrm_batch(y, arm, D, visit, x, "ml")
    np.testing.assert_allclose(est_ml, est, rtol=0, atol=1e-12)
    assert np.all(np.einsum("tdd->td", cov_ml) < v_hat)
    # completers only (ANCOVA at the primary visit among those observed): biased downwards
    cc = np.array([_ancova(y[t, :, visit], arm[t], D, x[t, :, None])[0] for t in range(R)])
    z = (cc.mean(axis=0) - truth) / (cc.std(axis=0, ddof=1) / np.sqrt(R))
    assert np.all(z < -10), z


# ---------------------------------------------------------------------------------------
# Batching


def test_batch_results_are_bitwise_independent_of_the_batch():
    rng = np.random.default_rng(7)
    D, V = 4, 4
    y, arm, x = _simulate(rng, 9, [10, 12, 9, 11], V, 1, hazard=0.15, never=1)
    y[4, :, 1:] = np.nan                            # an invalid trial in the middle
    full = L.mmrm_batch(y, arm, D, 2, x)
    assert not full[3][4] and full[3].sum() == 8
    for t in range(y.shape[0]):
        alone = L.mmrm_batch(y[t:t + 1], arm[t:t + 1], D, 2, x[t:t + 1])
        for a, b in zip(full, alone):
            np.testing.assert_array_equal(a[t], b[0])
    again = L.mmrm_batch(y[::-1].copy(), arm[::-1].copy(), D, 2, x[::-1].copy())
    for a, b in zip(full, again):
        np.testing.assert_array_equal(a, b[::-1])
    # trials of different sizes stack by padding with patients never observed
    pad = np.full((y.shape[0], 5, V), np.nan)
    yp = np.concatenate([y[:, :7], pad, y[:, 7:]], axis=1)
    ap = np.concatenate([arm[:, :7], np.zeros((y.shape[0], 5), np.int64), arm[:, 7:]], axis=1)
    xp = np.concatenate([x[:, :7], np.full((y.shape[0], 5, 1), 99.0), x[:, 7:]], axis=1)
    for a, b in zip(full, L.mmrm_batch(yp, ap, D, 2, xp)):
        np.testing.assert_array_equal(a, b)


def test_batch_estimates_for_mcpmod():
    rng = np.random.default_rng(8)
    y, arm, x = _simulate(rng, 5, [10, 10, 10], 3, 1, hazard=0.1)
    doses = [0.0, 0.5, 1.0]
    be = L.batch_estimates(doses, y, arm, 2, x)
    est, cov, df, valid = L.mmrm_batch(y, arm, 3, 2, x)
    assert isinstance(be, BatchEstimates) and be.kind == "general"
    np.testing.assert_array_equal(be.est, est)
    np.testing.assert_array_equal(be.cov, cov)
    np.testing.assert_array_equal(be.df, df)
    np.testing.assert_array_equal(be.valid, valid)
    with pytest.raises(ValueError, match="placebo"):
        L.batch_estimates([0.5, 1.0, 2.0], y, arm, 2, x)


# ---------------------------------------------------------------------------------------
# Input errors and trials that cannot be fitted


def _small():
    rng = np.random.default_rng(3)
    y, arm, x = _simulate(rng, 2, [6, 6, 6], 3, 1, hazard=0.0)
    return y, arm, x[..., 0]


@pytest.mark.parametrize("case, match", [
    ("y_2d", r"y must be a non-empty array \(T, N, V\).*got shape \(18, 3\)"),
    ("arm_shape", r"arm must have shape \(2, 18\) \(one arm per patient\), got \(18,\)"),
    ("arm_float", r"arm must hold integers 0\.\.2, got dtype float64"),
    ("arm_range", r"arm must hold integers 0\.\.1, got values in 0\.\.2"),
    ("cov_shape", r"covariates must have shape \(T, N\) or \(T, N, q\) matching y "
                  r"\(2, 18, 3\), got \(2, 17\)"),
    ("cov_nan", r"covariates must be finite"),
    ("y_inf", r"y must hold finite numbers or NaN"),
    ("visit", r"visit must be an integer index in 0\.\.2 .*got 3"),
    ("method", r"method must be 'reml' or 'ml', got 'factored'"),
    ("n_arms", r"n_arms must be a positive integer, got 0"),
    ("non_monotone", r"needs monotone dropout .*trial 1, patient 5 is missing at visit 1 but "
                     r"seen at visit 2; use mmrm\(\)"),
])
def test_mmrm_batch_input_errors(case, match):
    y, arm, x = _small()
    args = dict(y=y, arm=arm, n_arms=3, visit=1, covariates=x, method="reml")
    if case == "y_2d":
        args["y"] = y[0]
    elif case == "arm_shape":
        args["arm"] = arm[0]
    elif case == "arm_float":
        args["arm"] = arm.astype(float)
    elif case == "arm_range":
        args["n_arms"] = 2
    elif case == "cov_shape":
        args["covariates"] = x[:, :17]
    elif case == "cov_nan":
        args["covariates"] = np.where(arm == 1, np.nan, x)
    elif case == "y_inf":
        args["y"] = np.where(arm[..., None] == 1, np.inf, y)
    elif case == "visit":
        args["visit"] = 3
    elif case == "method":
        args["method"] = "factored"
    elif case == "n_arms":
        args["n_arms"] = 0
    elif case == "non_monotone":
        args["y"] = y.copy()
        args["y"][1, 5, 1] = np.nan
    with pytest.raises(ValueError, match=match):
        L.mmrm_batch(**args)


def test_mmrm_input_errors():
    y, arm, x = _small()
    y, arm, x = y[0], arm[0], x[0]
    with pytest.raises(ValueError, match=r"y must be a non-empty array \(N, V\)"):
        L.mmrm(y[:, 0], arm, 3, 0)
    with pytest.raises(ValueError, match=r"covariates must have shape \(N,\) or \(N, q\)"):
        L.mmrm(y, arm, 3, 1, x[:-1])
    with pytest.raises(ValueError, match=r"method must be one of"):
        L.mmrm(y, arm, 3, 1, method="gee")
    empty = y.copy()
    empty[arm == 2, 1:] = np.nan
    for method in ("reml", "ml", "factored"):
        with pytest.raises(ValueError, match=r"arm 2 has no patient observed at the primary "
                                             r"visit 1: its mean there cannot be estimated"):
            L.mmrm(empty, arm, 3, 1, x, method)
    with pytest.raises(ValueError, match=r"arm 2 has no patient observed at visit 1: the "
                                         r"saturated model needs every arm seen"):
        L.mmrm(empty, arm, 3, 0, x)
    gap = y.copy()
    gap[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"'factored' needs monotone dropout"):
        L.mmrm(gap, arm, 3, 2, x, "factored")
    L.mmrm(gap, arm, 3, 2, x, "reml")                # intermittent data: the direct fit
    with pytest.raises(ValueError, match=r"collinear"):
        L.mmrm(y, arm, 3, 1, np.column_stack([x, 2 * x]))
    # monotone data with visit 2 seen in D + q + 2 = 6 patients: its regression on the arms,
    # the covariate and visits 0-1 fits exactly, the likelihood is unbounded
    few = y.copy()
    few[np.setdiff1d(np.arange(arm.size), [0, 1, 6, 7, 12, 13]), 2] = np.nan
    assert set(arm[[0, 1, 6, 7, 12, 13]]) == {0, 1, 2}
    for method in ("reml", "ml", "factored"):
        with pytest.raises(ValueError, match=r"visit 2 is observed in 6 patient\(s\), fewer "
                                             r"than the 7 an unstructured covariance needs "
                                             r"there .*drop the columns of the visits after"):
            L.mmrm(few, arm, 3, 1, x, method)
    np.testing.assert_allclose(L.mmrm(few[:, :2], arm, 3, 1, x).estimates,
                               L.mmrm_batch(few[None], arm[None], 3, 1, x[None])[0][0],
                               atol=1e-6)


def test_trials_that_cannot_be_fitted_are_invalid_not_errors():
    rng = np.random.default_rng(5)
    D, V, visit = 3, 3, 1
    y, arm, x = _simulate(rng, 7, [8, 8, 8], V, 1, hazard=0.0)
    # 1: visit 1 seen in D + q + 1 = 5 patients only (no residual df in its regression)
    keep = np.concatenate([np.flatnonzero(arm[1] == d)[:2] for d in range(D)])[:5]
    drop = np.setdiff1d(np.arange(arm.shape[1]), keep)
    y[1, drop, 1:] = np.nan
    # 2: arm 2 has one patient at the primary visit
    y[2, np.flatnonzero(arm[2] == 2)[1:], 1:] = np.nan
    # 3: arm 1 has no patient at the primary visit
    y[3, arm[3] == 1, 1:] = np.nan
    # 4: the covariate is constant (collinear with the arms)
    x[4] = 1.0
    # 5: nobody observed
    y[5] = np.nan
    # 6: the visit after the primary one is nearly empty: irrelevant, still valid
    y[6, 3:, 2] = np.nan
    est, cov, df, valid = L.mmrm_batch(y, arm, D, visit, x)
    np.testing.assert_array_equal(valid, [True, False, False, False, False, False, True])
    bad = ~valid
    assert np.all(est[bad] == 0) and np.all(cov[bad] == np.eye(D)) and np.all(df[bad] == 1)
    assert np.all(np.isfinite(est)) and np.all(np.isfinite(cov))
    r = L.mmrm(y[6, :, :visit + 1], arm[6], D, visit, x[6])
    np.testing.assert_allclose(est[6], r.estimates, atol=1e-6)
