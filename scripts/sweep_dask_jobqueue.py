"""Run a sweep on a SLURM or PBS cluster through dask-jobqueue (pip install dask-jobqueue, or
the project's ``cluster`` extra): batch jobs start Dask workers, the sweep's tasks run on them,
and the results land in a folder every node sees.

    python scripts/sweep_dask_jobqueue.py configs/sweeps/escalation_designs.yaml /shared/out \\
        --queue slurm --jobs 10 --account myproject

Re-running resumes (finished tasks are skipped); a worker lost with its node only costs the
tasks it was running, which Dask runs again elsewhere.
"""
from __future__ import annotations

import argparse

from trialsim.config.sweep import load_sweep
from trialsim.sweep import collect, run_sweep
from trialsim.sweep.run import SweepProgress, plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep")
    ap.add_argument("out")
    ap.add_argument("--queue", choices=("slurm", "pbs"), default="slurm")
    ap.add_argument("--jobs", type=int, default=4, help="batch jobs, one worker process each")
    ap.add_argument("--account", help="account/project to charge")
    ap.add_argument("--walltime", default="01:00:00")
    args = ap.parse_args()
    from dask_jobqueue import PBSCluster, SLURMCluster
    cls = SLURMCluster if args.queue == "slurm" else PBSCluster
    cluster = cls(cores=1, processes=1, memory="2GB", walltime=args.walltime,
                  account=args.account)
    cluster.scale(jobs=args.jobs)
    sweep = load_sweep(args.sweep)
    tasks = plan(sweep)
    try:
        run_sweep(sweep, args.out, backend="dask", scheduler=cluster.scheduler_address,
                  progress=SweepProgress(len(tasks), len(sweep.cells) * sweep.n_trials))
    finally:
        cluster.close()
    print(collect(args.out)[1].to_string(index=False))


if __name__ == "__main__":
    main()
