"""The numba Dormand–Prince solver: linear models against textbook closed forms, dosing
semantics, the streaming summary, user-written right-hand sides, errors."""
import numpy as np
import pytest
from numba import njit

from trialsim.pk.ode import (RHS_SIG, CustomODEModel, MichaelisMenten1Cmt, ODESolverError,
                             ParentMetabolite, concentration, solve, summarize)
from trialsim.pk.ode import _kernels as K
from trialsim.pk.regimen import DoseEvent, Regimen


# ---------------------------------------------------------------- textbook closed forms
def _two_cmt_unit(cl, v1, q, v2):
    """Macro constants: bolus unit response C(t) = sum_i A_i exp(-lam_i t) / v1."""
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s, p = k10 + k12 + k21, k10 * k21
    alpha = (s + np.sqrt(s * s - 4 * p)) / 2
    beta = (s - np.sqrt(s * s - 4 * p)) / 2
    return (np.array([(alpha - k21) / (alpha - beta), (k21 - beta) / (alpha - beta)]),
            np.array([alpha, beta]))


def closed_form_iv(t, events, cl, v1, q=None, v2=None):
    """Linear 1-cmt (q None) or 2-cmt IV bolus + zero-order infusion, by superposition."""
    if q is None:
        A, lam = np.array([1.0]), np.array([cl / v1])
    else:
        A, lam = _two_cmt_unit(cl, v1, q, v2)
    t = np.asarray(t, float)
    c = np.zeros_like(t)
    for t0, amt, dur in events:
        tau = t - t0
        on = tau >= 0
        for a, l in zip(A, lam):
            if dur == 0:
                c += np.where(on, amt / v1 * a * np.exp(-l * np.where(on, tau, 0)), 0.0)
            else:
                r = amt / dur
                during = r / v1 * a / l * (1 - np.exp(-l * np.clip(tau, 0, dur)))
                after = np.exp(-l * np.clip(tau - dur, 0, None))
                c += np.where(on, during * after, 0.0)
    return c


def closed_form_oral(t, dose, ka, cl, v, f=1.0):
    k = cl / v
    return f * dose * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))


@njit(RHS_SIG)
def linear_2cmt_rhs(t, y, p, dydt):   # y = [central, peripheral]; p = [CL, V1, Q2, V2]
    c1 = y[0] / p[1]
    d = p[2] * (c1 - y[1] / p[3])
    dydt[0] = -p[0] * c1 - d
    dydt[1] = d


@njit                                 # lazily compiled, no explicit signature
def oral_1cmt_rhs(t, y, p, dydt):      # y = [gut, central]; p = [ka, CL, V1, F]
    dydt[0] = -p[0] * y[0]
    dydt[1] = p[0] * y[0] - p[1] / p[2] * y[1]


LIN2 = CustomODEModel(rhs=linear_2cmt_rhs, states=("central", "peripheral"),
                      params={"CL": 10.0, "V1": 20.0, "Q2": 15.0, "V2": 80.0},
                      observed="central", volume="V1", name="linear_2cmt")
TT = np.concatenate([np.linspace(0, 2, 41), np.linspace(2.05, 72, 300)])


def _rel(a, b, floor):
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))


@pytest.mark.parametrize("events", [
    [(0.0, 100.0, 0.0)],                                   # bolus
    [(0.0, 100.0, 0.5)],                                   # 30-min infusion
    [(0.0, 50.0, 0.0), (12.0, 50.0, 2.0), (24.0, 80.0, 0.0), (25.0, 30.0, 0.25)],  # mixed
    [(i * 8.0, 40.0, 1.0) for i in range(6)],              # repeated infusions
])
def test_linear_two_cmt_matches_closed_form(events):
    reg = Regimen(tuple(DoseEvent(t, a, d) for t, a, d in events))
    c = LIN2.concentration(reg, TT)[0]
    ref = closed_form_iv(TT, events, 10.0, 20.0, 15.0, 80.0)
    assert _rel(c, ref, 1e-6 * ref.max()) < 1e-6


def test_linear_two_cmt_via_parent_metabolite_without_metabolite():
    model = ParentMetabolite(CL=10.0, V1=20.0, Q2=15.0, V2=80.0, CLm=1.0, Vm=1.0, fm=0.0)
    events = [(0.0, 70.0, 0.0), (6.0, 35.0, 40 / 60)]
    reg = Regimen(tuple(DoseEvent(t, a, d) for t, a, d in events))
    ref = closed_form_iv(TT, events, 10.0, 20.0, 15.0, 80.0)
    assert _rel(model.concentration(reg, TT)[0], ref, 1e-6 * ref.max()) < 1e-6


def test_linear_one_cmt_and_oral_closed_forms():
    oral = CustomODEModel(rhs=oral_1cmt_rhs, states=("gut", "central"),
                          params={"ka": 1.3, "CL": 5.0, "V1": 50.0, "F": 0.6},
                          dose_targets={"depot": "gut", "central": "central"},
                          observed="central", volume="V1", bioavailability={"depot": "F"})
    c = oral.concentration(Regimen.single(100.0, target="depot"), TT)[0]
    ref = closed_form_oral(TT, 100.0, 1.3, 5.0, 50.0, 0.6)
    assert _rel(c, ref, 1e-6 * ref.max()) < 1e-6
    iv = oral.concentration(Regimen.single(100.0, 1.0), TT)[0]   # central infusion
    ref = closed_form_iv(TT, [(0.0, 100.0, 1.0)], 5.0, 50.0)
    assert _rel(iv, ref, 1e-6 * ref.max()) < 1e-6


@njit(RHS_SIG)
def oral_lag_rhs(t, y, p, dydt):       # p = [ka, CL, V1, F, tlag]
    dydt[0] = -p[0] * y[0]
    dydt[1] = p[0] * y[0] - p[1] / p[2] * y[1]


def test_lag_time_per_patient_matches_shifted_closed_form():
    model = CustomODEModel(rhs=oral_lag_rhs, states=("gut", "central"),
                           params={"ka": 1.3, "CL": 5.0, "V1": 50.0, "F": 0.6, "tlag": 0.5},
                           dose_targets={"depot": "gut", "central": "central"},
                           observed="central", volume="V1", bioavailability={"depot": "F"},
                           lag={"depot": "tlag"})
    lags = np.array([0.0, 0.5, 1.25])
    reg = Regimen.single(100.0, target="depot") + Regimen.single(50.0, 0.5, time_h=6.0)
    c = model.concentration(reg, TT, {"tlag": lags})
    for i, lag in enumerate(lags):
        tau = np.clip(TT - lag, 0, None)
        ref = (closed_form_oral(tau, 100.0, 1.3, 5.0, 50.0, 0.6)
               + closed_form_iv(TT, [(6.0, 50.0, 0.5)], 5.0, 50.0))   # IV doses are not lagged
        assert _rel(c[i], ref, 1e-6 * ref.max()) < 1e-6
    s = model.summary(Regimen.single(100.0, target="depot"), 24.0, {"tlag": lags})
    assert np.allclose(np.diff(s.tmax), np.diff(lags), atol=1e-6)
    assert np.allclose(s.cmax, s.cmax[0], rtol=1e-8)


def test_tighter_tolerance_reduces_error():
    events = [(0.0, 100.0, 0.5)]
    reg = Regimen.single(100.0, 0.5)
    ref = closed_form_iv(TT, events, 10.0, 20.0, 15.0, 80.0)
    errs = [_rel(LIN2.concentration(reg, TT, rtol=r, atol=1e-14)[0], ref, 1e-3)
            for r in (1e-4, 1e-6, 1e-8, 1e-10)]
    assert errs[0] > errs[1] > errs[2] > errs[3]
    assert errs[3] < 1e-9


def test_output_at_dose_time_is_after_the_bolus_and_zero_before():
    reg = Regimen((DoseEvent(2.0, 100.0),))
    c = LIN2.concentration(reg, [0.0, 1.0, 2.0, 2.0, 3.0])[0]
    assert c[0] == 0 and c[1] == 0
    assert c[2] == pytest.approx(5.0) and c[3] == pytest.approx(5.0)
    end = LIN2.concentration(reg, [2.0])[0]           # dose exactly at the last output time
    assert end[0] == pytest.approx(5.0)


def test_per_patient_parameters_and_dose_scale_broadcast():
    reg = Regimen.single(1.0, 0.5)
    c = LIN2.concentration(reg, TT, {"CL": [5.0, 10.0, 20.0]}, dose_scale=[70.0, 80.0, 90.0])
    assert c.shape == (3, TT.size)
    for i, (cl, w) in enumerate([(5.0, 70.0), (10.0, 80.0), (20.0, 90.0)]):
        ref = closed_form_iv(TT, [(0.0, w, 0.5)], cl, 20.0, 15.0, 80.0)
        assert _rel(c[i], ref, 1e-6 * ref.max()) < 1e-6
    P = np.array([[10.0, 20.0, 15.0, 80.0]] * 2)
    assert solve(LIN2.system(), reg, TT, P).shape == (2, TT.size, 2)


def test_summary_matches_curves_and_closed_form_auc():
    reg = Regimen.repeated(100.0, 12.0, 2, duration_h=1.0)
    s = LIN2.summary(reg, 48.0, {"CL": [8.0, 12.0]})
    fine = np.linspace(0, 48, 48001)
    for i, cl in enumerate((8.0, 12.0)):
        ref = closed_form_iv(fine, [(t, 100.0, 1.0) for t in (0, 12, 24)], cl, 20.0, 15.0, 80.0)
        auc = np.sum((ref[1:] + ref[:-1]) / 2 * np.diff(fine))
        assert s.auc[i] == pytest.approx(auc, rel=1e-6)
        assert s.cmax[i] == pytest.approx(ref.max(), rel=1e-6)
        assert s.tmax[i] == pytest.approx(fine[ref.argmax()], abs=2e-3)


def test_summary_finds_an_interior_peak():
    model = MichaelisMenten1Cmt(V1=50.0, Vmax=20.0, Km=2.0, ka=0.8)
    s = model.summary(Regimen.single(200.0, target="depot"), 24.0)
    grid = np.linspace(0, 24, 24001)
    c = model.concentration(Regimen.single(200.0, target="depot"), grid)[0]
    assert 0 < s.tmax[0] < 24
    assert s.cmax[0] == pytest.approx(c.max(), rel=1e-8)
    assert s.tmax[0] == pytest.approx(grid[c.argmax()], abs=2e-3)


def test_empty_regimen_and_zero_time():
    y = LIN2.simulate(Regimen(()), [0.0, 5.0])
    assert np.all(y == 0)
    assert LIN2.summary(Regimen(()), 5.0).auc[0] == 0.0


def test_solver_compiled_once_for_all_right_hand_sides():
    LIN2.concentration(Regimen.single(1.0), [1.0])
    MichaelisMenten1Cmt(V1=1.0, Vmax=1.0, Km=1.0).concentration(Regimen.single(1.0), [1.0])
    assert len(K.solve_batch_kernel().signatures) == 1


def test_errors_are_explicit():
    reg = Regimen.single(100.0)
    with pytest.raises(ValueError, match="sorted"):
        LIN2.concentration(reg, [2.0, 1.0])
    with pytest.raises(ValueError, match="unknown parameter"):
        LIN2.concentration(reg, [1.0], {"clearance": 3.0})
    with pytest.raises(ValueError, match="depot"):
        LIN2.concentration(Regimen.single(100.0, target="depot"), [1.0])
    with pytest.raises(ValueError, match="differ in length"):
        LIN2.concentration(reg, [1.0], {"CL": [1.0, 2.0], "V1": [1.0, 2.0, 3.0]})
    with pytest.raises(ODESolverError, match="max_steps"):
        LIN2.concentration(reg, [100.0], max_steps=3)
    with pytest.raises(TypeError, match="numba"):
        CustomODEModel(rhs=lambda t, y, p, d: None, states=("a",), params={"k": 1.0},
                       observed="a")
    with pytest.raises(ValueError, match="unknown"):
        concentration(LIN2.system(), reg, [1.0], analyte="metabolite")
    with pytest.raises(ValueError, match="t_end_h"):
        summarize(LIN2.system(), reg, -1.0)


def test_custom_model_docstring_example_runs():
    model = CustomODEModel(rhs=oral_1cmt_rhs, states=("gut", "central"),
                           params={"ka": 1.0, "CL": 5.0, "V1": 50.0, "F": 0.6},
                           dose_targets={"depot": "gut", "central": "central"},
                           observed="central", volume="V1", bioavailability={"depot": "F"})
    c = model.concentration(Regimen.single(100.0, target="depot"), [0.5, 1, 2], {"CL": [4.0, 6.0]})
    assert c.shape == (2, 3) and np.all(c > 0) and np.all(c[0] > c[1])


def test_custom_initial_state():
    model = CustomODEModel(rhs=linear_2cmt_rhs, states=("central", "peripheral"),
                           params={"CL": 10.0, "V1": 20.0, "Q2": 15.0, "V2": 80.0},
                           observed="central", volume="V1", initial={"central": 100.0})
    c = model.concentration(Regimen(()), TT)[0]
    ref = closed_form_iv(TT, [(0.0, 100.0, 0.0)], 10.0, 20.0, 15.0, 80.0)
    assert _rel(c, ref, 1e-6 * ref.max()) < 1e-6


def test_sliver_segments_between_nearly_equal_breakpoints():
    events = [(1e-300, 50.0, 0.0), (0.1 + 0.2, 30.0, 0.3 - 1e-16), (0.3, 20.0, 0.0)]
    reg = Regimen(tuple(DoseEvent(t, a, d) for t, a, d in events))
    c = LIN2.concentration(reg, TT)[0]
    ref = closed_form_iv(TT, events, 10.0, 20.0, 15.0, 80.0)
    assert _rel(c, ref, 1e-6 * ref.max()) < 1e-6
