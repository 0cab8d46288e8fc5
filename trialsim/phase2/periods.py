"""Period 2 of a sequential parallel comparison design (:mod:`trialsim.designs.spcd`),
batched over trials."""
from __future__ import annotations

import dataclasses

import numpy as np

from trialsim.analysis.doseresponse.batch import BatchEstimates
from trialsim.designs.spcd import SPCD
from trialsim.phase2.estimates import dose_estimates
from trialsim.population.distributions import normal_quantile
from trialsim.response.timecourse import classify, madrs_trajectory


def period2(study, design: SPCD, u, pts, ex, arm, traj, base, cov, dropout_h, est1, u2):
    """Period 2 of a sequential parallel comparison design: ``(arm2 (T, N), y2 (T, N),
    combined estimates)`` — see :mod:`trialsim.designs.spcd`."""
    T, N = arm.shape
    D = study.n_doses
    m = study.efficacy
    visits = np.asarray(study.visits_h, float)
    v2 = int(np.flatnonzero(visits == design.period2_h)[0])
    base2 = traj[..., v2]
    eligible = ((arm == 0) & (base2 > (1.0 - design.response_fraction) * base)
                & (dropout_h > design.period2_h))
    arm2 = design.allocate_period2(u, eligible)
    pick = np.maximum(arm2, 0)
    x2 = np.take_along_axis(np.broadcast_to(ex[m.exposure], (T, N, D)), pick[..., None], axis=2)
    f = design.period2_placebo_factor
    m2 = dataclasses.replace(m, placebo_plateau=f * m.placebo_plateau,
                             placebo_sd=f * m.placebo_sd)
    t = study.endpoint.visit_h
    z2 = normal_quantile(u2)[..., None]
    s2 = madrs_trajectory(m2, base2, x2, [t], pts.z[..., :2], z2)[:, :, 0, 0]
    seen2 = (arm2 >= 0) & (dropout_h > design.period2_h + t)
    if study.endpoint.type == "change":
        y2 = np.where(seen2, s2 - base2, np.nan)
    else:
        y2 = np.where(seen2, classify(s2, base2, study.endpoint.type).astype(float), np.nan)
    est2 = dose_estimates(study, y2, pick, base, cov)
    w = design.weight
    ok = est2.valid[:, None]
    est = np.where(ok, w * est1.est + (1 - w) * est2.est, est1.est)
    cv = np.where(ok[..., None], w * w * est1.cov + (1 - w) ** 2 * est2.cov, est1.cov)
    # degrees of freedom: those of the period that counts, the smaller when both do
    df = est1.df if w == 1 else np.where(est2.valid, est2.df if w == 0 else
                                         np.minimum(est1.df, est2.df), est1.df)
    return arm2, y2, BatchEstimates(est1.doses, est, cv, df, "general", est1.valid)
