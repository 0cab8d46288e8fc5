"""Every numba kernel against its slow SciPy/mpmath twin (trialsim.pk._reference)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.integrate import quad

from trialsim.pk.linear import _kernels as K
from tests.reference import pk_linear as R
from trialsim.pk.linear import engine as X
from trialsim.pk.linear.models import Clearances, Mammillary

from .conftest import DISPOSITIONS, PEREZ_RUIXO, REGIMENS, mammillary

TIMES = np.concatenate([np.linspace(0.0, 2.0, 41), np.linspace(2.5, 30.0, 56), [2 / 3, 0.25, 0.5]])


# ------------------------------------------------------------------ divided differences
NODE_SETS = [
    (0.0, 2.0), (3.0, 3.0), (1.0, 1.0 + 1e-9), (0.0, 1e-12), (50.0, 0.01),
    (0.0, 1.0, 2.0), (1.0, 1.0, 1.0), (0.5, 0.5 + 1e-7, 7.0), (0.0, 26.0, 26.0 + 1e-10), (0.0, 0.3, 100.0),
    (0.0, 1.0, 2.0, 3.0), (2.0, 2.0, 2.0, 2.0), (0.0, 1.7, 1.7, 5.01), (0.0, 1e-8, 2e-8, 40.0),
    (0.0, 0.9, 1.1, 1.3), (3.0, 0.0, 3.0 + 1e-6, 3.0 - 1e-6),
]


@pytest.mark.parametrize("nodes", NODE_SETS)
@pytest.mark.parametrize("dt", [1e-3, 0.05, 0.7, 3.0, 24.0])
def test_divided_differences_match_50_digit_reference(nodes, dt):
    f = {2: K.dd1, 3: K.dd2, 4: K.dd3}[len(nodes)]
    got = f(*nodes, dt)
    want = R.reference_dd(nodes, dt)
    assert got == pytest.approx(want, rel=2e-14, abs=1e-300)


def test_divided_differences_are_symmetric():
    nodes = (0.0, 0.4, 1.9, 6.0)
    vals = {K.dd3(*p, 0.8) for p in itertools.permutations(nodes)}
    assert max(vals) - min(vals) <= 1e-16 * max(vals)


# ------------------------------------------------------------------ eigen-structure
@pytest.mark.parametrize("name", sorted(DISPOSITIONS) + ["perez_ruixo", "near_coincident"])
def test_modes_match_numpy_eig(name):
    if name == "perez_ruixo":
        s = PEREZ_RUIXO.system()
    elif name == "near_coincident":   # k21 ≈ k31: a root squeezed between two close poles
        s = Mammillary(disposition=Clearances(CL=5.0, V1=10.0, Q2=3.0, V2=30.0, Q3=3.0, V3=30.000001), ka=1.0).system()
    else:
        s = Mammillary(disposition=DISPOSITIONS[name], ka=1.0).system()
    lam, G0, Gd, W = K.modes_batch(s.V1, s.k10, s.k1p, s.kp1, s.kp0, s.site)
    rl, rg0, rgd = R.reference_modes(s, 0)
    np.testing.assert_allclose(lam[0], rl, rtol=1e-12)
    visible = rg0 > 1e-9 * rg0.max()
    np.testing.assert_allclose(G0[0][visible], rg0[visible], rtol=1e-9)
    np.testing.assert_allclose(Gd[0], rgd, rtol=1e-8, atol=1e-12 * np.abs(rgd).max())
    assert np.all(G0[0] >= 0)           # central impulse response: positive coefficients
    np.testing.assert_allclose(Gd[0].sum(axis=1)[s.site > 0], 0.0, atol=1e-15)  # C(0+) = 0 for peripheral input


# ------------------------------------------------------------------ profiles vs solve_ivp
CASES = [(d, r, ke0) for d in DISPOSITIONS for r in REGIMENS for ke0 in (None, 5.01)]


def assert_profile_matches_lsoda(model, reg, effect: bool) -> None:
    """C (and Ce) of the closed form vs LSODA at rtol 1e-12, to 1e-8 relative."""
    got = X.profiles(model, reg, TIMES)
    c, ce, _ = R.reference_profile(model, reg, TIMES, method="LSODA", rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(got.C[0], c[0], rtol=1e-8, atol=1e-10 * c.max())
    if effect:
        np.testing.assert_allclose(got.Ce[0], ce[0], rtol=1e-8, atol=1e-10 * ce.max())


@pytest.mark.parametrize("disp,route,ke0", CASES)
def test_profile_matches_solve_ivp(disp, route, ke0):
    model = mammillary(DISPOSITIONS[disp], route, ke0)
    reg = REGIMENS[route]
    assert_profile_matches_lsoda(model, reg, ke0 is not None)


@pytest.mark.parametrize("route", ["bolus_repeated", "devices", "mixed", "infusion"])
@pytest.mark.parametrize("ke0", [None, 5.01])
def test_hepatoportal_profile_matches_solve_ivp(route, ke0):
    model = PEREZ_RUIXO.replace(ke0=ke0, tlag=0.05)
    reg = REGIMENS[route]
    assert_profile_matches_lsoda(model, reg, ke0 is not None)


def test_profile_matches_radau_and_exact_matrix_exponential():
    model = mammillary(DISPOSITIONS["3cmt_micro"], "mixed", ke0=5.01)
    reg = REGIMENS["mixed"]
    got = X.profiles(model, reg, TIMES)
    for method, tol in (("Radau", 1e-10), ("expm", 1e-12)):
        c, ce, _ = R.reference_profile(model, reg, TIMES, method=method)
        np.testing.assert_allclose(got.C[0], c[0], rtol=tol, atol=tol * 1e-2 * c.max())
        np.testing.assert_allclose(got.Ce[0], ce[0], rtol=tol, atol=tol * 1e-2 * ce.max())


@pytest.mark.parametrize("ka,ke0", [(0.2, 0.2), (0.2, 5.0), (5.0, 0.2), (0.2 + 1e-9, 0.2)])
def test_coincident_rates_match_solve_ivp(ka, ke0):
    """ka = k10 = ke0 exactly (and nearly): the closed forms have t·exp(−kt) terms."""
    model = Mammillary(disposition=Clearances(CL=10.0, V1=50.0), ka=ka, ke0=ke0)
    reg = REGIMENS["depot_zero_order"] + REGIMENS["oral_lag_F"]
    ts = TIMES[::4]
    got = X.profiles(model, reg, ts)
    c, ce, _ = R.reference_profile(model, reg, ts, method="mpmath")
    np.testing.assert_allclose(got.C[0], c[0], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(got.Ce[0], ce[0], rtol=1e-12, atol=1e-16)


def test_vectorised_patients_match_one_by_one():
    model = mammillary(DISPOSITIONS["2cmt"], "mixed", ke0=2.0)
    rng = np.random.default_rng(3)
    n = 7
    values = {"CL": 10 * np.exp(0.3 * rng.standard_normal(n)), "ka": 1.7 * np.exp(0.5 * rng.standard_normal(n)),
              "tlag": rng.uniform(0, 0.5, n), "F": rng.uniform(0.3, 1, n), "ke0": rng.uniform(0.5, 8, n)}
    got = X.profiles(model, REGIMENS["mixed"], TIMES, values)
    c, ce, _ = R.reference_profile(model, REGIMENS["mixed"], TIMES, values, method="LSODA")
    np.testing.assert_allclose(got.C, c, rtol=1e-8, atol=1e-10 * c.max())
    np.testing.assert_allclose(got.Ce, ce, rtol=1e-8, atol=1e-10 * ce.max())


def test_amounts_match_solve_ivp_states():
    model = PEREZ_RUIXO
    reg = REGIMENS["devices"] + REGIMENS["bolus"]
    got = X.amounts(model, reg, TIMES)
    _, _, st = R.reference_profile(model, reg, TIMES, method="LSODA")
    np.testing.assert_allclose(got["depot"][0], st[0, :, :2], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got["central"][0], st[0, :, 2], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got["peripheral"][0], st[0, :, 3:6], rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------ streamed metrics vs reference
METRIC_CASES = [("3cmt", "infusion_repeated", 5.01), ("2cmt", "mixed", 1.3), ("1cmt", "oral_repeated", 0.8),
                ("3cmt_micro", "devices", 5.01), ("perez_ruixo", "devices", 5.01), ("2cmt", "bolus", None)]


@pytest.mark.parametrize("disp,route,ke0", METRIC_CASES)
def test_streamed_metrics_match_reference(disp, route, ke0):
    reg = REGIMENS[route]
    model = PEREZ_RUIXO.replace(ke0=ke0) if disp == "perez_ruixo" else mammillary(DISPOSITIONS[disp], route, ke0)
    c_peak = float(X.exposure_metrics(model, reg, metrics=("cmax",), unit="mg/L")["cmax"][0])
    thr = (0.05 * c_peak, 0.3 * c_peak, 0.8 * c_peak)
    names = ["cmax", "tmax", "auc", "auc_inf"] + [f"time_above:{t!r}" for t in thr]
    if ke0:
        names += ["ce_max", "ce_tmax"] + [f"ce_time_above:{t!r}" for t in thr]
    got = X.exposure_metrics(model, reg, metrics=names, horizon_h=20.0, unit="mg/L")
    ref = R.reference_metrics(model, reg, horizon_h=20.0, thresholds=thr, ce_thresholds=thr if ke0 else (),
                              method="LSODA", n_scan=1001)
    for k in ("cmax", "auc", "auc_inf") + (("ce_max",) if ke0 else ()):
        assert got[k][0] == pytest.approx(ref[k][0], rel=1e-9), k
    for k in ("tmax",) + (("ce_tmax",) if ke0 else ()):
        assert got[k][0] == pytest.approx(ref[k][0], abs=1e-6), k   # flat top: t known to ~sqrt(eps)
    for j, t in enumerate(thr):
        assert got[f"time_above:{t!r}"][0] == pytest.approx(ref["time_above"][0, j], abs=1e-8)
        if ke0:
            assert got[f"ce_time_above:{t!r}"][0] == pytest.approx(ref["ce_time_above"][0, j], abs=1e-8)


def test_metrics_kernel_agrees_with_profile_kernel_on_its_grid():
    model = mammillary(DISPOSITIONS["2cmt"], "mixed", ke0=1.3)
    reg = REGIMENS["mixed"]
    ts = [0.0, 0.5, 1.0, 3.3, 7.25, 12.0]
    got = X.exposure_metrics(model, reg, metrics=[f"c_at:{t}" for t in ts] + [f"ce_at:{t}" for t in ts]
                             + [f"auc:{t}" for t in ts], unit="mg/L", horizon_h=12.0)
    prof = X.profiles(model, reg, ts)
    for j, t in enumerate(ts):
        assert got[f"c_at:{t}"][0] == pytest.approx(prof.C[0, j], rel=1e-13, abs=1e-16)
        assert got[f"ce_at:{t}"][0] == pytest.approx(prof.Ce[0, j], rel=1e-13, abs=1e-16)
        want = quad(lambda u: X.concentrations(model, reg, [u])[0, 0], 0.0, t, points=[0.5, 0.75, 1.25, 3.5, 3.75],
                    epsabs=1e-15, epsrel=1e-13, limit=200)[0]
        assert got[f"auc:{t}"][0] == pytest.approx(want, rel=1e-12, abs=1e-15)
