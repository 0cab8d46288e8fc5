"""Trial conduct in calendar time: against analytic results (Poisson accrual, the M/D/1 queue),
the untimed path, conservation of patients, opening hours, reproducibility and config errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import trialsim as ts
from trialsim.conduct import Conduct, Site
from trialsim.conduct.calendar import trial_calendar
from trialsim.errors import ConfigError, ConfigErrors

Z = 4.5
CRM1 = {"type": "crm", "target": 0.3, "skeleton": [0.05, 0.12, 0.25, 0.4, 0.55],
        "cohort_size": 1, "max_patients": 12}


def study(conduct: dict | None, design: dict = CRM1):
    doc = {"doses": [1, 2, 3, 4, 5], "truth": {"tox": [0.05, 0.1, 0.3, 0.45, 0.6]},
           "design": design}
    if conduct is not None:
        doc["conduct"] = conduct
    return ts.from_dict(doc)


def test_poisson_accrual_of_n_patients_takes_n_over_lambda():
    """One site, 2 arrivals per week, dosing on arrival: the 12th patient is dosed at the 12th
    arrival, on average 12 / 2 = 6 weeks after the start (Gamma(12, 2))."""
    s = ts.simulate(study({"sites": [{"rate_per_week": 2.0}], "window_h": 0}), 4000, seed=3)
    weeks = s.calendar.accrual_h / 168
    se = weeks.std(ddof=1) / np.sqrt(weeks.size)
    assert abs(weeks.mean() - 6.0) < Z * se
    assert abs(weeks.var(ddof=1) - 12 / 4) < 0.35          # Gamma variance n / lambda^2 = 3
    assert (s.calendar.turned_away == 0).all() and (s.calendar.enrolled == 12).all()


def test_one_chair_is_an_md1_queue():
    """Poisson arrivals at 0.5 per hour, one chair, sessions of 1 h (rho = 0.5): the mean wait
    for the chair is rho D / (2 (1 - rho)) = 0.5 h (Pollaczek-Khinchine), after a warm-up."""
    c = Conduct(sites=(Site(rate_per_week=84.0, chairs=1),), window_h=0.0, session_h=1.0)
    means = []
    for k in range(60):
        cal = trial_calendar([(0, 1)] * 600, c, np.random.default_rng(k))
        w = np.subtract(cal.dosed, cal.arrived)[100:]
        means.append(w.mean())
    means = np.array(means)
    assert abs(means.mean() - 0.5) < Z * means.std(ddof=1) / np.sqrt(means.size)


def test_phase2_sites_are_queues_of_their_own():
    """Phase II patients enrol on arrival and wait only for a chair at their own site: two
    sites with 0.5 arrivals per hour, one chair each and sessions of 1 h are two M/D/1 queues,
    each with the mean wait of the single site above (0.5 h).  Every site's patients had
    waited for the patient before them, wherever that one was dosed (0.8 h here)."""
    from trialsim.conduct.arrays import enrolment_calendar

    c = Conduct(sites=(Site(rate_per_week=84.0, chairs=1), Site(rate_per_week=84.0, chairs=1)),
                window_h=0.0, session_h=1.0)
    means = []
    for k in range(40):
        cal = enrolment_calendar(np.zeros(1200, int), k, c, seed=5, scenario=0)
        means.append(np.subtract(cal.dosed, cal.arrived)[200:].mean())
    means = np.array(means)
    assert abs(means.mean() - 0.5) < Z * means.std(ddof=1) / np.sqrt(means.size)


def test_chair_use_counts_the_hours_the_chairs_are_open():
    """One chair open 8:00-17:00 on weekdays, sessions of 8 h, patients always waiting: one
    session a day fits, so 30 patients use 240 chair-hours of the 269-270 open from the first
    dose to the last session's end (8/9 of them).  Sessions running past the last decision
    had made this 103 %."""
    conduct = {"sites": [{"rate_per_week": 100.0}], "window_h": 0.001, "session_h": 8.0,
               "open_hours": [8, 17], "open_days": [0, 1, 2, 3, 4]}
    s = ts.simulate(study(conduct, {**CRM1, "cohort_size": 3, "max_patients": 30}), 50, seed=2)
    use = s.calendar.chair_use
    assert (use > 240 / 270).all() and (use <= 240 / 268 + 1e-12).all(), use


def test_open_hours_between_counts_the_opening_hours():
    """Weekdays 8:00-17:00 (45 h a week): from Monday 10:00 to the next Tuesday 12:00 the
    clinic is open 7 + 4 x 9 + 9 + 4 = 56 h; over whole weeks 45 h each; nothing when closed."""
    c = Conduct(sites=(Site(rate_per_week=1.0),), open_hours=(8.0, 17.0),
                open_days=(0, 1, 2, 3, 4))
    assert c.open_hours_between(10.0, 168.0 + 24.0 + 12.0) == pytest.approx(56.0)
    assert c.open_hours_between(3.0, 3.0 + 10 * 168.0) == pytest.approx(450.0)
    assert c.open_hours_between(5 * 24.0, 7 * 24.0) == 0.0      # the weekend
    assert c.open_hours_between(50.0, 40.0) == 0.0
    always = Conduct(sites=(Site(rate_per_week=1.0),))
    assert always.open_hours_between(1.5, 1000.25) == pytest.approx(998.75)


def test_a_site_opening_after_enrolment_closed_is_not_counted_in_chair_use():
    """60 phase II patients arrive within the first half week at one always-open chair with
    8-h sessions, which is then busy without a break; a 10-chair site opening in week 2 can
    have no patient: chair use is 1, not the 0.115 its idle chairs made it."""
    from trialsim.conduct.arrays import chair_use, enrolment_calendar

    c = Conduct(sites=(Site(rate_per_week=1000.0, chairs=1),
                       Site(rate_per_week=1.0, opens_week=2.0, chairs=10)),
                window_h=0.0, session_h=8.0)
    cal = enrolment_calendar(np.zeros(60, int), 0, c, seed=1, scenario=0)
    assert max(cal.arrived) < 2 * 168 < max(t for _, t in cal.sessions)
    assert chair_use(cal, c) == pytest.approx(1.0, rel=1e-12)


def test_trace_dropout_rows_name_the_patient(tmp_path):
    """A dropout row of --trace names the patient who left (it was blank): the same patients
    the patients table marks as dropouts."""
    import pandas as pd

    from trialsim.cli import main
    cfg = __import__("pathlib").Path(__file__).resolve().parents[1] / "configs" / \
        "ketamine_iv_trd.yaml"
    out = tmp_path / "o"
    assert main(["run", str(cfg), "--trials", "10", "--trace", "2", "--out", str(out),
                 "--set", "conduct.dropout_per_week=0.5"]) == 0
    trace = pd.read_csv(out / "trace_2.csv")
    patients = pd.read_parquet(out / "patients.parquet").query("trial == 2")
    left = trace[trace.event == "dropout"]
    assert len(left) > 0
    assert sorted(left.patient.astype(int)) == sorted(patients.patient[patients.dropout])


def test_timed_path_selects_as_the_untimed_path():
    timed = ts.simulate(study({"sites": [{"rate_per_week": 1.0}], "window_h": 0}), 500, seed=8)
    untimed = ts.simulate(study(None), 500, seed=8)
    for f in ("selected", "n", "tox", "patient_dose"):
        np.testing.assert_array_equal(getattr(timed.arrays, f), getattr(untimed.arrays, f))
    assert untimed.calendar is None and timed.calendar is not None


def test_every_patient_is_accounted_for_and_clinics_keep_their_hours():
    conduct = {"sites": [{"rate_per_week": 3.0}, {"rate_per_week": 2.0, "opens_week": 3,
                                                  "chairs": 2}],
               "window_h": 336, "max_wait_days": 10, "screen_fail": 0.2, "session_h": 2.67,
               "open_hours": [8, 17], "open_days": [0, 1, 2, 3, 4]}
    s = ts.simulate(study(conduct, dict(CRM1, cohort_size=3, max_patients=24)), 300, seed=2)
    c = s.calendar
    np.testing.assert_array_equal(c.screened, c.screen_failed + c.enrolled + c.turned_away
                                  + c.waiting)
    np.testing.assert_array_equal(c.enrolled, s.arrays.n.sum(axis=1))
    assert c.turned_away.sum() > 0 and c.screen_failed.sum() > 0
    from trialsim.conduct.arrays import calendar_of
    cal = calendar_of(s.arrays, 0, s.study.conduct, 2, 0, log=True)
    for t in cal.dosed:
        day, hour = divmod(t, 24)
        assert int(day) % 7 <= 4 and 8 <= hour and hour + 2.67 <= 17 + 1e-9
    # decisions are a window after each cohort's last dose
    starts = [e[0] for e in cal.events if e[1] == "dose"]
    assert all(d >= s0 + 336 - 1e-9 for d, s0 in zip(cal.decisions, starts[2::3]))


def test_calendars_do_not_depend_on_the_batch():
    st = study({"sites": [{"rate_per_week": 1.5}], "window_h": 48, "max_wait_days": 5})
    a = ts.simulate(st, 40, seed=1, batch_size=7)
    b = ts.simulate(st, 20, seed=1, first_trial=20)
    np.testing.assert_array_equal(a.calendar.duration_h[20:], b.calendar.duration_h)
    np.testing.assert_array_equal(a.calendar.decision_h[20:], b.calendar.decision_h)


def test_metrics_report_duration():
    s = ts.simulate(study({"sites": [{"rate_per_week": 2.0}], "window_h": 24}), 200, seed=1)
    m = s.metrics().set_index("metric")
    assert {"duration_weeks", "turned_away_mean", "wait_days_mean",
            "first_decision_days"} <= set(m.index)
    assert m.loc["duration_weeks", "value"] > 0


@pytest.mark.parametrize("conduct, path", [
    ({"sites": []}, "conduct.sites"),
    ({"sites": [{"rate_per_week": -1}]}, "conduct.sites[0].rate_per_week"),
    # cross-field checks name their key (they were reported at conduct)
    ({"sites": [{"rate_per_week": 1}], "open_hours": [18, 8]}, "conduct.open_hours: expected"),
    ({"sites": [{"rate_per_week": 1}], "open_days": [7]}, "conduct.open_days: expected"),
    ({"sites": [{"rate_per_week": 1}], "session_h": 12, "open_hours": [8, 17]},
     "conduct.session_h: a session of 12 h"),
    ({"sites": [{"rate_per_week": 1}], "windows": 3}, "conduct"),
    # 20 a week leaves 94 % within a 24-h window (a rate per day typed as per week?): it made
    # the replacement slots overflow ("cannot convert float NaN to integer" at design)
    ({"sites": [{"rate_per_week": 1}], "dropout_per_week": 20},
     "conduct.dropout_per_week: at 20 per week, 94.26 % of the patients leave"),
])
def test_bad_conduct_names_the_path(conduct, path):
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        study(conduct)
    assert path in str(e.value)


def test_follow_up_calendars_keep_their_times_when_trials_stop_early():
    """Designs deciding with partial follow-up: the calendars are laid out for every patient
    before the decisions; a trial that stops early gets its calendar again for the cohorts it
    had, and those cohorts keep their times (two sites, chairs, sessions, opening hours,
    waiting limits: nothing in the calendar depends on later cohorts or on the doses)."""
    from trialsim.conduct.arrays import calendar_of
    from trialsim.conduct.followup import follow_up_clock
    from trialsim.simulate import run_batch
    tite = {"type": "tite_crm", "target": 0.25, "skeleton": [0.05, 0.12, 0.25, 0.4, 0.55],
            "cohort_size": 2, "max_patients": 24,
            "modifiers": [{"type": "stop_when_too_toxic", "threshold": 0.3, "prob": 0.8}]}
    conduct = {"sites": [{"rate_per_week": 3.0, "chairs": 1},
                         {"rate_per_week": 2.0, "opens_week": 2, "chairs": 1}],
               "window_h": 168, "session_h": 3, "open_hours": [8, 17],
               "open_days": [0, 1, 2, 3, 4], "max_wait_days": 2, "screen_fail": 0.2}
    s = ts.from_dict({"doses": [1, 2, 3, 4, 5], "truth": {"tox": [0.3, 0.4, 0.5, 0.6, 0.7]},
                      "design": tite, "conduct": conduct})
    trials = np.arange(60)
    clock = follow_up_clock(s, trials, 3, 0)
    arrays = run_batch(s, trials, 3, 0, clock)
    enrolled = (arrays.patient_dose >= 0).sum(axis=1)
    assert (enrolled < 24).sum() >= 10 and (enrolled == 24).any()
    for i in range(trials.size):
        cal = calendar_of(arrays, i, s.conduct, 3, 0, follow_up=True)
        k = len(cal.dosed)
        assert k == enrolled[i]
        np.testing.assert_array_equal(cal.dosed, clock.dosed[i, :k])
        np.testing.assert_array_equal(cal.formed, clock.formed[i, :len(cal.formed)])
        # decisions: each next cohort's formation, then the last cohort's window end
        assert cal.decisions[:-1] == cal.formed[1:]
        assert cal.decisions[-1] == max(cal.dosed) + 168
    sims = ts.simulate(s, 60, seed=3)
    np.testing.assert_array_equal(sims.arrays.patient_dose, arrays.patient_dose)
    np.testing.assert_array_equal(sims.calendar.enrolled, enrolled)


def test_trace_of_a_tite_trial_shows_each_dlt_within_its_window(tmp_path):
    """`trialsim run --trace K` with a design deciding on partial follow-up: one `dlt` row per
    DLT of the trial, after its patient's dose and within the window."""
    import pandas as pd

    from trialsim.cli import main
    cfg = __import__("pathlib").Path(__file__).resolve().parents[1] / "configs" / "examples" \
        / "tite_crm.yaml"
    out = tmp_path / "o"
    assert main(["run", str(cfg), "--trials", "6", "--seed", "4", "--trace", "2",
                 "--out", str(out)]) == 0
    trace = pd.read_csv(out / "trace_2.csv")
    trials = pd.read_parquet(out / "trials.parquet").set_index("trial")
    dlt = trace[trace.event == "dlt"]
    assert len(dlt) == trials.loc[2, "n_dlt"] > 0
    dosed = trace[trace.event == "dose"].set_index("patient")["time_h"]
    lag = dlt.set_index("patient")["time_h"] - dosed.loc[dlt.patient].to_numpy()
    assert ((lag >= 0) & (lag < 1008)).all()
    assert trace.time_h.is_monotonic_increasing
    # `patient` is the patients table's number: the DLTs are that table's
    patients = pd.read_parquet(out / "patients.parquet").query("trial == 2")
    assert set(dlt.patient) == set(patients.patient[patients.tox])


def test_assessment_visits_decide_what_a_follow_up_design_knows():
    """With DLT assessments at 24 h, 7 and 14 days (window 28 days), a DLT is known at the
    first visit at or after it and follow-up counts up to the last visit held; the window's
    end is always an assessment.  Hand-computed cases."""
    from trialsim.conduct.followup import FollowUpClock
    W = 672.0
    clock = FollowUpClock(sizes=np.array([1, 1, 1, 1]), formed=np.array([[0.0, 10, 200, 400]]),
                          dosed=np.array([[0.0, 10, 200, 400]]),
                          onset=np.array([[20.0, 500, 100, 5]]), window_h=W, cals=[],
                          visits=np.array([24.0, 168, 336, W]))
    tox_po = np.ones((1, 4, 2), bool)                 # every patient would have a DLT
    pat_dose = np.array([[0, 0, 1, 1]], np.int8)
    z = np.zeros((1, 2), np.int64)
    s = clock.state(np.array([0]), 3, np.array([[2, 1]]), tox_po, pat_dose, z, z)
    f = s.followup
    # at 400 h: patient 0 (dosed 0, DLT at 20 h, known at the 24-h visit): DLT, at 24/672;
    # patient 1 (dosed 10, DLT at 510 h -> known at 10 + 672): none yet, followed to the
    # 336-h visit; patient 2 (dosed 200, DLT at 300 h, known at the 7-day visit, 368 h)
    np.testing.assert_array_equal(f.tox[0], [True, False, True])
    np.testing.assert_allclose(f.elapsed[0], [24 / W, 336 / W, 168 / W])
    np.testing.assert_array_equal(s.tox[0], [1, 1])
    continuous = dataclasses.replace(clock, visits=None)
    f = continuous.state(np.array([0]), 3, np.array([[2, 1]]), tox_po, pat_dose, z, z).followup
    np.testing.assert_allclose(f.elapsed[0], [20 / W, 390 / W, 100 / W])


@pytest.mark.parametrize("conduct, design, where, what", [
    ({"visits_h": [24, 12]}, "tite", "conduct.visits_h: expected increasing", "increasing"),
    ({"visits_h": [24, 800]}, "tite", "conduct.visits_h: DLT", "after window_h"),
    ({"visits_h": [24, 168]}, "crm", "conduct.visits_h", "partial follow-up"),
])
def test_assessment_visit_errors(conduct, design, where, what):
    tite = {"type": "tite_crm", "target": 0.3, "skeleton": [0.05, 0.12, 0.25, 0.4, 0.55],
            "max_patients": 12}
    base = {"sites": [{"rate_per_week": 1.0}], "window_h": 672}
    with pytest.raises((ConfigError, ConfigErrors), match=what) as e:
        study({**base, **conduct}, tite if design == "tite" else CRM1)
    assert where in str(e.value)


def _dropout_study(tox: float, rate: float, window_h: float):
    return ts.from_dict({"doses": [1, 2, 3, 4, 5], "truth": {"tox": [tox] * 5}, "design": CRM1,
                         "conduct": {"sites": [{"rate_per_week": 2.0}], "window_h": window_h,
                                     "dropout_per_week": rate}})


@pytest.mark.parametrize("tox", [0.0, 1.0])
def test_dropouts_are_replaced_as_the_negative_binomial(tox):
    """Leaving at rate r = 0.3 per week, window w = 1 week.  Without DLTs a patient is not
    evaluable with probability q = 1 - exp(-r w); with a DLT for everyone (onset uniform in the
    window) only when they leave before it: q = 1 - (1 - exp(-r w)) / (r w).  Replacements until
    12 evaluable: NegBin mean 12 q / (1 - q), and the design sees 12 evaluable patients."""
    r, w = 0.3, 168.0
    q = -np.expm1(-r) if tox == 0 else 1 + np.expm1(-r) / r
    s = ts.simulate(_dropout_study(tox, r, w), 3000, seed=11)
    k = s.arrays.patient_dropout.sum(axis=1)
    mean, var = 12 * q / (1 - q), 12 * q / (1 - q) ** 2
    assert abs(k.mean() - mean) < Z * np.sqrt(var / k.size)
    assert (s.arrays.n.sum(axis=1) == 12).all()
    assert (s.arrays.tox.sum(axis=1) == (12 if tox else 0)).all()
    given = (s.arrays.patient_dose >= 0).sum(axis=1)
    np.testing.assert_array_equal(given, 12 + k)
    assert not (s.arrays.patient_tox & s.arrays.patient_dropout).any()
    m = s.metrics().set_index("metric")
    assert m.loc["dropouts_mean", "value"] == pytest.approx(k.mean())
    assert s.patients["dropout"].sum() == k.sum()


def test_replacements_wait_for_the_dropout_and_delay_the_decision():
    """One patient needed, no DLTs, arrivals at lambda = 50 a week: each dropout (leaving at an
    Exp(r) time truncated to the window w, mean m = 1/r - w e^{-rw} / (1 - e^{-rw})) is
    replaced when they leave, after an arrival gap (mean 1/lambda, memoryless), so the trial
    lasts w + E[K] (m + 1/lambda) from the first dose, E[K] = q / (1 - q), q = 1 - e^{-rw}."""
    r, w, lam = 1.0, 168.0, 50.0
    one = ts.from_dict({"doses": [1, 2], "truth": {"tox": [0.0, 0.0]},
                        "design": {"type": "crm", "target": 0.3, "skeleton": [0.1, 0.2],
                                   "cohort_size": 1, "max_patients": 1},
                        "conduct": {"sites": [{"rate_per_week": lam}], "window_h": w,
                                    "dropout_per_week": r}})
    c = ts.simulate(one, 3000, seed=13).calendar
    q = -np.expm1(-r)
    rh = r / 168.0
    m = 1 / rh - w * np.exp(-rh * w) / (1 - np.exp(-rh * w))
    expect = w + q / (1 - q) * (m + 168.0 / lam)
    d = c.duration_h
    assert abs(d.mean() - expect) < Z * d.std(ddof=1) / np.sqrt(d.size)
    assert (d >= w).all()


def test_without_dropout_nothing_changes():
    plain = ts.simulate(study({"sites": [{"rate_per_week": 2.0}], "window_h": 168}), 200,
                        seed=5)
    zero = ts.simulate(study({"sites": [{"rate_per_week": 2.0}], "window_h": 168,
                              "dropout_per_week": 0}), 200, seed=5)
    for f in ("selected", "n", "patient_dose"):
        np.testing.assert_array_equal(getattr(plain.arrays, f), getattr(zero.arrays, f))
    np.testing.assert_array_equal(plain.calendar.duration_h, zero.calendar.duration_h)
    assert "dropout" not in plain.patients
    drop = ts.simulate(study({"sites": [{"rate_per_week": 2.0}], "window_h": 168,
                              "dropout_per_week": 0.5}), 200, seed=5)
    assert drop.arrays.patient_dose.shape[1] > 12           # slots for replacements
    np.testing.assert_array_equal(drop.arrays.benchmark, plain.arrays.benchmark)


def test_efficacy_designs_wait_for_the_read_out():
    """BOIN12 decides on the response too: with a 24-h DLT window and the response read at
    168 h, each decision waits for the read-out (the first comes exactly 144 h later than with
    the response read at 24 h, on the same arrivals); the 3+3 does not wait."""
    def run(design, read_out):
        doc = {"doses": [1, 2, 3, 4, 5], "truth": {"tox": [0.05, 0.1, 0.3, 0.45, 0.6],
                                                    "eff": [0.1, 0.3, 0.5, 0.5, 0.5]},
               "design": design,
               "conduct": {"sites": [{"rate_per_week": 3.0}], "window_h": 24,
                           "read_out_h": read_out}}
        return ts.simulate(ts.from_dict(doc), 100, seed=7).calendar.decision_h[:, 0]
    boin12 = {"type": "boin12", "target": 0.3, "efficacy_lower": 0.25, "max_patients": 12}
    np.testing.assert_allclose(run(boin12, 168) - run(boin12, 24), 144.0, atol=1e-3)  # float32
    np.testing.assert_array_equal(run({"type": "three_plus_three"}, 168),
                                  run({"type": "three_plus_three"}, 24))


def test_a_cohort_that_can_never_fill_is_a_clear_error():
    """Nobody may wait (max_wait_days ~ 9 s) for a cohort of 3 at one arrival a week: refused
    when the study is read, from the expected time to gather a cohort; where that estimate
    passes but a trial still cannot gather one, the calendar gives up with the YAML path
    instead of running forever."""
    doc = {"doses": [1, 2, 3], "target": 0.3, "truth": {"tox": [0.1, 0.2, 0.3]},
           "design": {"type": "boin", "target": 0.3, "max_patients": 12},
           "conduct": {"sites": [{"rate_per_week": 1}], "window_h": 168,
                       "max_wait_days": 1e-4}}
    with pytest.raises(ConfigError, match=r"a cohort of 3 forms only when that many eligible "
                                          r"patients arrive within max_wait_days \(0.0001 "
                                          r"days\): even with every site open, about once every") as e:
        ts.from_dict(doc)
    assert e.value.path == ("conduct", "max_wait_days")
    study = ts.from_dict({**doc, "conduct": {**doc["conduct"], "max_wait_days": 10}})
    tight = dataclasses.replace(study, conduct=dataclasses.replace(study.conduct,
                                                                   max_wait_days=1e-4))
    with pytest.raises(ConfigError, match="could not be formed") as e:
        ts.simulate(tight, 1, seed=1)
    assert e.value.path == ("conduct", "max_wait_days")


def test_a_design_censoring_leavers_is_not_held_to_the_dropout_limit():
    """The TITE-CRM censors a patient who leaves (no replacement), so a hazard of 1 a week,
    which leaves 99.8 % of patients within its 6-week window, makes a poor trial, not an
    impossible one: accepted (a design replacing leavers is refused, above)."""
    import yaml
    from pathlib import Path

    doc = yaml.safe_load((Path(__file__).parents[1] / "configs" / "examples" / "tite_crm.yaml")
                         .read_text())
    doc["conduct"]["dropout_per_week"] = 1.0
    study = ts.from_dict(doc)
    assert study.conduct.dropout_per_week > 0


def test_the_time_to_gather_a_cohort():
    """A cohort of 2 forms at the first arrival within max_wait_days of the one before: after
    1/lambda + 1/(lambda p) with p = 1 - exp(-lambda w) (a geometric number of exponential
    gaps); the estimate counts the second term only, and a cohort of one forms at once."""
    from trialsim.config.conduct import gather_weeks

    c = Conduct(sites=(Site(rate_per_week=2.0), Site(rate_per_week=1.0)), max_wait_days=0.5)
    lam, w = 3.0, 0.5 / 7
    p = -np.expm1(-lam * w)
    assert gather_weeks(c, 2) == pytest.approx(1 / (lam * p), rel=1e-12)
    assert gather_weeks(c, 2) < 1 / lam + 1 / (lam * p) < 1.01 * (gather_weeks(c, 2) + 1 / lam)
    assert gather_weeks(c, 1) == pytest.approx(1 / lam)


def test_a_vanishing_arrival_rate_is_refused():
    """1e-320 patients a week makes every gap infinite (NaN durations): refused at the key."""
    doc = {"doses": [1, 2, 3], "target": 0.3, "truth": {"tox": [0.1, 0.2, 0.3]},
           "design": {"type": "boin", "target": 0.3, "max_patients": 12},
           "conduct": {"sites": [{"rate_per_week": 1e-320}], "window_h": 168}}
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        ts.from_dict(doc)
    errs = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    assert any(tuple(x.path) == ("conduct", "sites", 0, "rate_per_week") for x in errs), \
        [(x.path, x.message) for x in errs]
