"""The CRM posterior: numba kernel vs an independent scipy.integrate.quad computation
(property tests), vs the slow reference twin, and vs published dfcrm numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from trialsim.analysis import crm as post
from tests.reference.crm import mle_reference, posterior_reference

SD = math.sqrt(1.34)


# ------------------------------------------------------ independent quad (written here)
def quad_posterior(n, tox, skeleton, prior_sd, threshold):
    """Posterior mean/var of a, plug-in estimates and P(p_i > thr) by adaptive quadrature of
    the plain likelihood prod p^t (1-p)^(n-t) times the normal density (no log tricks)."""
    n, tox, s = np.asarray(n), np.asarray(tox), np.asarray(skeleton, float)
    grid = np.linspace(-12 * prior_sd, 12 * prior_sd, 4001)
    p = s[None, :] ** np.exp(grid)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = (np.where(tox > 0, tox * np.log(p), 0.0).sum(axis=1)
                  + np.where(n - tox > 0, (n - tox) * np.log1p(-p), 0.0).sum(axis=1))
    logpost = loglik + stats.norm.logpdf(grid, 0, prior_sd)
    top = logpost.max()
    mode = grid[np.argmax(logpost)]
    data = [(float(si), int(ni), int(ti)) for si, ni, ti in zip(s, n, tox) if ni > 0]
    c0 = -0.5 * math.log(2 * math.pi) - math.log(prior_sd) - top

    def dens(a):
        e = math.exp(a)
        lik = 1.0
        for si, ni, ti in data:
            pi = si**e
            lik *= pi**ti * (1.0 - pi) ** (ni - ti)
        return lik * math.exp(c0 - 0.5 * (a / prior_sd) ** 2)

    breaks = np.sort(mode + np.array([-6, -3, -1.5, -0.75, -0.3, 0, 0.3, 0.75, 1.5, 3, 6]))

    def I(f, lo=-12 * prior_sd, hi=12 * prior_sd):
        pts = [lo, *[b for b in breaks if lo < b < hi], hi]
        return sum(integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, limit=500)[0]
                   for a, b in zip(pts[:-1], pts[1:]))

    z = I(dens)
    mean = I(lambda a: a * dens(a)) / z
    var = I(lambda a: (a - mean) ** 2 * dens(a)) / z
    cuts = np.log(np.log(threshold) / np.log(s))
    exceeds = np.array([I(dens, hi=min(c, 12 * prior_sd)) / z if c > -12 * prior_sd else 0.0
                        for c in cuts])
    return mean, var, s ** math.exp(mean), exceeds


@st.composite
def datasets(draw):
    D = draw(st.integers(1, 6))
    raw = sorted(draw(st.lists(st.floats(0.01, 0.95), min_size=D, max_size=D, unique=True)))
    skeleton = np.array(raw)
    if D > 1 and np.diff(skeleton).min() < 1e-3:
        skeleton = np.linspace(0.05, 0.8, D)
    n = np.array(draw(st.lists(st.integers(0, 25), min_size=D, max_size=D)))
    while n.sum() > 100:
        n = n // 2
    tox = np.array([draw(st.integers(0, int(k))) for k in n])
    prior_sd = draw(st.sampled_from([0.5, 1.0, SD, 2.0, 3.0]))
    threshold = draw(st.floats(0.05, 0.9))
    return n, tox, skeleton, prior_sd, threshold


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_kernel_matches_independent_quad(data):
    n, tox, skeleton, prior_sd, threshold = data
    mean, var, ptox, exceeds = quad_posterior(n, tox, skeleton, prior_sd, threshold)
    P = post.crm_posterior(n, tox, skeleton, prior_sd)
    assert P.mean[0] == pytest.approx(mean, rel=1e-8, abs=1e-10)
    assert P.var[0] == pytest.approx(var, rel=1e-8)
    np.testing.assert_allclose(P.ptox[0], ptox, rtol=1e-8, atol=1e-14)
    ex = post.prob_tox_exceeds(n, tox, skeleton, threshold, prior_sd)[0]
    np.testing.assert_allclose(ex, exceeds, rtol=1e-7, atol=1e-10)
    assert P.edge[0] < 1e-15


def test_quad_check_can_fail():
    # a wrong prior sd in the kernel is caught by the same comparison
    n, tox, sk = np.array([3, 3, 0]), np.array([0, 2, 0]), np.array([0.1, 0.2, 0.3])
    mean, *_ = quad_posterior(n, tox, sk, SD, 0.3)
    wrong = post.crm_posterior(n, tox, sk, SD * 1.001).mean[0]
    assert wrong != pytest.approx(mean, rel=1e-8, abs=1e-10)


# -------------------------------------------------------------- reference twin agreement
EXTREMES = [  # (n, tox, skeleton, prior_sd)
    ([100, 0, 0, 0, 0], [100, 0, 0, 0, 0], [0.001, 0.01, 0.1, 0.2, 0.3], SD),
    ([0, 0, 0, 0, 100], [0, 0, 0, 0, 0], [0.05, 0.1, 0.25, 0.4, 0.6], SD),
    ([0, 0, 0, 0, 100], [0, 0, 0, 0, 0], [0.01, 0.02, 0.03, 0.04, 0.05], SD),
    ([0, 0, 100, 0, 0], [0, 0, 25, 0, 0], [0.05, 0.1, 0.25, 0.4, 0.6], SD),
    ([50, 0, 0, 0, 50], [25, 0, 0, 0, 25], [0.05, 0.1, 0.25, 0.4, 0.6], SD),
    ([100, 0, 0, 0, 0], [100, 0, 0, 0, 0], [0.001, 0.01, 0.1, 0.2, 0.3], 3.0),
    ([0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0.05, 0.1, 0.25, 0.4, 0.6], SD),
    ([3, 0, 0, 0, 0], [3, 0, 0, 0, 0], [0.3, 0.4, 0.5, 0.6, 0.7], 0.3),
]


def _compare_with_reference(n, tox, sk, sd, threshold, intercept=None):
    model = {} if intercept is None else {"model": "logistic", "intercept": intercept}
    P = post.crm_posterior(n, tox, sk, sd, mean_ptox=True, **model)
    ex = post.prob_tox_exceeds(n, tox, sk, threshold, sd, **model)
    for i in range(len(n)):
        r = posterior_reference(n[i], tox[i], sk, sd, threshold=threshold, intercept=intercept)
        assert P.mean[i] == pytest.approx(r["mean"], rel=1e-9, abs=1e-11)
        assert P.var[i] == pytest.approx(r["var"], rel=1e-9)
        np.testing.assert_allclose(P.ptox[i], r["ptox"], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(P.mean_ptox[i], r["mean_ptox"], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(ex[i], r["exceeds"], rtol=1e-8, atol=1e-12)
        assert P.edge[i] < 1e-15


@pytest.mark.parametrize("n, tox, sk, sd", EXTREMES)
def test_kernel_matches_reference_at_extremes(n, tox, sk, sd):
    _compare_with_reference(np.array([n]), np.array([tox]), sk, sd, 0.35)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_kernel_matches_reference_on_a_random_batch():
    rng = np.random.default_rng(3)
    sk = [0.04, 0.1, 0.2, 0.33, 0.5, 0.66]
    n = rng.integers(0, 12, size=(40, 6)) * rng.integers(0, 2, size=(40, 6))
    tox = rng.binomial(n, 0.3)
    _compare_with_reference(n, tox, sk, 1.1, 0.4)


@pytest.mark.parametrize("n, tox, sk, sd", EXTREMES[:-1])
def test_logistic_kernel_matches_reference_at_extremes(n, tox, sk, sd):
    _compare_with_reference(np.array([n]), np.array([tox]), sk, sd, 0.35, intercept=3.0)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("intercept, threshold", [(3.0, 0.4), (1.5, 0.5), (1.5, 0.9)])
def test_logistic_kernel_matches_reference_on_a_random_batch(intercept, threshold):
    """The logistic model's posterior (every node, no concavity assumed) against the twin; with
    intercept 1.5 a threshold of 0.9 is above every attainable DLT probability (P = 0)."""
    rng = np.random.default_rng(5)
    sk = [0.04, 0.1, 0.2, 0.33, 0.5, 0.66]
    n = rng.integers(0, 12, size=(30, 6)) * rng.integers(0, 2, size=(30, 6))
    tox = rng.binomial(n, 0.3)
    _compare_with_reference(n, tox, sk, 1.1, threshold, intercept=intercept)


@pytest.mark.parametrize("model", ["empiric", "logistic"])
def test_mle_matches_bounded_brent_search(model):
    rng = np.random.default_rng(8)
    sk = [0.05, 0.12, 0.25, 0.4, 0.55]
    n = rng.integers(0, 7, size=(60, 5))
    tox = rng.binomial(n, 0.3)
    a = post.crm_mle(n, tox, sk, model=model)
    for i in range(len(n)):
        ref = mle_reference(n[i], tox[i], sk, None if model == "empiric" else 3.0)
        assert a[i] == pytest.approx(ref, abs=1e-7), (n[i], tox[i])


@pytest.mark.parametrize("model", ["empiric", "logistic"])
@pytest.mark.parametrize("dose, n, t", [(0, 3, 1), (2, 6, 2), (4, 9, 4), (1, 5, 3)])
def test_mle_at_one_dose_is_the_observed_rate(model, dose, n, t):
    """Analytic: with data at one dose only, the fitted DLT rate there is t/n exactly."""
    sk = [0.05, 0.12, 0.25, 0.4, 0.55]
    nn, tt = np.zeros(5, int), np.zeros(5, int)
    nn[dose], tt[dose] = n, t
    a = post.crm_mle(nn, tt, sk, model=model)
    p = post.CRMModel(tuple(sk), model).ptox(a)[0]
    assert p[dose] == pytest.approx(t / n, rel=1e-12)


def test_mle_without_heterogeneity_is_the_bound():
    sk = [0.05, 0.12, 0.25]
    a = post.crm_mle([[3, 3, 0], [3, 0, 0]], [[0, 0, 0], [3, 0, 0]], sk)
    np.testing.assert_array_equal(a, [post.MLE_BOUND, -post.MLE_BOUND])


# dfcrm 0.2-2.1 `crm(skeleton, 0.25, tox, level, model=, method=)` printed with 10 decimals
# (estimate, posterior variance for "bayes"); skeleton (0.05, 0.12, 0.25, 0.40, 0.55).
# dfcrm's mle is R's optimize() with tol = 1e-4, so the mle comparison allows 2e-4.
DFCRM_FITS = [
    ("111222333", "000001010", "empiric", -0.2708375087, 0.1660827486, -0.2655542332),
    ("111222333", "000001010", "logistic", -0.1377682435, 0.0435841834, -0.1294000850),
    ("111222333333222", "000000110010000", "empiric", -0.0794595783, 0.1096463475,
     -0.0649600927),
    ("111222333333222", "000000110010000", "logistic", -0.0419004433, 0.0256043486,
     -0.0401254732),
    ("111", "100", "empiric", -0.8267302702, 0.3537965969, -1.0031272578),
    ("111", "100", "logistic", -0.5488487965, 0.1687729595, -0.4759904042),
    ("111222333444555555", "000000000000010110", "empiric", 0.6002688734, 0.1173968003,
     0.6678086426),
    ("111222333444555555", "000000000000010110", "logistic", 0.2923609986, 0.0270807682,
     0.2991542360),
]


@pytest.mark.parametrize("levels, ys, model, mean, var, mle", DFCRM_FITS)
def test_reproduces_dfcrm_crm_fits(levels, ys, model, mean, var, mle):
    n, t = np.zeros(5, int), np.zeros(5, int)
    for lev, y in zip(levels, ys):
        n[int(lev) - 1] += 1
        t[int(lev) - 1] += int(y)
    P = post.crm_posterior(n, t, [0.05, 0.12, 0.25, 0.40, 0.55], SD, model=model)
    assert P.mean[0] == pytest.approx(mean, abs=1e-8)
    assert P.var[0] == pytest.approx(var, abs=1e-8)
    assert post.crm_mle(n, t, [0.05, 0.12, 0.25, 0.40, 0.55], model=model)[0] == \
        pytest.approx(mle, abs=2e-4)


def test_logistic_model_needs_skeleton_below_expit_intercept():
    with pytest.raises(ValueError, match="below expit"):
        post.CRMModel((0.1, 0.5, 0.9), "logistic", 2.0)


def test_no_data_gives_the_prior():
    sk = [0.1, 0.2, 0.3]
    P = post.crm_posterior(np.zeros((2, 3), int), np.zeros((2, 3), int), sk, 0.8)
    np.testing.assert_allclose(P.mean, 0.0, atol=1e-14)
    np.testing.assert_allclose(P.var, 0.64, rtol=1e-12)
    ex = post.prob_tox_exceeds(np.zeros(3, int), np.zeros(3, int), sk, 0.25, 0.8)[0]
    c = np.log(np.log(0.25) / np.log(sk))
    np.testing.assert_allclose(ex, stats.norm.cdf(c / 0.8), rtol=1e-12)


def test_batch_rows_are_independent_and_duplicates_are_handled():
    rng = np.random.default_rng(11)
    sk = [0.05, 0.12, 0.25, 0.4, 0.55]
    n = rng.integers(0, 4, size=(500, 5)) * 3
    tox = rng.binomial(n, 0.25)
    batch = post.crm_posterior(n, tox, sk, mean_ptox=True)
    ex = post.prob_tox_exceeds(n, tox, sk, 0.3)
    for i in rng.choice(500, 25, replace=False):
        one = post.crm_posterior(n[i], tox[i], sk, mean_ptox=True)
        assert one.mean[0] == batch.mean[i] and one.var[0] == batch.var[i]
        np.testing.assert_array_equal(one.mean_ptox[0], batch.mean_ptox[i])
        np.testing.assert_array_equal(post.prob_tox_exceeds(n[i], tox[i], sk, 0.3)[0], ex[i])


def test_unique_rows_round_trip_with_wide_rows():
    rng = np.random.default_rng(0)
    n = rng.integers(0, 200, size=(300, 9))  # too wide to pack into one int64 key
    tox = rng.binomial(n, 0.2)
    n[100:200], tox[100:200] = n[:100], tox[:100]
    n_u, tox_u, inv = post.unique_rows(n, tox)
    assert len(n_u) == 200
    np.testing.assert_array_equal(n_u[inv], n)
    np.testing.assert_array_equal(tox_u[inv], tox)


def test_bad_counts_raise():
    with pytest.raises(ValueError, match="0 <= tox <= n"):
        post.crm_posterior([1, 0], [2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="shape"):
        post.crm_posterior([1, 0, 0], [0, 0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="threshold must be a probability"):
        post.prob_tox_exceeds([1, 0], [0, 0], [0.1, 0.2], 1.0)


# ------------------------------------------------------------------- published numbers
# Source: K. Brock, R package `escalation`, README.md (github.com/brockk/escalation; CRAN).
# There `get_dfcrm(skeleton, target)` fits dfcrm::crm (K. Cheung, R package dfcrm, empiric
# model, scale = sqrt(1.34)) and `prob_tox_exceeds(fit, thr)` reports
#   pnorm(log(log(thr) / log(skeleton)), mean = fit$estimate, sd = sqrt(fit$post.var)),
# i.e. a normal approximation built from dfcrm's posterior mean and variance of beta.  So
# these printed values pin down the posterior mean and variance of `a` to ~7 digits.
ESCALATION_SKELETON = [0.05, 0.1, 0.25, 0.4, 0.6]


def _n_tox(doses_outcomes: str):
    from trialsim.outcomes import TrialHistory
    n, t, _ = TrialHistory.parse(doses_outcomes, 5).counts()
    return n, t


@pytest.mark.parametrize("outcomes, printed, tol", [
    ("2TTT", [0.8673669, 0.9307674, 0.9857421, 0.9971830, 0.9998310], 1e-7),
    ("2TTT 1NN", [0.6683818, 0.8195981, 0.9668375, 0.9951862, 0.9998694], 1e-7),
    ("1NTN", [0.35, 0.53, 0.82, 0.95, 1.00], 0.005),  # printed rounded to 2 decimals
    ("1NTN 1TTT", [0.87, 0.95, 1.00, 1.00, 1.00], 0.005),
])
def test_reproduces_escalation_readme_prob_tox_exceeds(outcomes, printed, tol):
    n, t = _n_tox(outcomes)
    P = post.crm_posterior(n, t, ESCALATION_SKELETON, SD)
    c = post.tox_cutpoints(ESCALATION_SKELETON, 0.35)
    approx = stats.norm.cdf(c, P.mean[0], math.sqrt(P.var[0]))
    np.testing.assert_allclose(approx, printed, atol=tol)


def test_reproduces_escalation_readme_quantiles():
    # README: fit('1NNN 2NTN 2TNN 2NNN 2NNT 2NTN 2NNN 2TNN') %>% prob_tox_quantile(p = 0.05)
    # = skeleton ^ exp(qnorm(0.95, estimate, sqrt(post.var)))
    printed = [0.04876626, 0.09809797, 0.24712623, 0.39695491, 0.59744927]
    n, t = _n_tox("1NNN 2NTN 2TNN 2NNN 2NNT 2NTN 2NNN 2TNN")
    P = post.crm_posterior(n, t, ESCALATION_SKELETON, SD)
    q = np.asarray(ESCALATION_SKELETON) ** np.exp(
        stats.norm.ppf(0.95, P.mean[0], math.sqrt(P.var[0])))
    np.testing.assert_allclose(q, printed, atol=1e-8)
