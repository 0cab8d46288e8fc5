"""Built-in nonlinear models against their SciPy twins (solve_ivp, rtol 1e-10), limits,
mass balance, published numbers and properties."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from trialsim.pk.ode import MichaelisMenten1Cmt, MichaelisMenten2Cmt, ParentMetabolite
from tests.reference.pk_ode import reference_solve, reference_summary
from trialsim.pk.regimen import DoseEvent, Regimen
from trialsim.registry import lookup

TT = np.concatenate([np.linspace(0, 3, 61), np.linspace(3.1, 72, 250)])

MODELS = {
    "mm1": MichaelisMenten1Cmt(V1=50.0, Vmax=40.0, Km=1.5, ka=1.1, F=0.7, tlag=0.4),
    "mm2": MichaelisMenten2Cmt(V1=20.0, V2=60.0, Q2=10.0, Vmax=30.0, Km=1.5, ka=1.2, F=0.7),
    "chain3x2": ParentMetabolite(CL=95.2, V1=133.0, Q2=23.2, V2=187.0, Q3=157.0, V3=98.8,
                                 fm=0.8, CLm=57.7, Vm=98.6, Qm=42.8, Vm2=160.0,
                                 mw_ratio=0.94, ka=2.0, F=0.5, tlag=0.25),
    "chain2x1": ParentMetabolite(CL=20.0, V1=30.0, Q2=8.0, V2=90.0, fm=0.5, CLm=4.0, Vm=40.0,
                                 ka=0.9),
}
REGIMENS = {
    "bolus": Regimen.single(150.0),
    "infusion": Regimen.single(150.0, 40 / 60),
    "absorption": Regimen.single(300.0, target="depot"),
    "repeated": Regimen.repeated(100.0, 8.0, 4, duration_h=0.5)
    + Regimen.repeated(120.0, 12.0, 2, target="depot", time_h=3.0),
}


def _max_rel(y, ref):
    """Max relative error over the states and times where a state is above 1e-4 of its max."""
    scale = np.abs(ref).max(axis=0, keepdims=True)
    mask = np.abs(ref) > 1e-4 * np.maximum(scale, 1e-300)
    return np.max(np.where(mask, np.abs(y - ref) / np.where(mask, np.abs(ref), 1.0), 0.0))


@pytest.mark.parametrize("reg", REGIMENS)
@pytest.mark.parametrize("name", MODELS)
def test_model_matches_solve_ivp_twin(name, reg):
    model, regimen = MODELS[name], REGIMENS[reg]
    y = model.simulate(regimen, TT)[0]
    ref = reference_solve(model.system(), regimen, TT)
    assert _max_rel(y, ref) < 1e-6


@pytest.mark.parametrize("name", ["mm1", "chain3x2"])
def test_summary_matches_twin(name):
    model = MODELS[name]
    for analyte in model.system().observables:
        s = model.summary(REGIMENS["repeated"], 48.0, analyte=analyte)
        cmax, tmax, auc = reference_summary(model.system(), REGIMENS["repeated"], 48.0,
                                            analyte=analyte)
        assert s.cmax[0] == pytest.approx(cmax, rel=1e-6)
        assert s.auc[0] == pytest.approx(auc, rel=1e-6)
        assert s.tmax[0] == pytest.approx(tmax, abs=1e-3)


def test_per_patient_parameters_match_twin():
    model = MODELS["mm2"]
    vmax, lag = np.array([10.0, 30.0, 90.0]), np.array([0.0, 0.5, 3.0])
    y = model.simulate(REGIMENS["repeated"], TT, {"Vmax": vmax, "tlag": lag},
                       dose_scale=[0.5, 1.0, 2.0])
    for i, (v, tl, s) in enumerate(zip(vmax, lag, (0.5, 1.0, 2.0))):
        ref = reference_solve(model.system(), REGIMENS["repeated"], TT, {"Vmax": v, "tlag": tl},
                              dose_scale=s)
        assert _max_rel(y[i], ref) < 1e-6
    with pytest.raises(ValueError, match="lag"):
        model.simulate(REGIMENS["repeated"], TT, {"tlag": -1.0})


def test_michaelis_menten_tends_to_linear_as_km_grows():
    cl, v = 5.0, 50.0
    reg = Regimen.single(100.0, 0.5)
    k = cl / v
    t = np.linspace(0.5, 24, 48)
    linear = 100.0 / 0.5 / cl * (1 - np.exp(-k * 0.5)) * np.exp(-k * (t - 0.5))
    errs = []
    for km in (1e1, 1e3, 1e5, 1e7):
        c = MichaelisMenten1Cmt(V1=v, Vmax=cl * km, Km=km).concentration(reg, t)[0]
        errs.append(np.max(np.abs(c / linear - 1)))
    assert errs == sorted(errs, reverse=True)
    assert errs[-1] < 1e-6
    two = MichaelisMenten2Cmt(V1=v, V2=100.0, Q2=1e-12, Vmax=cl * 1e7, Km=1e7)
    assert np.max(np.abs(two.concentration(reg, t)[0] / linear - 1)) < 1e-6


def test_parent_metabolite_mass_balance():
    model = ParentMetabolite(CL=95.2, V1=133.0, Q2=23.2, V2=187.0, Q3=157.0, V3=98.8, fm=0.7,
                             CLm=57.7, Vm=98.6, Qm=42.8, Vm2=160.0, ka=1.5, F=1.0)
    reg = Regimen.single(35.0, 40 / 60) + Regimen.single(20.0, target="depot", time_h=2.0)
    dose = 55.0
    for t_end in (0.5, 3.0, 12.0, 200.0):
        y = model.simulate(reg, [t_end])[0, 0]
        auc_p = model.summary(reg, t_end, analyte="parent").auc[0]
        auc_m = model.summary(reg, t_end, analyte="metabolite").auc[0]
        given = sum(e.amount_mg * min(1.0, max(0.0, (t_end - e.time_h) / e.duration_h))
                    if e.duration_h else e.amount_mg * (t_end >= e.time_h) for e in reg.events)
        eliminated = (1 - 0.7) * 95.2 * auc_p + 57.7 * auc_m
        assert y.sum() + eliminated == pytest.approx(given, rel=1e-7)
    # at infinity: all of the parent is cleared, fm of it through the metabolite
    assert 95.2 * auc_p == pytest.approx(dose, rel=1e-6)
    assert 57.7 * auc_m == pytest.approx(0.7 * dose, rel=1e-6)


def test_s_fanta_reproduces_dossier_exposures():
    """docs/parameters.md §2.5: S-FANTA applied to the racemate, 0.5 mg/kg over 40 min, 70 kg:
    Cmax 158, C(60 min) 104, C(4 h) 25 ng/mL (rounded, [D])."""
    model = ParentMetabolite.ketamine_norketamine(70.0)
    c = model.concentration(Regimen.single(35.0, 40 / 60), [40 / 60, 1.0, 4.0])[0] * 1000
    assert np.round(c) == pytest.approx([158, 104, 25], abs=1)
    assert model.summary(Regimen.single(35.0, 40 / 60), 24.0).tmax[0] == pytest.approx(40 / 60)


def test_specs_validate_fields_and_register():
    with pytest.raises(ValidationError, match="Vmax"):
        MichaelisMenten1Cmt(V1=1.0, Vmax=-1.0, Km=1.0)
    with pytest.raises(ValidationError, match="volume"):
        MichaelisMenten1Cmt(V1=1.0, Vmax=1.0, Km=1.0, volume=3.0)
    with pytest.raises(ValidationError, match="fm"):
        ParentMetabolite(CL=1, V1=1, Q2=1, V2=1, CLm=1, Vm=1, fm=1.5)
    with pytest.raises(ValueError, match="Q3 and V3"):
        ParentMetabolite(CL=1, V1=1, Q2=1, V2=1, CLm=1, Vm=1, Q3=2.0)
    assert lookup("pk_structure", "michaelis_menten_1cmt") is MichaelisMenten1Cmt
    assert lookup("pk_structure", "parent_metabolite") is ParentMetabolite


# ------------------------------------------------------------------------- properties
mm_params = st.fixed_dictionaries({
    "V1": st.floats(5.0, 200.0), "Vmax": st.floats(1.0, 200.0), "Km": st.floats(0.05, 20.0),
    "ka": st.one_of(st.none(), st.floats(0.2, 5.0))})
doses = st.lists(st.tuples(st.floats(0.0, 48.0), st.floats(1.0, 500.0),
                           st.sampled_from([0.0, 0.5, 2.0]), st.booleans()),
                 min_size=1, max_size=4)


def _regimen(ds, has_depot):
    return Regimen(tuple(DoseEvent(t, a, d, "depot" if (dep and has_depot) else "central")
                         for t, a, d, dep in ds))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=mm_params, ds=doses, q=st.floats(0.5, 50.0))
def test_states_stay_non_negative(p, ds, q):
    reg = _regimen(ds, p["ka"] is not None)
    t = np.linspace(0, 96, 97)
    y1 = MichaelisMenten1Cmt(**p).simulate(reg, t)
    y2 = MichaelisMenten2Cmt(V1=p["V1"], V2=2 * p["V1"], Q2=q, Vmax=p["Vmax"], Km=p["Km"],
                             ka=p["ka"]).simulate(reg, t)
    assert y1.min() > -1e-8 and y2.min() > -1e-8


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=mm_params, ds=doses, factor=st.floats(1.05, 10.0))
def test_michaelis_menten_is_monotone_and_more_than_proportional_in_dose(p, ds, factor):
    model = MichaelisMenten1Cmt(**p)
    reg = _regimen(ds, p["ka"] is not None)
    t = np.linspace(0, 96, 97)
    c = model.concentration(reg, t, dose_scale=[1.0, factor])
    # amounts are resolved to atol = 1e-10 mg: allow 1e-9 mg/L of noise in the washed-out tail
    assert np.all(c[1] >= c[0] - 1e-9 * c.max() - 1e-9)
    s = model.summary(reg, 400.0, dose_scale=[1.0, factor])
    assert s.cmax[1] >= s.cmax[0] * (1 - 1e-9)
    assert s.auc[1] >= factor * s.auc[0] * (1 - 1e-6)   # saturable elimination
