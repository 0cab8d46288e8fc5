"""Throughput of a sweep with 1 and 2 local worker processes, and the scaling efficiency
(throughput with 2 / twice the throughput with 1), measured in this process.

    python benchmarks/bench_sweep.py [--trials 20000]

Goals (issue: sweeps at scale): 2 workers give at least 1.8x the throughput of one (needs an
otherwise idle machine with 2 cores); a sweep of 10^6 trials (``--trials 250000``: 4 cells)
streams to disk with peak memory under 2 GB (printed: the largest resident set of this process
and of any worker process, after collecting the tables)."""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import yaml

from trialsim.config.sweep import load_sweep
from trialsim.sweep import collect, run_sweep

STUDY = {"name": "bench", "doses": [1, 2, 3, 4, 5],
         "truth": {"tox": [0.05, 0.10, 0.30, 0.45, 0.60]},
         "design": {"type": "crm", "target": 0.3, "skeleton": [0.05, 0.12, 0.25, 0.40, 0.55],
                    "max_patients": 30}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20_000, help="trials per cell (4 cells)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        doc = {"study": STUDY, "n_trials": args.trials, "seed": 1, "chunk": 2500,
               "axes": {"design.target": [0.25, 0.3], "truth.tox.2": [0.25, 0.35]}}
        (tmp / "s.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        sweep = load_sweep(tmp / "s.yaml")
        total = len(sweep.cells) * sweep.n_trials
        rates = {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            run_sweep(sweep, tmp / f"w{workers}", backend="processes", workers=workers)
            rates[workers] = total / (time.perf_counter() - t0)
            print(f"{workers} worker(s): {total:,} trials in {total / rates[workers]:.2f} s = "
                  f"{rates[workers]:,.0f} trials/s")
        print(f"speed-up with 2 workers: {rates[2] / rates[1]:.2f}x (goal >= 1.8x; scaling "
              f"efficiency {rates[2] / (2 * rates[1]):.0%})")
        collect(tmp / "w2")
        mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak resident memory: this process {mine:,.0f} MB (incl. collecting "
              f"{total:,} trials), largest worker {workers:,.0f} MB (goal < 2 GB)")


if __name__ == "__main__":
    main()
