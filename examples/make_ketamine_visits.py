"""Make examples/ketamine_phase2_visits.csv: one simulated trial of the ketamine phase II
flagship (configs/ketamine_phase2_mcpmod.yaml, scenario emax), every patient's MADRS change
from baseline at each visit up to day 7, missing after dropout.  Run from the repository root:

    python examples/make_ketamine_visits.py
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import trialsim as ts
from trialsim.phase2.simulate import draw_patients, potential_scores
from trialsim.rng import stream_uniforms

SEED, TRIAL = 20261129, 0


def main() -> None:
    study = ts.load("configs/ketamine_phase2_mcpmod.yaml").scenarios["emax"]
    trials = np.array([TRIAL])
    N = study.design.n_total
    arm = study.design.allocate(stream_uniforms(SEED, 0, trials, "allocation",
                                                study.design.n_uniforms()))
    pts = draw_patients(study, SEED, 0, trials)
    traj, base, _, _ = potential_scores(study, SEED, 0, trials, arm=arm, pts=pts)
    # a higher dropout than the flagship's, for the example: 15 % a week, non-responders twice
    u = stream_uniforms(SEED, 0, trials, "dropout", N)[0]
    poor = traj[0, :, 1] > 0.5 * base[0]
    drop_h = -np.log(u) / (np.where(poor, 0.30, 0.15) / 168.0)
    visits = np.asarray(study.visits_h, float)
    rows = []
    for i in range(N):
        for j, v in enumerate(visits[visits <= 168]):
            change = traj[0, i, j] - base[0, i] if v < drop_h[i] else np.nan
            rows.append({"patient": i + 1, "dose_mg_per_kg": study.doses[arm[0, i]],
                         "baseline_madrs": round(float(base[0, i]), 1), "visit_h": v,
                         "madrs_change": round(float(change), 1)})
    pd.DataFrame(rows).to_csv("examples/ketamine_phase2_visits.csv", index=False,
                              na_rep="NA")


if __name__ == "__main__":
    main()
