"""Reproduce the derived exposures of docs/parameters.md (§2.5, §2.3, §3.1), 70-kg subject.

Those numbers are rounded values derived with scipy solve_ivp from the published parameters
(docs/parameters.md §8): tolerance 2% (and ±1 min on times, ±0.01 on F), tight enough to catch a
wrong unit (per min vs per h), a missing allometric factor or a wrong route."""
from __future__ import annotations

import numpy as np
import pytest

from trialsim.config.pk import from_config
from trialsim.pk import pd_constant, pk_exposures

MIN = 1.0 / 60.0
W70 = {"weight_kg": np.array([70.0])}


def _iv(model, dose_mg_per_kg=0.5, metrics=("cmax", "c_at:1.0", "c_at:4.0"), **over):
    spec = from_config({"model": model, "route": {"type": "infusion", "duration_h": 40 * MIN}, "iiv": None, **over})
    return pk_exposures(spec, W70, np.zeros((1, 0)), np.array([dose_mg_per_kg]), metrics, "mg/kg")


# §2.5: Model, 0.5 mg/kg over 40 min: Cmax (end of infusion), C(60 min), C(4 h) in ng/mL
TABLE_1_5 = {
    "ketamine_domino": (240, 55, 17),        # K-DOM (racemate)
    "ketamine_clements": (177, 115, 35),     # Clements250 (racemate)
    "s_ketamine_fanta": (158, 104, 25),      # S-FANTA parameters applied to the total racemate
    "ketamine_kamp_meta": (125, 113, 44),    # K-META 1-cmt (V 252 L, CL 79 L/h)
    "s_ketamine_simons": (289, 91, 20),      # S-SIMONS (arterial) applied to the racemate
}


@pytest.mark.parametrize("model", sorted(TABLE_1_5))
def test_dossier_2_5_iv_exposures(model):
    out = _iv(model)
    cmax, c60, c4h = TABLE_1_5[model]
    assert out["cmax"][0, 0] == pytest.approx(cmax, rel=0.02)
    assert out["c_at:1.0"][0, 0] == pytest.approx(c60, rel=0.02)
    assert out["c_at:4.0"][0, 0] == pytest.approx(c4h, rel=0.03)   # 17 and 25 are 2-digit roundings


def test_dossier_2_5_peak_is_at_end_of_infusion():
    for model in TABLE_1_5:
        assert _iv(model, metrics=("tmax",))["tmax"][0, 0] == pytest.approx(40 * MIN, abs=1e-9)


def test_dossier_2_5_perez_ruixo_intranasal_peaks():
    """Esketamine IN 28/56/84 mg, devices 5 min apart: 44/73/101 ng/mL at 36/41/44 min."""
    spec = from_config({"model": "esketamine_in_perez_ruixo", "iiv": None})
    out = pk_exposures(spec, {}, np.zeros((1, 0)), np.array([28.0, 56.0, 84.0]), ("cmax", "tmax"), "mg")
    np.testing.assert_allclose(out["cmax"][0], [44, 73, 101], rtol=0.02)
    np.testing.assert_allclose(out["tmax"][0] * 60, [36, 41, 44], atol=1.0)


def test_dossier_2_3_perez_ruixo_absolute_bioavailability_and_clearance():
    """Derived [D]: hepatic E 0.722, systemic CL = Qh·E = 109 L/h, absolute F 0.62/0.54/0.51."""
    spec = from_config({"model": "esketamine_in_perez_ruixo", "iiv": None})
    assert spec.structure.systemic_clearance() == pytest.approx(109, rel=0.005)
    nasal = pk_exposures(spec, {}, np.zeros((1, 0)), np.array([28.0, 56.0, 84.0]), ("auc_inf",), "mg")["auc_inf"][0]
    iv = from_config({"model": "esketamine_in_perez_ruixo", "iiv": None, "route": {"type": "bolus"}})
    ivauc = pk_exposures(iv, {}, np.zeros((1, 0)), np.array([28.0, 56.0, 84.0]), ("auc_inf",), "mg")["auc_inf"][0]
    np.testing.assert_allclose(nasal / ivauc, [0.62, 0.54, 0.51], atol=0.006)
    np.testing.assert_allclose(ivauc, np.array([28.0, 56.0, 84.0]) / 109.0 * 1000, rtol=0.005)


def test_dossier_3_1_dissociation_ce_racemic():
    """S-FANTA PK, S = 50% of racemic 0.1-1.0 mg/kg over 40 min, Olofsen ke0: peak S-ketamine
    Ce 13/26/66/99/132 ng/mL at ~48 min; Ce,max/C50 0.11/0.22/0.54/0.82/1.09."""
    ke0 = pd_constant("olofsen_2022_ke0")
    assert ke0.value == pytest.approx(5.01) and ke0.unit == "1/h"
    spec = from_config({"model": "s_ketamine_fanta", "route": {"type": "infusion", "duration_h": 40 * MIN},
                        "iiv": None, "ke0": "olofsen_2022_ke0"})
    doses = np.array([0.1, 0.2, 0.5, 0.75, 1.0])
    out = pk_exposures(spec, W70, np.zeros((1, 0)), 0.5 * doses, ("ce_max", "ce_tmax"), "mg/kg")
    np.testing.assert_allclose(out["ce_max"][0], [13, 26, 66, 99, 132], rtol=0.02)
    np.testing.assert_allclose(out["ce_tmax"][0] * 60, 48, atol=1.0)
    c50 = pd_constant("olofsen_2022_c50").value
    np.testing.assert_allclose(out["ce_max"][0] / c50, [0.11, 0.22, 0.54, 0.82, 1.09], atol=0.006)


def test_dossier_3_1_dissociation_ce_intranasal():
    """Perez-Ruixo PK + Olofsen ke0: peak Ce 42/69/97 ng/mL at 52-60 min (28/56/84 mg)."""
    spec = from_config({"model": "esketamine_in_perez_ruixo", "iiv": None, "ke0": "olofsen_2022_ke0"})
    out = pk_exposures(spec, {}, np.zeros((1, 0)), np.array([28.0, 56.0, 84.0]), ("ce_max", "ce_tmax"), "mg")
    np.testing.assert_allclose(out["ce_max"][0], [42, 69, 97], rtol=0.02)
    assert np.all((out["ce_tmax"][0] * 60 > 51) & (out["ce_tmax"][0] * 60 < 61))


def test_domino_derived_clearance_and_half_lives():
    """§2.1 K-DOM [D]: CL 116 L/h per 70 kg, Vss 193 L, half-lives 0.40, 4.6, 115 min."""
    from trialsim.pk.linear import _kernels as K
    spec = from_config({"model": "ketamine_domino"})
    d = spec.structure.disposition
    assert d.CL == pytest.approx(116, rel=0.005)
    assert d.V1 + d.V2 + d.V3 == pytest.approx(193, rel=0.005)
    s = spec.structure.system()
    lam = K.modes_batch(s.V1, s.k10, s.k1p, s.kp1, s.kp0, s.site)[0][0]
    np.testing.assert_allclose(np.sort(np.log(2) / lam * 60), [0.40, 4.6, 115], rtol=0.02)
