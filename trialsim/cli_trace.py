"""``trialsim run STUDY --trace K``: trial K's event log in calendar time (arrivals, screening,
patients turned away, doses, decisions, DLTs as they occur), one row per event."""
from __future__ import annotations

import numpy as np
import pandas as pd

from trialsim.errors import ConfigError


def check_trace(study, k: int, n_trials: int) -> None:
    """Refuse ``--trace K`` before anything runs where it cannot be answered: a study without
    a calendar, a trial beyond the run, an adaptive phase II design's scenarios (their looks
    decide who enrols, so each has its own calendar)."""
    if getattr(study, "conduct", None) is None:
        raise ConfigError("--trace needs a study with a conduct: section (calendar time)",
                          ("--trace",))
    if k >= n_trials:
        raise ConfigError(f"no trial {k} in a run of {n_trials} trials (0..{n_trials - 1})",
                          ("--trace",))
    if getattr(study, "scenarios", None) and getattr(study.design, "interims", None):
        raise ConfigError("the scenarios' calendars differ (an adaptive design enrols as its "
                          "looks decide): trace one with --scenario NAME", ("--trace",))


def trace_table(sims, k: int) -> pd.DataFrame:
    """The event log of trial ``k`` of a timed run (:func:`check_trace` passed): columns
    ``time_h``, ``event``, ``patient`` (the patients table's number), ``arrival``, ``site``,
    ``dose``."""
    from trialsim.conduct.arrays import calendar_of
    from trialsim.phase2.scenarios import ScenarioSimulations
    from trialsim.phase2.study import Phase2Study
    if isinstance(sims, ScenarioSimulations):   # the scenarios share one calendar
        sims = next(iter(sims.results.values()))
    row = int(np.flatnonzero(sims.arrays.trials == k)[0])
    design = sims.study.design
    phase2 = isinstance(sims.study, Phase2Study)
    if phase2:      # patients enrolled on arrival
        from trialsim.phase2.simulate import calendar_log
        cal = calendar_log(sims, row)
    elif design.backfills:      # the trial again, decisions and calendar interleaved
        from trialsim.conduct.backfill import run_trials
        cal = run_trials(sims.study, sims.arrays.trials[row:row + 1], sims.seed, sims.scenario,
                         traced=0)[2][0]
    else:
        hold = None
        if design.follow_up:      # a start-up stage's escalations wait
            from trialsim.conduct.followup import startup_holds
            holds = startup_holds(sims.study, sims.arrays.trials[row:row + 1], sims.seed,
                                  sims.scenario)
            hold = None if holds is None else holds[0]
        cal = calendar_of(sims.arrays, row, sims.study.calendar_conduct, sims.seed,
                          sims.scenario, log=True, follow_up=design.follow_up, hold=hold)
    events = list(cal.events)
    given = [e for e in cal.events if e[1] in ("dose", "backfill")]    # in dosing order
    if phase2:      # randomised: no dose decision after a patient
        events = [e for e in events if e[1] != "decision"]
    elif design.follow_up or design.backfills:   # DLTs as they occur (onset stream)
        from trialsim.conduct.followup import dlt_onsets
        onset = dlt_onsets(sims.seed, sims.scenario, sims.arrays.trials[row:row + 1],
                           sims.arrays.patient_dose.shape[1], sims.study.conduct.window_h)[0]
        for p, (t, _, pid, site, dose) in enumerate(given):
            if sims.arrays.patient_tox[row, p]:
                events.append((t + onset[p], "dlt", pid, site, dose))
        events.sort(key=lambda e: e[0])      # stable: simultaneous events keep their order
    df = pd.DataFrame(events, columns=["time_h", "event", "arrival", "site", "dose_index"])
    # the patients table's number of each patient dosed: by enrolment (arrival) in phase II,
    # else by dosing, as the simulation pairs outcomes with doses
    ids = [e[2] for e in given]
    order = sorted(set(ids)) if phase2 else list(dict.fromkeys(ids))
    number = {pid: i for i, pid in enumerate(order)}
    df.insert(2, "patient", pd.array([number.get(a) for a in df["arrival"]], "Int64"))
    df["arrival"] = pd.array([a if a > 0 else None for a in df["arrival"]], "Int64")
    df["site"] = pd.array([j if j >= 0 else None for j in df["site"]], "Int64")
    again = (df["event"] == "dose_period2").to_numpy()
    if again.any():     # a second period's dose: the arm its patient was re-randomised to
        arm2 = sims.arrays.arm2[row]
        df.loc[again, "dose_index"] = [int(arm2[p]) for p in df.loc[again, "patient"]]
    doses = np.asarray(sims.study.doses, float)
    df["dose"] = [doses[d] if d >= 0 else np.nan for d in df["dose_index"]]
    return df.drop(columns="dose_index")
