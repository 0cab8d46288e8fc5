"""A sweep through the Python API: designs x scenarios on the same virtual patients, in local
processes, then the correct-selection rate of each cell.

    python scripts/sweep_api.py configs/sweeps/escalation_designs.yaml out/sweep
"""
from __future__ import annotations

import sys

from trialsim.config.sweep import load_sweep
from trialsim.sweep import collect, run_sweep


def main(sweep_file: str, out: str) -> None:
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, out, backend="processes")
    summary, metrics = collect(out)
    axes = [c for c in metrics.columns if c not in ("cell", "metric", "value", "se")]
    best = metrics[metrics["metric"] == "correct_selection_pct"]
    print(best[["cell", *axes, "value", "se"]].to_string(index=False))


if __name__ == "__main__":
    main(*sys.argv[1:3])
