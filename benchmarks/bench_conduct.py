"""Cost of the timed path (each trial on its simpy calendar) against the untimed lockstep path,
both run here on the ketamine flagship (its conduct: section), and trials per second.

    python benchmarks/bench_conduct.py [--trials 10000]

Goal (issue: trial conduct in calendar time): 10,000 flagship trials with conduct in under
60 s on 2 cores (this script uses one; a sweep with 2 workers splits the trials).

Then the TITE-CRM (decisions inside the calendar: 30 patients in cohorts of 3, as the design
library's benchmarks, and one at a time; 4-week DLT window; one patient a week), split into
laying out the calendars and the lockstep decisions that read them, beside the CRM on the same truth untimed (goal of the design library for the TITE-CRM:
10,000 trials in under 2 s on one core).

Last, BOIN with backfilling (``configs/examples/boin_backfill.yaml``: calendars and decisions
interleaved) against BOIN on the same truth without backfill, with and without its calendar
(no stated goal; R bfboin's ``get.oc.bf`` takes about 13 ms per trial here)."""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

import trialsim as ts
from trialsim.conduct.followup import follow_up_clock
from trialsim.simulate import DEFAULT_BATCH, run_batch

FLAGSHIP = Path(__file__).resolve().parents[1] / "configs" / "ketamine_iv_trd.yaml"
BACKFILL = Path(__file__).resolve().parents[1] / "configs" / "examples" / "boin_backfill.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000)
    n = ap.parse_args().trials
    timed = ts.load(FLAGSHIP)
    untimed = dataclasses.replace(timed, conduct=None)
    ts.simulate(timed, 50, seed=0)          # warm the JIT
    t0 = time.perf_counter()
    ts.simulate(untimed, n, seed=1)
    t_untimed = time.perf_counter() - t0
    t0 = time.perf_counter()
    ts.simulate(timed, n, seed=1)
    t_timed = time.perf_counter() - t0
    print(f"untimed (lockstep): {n:,} trials in {t_untimed:.2f} s = {n / t_untimed:,.0f} trials/s")
    print(f"timed (calendar):   {n:,} trials in {t_timed:.2f} s = {n / t_timed:,.0f} trials/s "
          f"({t_timed / t_untimed:.1f}x the untimed path; calendar "
          f"{1e3 * (t_timed - t_untimed) / n:.2f} ms per trial)")
    print(f"goal: 10,000 timed trials < 60 s on 2 cores -> one core "
          f"{'meets it alone' if t_timed * 10_000 / n < 60 else 'needs the second'}")
    tite_crm(n)
    backfill(n)


TITE = {"doses": [1, 2, 3, 4, 5], "target": 0.30,
        "truth": {"tox": [0.05, 0.10, 0.30, 0.45, 0.60]},
        "design": {"type": "tite_crm", "target": 0.30,
                   "skeleton": [0.05, 0.12, 0.25, 0.40, 0.55], "max_patients": 30,
                   "modifiers": [{"type": "dont_skip_doses", "relative_to": "current"}]},
        "conduct": {"sites": [{"rate_per_week": 1.0}], "window_h": 672}}


def tite_crm(n: int) -> None:
    for cohort in (3, 1):
        tite = {**TITE, "design": {**TITE["design"], "cohort_size": cohort}}
        study = ts.from_dict(tite)
        crm = dataclasses.replace(study, conduct=None, design=ts.from_dict(
            {**tite, "design": {**tite["design"], "type": "crm"}}).design)
        ts.simulate(study, 50, seed=0)
        ts.simulate(crm, 50, seed=0)
        t_clock = t_decide = 0.0
        for start in range(0, n, DEFAULT_BATCH):
            trials = np.arange(start, min(start + DEFAULT_BATCH, n))
            t0 = time.perf_counter()
            clock = follow_up_clock(study, trials, 1, 0)
            t1 = time.perf_counter()
            run_batch(study, trials, 1, 0, clock)
            t_clock += t1 - t0
            t_decide += time.perf_counter() - t1
        t0 = time.perf_counter()
        ts.simulate(crm, n, seed=1)
        t_crm = time.perf_counter() - t0
        print(f"TITE-CRM, cohorts of {cohort}: {n:,} trials: calendars {t_clock:.2f} s, "
              f"decisions {t_decide:.2f} s ({t_decide / t_crm:.1f}x the untimed CRM's "
              f"{t_crm:.2f} s); goal for the design: < 2 s per 10,000 -> "
              f"{'met' if t_decide * 10_000 / n < 2 else 'NOT met'}")

def backfill(n: int) -> None:
    study = ts.load(BACKFILL)
    # without backfill, patients who arrive during a window wait for the next cohort (a
    # cohort of 3 never fills if nobody may wait)
    boin = dataclasses.replace(study, design=study.design.parent,
                               conduct=dataclasses.replace(study.conduct, max_wait_days=1e4))
    untimed = dataclasses.replace(boin, conduct=None)
    times = []
    for s in (untimed, boin, study):
        ts.simulate(s, 20, seed=0)
        t0 = time.perf_counter()
        ts.simulate(s, n, seed=1)
        times.append(time.perf_counter() - t0)
    print(f"BOIN with backfill: {n:,} trials in {times[2]:.2f} s ({1e3 * times[2] / n:.2f} ms per "
          f"trial; BOIN without backfill {times[1]:.2f} s on its calendar, {times[0]:.3f} s "
          f"untimed: {times[2] / times[1]:.1f}x and {times[2] / times[0]:.0f}x)")


if __name__ == "__main__":
    main()
