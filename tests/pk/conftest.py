"""Shared PK test fixtures: a catalogue of structures and regimens covering every route."""
from __future__ import annotations

from trialsim.pk.linear.models import Clearances, HepatoPortalNasal, Mammillary, MicroConstants
from trialsim.pk.regimen import DoseEvent, Regimen

ONE = Clearances(CL=10.0, V1=50.0)
TWO = Clearances(CL=10.0, V1=20.0, Q2=15.0, V2=60.0)
THREE = Clearances(CL=95.2, V1=133.0, Q2=23.2, V2=187.0, Q3=157.0, V3=98.8)
THREE_MICRO = MicroConstants(V1=4.41, k10=26.286, k12=35.526, k21=14.82, k13=35.4, k31=0.876)
DISPOSITIONS = {"1cmt": ONE, "2cmt": TWO, "3cmt": THREE, "3cmt_micro": THREE_MICRO}

PEREZ_RUIXO = HepatoPortalNasal(V1=192.0, Q2=84.3, V2=143.0, Q3=37.6, V3=417.0, Qh=151.0, Vh=101.0,
                                kel=1.11, kmet=2.77, ka=2.93, FRn=0.54, device_factor=0.62,
                                ka_sw=1.45, Dsw=0.53, Fgut=0.64)


def devices(n, amount=28.0, gap=5 / 60, t0=0.0):
    return Regimen(tuple(DoseEvent(t0 + i * gap, amount, 0.0, "depot", i) for i in range(n)))


#: route name -> (regimen, needs a depot)
REGIMENS = {
    "bolus": Regimen.single(10.0),
    "infusion": Regimen.single(35.0, duration_h=2 / 3),
    "oral_lag_F": Regimen.single(20.0, target="depot"),
    "depot_zero_order": Regimen.single(20.0, duration_h=0.5, target="depot"),
    "devices": devices(3),
    "bolus_repeated": Regimen.repeated(10.0, ii_h=6.0, addl=3),
    "infusion_repeated": Regimen.repeated(35.0, ii_h=8.0, addl=2, duration_h=1.0),
    "oral_repeated": Regimen.repeated(20.0, ii_h=4.0, addl=4, target="depot"),
    "mixed": Regimen.single(5.0) + Regimen.repeated(7.0, ii_h=3.0, addl=2, duration_h=0.25, time_h=0.5)
             + Regimen.repeated(9.0, ii_h=5.0, addl=1, target="depot", time_h=1.0),
}


def mammillary(disp, route, ke0=None):
    needs_depot = any(e.target == "depot" for e in REGIMENS[route].events)
    kw = dict(ka=1.7, F=0.65, tlag=0.25, device_factor=0.62) if needs_depot else {}
    return Mammillary(disposition=disp, ke0=ke0, **kw)

