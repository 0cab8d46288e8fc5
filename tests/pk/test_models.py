"""Parameter declarations, clearance <-> micro-constant conversions, routes, the library."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from trialsim.pk import library
from trialsim.pk.units import conc_factor, to_mg_per_l, to_ng_per_ml
from trialsim.pk.parameters import PARAMETERS
from trialsim.pk.linear.models import (Clearances, HepatoPortalNasal, Mammillary, MicroConstants,
                                clearances_from_micro, micro_from_clearances)
from trialsim.pk.regimen import Bolus, Devices, DoseEvent, FirstOrder, Infusion, Regimen


def test_every_field_is_declared_once_with_unit_and_meaning():
    for cls in (Clearances, MicroConstants, Mammillary, HepatoPortalNasal):
        for f in cls.__dataclass_fields__:
            if f != "disposition":
                assert f in PARAMETERS and PARAMETERS[f].unit and PARAMETERS[f].meaning


def test_conversions_both_ways_round_trip():
    c = Clearances(CL=95.2, V1=133.0, Q2=23.2, V2=187.0, Q3=157.0, V3=98.8)
    m = c.to_micro()
    assert m.k10 == pytest.approx(95.2 / 133) and m.k21 == pytest.approx(23.2 / 187) and m.k31 == pytest.approx(157 / 98.8)
    back = m.to_clearances()
    for k, v in c.parameters().items():
        assert getattr(back, k) == pytest.approx(v, rel=1e-14)
    dom = MicroConstants(V1=4.41, k10=26.286, k12=35.526, k21=14.82, k13=35.4, k31=0.876)
    assert dom.to_clearances().to_micro().parameters() == pytest.approx(dom.parameters(), rel=1e-14)
    arr = micro_from_clearances(np.array([1.0, 2.0]), np.array([10.0, 10.0]))
    np.testing.assert_allclose(clearances_from_micro(**arr)["CL"], [1.0, 2.0])
    assert Clearances(CL=1, V1=2).n_compartments == 1 and dom.n_compartments == 3


@pytest.mark.parametrize("kw", [dict(CL=1, V1=2, Q2=3), dict(CL=1, V1=2, Q3=1, V3=2), dict(CL=-1, V1=2)])
def test_invalid_dispositions(kw):
    with pytest.raises((ValueError, ValidationError)):
        Clearances(**kw)


def test_kernel_events_route_bioavailability_and_devices():
    m = Mammillary(disposition=Clearances(CL=1, V1=2), ka=1.0, F=0.5, device_factor=0.6)
    reg = Devices(device_mg=28.0).regimen(84.0) + Regimen.single(3.0)
    ev = m.kernel_events(reg)
    assert ev.f.tolist() == [[1.0, 0.5, 0.3, 0.3]] and ev.chan.tolist() == [0, 1, 1, 1]
    with pytest.raises(ValueError, match="ka"):
        Mammillary(disposition=Clearances(CL=1, V1=2)).kernel_events(Regimen.single(1.0, target="depot"))
    pr = library.entry("esketamine_in_perez_ruixo").structure
    ev = pr.kernel_events(Devices(device_mg=28.0).regimen(56.0))
    frn2 = 0.54 * 0.62
    np.testing.assert_allclose(ev.f[0], [0.54, 0.46 * 0.64, frn2, (1 - frn2) * 0.64])
    np.testing.assert_allclose(ev.dur[0], [0, 0.53, 0, 0.53])
    assert ev.chan.tolist() == [1, 2, 1, 2]


def test_routes():
    assert Bolus().regimen(5.0) == Regimen.single(5.0)
    r = Infusion(duration_h=0.5, ii_h=12, addl=2).regimen(10.0)
    assert [e.time_h for e in r.events] == [0, 12, 24] and r.total_mg == 30
    assert FirstOrder().regimen(2.0).events[0].target == "depot"
    d = Devices(device_mg=28, interval_h=5 / 60, ii_h=24, addl=1).regimen(56.0)
    assert [(round(e.time_h * 60, 9), e.device) for e in d.events] == [(0, 0), (5, 1), (1440, 0), (1445, 1)]
    with pytest.raises(ValueError, match="whole number"):
        Devices(device_mg=28).regimen(30.0)
    assert not Devices(device_mg=28).linear_in_amount and Infusion(duration_h=1).linear_in_amount
    assert Regimen.single(1.0).scaled(2.0).events[0] == DoseEvent(0.0, 2.0)


def test_units():
    assert conc_factor("ng/mL") == 1000 and conc_factor("mg/L") == conc_factor("ug/mL") == 1
    assert to_ng_per_ml(0.24) == pytest.approx(240) and to_mg_per_l(121.0) == pytest.approx(0.121)
    with pytest.raises(ValueError, match="known"):
        conc_factor("mol/L")


def test_library_entries_are_cited_and_described():
    names = library.available()
    assert {"ketamine_domino", "s_ketamine_fanta", "s_norketamine_otto", "esketamine_in_perez_ruixo",
            "ketamine_clements", "ketamine_kamp_meta"} <= set(names)
    for n in names:
        e = library.entry(n)
        assert e.citation and e.tag and (e.doi or e.pmid)
        text = library.describe(n)
        assert n in text and "citation:" in text and "verification:" in text
        for p, v in e.structure.parameters().items():
            assert p in text and PARAMETERS[p].unit in text
    with pytest.raises(KeyError, match="known models"):
        library.describe("nope")
    dom = library.entry("ketamine_domino").structure.disposition.to_micro()
    assert dom.k10 == pytest.approx(0.4381 * 60) and dom.k31 == pytest.approx(0.0146 * 60)
    assert dom.V1 == pytest.approx(0.063 * 70)
    assert "PMID 7198883" in library.describe("ketamine_domino")
    assert library.pd_constant("olofsen_2022_c50").value == 121.0
