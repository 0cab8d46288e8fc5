"""Hypothesis properties of the closed forms: linearity, superposition, non-negativity, mass
balance and monotone decline after the last input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialsim.pk.linear import _kernels as K
from trialsim.pk.linear import engine as X
from trialsim.pk.linear.models import Clearances, Mammillary
from trialsim.pk.regimen import DoseEvent, Regimen

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
TIMES = np.linspace(0.0, 36.0, 145)
rate = st.floats(0.05, 20.0)
vol = st.floats(1.0, 300.0)


@st.composite
def models(draw, depot=True, effect=True):
    n = draw(st.integers(1, 3))
    kw = dict(CL=draw(rate) * 5, V1=draw(vol))
    if n >= 2:
        kw.update(Q2=draw(rate) * 5, V2=draw(vol))
    if n == 3:
        kw.update(Q3=draw(rate) * 5, V3=draw(vol))
    extra = {}
    if depot:
        extra = dict(ka=draw(st.floats(0.1, 10.0)), F=draw(st.floats(0.05, 1.0)), tlag=draw(st.floats(0.0, 1.0)))
    if effect and draw(st.booleans()):
        extra["ke0"] = draw(st.floats(0.1, 20.0))
    return Mammillary(disposition=Clearances(**kw), **extra)


@st.composite
def regimens(draw, depot=True, max_events=4):
    events = []
    for _ in range(draw(st.integers(1, max_events))):
        target = draw(st.sampled_from(["central", "depot"] if depot else ["central"]))
        dur = draw(st.sampled_from([0.0, 0.0, 0.1, 0.667, 2.0]))
        events.append(DoseEvent(draw(st.floats(0.0, 12.0)), draw(st.floats(0.1, 100.0)), dur, target))
    return Regimen(tuple(events))


@SETTINGS
@given(models(), regimens(), st.floats(0.01, 50.0))
def test_linear_in_dose(model, reg, k):
    a = X.profiles(model, reg, TIMES)
    b = X.profiles(model, reg.scaled(k), TIMES)
    np.testing.assert_allclose(b.C, k * a.C, rtol=1e-12, atol=1e-15 * k * a.C.max())
    if model.ke0:
        np.testing.assert_allclose(b.Ce, k * a.Ce, rtol=1e-12, atol=1e-15 * k * a.Ce.max())


@SETTINGS
@given(models(), regimens(max_events=3), regimens(max_events=3))
def test_superposition(model, r1, r2):
    a, b, ab = (X.profiles(model, r, TIMES) for r in (r1, r2, r1 + r2))
    scale = ab.C.max()
    np.testing.assert_allclose(ab.C, a.C + b.C, rtol=1e-11, atol=1e-13 * scale)
    if model.ke0:
        np.testing.assert_allclose(ab.Ce, a.Ce + b.Ce, rtol=1e-11, atol=1e-13 * ab.Ce.max())


@SETTINGS
@given(models(), regimens())
def test_non_negative(model, reg):
    p = X.profiles(model, reg, np.linspace(0.0, 400.0, 801))
    assert np.all(p.C >= 0.0)
    if model.ke0:
        assert np.all(p.Ce >= 0.0)


@SETTINGS
@given(models(effect=False), regimens())
def test_mass_balance(model, reg):
    """Given (bioavailable) = in body + in depot + eliminated, eliminated = CL·AUC(0, t):
    body amounts from the eigenvectors, AUC from the streamed kernel."""
    ts = [0.5, 3.0, 10.0, 30.0]
    am = X.amounts(model, reg, ts)
    auc = X.exposure_metrics(model, reg, metrics=[f"auc:{t}" for t in ts], unit="mg/L", horizon_h=30.0)
    cl = model.disposition.CL
    for j, t in enumerate(ts):
        body = am["central"][0, j] + am["peripheral"][0, j].sum() + am["depot"][0, j].sum()
        given_so_far = am["input"][0, j]
        assert body + cl * auc[f"auc:{t}"][0] == pytest.approx(given_so_far, rel=1e-10)
        assert given_so_far == pytest.approx(sum(_delivered(model, e, t) for e in reg.events), rel=1e-12)


def _delivered(model, e, t):
    """Bioavailable amount of event e delivered by time t (into the depot or the body)."""
    depot = e.target == "depot"
    t0 = e.time_h + (model.tlag if depot else 0.0)
    frac = float(t >= t0) if e.duration_h == 0 else min(1.0, max(0.0, (t - t0) / e.duration_h))
    return e.amount_mg * (model.F if depot else 1.0) * frac


@SETTINGS
@given(models(depot=False, effect=False), regimens(depot=False))
def test_monotone_decline_after_last_input(model, reg):
    """IV inputs only: every coefficient of the central impulse response is positive, so C
    decreases after the last input ends, and its log-slope tends to −λ_min (terminal phase)."""
    t_end = reg.end_h
    ts = t_end + np.concatenate([np.linspace(1e-6, 5.0, 200), np.linspace(5.0, 2000.0, 400)[1:]])
    c = X.concentrations(model, reg, ts)[0]
    live = c > 1e-250
    assert np.all(np.diff(c[live]) <= 0.0)
    s = model.system()
    lam = K.modes_batch(s.V1, s.k10, s.k1p, s.kp1, s.kp0, s.site)[0][0]
    if lam.size > 1 and (lam[1] - lam[0]) * 300 > 40:   # other modes have died out by t_end + 300 h
        t1, t2 = t_end + 300.0, t_end + 301.0
        c1, c2 = X.concentrations(model, reg, [t1, t2])[0]
        if c2 > 1e-200:
            assert np.log(c2 / c1) == pytest.approx(-lam[0], rel=1e-7)
