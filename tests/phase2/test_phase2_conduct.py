"""Phase II trials in calendar time (``conduct:``): patients enrolled one after another as
they arrive, against Poisson accrual (the n-th enrolment after Gamma(n, lambda) weeks) with
screening and eligibility folded in, scenarios sharing their calendars, and the designs and
keys it refuses."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

import trialsim as ts
from trialsim.errors import ConfigError, ConfigErrors
from trialsim.phase2.scenarios import simulate_scenarios

from tests.phase2.test_phase2_oc import BASE

Z = 4.5


def _doc(conduct: dict, **extra) -> dict:
    doc = copy.deepcopy(BASE)
    doc["design"] = {"type": "parallel", "allocation": [1, 1, 1, 1, 1], "n_total": 20}
    doc["conduct"] = conduct
    doc.update(extra)
    return doc


def test_enrolment_is_poisson_accrual_with_screening_and_eligibility():
    """One site, 3 arrivals a week, 25 % screen failures and an eligibility criterion keeping
    P(MADRS >= 43) of Normal(42, 3) truncated to [35, 50]: patients enrol at rate
    lambda = 3 x 0.75 x p, so the 20th is dosed after Gamma(20, lambda) weeks, the trial lasts
    (from the first dose) Gamma(19, lambda) weeks + the last visit (24 h), and 20 / (0.75 p)
    arrivals are screened on average (the 20 enrolled among them)."""
    doc = _doc({"sites": [{"rate_per_week": 3.0}], "screen_fail": 0.25})
    doc["population"]["eligibility"] = {"baseline_madrs": {"min": 43}}
    study = ts.from_dict(doc)
    tn = stats.truncnorm(-7 / 3, 8 / 3, loc=42, scale=3)
    p = tn.sf(43)
    assert study.population.p_eligible == pytest.approx(p, rel=1e-12)
    sims = ts.simulate(study, 2000, seed=8)
    c = sims.calendar
    lam = 3 * 0.75 * p
    acc = c.accrual_h / 168
    assert abs(acc.mean() - 20 / lam) < Z * np.sqrt(20 / lam ** 2 / acc.size)
    dur = c.duration_h / 168
    assert abs(dur.mean() - (19 / lam + 24 / 168)) < Z * np.sqrt(19 / lam ** 2 / dur.size)
    # screened = enrolled + failures (+ those still arriving when the 20th is dosed: none
    # here, arrivals stop with the last enrolment)
    scr = c.screened
    assert abs(scr.mean() - 20 / (0.75 * p)) < Z * scr.std(ddof=1) / np.sqrt(scr.size)
    m = sims.metrics().set_index("metric")
    assert m.loc["duration_weeks", "value"] == pytest.approx(dur.mean())
    assert (sims.trials["duration_weeks"] == dur).all()


def test_without_conduct_nothing_changes_and_scenarios_share_calendars():
    plain = ts.simulate(ts.from_dict(copy.deepcopy(BASE)), 100, seed=2)
    assert plain.calendar is None and "accrual_weeks" not in plain.trials
    timed = ts.simulate(ts.from_dict(_doc({"sites": [{"rate_per_week": 2.0}]},
                                          design=BASE["design"])), 100, seed=2)
    for f in ("arm", "y", "signal", "forward"):
        np.testing.assert_array_equal(getattr(plain.arrays, f), getattr(timed.arrays, f))
    doc = _doc({"sites": [{"rate_per_week": 2.0}]},
               scenarios={"a": {}, "b": {"response.efficacy.emax": 0}})
    sims = simulate_scenarios(ts.from_dict(doc), 50, seed=4)
    a, b = sims.results["a"].calendar, sims.results["b"].calendar
    assert a is b


@pytest.mark.parametrize("conduct, design, path", [
    ({"sites": [{"rate_per_week": 2.0}], "window_h": 24}, None, ("conduct", "window_h")),
    ({"sites": [{"rate_per_week": 2.0}], "dropout_per_week": 0.1}, None,
     ("conduct", "dropout_per_week")),
    # enrolled on arrival, a phase II patient never waits for a place: the limit did nothing
    # but turn away those behind a patient waiting for a chair at another site
    ({"sites": [{"rate_per_week": 2.0}], "max_wait_days": 28}, None,
     ("conduct", "max_wait_days")),
])
def test_refused(conduct, design, path):
    doc = _doc(conduct)
    if design is not None:
        doc["design"] = design
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        ts.from_dict(doc)
    errs = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert any(tuple(x.path) == path for x in errs), [(x.path, x.message) for x in errs]


def test_adaptive_interims_enrol_by_the_calendar():
    """An adaptive design stopping at its first look (every dose dropped) on a calendar of
    Poisson arrivals: the trial keeps exactly the patients enrolled (randomised on arrival) by
    the time the last of the look's 50 patients to be dosed reaches the 24-h primary visit
    (recomputed here from the enrolment times), each with the arm drawn before the look; the
    calendar reported is that of the enrolled patients.  At 300 arrivals a week about 43 more
    enrol during the day of the look; at one a week, few.  With three sites, each with a chair
    open on weekdays, the 50th enrolled is not always the last of the 50 dosed: the look waits
    for that one."""
    from trialsim.conduct.arrays import enrolment_times
    from trialsim.phase2 import simulate_phase2
    from trialsim.rng import stream_uniforms
    for rate in (1.0, 300.0):
        doc = copy.deepcopy(BASE)
        doc["design"] = {"type": "adaptive", "allocation": [1] * 5, "n_total": 150,
                         "interims": [50, 100], "drop_below": 100.0}
        doc["conduct"] = {"sites": [{"rate_per_week": rate}]}
        s = ts.from_dict(doc)
        sims = simulate_phase2(s, 30, seed=5)
        a = sims.arrays
        enrolled, dosed = enrolment_times(150, np.arange(30), s.calendar_conduct, 5, 0)
        want = (enrolled <= dosed[:, :50].max(axis=1, keepdims=True) + 24.0).sum(axis=1)
        assert (a.stopped == 2).all()
        np.testing.assert_array_equal(a.n.sum(axis=1), want)
        if rate > 100:
            assert (want > 60).all()
        u = stream_uniforms(5, 0, np.arange(30), "allocation", s.design.n_uniforms())
        before = s.design.allocate(u)
        for t in range(30):
            np.testing.assert_array_equal(a.arm[t, :want[t]], before[t, :want[t]])
            assert (a.arm[t, want[t]:] == -1).all()
        np.testing.assert_allclose(sims.calendar.accrual_h, dosed[np.arange(30), want - 1],
                                   rtol=1e-12)
    doc["conduct"] = {"sites": [{"rate_per_week": 12.0}] * 3, "session_h": 4.0,
                      "open_hours": [8, 17], "open_days": [0, 1, 2, 3, 4]}
    s = ts.from_dict(doc)
    enrolled, dosed = enrolment_times(150, np.arange(30), s.calendar_conduct, 5, 0)
    late = dosed[:, :50].max(axis=1) > dosed[:, 49]
    assert late.any()                    # the case the look must wait for
    want = (enrolled <= dosed[:, :50].max(axis=1, keepdims=True) + 24.0).sum(axis=1)
    np.testing.assert_array_equal(simulate_phase2(s, 30, seed=5).arrays.n.sum(axis=1), want)


def test_adaptive_calendar_or_accrual_rate_not_both():
    doc = copy.deepcopy(BASE)
    doc["design"] = {"type": "adaptive", "allocation": [1] * 5, "n_total": 150,
                     "interims": [50, 100], "accrual_per_week": 10.0}
    doc["conduct"] = {"sites": [{"rate_per_week": 2.0}]}
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        ts.from_dict(doc)
    errs = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert any(tuple(x.path) == ("design", "accrual_per_week") for x in errs)


def test_spcd_second_period_on_the_calendar():
    """SPCD: the re-randomised placebo non-responders are dosed again ``period2_h`` after their
    first dose and followed to the last visit after it.  Without chairs (sessions of 0 h) and
    opening hours, the trial ends at max over patients of (dose + period2_h if re-randomised) +
    the last visit (recomputed here from the enrolment times); the calendar's arrivals do not
    change (enrolment and screening as the parallel design's on the same streams).  With one
    chair and 2-h sessions, the chair time counts both periods' sessions, over the chair-hours
    from the first dose to the end of the last session."""
    from trialsim.conduct.arrays import enrolment_times
    from trialsim.phase2 import simulate_phase2

    doc = copy.deepcopy(BASE)
    doc["design"] = {"type": "spcd", "allocation": [3, 1, 1, 1, 1], "n_total": 40,
                     "period2_h": 24, "period2_allocation": [1, 1, 1, 1, 1]}
    doc["conduct"] = {"sites": [{"rate_per_week": 3.0}]}
    s = ts.from_dict(doc)
    sims = simulate_phase2(s, 40, seed=8)
    a = sims.arrays
    assert (a.arm2 >= 0).any()
    dosed = enrolment_times(40, np.arange(40), s.calendar_conduct, 8, 0)[1]
    last_visit = max(s.visits_h)
    ends = dosed + np.where(a.arm2 >= 0, 24.0, 0.0) + last_visit
    np.testing.assert_allclose(sims.calendar.duration_h, ends.max(axis=1) - dosed[:, :1].ravel(),
                               rtol=1e-9)
    parallel = copy.deepcopy(doc)
    parallel["design"] = {"type": "parallel", "allocation": [3, 1, 1, 1, 1], "n_total": 40}
    p = simulate_phase2(ts.from_dict(parallel), 40, seed=8)
    np.testing.assert_array_equal(p.calendar.screened, sims.calendar.screened)
    np.testing.assert_array_equal(p.calendar.accrual_h, sims.calendar.accrual_h)
    chairs = copy.deepcopy(doc)
    chairs["conduct"] = {"sites": [{"rate_per_week": 3.0, "chairs": 1}], "session_h": 2.0}
    c = simulate_phase2(ts.from_dict(chairs), 40, seed=8)
    span = c.calendar.duration_h - last_visit + 2.0      # first dose to the last session's end
    busy = 2.0 * (40 + (c.arrays.arm2 >= 0).sum(axis=1))
    np.testing.assert_allclose(c.calendar.chair_use, busy / span, rtol=1e-9)
    # a second site opening at week 2 offers its chair from then on only
    later = copy.deepcopy(chairs)
    later["conduct"]["sites"].append({"rate_per_week": 0.5, "opens_week": 2.0, "chairs": 1})
    c2 = simulate_phase2(ts.from_dict(later), 40, seed=8)
    cal = c2.calendar
    start = enrolment_times(1, np.arange(40), ts.from_dict(later).calendar_conduct, 8, 0)[1][:, 0]
    span2 = cal.duration_h - last_visit + 2.0
    open2 = np.maximum(0.0, start + span2 - np.maximum(start, 2 * 168.0))
    busy2 = 2.0 * (40 + (c2.arrays.arm2 >= 0).sum(axis=1))
    np.testing.assert_allclose(cal.chair_use, busy2 / (span2 + open2), rtol=1e-9)


def test_trace_of_a_phase2_trial_is_its_calendar(tmp_path):
    """`trialsim run --trace K` on a phase II study (and on one with scenarios, which share
    one calendar): one `dose` row per enrolled patient, in the trial's arms, at the
    calendar's dosing times, each after its arrival; rerunning into the same folder replaces
    it (trace files are the run's own)."""
    import pandas as pd
    import yaml

    from trialsim.cli import main
    doc = _doc({"sites": [{"rate_per_week": 3.0}], "screen_fail": 0.25})
    cfg = tmp_path / "p2.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    out = tmp_path / "o"
    for _ in range(2):
        assert main(["run", str(cfg), "--trials", "5", "--seed", "2", "--trace", "1",
                     "--out", str(out)]) == 0
    trace = pd.read_csv(out / "trace_1.csv")
    sims = ts.simulate(ts.from_dict(doc), 5, seed=2)
    arm = sims.arrays.arm[1]
    dosed = trace[trace.event == "dose"]
    assert len(dosed) == (arm >= 0).sum() == 20
    np.testing.assert_array_equal(dosed["dose"], np.asarray(sims.study.doses)[arm[arm >= 0]])
    assert dosed.time_h.max() == pytest.approx(sims.calendar.accrual_h[1])
    arrived = trace[trace.event == "arrive"].set_index("patient")["time_h"]
    assert (dosed.time_h.to_numpy() >= arrived.loc[dosed.patient].to_numpy()).all()
    assert "decision" not in set(trace.event)
    # `patient` is the patients table's number (`arrival` counts every arrival screened)
    patients = pd.read_parquet(out / "patients.parquet").query("trial == 1")
    joined = dosed.merge(patients, on="patient", suffixes=("", "_table"))
    assert len(joined) == 20 and (joined["dose"] == joined["dose_table"]).all()
    assert (trace["arrival"].dropna() >= 1).all() and trace["arrival"].max() >= 20
    doc["scenarios"] = {"as_written": {}, "flat": {"response.efficacy.emax": 0.0}}
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["run", str(cfg), "--trials", "5", "--seed", "2", "--trace", "1",
                 "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "trace_1.csv").read_text() == (out / "trace_1.csv").read_text()


def test_trace_of_adaptive_scenarios_names_one(tmp_path, capsys):
    """An adaptive design's scenarios enrol differently (their looks decide), so they have no
    one calendar: --trace showed the first scenario's without saying so; it now asks for
    --scenario, before simulating anything."""
    import yaml

    from trialsim.cli import main
    doc = copy.deepcopy(BASE)
    doc["design"] = {"type": "adaptive", "allocation": [1] * 5, "n_total": 150,
                     "interims": [50, 100], "drop_below": 0.5}
    doc["conduct"] = {"sites": [{"rate_per_week": 5.0}]}
    doc["scenarios"] = {"emax": {}, "weak": {"response.efficacy.emax": 0.0}}
    cfg = tmp_path / "a.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    out = tmp_path / "o"
    assert main(["run", str(cfg), "--trials", "3", "--trace", "1", "--out", str(out)]) == 1
    assert "trace one with --scenario NAME" in capsys.readouterr().err and not out.exists()
    assert main(["run", str(cfg), "--trials", "3", "--trace", "1", "--scenario", "weak",
                 "--out", str(out)]) == 0
    assert (out / "trace_1.csv").is_file()


def test_trace_of_an_spcd_trial_gives_the_second_period_dose(tmp_path):
    """SPCD on a calendar: a `dose_period2` row of --trace names its patient and the dose of
    the arm they were re-randomised to (it was blank)."""
    import pandas as pd
    import yaml

    from trialsim.cli import main
    doc = copy.deepcopy(BASE)
    doc["design"] = {"type": "spcd", "allocation": [3, 1, 1, 1, 1], "n_total": 40,
                     "period2_h": 24, "period2_allocation": [1, 1, 1, 1, 1]}
    doc["conduct"] = {"sites": [{"rate_per_week": 3.0}]}
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    out = tmp_path / "o"
    assert main(["run", str(cfg), "--trials", "4", "--seed", "8", "--trace", "1",
                 "--out", str(out)]) == 0
    trace = pd.read_csv(out / "trace_1.csv")
    again = trace[trace.event == "dose_period2"]
    arm2 = ts.simulate(ts.from_dict(doc), 4, seed=8).arrays.arm2[1]
    assert len(again) == (arm2 >= 0).sum() > 0
    doses = np.asarray(doc["doses"], float)
    np.testing.assert_array_equal(again["dose"], doses[arm2[again["patient"].to_numpy()]])
