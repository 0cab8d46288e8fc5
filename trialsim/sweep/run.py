"""Plan and run a sweep: tasks of (cell, trial range), skipped when their file is already there
(resume), run serially, in local worker processes, or on Dask (an embedded ``LocalCluster`` or
a running scheduler), with a progress line.

A task's file is written under a temporary name and renamed, and its content depends only on
the task: a worker killed mid-task leaves at most a temporary file, and a task that Dask runs
again (after a worker died) writes the same bytes."""
from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from trialsim.config.sweep import Sweep
from trialsim.sweep.tasks import Task, read_meta, run_task

PLAN_FILE = "sweep.json"
BACKENDS = ("serial", "processes", "dask")


def plan(sweep: Sweep, task_index: int | None = None, n_tasks: int = 1) -> list[Task]:
    """The sweep's tasks, cell by cell, in trial order; with ``task_index``, only the share
    ``i % n_tasks == task_index`` (array jobs)."""
    tasks = [Task(sweep.key, c.index, a, min(a + sweep.chunk, sweep.n_trials))
             for c in sweep.cells for a in range(0, sweep.n_trials, sweep.chunk)]
    if task_index is None:
        return tasks
    if not 0 <= task_index < n_tasks:
        raise ValueError(f"--task must lie in 0..{n_tasks - 1}, got {task_index}")
    return tasks[task_index::n_tasks]


def prepare(sweep: Sweep, out: Path) -> None:
    """Create ``out`` with the sweep's plan, or check an existing one is this sweep's."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / PLAN_FILE
    info = {"sweep": sweep.key, "source": sweep.source, "n_trials": sweep.n_trials,
            "seed": sweep.seed, "cells": [{"index": c.index, "labels": c.labels, "config": c.doc}
                                           for c in sweep.cells]}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("sweep") != sweep.key:
            raise ValueError(f"{out} holds the results of another sweep (or of this one with "
                             "other settings); choose another --out")
        return
    tmp = path.with_name(f".{PLAN_FILE}.tmp")
    tmp.write_text(json.dumps(info, indent=1, default=str))
    tmp.replace(path)


def pending(tasks: list[Task], out: Path) -> list[Task]:
    """The tasks whose file is missing or is not this task's."""
    todo = []
    for t in tasks:
        meta = read_meta(out / t.relpath)
        if meta is None or meta.get("task") != t.__dict__:
            todo.append(t)
    return todo


class SweepProgress:
    """Tasks done, trials per second and time left, on one line of ``stream``."""

    def __init__(self, total_tasks: int, total_trials: int, stream=sys.stderr):
        self.total_tasks, self.total_trials, self.stream = total_tasks, total_trials, stream
        self.tasks = self.trials = 0
        self.start = time.perf_counter()

    def __call__(self, n_trials: int) -> None:
        self.tasks += 1
        self.trials += n_trials
        rate = self.trials / max(time.perf_counter() - self.start, 1e-9)
        left = (self.total_trials - self.trials) / rate if rate > 0 else float("nan")
        end = "\n" if self.tasks == self.total_tasks else ""
        self.stream.write(f"\r{self.tasks}/{self.total_tasks} tasks, {self.trials:,} trials, "
                          f"{rate:,.0f} trials/s, {left:,.0f} s left   {end}")
        self.stream.flush()


def run_sweep(sweep: Sweep, out: str | Path, *, backend: str = "processes",
              workers: int | None = None, task_index: int | None = None, n_tasks: int = 1,
              progress: Callable[[int], None] | None = None,
              scheduler: str | None = None) -> list[Task]:
    """Run the sweep's pending tasks into ``out`` and return the tasks run.

    ``backend``: ``serial``, ``processes`` (``workers`` local processes) or ``dask`` (a
    ``LocalCluster`` of ``workers`` processes, or the running scheduler at ``scheduler``,
    whose workers must see ``out``).  ``task_index``/``n_tasks``: run only the tasks ``i``
    with ``i % n_tasks == task_index`` (array jobs; then
    :func:`~trialsim.sweep.collect.collect`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    out = Path(out)
    prepare(sweep, out)
    todo = pending(plan(sweep, task_index, n_tasks), out)
    # the documents in their own key order: a study's population is drawn in that order
    docs = {c.index: json.dumps(c.doc) for c in sweep.cells}
    args = [(t, docs[t.cell], sweep.seed, str(out)) for t in todo]
    if backend == "dask" or scheduler is not None:
        _run_dask(args, workers, scheduler, progress)
        return todo
    if backend == "serial" or (workers or 0) == 1 or len(todo) <= 1:
        for a in args:
            _, n = run_task(*a)
            if progress:
                progress(n)
        return todo
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context())
    try:
        for fut in as_completed([pool.submit(run_task, *a) for a in args]):
            _, n = fut.result()
            if progress:
                progress(n)
    except BaseException:       # interrupted or failed: the tasks not started are dropped
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return todo


def _context():
    """Fork where it is safe (Linux, no other thread in this process): the workers start with
    trialsim imported and its compiled kernels loaded (spawned workers spend seconds on that);
    spawn otherwise."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return get_context("fork")
    return get_context("spawn")


def _run_dask(args: list[tuple], workers: int | None, scheduler: str | None,
              progress: Callable[[int], None] | None) -> None:
    """Submit every task to Dask (each may be retried on another worker if one dies)."""
    try:
        from distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:  # pragma: no cover - distributed is a declared dependency
        raise ValueError("the dask backend needs the 'distributed' package") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    client = Client(scheduler if scheduler is not None else cluster)
    try:
        futures = [client.submit(run_task, *a, key=f"trialsim-{a[0].relpath}", retries=3,
                                 pure=False) for a in args]
        for fut in dask_completed(futures):
            _, n = fut.result()
            if progress:
                progress(n)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
