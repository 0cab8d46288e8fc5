"""Concentration-time profiles of a study's virtual population for the report: the median and
the 5-95 % band across patients at each dose level."""
from __future__ import annotations

import numpy as np

from trialsim.phase2.study import Phase2Study
from trialsim.rng import study_stream
from trialsim.study import Mechanistic, patient_exposures

#: Purpose index of the report's study-level stream (the truth estimate uses 0).
PURPOSE = 7


def pk_profiles(study, n_patients: int = 400, n_times: int = 48, seed: int = 0):
    """``(times_h, quantiles)`` with ``quantiles`` (3, n_times, n_doses): the 5th, 50th and
    95th percentiles of the plasma concentration (ng/mL) over ``n_patients`` virtual patients;
    None when the study has no PK model.  An escalation study's world is its ``scenario``; a
    phase II study is its own."""
    sc = getattr(study, "scenario", study)
    if getattr(sc, "pk", None) is None:
        return None
    if isinstance(sc, Mechanistic):
        n_z, n_eta = sc.n_z(), sc.n_eta()
    elif isinstance(sc, Phase2Study):
        n_z, n_eta = sc.n_z, sc.pk.omega.n
    else:
        return None
    pts = sc.population.draw_from(study_stream(seed, 0, PURPOSE), n_patients, n_z, n_eta)
    times = np.linspace(0, sc.pk.horizon_h, n_times + 1)[1:]
    names = tuple(f"c_at:{t:.6g}" for t in times)
    ex = patient_exposures(sc.pk, names, pts, np.asarray(study.doses, float), study.dose_unit)
    conc = np.stack([ex[k][0] for k in names])               # (times, patients, doses)
    return times, np.percentile(conc, [5, 50, 95], axis=1)
