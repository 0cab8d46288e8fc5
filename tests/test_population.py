import numpy as np
import pytest
from scipy import stats

from trialsim.population import Categorical, LogNormal, Normal, Population, TruncatedNormal, Uniform

U = np.random.default_rng(0).random(200_000)


@pytest.mark.parametrize("dist, ref", [
    (Normal(mean=32, sd=5), stats.norm(32, 5)),
    (LogNormal(median=80, cv=0.2), stats.lognorm(s=np.sqrt(np.log1p(0.04)), scale=80)),
    (Uniform(low=18, high=70), stats.uniform(18, 52)),
    (TruncatedNormal(mean=32, sd=5, low=20, high=40), stats.truncnorm(-12 / 5, 8 / 5, loc=32, scale=5)),
])
def test_quantiles_match_scipy(dist, ref):
    q = np.linspace(0.001, 0.999, 99)
    np.testing.assert_allclose(dist.quantile(q), ref.ppf(q), rtol=1e-10)
    x = dist.quantile(U)
    # mean within 4 Monte Carlo standard errors
    assert abs(x.mean() - ref.mean()) < 4 * ref.std() / np.sqrt(U.size)


def test_categorical():
    c = Categorical(probs={"female": 0.6, "male": 0.4})
    x = c.quantile(U)
    p = (x == 0).mean()
    assert abs(p - 0.6) < 4 * np.sqrt(0.24 / U.size)
    assert c.levels == ("female", "male")
    with pytest.raises(ValueError, match="sum to 1"):
        Categorical(probs={"a": 0.5, "b": 0.4})


def test_population_draws_are_per_trial_streams():
    pop = Population({"weight_kg": LogNormal(median=80, cv=0.2), "age": Uniform(low=18, high=70)})
    a = pop.draw(5, 0, np.arange(10), 12)
    b = pop.draw(5, 0, np.arange(4, 8), 12)
    np.testing.assert_array_equal(a.u[4:8], b.u)
    np.testing.assert_array_equal(a.covariates["age"][4:8], b.covariates["age"])
    # the first patients of a trial do not depend on the trial size
    c = pop.draw(5, 0, np.arange(10), 30)
    np.testing.assert_array_equal(a.u, c.u[:, :12])
    # rows are the trial's patients stream, patient-major
    from trialsim.rng import stream
    K = pop.width()
    raw = stream(5, 0, 7, "patients").random(12 * K).reshape(12, K)
    np.testing.assert_array_equal(a.u[7], raw[:, :2])
    np.testing.assert_array_equal(a.covariates["age"][7], pop.covariates["age"].quantile(raw[:, 3]))


def test_normal_quantile_matches_scipy_to_the_last_bits():
    """The numba AS 241 quantile (Wichura 1988) agrees with scipy's ndtri (cephes) to a few
    units in the last place over the central region, both tails down to 1e-300 and the
    clamped ends (both are within ~6e-16 of the exact quantile, so they may differ by twice
    that); a wrong coefficient would show as an error of 1e-10 or more."""
    from scipy.special import ndtri

    from trialsim.population.distributions import U_MAX, U_MIN, normal_quantile

    rng = np.random.default_rng(20261129)
    u = np.concatenate([rng.random(200_000), 10.0 ** -rng.uniform(1, 300, 20_000),
                        1 - 10.0 ** -rng.uniform(1, 15.9, 20_000),
                        [0.5, 0.075, 0.925, np.exp(-25), 1 - np.exp(-25), U_MIN, U_MAX]])
    got, ref = normal_quantile(u), ndtri(np.maximum(u, U_MIN))
    assert np.all(np.abs(got - ref) <= 1.5e-15 * np.maximum(np.abs(ref), 1.0))
    assert normal_quantile(np.array([0.0]))[0] == normal_quantile(np.array([U_MIN]))[0]  # clamped
    assert normal_quantile(np.array([1.0]))[0] == np.inf
    assert normal_quantile(np.zeros((2, 3, 4))).shape == (2, 3, 4)


def test_normal_quantile_against_mpmath():
    """Against the exact quantile (mpmath root of the normal CDF at 50 digits): ~1e-16."""
    import mpmath as mp

    from trialsim.population.distributions import normal_quantile

    rng = np.random.default_rng(7)
    u = np.concatenate([rng.random(150), 10.0 ** -rng.uniform(1, 16, 50)])
    with mp.workdps(50):
        exact = np.array([float(mp.findroot(lambda x, p=p: mp.ncdf(x) - mp.mpf(p),
                                            float(stats.norm.ppf(p)))) for p in u])
    err = np.abs(normal_quantile(u) - exact) / np.maximum(np.abs(exact), 1.0)
    assert err.max() < 1e-15
