"""from_config: library models with one-by-one overrides, explicit models, and ConfigError
messages that name the YAML path (relative to the pk: mapping)."""
from __future__ import annotations

import numpy as np
import pytest

from trialsim.errors import ConfigError
from trialsim.config.pk import from_config
from trialsim.pk import PKSpec, from_library
from trialsim.pk.linear.models import Clearances, Mammillary, MicroConstants
from trialsim.pk.regimen import Devices, Infusion


def test_design_md_example():
    spec = from_config({"model": "ketamine_domino", "route": {"type": "infusion", "duration_h": 0.667},
                        "iiv": {"CL": 0.16, "V1": 0.29}, "CL": 85.0})
    assert isinstance(spec, PKSpec) and spec.name == "ketamine_domino"
    assert spec.structure.disposition.CL == 85.0
    assert spec.structure.disposition.V1 == pytest.approx(0.063 * 70)
    assert spec.route == Infusion(duration_h=0.667)
    assert spec.eta_names == ("CL", "V1") and spec.n_eta == 2
    np.testing.assert_allclose(np.diag(spec.omega.array()), np.log1p([0.16 ** 2, 0.29 ** 2]))


def test_library_defaults_and_overrides_keep_the_rest():
    base = from_library("s_ketamine_fanta")
    assert base.route == Infusion(duration_h=40 / 60)
    over = from_config({"model": "s_ketamine_fanta", "V3": 90.0, "ke0": 5.01, "horizon_h": 48})
    d = over.structure.disposition
    assert (d.V3, d.CL, over.structure.ke0, over.horizon_h) == (90.0, 95.2, 5.01, 48.0)
    assert over.omega == base.omega and over.allometry == base.allometry
    pr = from_config({"model": "esketamine_in_perez_ruixo", "FRn": 0.6})
    assert isinstance(pr.route, Devices) and pr.structure.FRn == 0.6 and len(pr.effects) == 3


def test_explicit_models_both_parameterisations():
    a = from_config({"CL": 10, "V1": 50, "Q2": 5, "V2": 80, "ka": 1.2, "F": 0.5,
                     "route": {"type": "oral", "ii_h": 12, "addl": 3}})
    assert a.structure == Mammillary(disposition=Clearances(CL=10, V1=50, Q2=5, V2=80), ka=1.2, F=0.5)
    assert len(a.route.regimen(1.0).events) == 4
    b = from_config({"V1": 5, "k10": 2, "k12": 1, "k21": 0.5, "route": {"type": "bolus"},
                     "iiv": {"cv": {"k10": 0.3, "V1": 0.2}, "correlation": {"k10": {"V1": 0.4}}}})
    assert isinstance(b.structure.disposition, MicroConstants)
    assert b.omega.array()[0, 1] > 0
    c = from_config({"CL": 10, "V1": 50, "route": {"type": "bolus"},
                     "iiv": {"names": ["CL", "V1"], "omega": [[0.1, 0.02], [0.02, 0.05]]},
                     "allometry": {"exponents": {"CL": 0.75}, "reference_kg": 75}})
    assert c.allometry.reference_kg == 75 and c.omega.array()[1, 1] == 0.05
    d = from_config({"CL": 10, "V1": 50, "route": {"type": "schedule", "events": [
        {"time_h": 0, "fraction": 0.25}, {"time_h": 1, "fraction": 0.75, "duration_h": 2}]}})
    assert [e.amount_mg for e in d.route.regimen(8.0).events] == [2.0, 6.0]


BAD = [
    ({"model": "ketamine_dominoo"}, ("model",), "known models"),
    ({"model": "ketamine_domino", "colour": 1}, ("colour",), "unknown key"),
    ({"model": "ketamine_domino", "CL": -3}, ("CL",), "positive"),
    ({"model": "ketamine_domino", "CL": "fast"}, ("CL",), "number"),
    ({"model": "ketamine_domino", "ka_sw": 1.0}, ("ka_sw",), "not a parameter"),
    ({"model": "ketamine_domino", "iiv": {"CL": 0.16, "Vmax": 0.2}}, ("iiv", "Vmax"), "not a parameter"),
    ({"model": "ketamine_domino", "iiv": {"CL": -0.1}}, ("iiv", "CL"), "CV >= 0"),
    # a CV of 8 meant as 8 %; a variance of 100 (it passed validate, then run crashed)
    ({"model": "ketamine_domino", "iiv": {"CL": 8}}, ("iiv", "CL"), "CV >= 0 and <= 3"),
    ({"model": "ketamine_domino", "iiv": {"variance": {"CL": 100}}}, ("iiv", "variance", "CL"),
     "variance of at most 2.3"),
    ({"model": "ketamine_domino", "iiv": {"names": ["CL"], "omega": [[100]]}}, ("iiv", "omega"),
     "at most 2.3"),
    ({"model": "ketamine_domino", "iiv": {"names": ["CL", "V1"], "omega": [[0.1, 0.5], [0.5, 0.1]]}},
     ("iiv", "omega"), "positive definite"),
    ({"model": "ketamine_domino", "iiv": {"cv": {"CL": 0.2, "V1": 0.2}, "correlation": {"CL": {"V1": 1.5}}}},
     ("iiv", "correlation", "CL", "V1"), "(-1, 1)"),
    ({"model": "ketamine_domino", "iiv": {"cv": {"CL": 0.2}, "correlation": {"CL": {"Q9": 0.1}}}},
     ("iiv", "correlation", "CL", "Q9"), "distinct"),
    ({"model": "ketamine_domino", "route": {"type": "drip"}}, ("route", "type"), "known"),
    ({"model": "ketamine_domino", "route": {"type": "infusion"}}, ("route", "duration_h"), ""),
    ({"model": "ketamine_domino", "route": {"type": "infusion", "duration_h": 1, "speed": 2}}, ("route", "speed"), "unknown key"),
    ({"model": "ketamine_domino", "route": {"type": "infusion", "duration_h": -1}}, ("route", "duration_h"), "greater than 0"),
    ({"model": "ketamine_domino", "route": {"type": "bolus", "addl": 2}}, ("route",), "ii_h"),
    ({"model": "ketamine_domino", "route": {"type": "oral"}}, ("route",), "needs ka"),
    # a schedule's events are checked one by one: the error names the event
    ({"model": "ketamine_domino", "route": {"type": "schedule", "events": [
        {"time_h": 0, "fraction": 0.5}, {"time_h": 1, "fraction": 1.5}]}},
     ("route", "events", 1, "fraction"), "less than or equal to 1"),
    # F and tlag act on depot doses only: on an IV route they would be ignored
    ({"model": "ketamine_domino", "F": 0.1}, (), "F 0.1: bioavailability and lag apply"),
    ({"model": "ketamine_domino", "tlag": 5}, (), "tlag 5: bioavailability and lag apply"),
    # an absorption rate on an IV route was ignored silently
    ({"model": "ketamine_domino", "ka": 1.2}, ("ka",), "route infusion gives none"),
    ({"model": "ketamine_domino", "allometry": {"Vmax": 1}}, ("allometry", "Vmax"), "not a parameter"),
    ({"model": "ketamine_domino", "covariate_effects": [{"type": "spline"}]}, ("covariate_effects", 0, "type"), "categorical"),
    ({"model": "ketamine_domino", "covariate_effects": [{"type": "categorical", "covariate": "sex",
                                                          "parameter": "CL", "factors": {"f": -1}}]},
     ("covariate_effects", 0, "factors", "f"), "greater than 0"),
    # residual error of measured concentrations is not part of the simulator (exposures are true
    # values): the key is refused, not silently ignored
    ({"model": "ketamine_domino", "residual": {"proportional": 0.1}}, ("residual",), "unknown key"),
    ({"model": "ketamine_domino", "horizon_h": 0}, ("horizon_h",), "positive"),
    ({"model": "ketamine_domino", "ke0": "olofsen_2022_c50"}, ("ke0",), "rate constant"),
    ({"CL": 10, "V1": 50}, ("route",), "needs a route"),
    ({"V1": 50, "route": {"type": "bolus"}}, (), "CL and V1"),
    ({"CL": 10, "V1": 50, "Q2": 3, "route": {"type": "bolus"}}, (), "Q2 and V2"),
    ({"CL": 10, "V1": 50, "k12": 3, "route": {"type": "bolus"}}, ("k12",), "Clearances"),
    ({"model": "esketamine_in_perez_ruixo", "iiv": {"FRn": 0.7}}, ("iiv", "FRn"), "logit"),
    ({"model": "esketamine_in_perez_ruixo", "FRn": 1.5}, ("FRn",), "less than or equal to 1"),
]


@pytest.mark.parametrize("mapping,path,msg", BAD, ids=[str(b[1]) + b[2] for b in BAD])
def test_config_errors_name_the_path(mapping, path, msg):
    with pytest.raises(ConfigError) as ei:
        from_config(mapping)
    assert ei.value.path == path, str(ei.value)
    assert msg in ei.value.message


def test_error_prefixing_by_the_loader():
    with pytest.raises(ConfigError) as ei:
        from_config({"model": "ketamine_domino", "iiv": {"CL": "x"}})
    assert str(ei.value.at(("pk",))) == "pk.iiv.CL: expected a finite number, got 'x'"
