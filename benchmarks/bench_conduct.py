"""Cost of the timed path (each trial on its simpy calendar) against the untimed lockstep path,
both run here on the ketamine flagship (its conduct: section), and trials per second.

    python benchmarks/bench_conduct.py [--trials 10000]

Goal (issue: trial conduct in calendar time): 10,000 flagship trials with conduct in under
60 s on 2 cores (this script uses one; a sweep with 2 workers splits the trials)."""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import trialsim as ts

FLAGSHIP = Path(__file__).resolve().parents[1] / "configs" / "ketamine_iv_trd.yaml"


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


if __name__ == "__main__":
    main()
