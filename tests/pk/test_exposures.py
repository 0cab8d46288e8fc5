"""pk_exposures: the shape the simulator depends on, unit-dose scaling, units, chunking."""
from __future__ import annotations

import numpy as np
import pytest

import trialsim.pk as pk
from trialsim.pk.linear import engine as X
from trialsim.config.pk import from_config
from trialsim.pk import pk_exposures
from trialsim.pk.variability import draw_eta, individual_parameters

METRICS = ("cmax", "tmax", "auc", "auc_inf", "ce_max", "ce_tmax", "time_above:50", "ce_time_above:20",
           "c_at:1", "auc:2")


@pytest.fixture
def spec():
    return from_config({"model": "s_ketamine_fanta", "ke0": 5.01, "horizon_h": 12})


def test_shape_units_and_scaling_against_direct_computation(spec):
    rng = np.random.default_rng(11)
    n = 9
    eta = draw_eta(spec, rng, n)
    cov = {"weight_kg": rng.uniform(50, 110, n)}
    doses = np.array([0.0, 0.1, 0.5, 1.0])
    out = pk_exposures(spec, cov, eta, doses, METRICS, "mg/kg")
    assert set(out) == set(METRICS) and all(v.shape == (n, 4) for v in out.values())
    v = individual_parameters(spec, cov, eta)
    for d in (1, 3):
        direct = X.exposure_metrics(spec.structure, spec.route.regimen(1.0), v, ["cmax"], horizon_h=12)["cmax"]
        np.testing.assert_allclose(out["cmax"][:, d], direct * doses[d] * cov["weight_kg"], rtol=1e-13)
        amt = doses[d] * cov["weight_kg"]
        for p in range(n):       # per patient, without the unit-dose shortcut
            vp = {k: x[p:p + 1] for k, x in v.items()}
            ref = X.exposure_metrics(spec.structure, spec.route.regimen(amt[p]), vp, METRICS, horizon_h=12)
            for m in METRICS:
                assert out[m][p, d] == pytest.approx(ref[m][0], rel=1e-11, abs=1e-9), m
    assert np.all(out["cmax"][:, 0] == 0) and np.all(np.isnan(out["tmax"][:, 0]))
    assert np.all(out["time_above:50"][:, 0] == 0)
    assert np.all(np.diff(out["cmax"], axis=1) > 0) and np.all(np.diff(out["time_above:50"], axis=1) >= 0)


def test_mg_dosing_and_auc_inf_is_dose_over_cl(spec):
    n = 3
    out = pk_exposures(spec, {"weight_kg": np.full(n, 70.0)}, np.zeros((n, 2)), np.array([35.0]), ("auc_inf",), "mg")
    np.testing.assert_allclose(out["auc_inf"][:, 0], 35.0 / 95.2 * 1000, rtol=1e-12)   # ng·h/mL


def test_chunking_gives_identical_results(spec, monkeypatch):
    rng = np.random.default_rng(2)
    n = 50
    eta, cov = draw_eta(spec, rng, n), {"weight_kg": rng.uniform(50, 110, n)}
    a = pk_exposures(spec, cov, eta, np.array([0.2, 0.5]), METRICS, "mg/kg")
    monkeypatch.setattr(pk.exposure, "CHUNK", 7)
    b = pk_exposures(spec, cov, eta, np.array([0.2, 0.5]), METRICS, "mg/kg")
    for m in METRICS:
        np.testing.assert_array_equal(a[m], b[m])


def test_devices_route_per_dose_level():
    spec = from_config({"model": "esketamine_in_perez_ruixo"})
    rng = np.random.default_rng(4)
    eta = draw_eta(spec, rng, 6)
    out = pk_exposures(spec, {}, eta, np.array([28.0, 56.0, 84.0]), ("cmax", "auc_inf", "time_above:40"), "mg")
    v = individual_parameters(spec, {}, eta)
    for d, dose in enumerate((28.0, 56.0, 84.0)):
        ref = X.exposure_metrics(spec.structure, spec.route.regimen(dose), v, ("cmax", "auc_inf", "time_above:40"))
        for m in ref:
            np.testing.assert_allclose(out[m][:, d], ref[m], rtol=1e-13)
    # less than dose-proportional: later devices have FRn x 0.62
    assert np.all(out["auc_inf"][:, 2] < 3 * out["auc_inf"][:, 0])
    with pytest.raises(ValueError, match="dose_unit"):
        pk_exposures(spec, {"weight_kg": np.full(6, 70.0)}, eta, np.array([0.4]), ("cmax",), "mg/kg")
    with pytest.raises(ValueError, match="whole number"):
        pk_exposures(spec, {}, eta, np.array([30.0]), ("cmax",), "mg")


def test_bad_inputs(spec):
    eta = np.zeros((2, 2))
    with pytest.raises(ValueError, match="unknown exposure metric"):
        pk_exposures(spec, {"weight_kg": np.ones(2)}, eta, np.ones(1), ("cmaxx",), "mg")
    with pytest.raises(ValueError, match="weight_kg"):
        pk_exposures(spec, {}, eta, np.ones(1), ("cmax",), "mg/kg")
    with pytest.raises(ValueError, match="dose_unit"):
        pk_exposures(spec, {"weight_kg": np.ones(2)}, eta, np.ones(1), ("cmax",), "mmol")
    no_ce = from_config({"model": "s_ketamine_fanta"})
    with pytest.raises(ValueError, match="ke0"):
        pk_exposures(no_ce, {"weight_kg": np.ones(2)}, eta, np.ones(1), ("ce_max",), "mg")
    with pytest.raises(ValueError, match="pass eta"):
        pk_exposures(no_ce, {"weight_kg": np.ones(2)}, None, np.ones(1), ("cmax",), "mg")


def test_eta_none_without_random_effects():
    spec = from_config({"model": "ketamine_domino"})
    out = pk_exposures(spec, {"weight_kg": np.array([70.0, 80.0])}, None, np.array([0.5]), ("cmax",), "mg/kg")
    assert out["cmax"].shape == (2, 1) and out["cmax"][0, 0] == pytest.approx(240, rel=0.01)
