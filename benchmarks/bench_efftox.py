"""EffTox's speed against the accuracy of its decisions, by the number of posterior points.

The design's posterior is importance sampling on ``points`` quasi-random points (docs/designs.md):
fewer points run faster and miss the exact posterior by more.  For each setting this prints the
time of 10,000 trials on one core (the scenario and design of ``bench_designs.py``: 36 patients
in cohorts of 3, Thall et al. 2014's priors), its ratio to the default (4,096 points, decisions
screened) run in the same process, and how many of the decisions taken in ``--agree`` trials
(at the default) differ from those on a 65,536-point posterior (not screened), which stands in
for the exact one.

    python benchmarks/bench_efftox.py [--trials 10000] [--agree 1000]
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

import trialsim as ts
from trialsim.designs import EffTox

# the scenario, design and timer of bench_designs.py (a sibling script, loaded by its path)
_spec = importlib.util.spec_from_file_location("bench_designs",
                                               Path(__file__).with_name("bench_designs.py"))
_designs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_designs)
DESIGNS, EFF_TOX, SCENARIO, best_of = (_designs.DESIGNS, _designs.EFF_TOX, _designs.SCENARIO,
                                       _designs.best_of)

SETTINGS = (256, 512, 1024, 2048, 4096, 16384)
REFERENCE = 65536


def study(points: int):
    return ts.from_dict({**SCENARIO, "truth": {**SCENARIO["truth"], **EFF_TOX},
                         "design": {**DESIGNS["efftox"], "points": points}})


def next_dose(design: EffTox, state, post) -> np.ndarray:
    """The dose each trial's decision picks on ``post`` (-1: none acceptable)."""
    ok = design.acceptable(state, post)
    u = np.where(ok, design.utility(post.mean_eff, post.mean_tox), -np.inf)
    return np.where(ok.any(axis=1), np.argmax(u, axis=1), -1)


def decision_states(n: int) -> list:
    """The trial states EffTox decides on in ``n`` trials at its default points."""
    seen = []
    original = EffTox.decision_posterior

    def record(self, state):
        seen.append(state)
        return original(self, state)

    EffTox.decision_posterior = record
    try:
        ts.simulate(study(4096), n, seed=1)
    finally:
        EffTox.decision_posterior = original
    return [s for s in seen if s.n_trials]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--agree", type=int, default=1_000)
    args = ap.parse_args()
    states = decision_states(args.agree)
    ref_design = study(REFERENCE).design
    ref = [next_dose(ref_design, s, ref_design.posterior(s)) for s in states]
    total = sum(r.size for r in ref)
    times = {}
    for points in SETTINGS:
        st = study(points)
        ts.simulate(st, 200, seed=0)      # warm the JIT and caches
        times[points] = best_of(lambda: ts.simulate(st, args.trials, seed=1), repeat=1)
        d = st.design
        differ = sum(int((next_dose(d, s, d.decision_posterior(s)) != r).sum())
                     for s, r in zip(states, ref))
        print(f"points {points:>6}: {args.trials} trials in {times[points]:6.2f} s; decisions "
              f"differing from {REFERENCE:,} points: {differ} of {total} "
              f"({100 * differ / total:.2f} %)", flush=True)
    base = times[4096]
    print("ratio to the default (4,096 points): "
          + ", ".join(f"{p}: {times[p] / base:.2f}" for p in SETTINGS))


if __name__ == "__main__":
    main()
