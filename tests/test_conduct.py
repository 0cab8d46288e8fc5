"""Trial conduct in calendar time: against analytic results (Poisson accrual, the M/D/1 queue),
the untimed path, conservation of patients, opening hours, reproducibility and config errors."""
from __future__ import annotations

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
    ({"sites": [{"rate_per_week": 1}], "open_hours": [18, 8]}, "conduct"),
    ({"sites": [{"rate_per_week": 1}], "session_h": 12, "open_hours": [8, 17]}, "conduct"),
    ({"sites": [{"rate_per_week": 1}], "windows": 3}, "conduct"),
])
def test_bad_conduct_names_the_path(conduct, path):
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        study(conduct)
    assert path in str(e.value)
