"""Time 10,000 simulated CRM trials and 10,000 3+3 trials (JIT warmed first).

Prints trials per second and the ratio to a baseline measured in the same process: the
same CRM trials run one at a time through ``Design.decide(history)`` (the per-trial path that
R's dfcrm-style loops take), on a subset, scaled per trial.

    python benchmarks/bench_designs.py [--trials 10000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import trialsim as ts
from trialsim.outcomes import TrialHistory

SCENARIO = {"doses": [1, 2, 3, 4, 5], "target": 0.30, "truth": {"tox": [0.05, 0.10, 0.30, 0.45, 0.60]}}
CRM = {"type": "crm", "target": 0.30, "skeleton": [0.05, 0.12, 0.25, 0.40, 0.55],
       "cohort_size": 3, "max_patients": 30}


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_trial_crm(study, n: int, seed: int) -> None:
    """Baseline: one trial at a time, decide(history) after each cohort."""
    design = study.design
    p = np.asarray(study.scenario.tox)
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        h = TrialHistory(study.n_doses)
        dec = design.decide(h)
        while not dec.stop and dec.next_dose is not None:
            d = dec.next_dose
            h = h.add_cohort(d, rng.random(design.cohort_size) < p[d])
            dec = design.decide(h)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000)
    args = ap.parse_args()
    n = args.trials
    crm = ts.from_dict({**SCENARIO, "design": CRM})
    tpt = ts.from_dict({**SCENARIO, "design": {"type": "three_plus_three"}})
    for s in (crm, tpt):  # warm the JIT and caches
        ts.simulate(s, 200, seed=0)

    t_crm = best_of(lambda: ts.simulate(crm, n, seed=1))
    t_tpt = best_of(lambda: ts.simulate(tpt, n, seed=1))
    n_base = max(n // 50, 20)
    t_base = best_of(lambda: per_trial_crm(crm, n_base, 1), repeat=1) * n / n_base

    print(f"CRM  (5 doses, 30 patients, cohorts of 3): {n} trials in {t_crm:.3f} s = {n / t_crm:,.0f} trials/s"
          f"  (target < 1 s)")
    print(f"3+3  (5 doses):                             {n} trials in {t_tpt:.3f} s = {n / t_tpt:,.0f} trials/s"
          f"  (target < 0.2 s)")
    print(f"baseline: per-trial decide() loop, CRM, scaled to {n} trials: {t_base:.2f} s"
          f" -> lockstep is {t_base / t_crm:.0f}x faster")


if __name__ == "__main__":
    main()
