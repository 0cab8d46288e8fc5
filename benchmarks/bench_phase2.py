"""Benchmark of the phase II simulation with the full MCP-Mod analysis (a script, not a test):
``python benchmarks/bench_phase2.py [--trials 10000]``.

1. 10,000 simulated trials, 5 arms, 20–60 patients per arm (total 100 and 300), MADRS at five
   visits, an Emax dose-response of 5 points at most (power about 80 % with 20 per arm, so
   many trials need adjusted p-values near the boundary), 5 % dropout a week, ANCOVA on
   baseline, MCP-Mod with five candidate shapes (contrasts, adjusted p-values, fits, AIC
   selection, target dose), the dose taken forward: trials per second, and the batched
   analysis's time per trial.
2. Baseline in the same process: the single-trial analysis
   (:func:`trialsim.analysis.doseresponse.analyse`, full-accuracy p-values and critical value,
   SciPy fits) on a sample of the same trials' estimates; the per-trial ratio.
Goal: at least 5,000 trials per second with the full analysis.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np

import trialsim as ts
from trialsim.analysis.doseresponse import analyse
from trialsim.analysis.doseresponse.batch import batch_mcpmod
from trialsim.analysis.doseresponse.estimates import DoseEstimates
from trialsim.analysis.doseresponse.models import Candidates
from trialsim.phase2 import simulate_phase2
from trialsim.phase2 import simulate as P
from trialsim.phase2.dropout import dropout_times
from trialsim.phase2.estimates import dose_estimates, endpoint_values
from trialsim.rng import stream_uniforms

STUDY = {
    "name": "bench-phase2",
    "doses": [0, 0.1, 0.2, 0.5, 1.0], "dose_unit": "mg",
    "population": {"baseline_madrs": {"dist": "truncated_normal", "mean": 33, "sd": 5,
                                      "low": 20, "high": 60}},
    "response": {"efficacy": {"type": "madrs_timecourse", "exposure": "dose", "ec50": 0.2,
                              "emax": 5.0}},
    "design": {"type": "parallel", "allocation": [1, 1, 1, 1, 1], "n_total": 100},
    "visits_h": [4, 24, 72, 168, 336],
    "endpoint": {"type": "change", "visit_h": 24},
    "dropout": {"rate_per_week": 0.05, "no_response_hazard_ratio": 2.0},
    "analysis": {"models": {"linear": None, "emax": 0.1, "sig_emax": [0.3, 3],
                            "exponential": 0.5, "quadratic": -0.85},
                 "alpha": 0.025, "delta": 4.0, "covariates": ["baseline_madrs"]},
}


def _study(n_total: int):
    doc = copy.deepcopy(STUDY)
    doc["design"]["n_total"] = n_total
    return ts.from_dict(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--baseline", type=int, default=20, help="trials analysed one by one")
    args = ap.parse_args()
    for n_total in (100, 300):
        s = _study(n_total)
        simulate_phase2(s, 64, seed=1)                               # compile / warm up
        t0 = time.perf_counter()
        sims = simulate_phase2(s, args.trials, seed=2)
        el = time.perf_counter() - t0
        # the analysis alone, on the estimates of one batch
        trials = np.arange(2048)
        arm = s.design.allocate(stream_uniforms(2, 0, trials, "allocation",
                                                s.design.n_uniforms()))
        traj, base, cov, _ = P.potential_scores(s, 2, 0, trials, arm=arm)
        drop = dropout_times(s, stream_uniforms(2, 0, trials, "dropout", n_total), arm, traj,
                             base, np.asarray(s.visits_h), np.zeros(arm.shape + (0,), bool))
        y = endpoint_values(s, traj, base, np.asarray(s.visits_h)[None, None] < drop[..., None])
        be = dose_estimates(s, y, arm, base, cov)
        cands = Candidates.from_models(s.doses, s.analysis.models)
        t1 = time.perf_counter()
        batch_mcpmod(be, cands, alpha=0.025, delta=4.0, direction="decreasing")
        t_an = (time.perf_counter() - t1) / trials.size
        t2 = time.perf_counter()
        for i in range(args.baseline):
            est = DoseEstimates(be.doses, be.est[i], be.cov[i], float(be.df[i]),
                                np.zeros(5), "normal", be.V[i], float(be.rss0[i]),
                                int(be.n_obs[i]), be.n_covariates, float("nan"))
            analyse(est, s.analysis.models, alpha=0.025, delta=4.0, direction="decreasing")
        t_single = (time.perf_counter() - t2) / args.baseline
        print(f"{n_total // 5} per arm: {args.trials:,} trials simulated and analysed in "
              f"{el:.2f} s = {args.trials / el:,.0f} trials/s (goal >= 5,000); power "
              f"{100 * sims.arrays.signal.mean():.1f} %")
        print(f"   batched analysis {1e3 * t_an:.3f} ms/trial vs the single-trial analysis "
              f"{1e3 * t_single:.1f} ms/trial (full accuracy): {t_single / t_an:,.0f}x")


if __name__ == "__main__":
    main()
