"""Time 10,000 simulated trials of each escalation design (5 doses, 30-36 patients, cohorts of
3; JIT warmed first).

Prints trials per second beside the goal of the design library (under 0.1 s for 10,000 trials
of a rule-based, interval or CRM design, under 2 s for the BLRM, BOIN12, EffTox and
Wages-Tait) and the ratio to a baseline measured in the same
process: the same CRM trials run one at a time through ``Design.decide(history)`` (the per-trial
path that R's dfcrm-style loops take), on a subset, scaled per trial.

    python benchmarks/bench_designs.py [--trials 10000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import trialsim as ts
from trialsim.designs import WagesTait
from trialsim.outcomes import TrialHistory

SCENARIO = {"doses": [1, 2, 3, 4, 5], "target": 0.30, "truth": {"tox": [0.05, 0.10, 0.30, 0.45, 0.60]}}
#: Efficacy-toxicity designs also need response probabilities.
EFF_TOX = {"eff": [0.10, 0.30, 0.50, 0.50, 0.50]}
EFFICACY = {"boin12", "efftox", "wages_tait"}
CRM = {"type": "crm", "target": 0.30, "skeleton": [0.05, 0.12, 0.25, 0.40, 0.55],
       "cohort_size": 3, "max_patients": 30}


INTERVAL = {"target": 0.30, "max_patients": 36}
DESIGNS = {"crm": CRM, "crm logistic": {**CRM, "model": "logistic"},
           "crm likelihood + start-up": {**CRM, "method": "likelihood",
                                         "startup": [3, 3, 3, 3, 3]},
           "3+3": {"type": "three_plus_three"},
           "boin": {"type": "boin", **INTERVAL}, "mtpi2": {"type": "mtpi2", **INTERVAL},
           "keyboard": {"type": "keyboard", **INTERVAL}, "i3plus3": {"type": "i3plus3", **INTERVAL},
           "blrm": {"type": "blrm", "max_patients": 30, "modifiers": [{"type": "dont_skip_doses"}]},
           "boin12": {"type": "boin12", "target": 0.35, "efficacy_lower": 0.25, "max_patients": 36},
           # Thall et al. (2014)'s settings and priors
           "efftox": {"type": "efftox", "max_patients": 36, "efficacy_hurdle": 0.5,
                      "toxicity_hurdle": 0.3, "eff0": 0.5, "tox1": 0.65, "eff_star": 0.7,
                      "tox_star": 0.25,
                      "prior_mean": [-7.9593, 1.5482, 0.7367, 3.4181, 0.0, 0.0],
                      "prior_sd": [3.5487, 3.5018, 2.5423, 2.4406, 0.2, 1.0]},
           # R escalation's example skeletons for 5 doses (the design's example()), 12 randomised
           "wages_tait": {"type": "wages_tait", "max_patients": 36, "cohort_size": 3,
                          "num_randomise": 12, "tox_limit": 0.3, "eff_limit": 0.2,
                          "tox_skeleton": [0.01, 0.08, 0.15, 0.22, 0.29],
                          "eff_skeletons": [list(r) for r in WagesTait.example(5).eff_skeletons]}}
#: Goals of the design library for 10,000 trials on one core (seconds).
GOAL = {"blrm": 2.0, "boin12": 2.0, "efftox": 2.0, "wages_tait": 2.0}   # the efficacy-toxicity designs' goal
#: Designs slow enough to time once.
ONCE = {"efftox"}


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
    for name, design in DESIGNS.items():
        truth = {**SCENARIO["truth"], **(EFF_TOX if name in EFFICACY else {})}
        study = ts.from_dict({**SCENARIO, "truth": truth, "design": design})
        ts.simulate(study, 200, seed=0)   # warm the JIT and caches
        t = best_of(lambda: ts.simulate(study, n, seed=1), repeat=1 if name in ONCE else 3)
        goal = GOAL.get(name, 0.1)
        print(f"{name:<10} {n} trials in {t:.3f} s = {n / t:>9,.0f} trials/s  "
              f"(goal for 10,000: < {goal:g} s; {'met' if t * 10_000 / n < goal else 'NOT met'})")
    t_crm = best_of(lambda: ts.simulate(crm, n, seed=1))
    n_base = max(n // 50, 20)
    t_base = best_of(lambda: per_trial_crm(crm, n_base, 1), repeat=1) * n / n_base
    print(f"baseline: per-trial decide() loop, CRM, scaled to {n} trials: {t_base:.2f} s"
          f" -> lockstep is {t_base / t_crm:.0f}x faster")


if __name__ == "__main__":
    main()
