"""Command line: ``trialsim run | validate | analyse | table | sweep | collect | report | show``.

Every failure the user can cause ends with one line ``error: ...`` naming the file and YAML
path (or the option) and a non-zero exit status: 1 for bad input, 2 for bad options
(argparse), 130 when interrupted (Ctrl-C), 143 when terminated (SIGTERM).  With
``TRIALSIM_DEBUG=1`` in the environment the traceback is printed too (an error raised in a
plugin's code is reported with its cause's type and place, and chained to it).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from trialsim.cli_analyse import cmd_analyse
from trialsim.cli_show import SHOW_KINDS, cmd_show
from trialsim.cli_trace import check_trace, trace_table
from trialsim.errors import ConfigError, format_path

DEFAULT_TRIALS = 1000
DEFAULT_SEED = 20261125
EXIT_INPUT, EXIT_INTERNAL, EXIT_INT, EXIT_PIPE, EXIT_TERM = 1, 70, 130, 141, 143


class Terminated(BaseException):
    """SIGTERM received (a BaseException, like KeyboardInterrupt, so cleanups run)."""


class Progress:
    """A one-line progress bar on stderr, shown only on a terminal and only once a run has
    lasted more than a second."""

    def __init__(self, stream=sys.stderr, delay: float = 1.0):
        self.stream, self.delay, self.start, self.shown = stream, delay, time.perf_counter(), False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        if not self.stream.isatty() or (elapsed < self.delay and done < total and not self.shown):
            return
        if not self.shown and done >= total:
            return
        self.shown = True
        width = 30
        fill = int(width * done / total)
        self.stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} trials  "
                          f"{elapsed:5.1f} s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _fmt_table(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="")


def cmd_run(args) -> int:
    import trialsim as ts
    from trialsim.simulate import check_memory
    from trialsim.store import check_output, save_simulations

    study = ts.load(args.config, overrides=args.set or [])
    if args.scenario is not None:
        known = getattr(study, "scenarios", None) or {}
        if args.scenario not in known:
            raise ConfigError(f"no scenario {args.scenario!r} in {args.config}; known: "
                              f"{', '.join(known) or 'none (the study has no scenarios: section)'}",
                              ("--scenario",))
        study = known[args.scenario]
    sim_cfg = study.config.get("simulation", {})
    n_trials = args.trials if args.trials is not None else sim_cfg.get("n_trials", DEFAULT_TRIALS)
    seed = args.seed if args.seed is not None else sim_cfg.get("seed", DEFAULT_SEED)
    check_memory(study, n_trials, args.max_memory_gb)
    if args.trace is not None:
        check_trace(study, args.trace, n_trials)
    out = check_output(args.out if args.out is not None else Path("out") / study.name)
    print(f"{study.name}: simulating {n_trials:,} trials (seed {seed}) ...", flush=True)
    t0 = time.perf_counter()
    try:
        sims = ts.simulate(study, n_trials=n_trials, seed=seed, progress=Progress(),
                           max_memory_gb=args.max_memory_gb)
    except ConfigError as e:      # found while simulating (e.g. a calendar that cannot run)
        raise e.at((), file=e.file or str(args.config)) from None
    summary, metrics = sims.summary(), sims.metrics()
    elapsed = time.perf_counter() - t0
    print(_headline(study, n_trials, seed, metrics, elapsed))
    if getattr(study, "scenarios", None):
        tables = sims.printed_tables(summary)
    elif hasattr(sims, "printed_tables"):
        tables = sims.printed_tables(summary) + [("", metrics)]
    else:
        tables = [("", summary), ("", metrics)]
    for title, table in tables:
        print(f"\n{title}" if title else "")
        print(_fmt_table(table))
    extra = {}
    if args.trace is not None:
        trace = trace_table(sims, args.trace)
        print(f"\ntrial {args.trace} in calendar time (hours from the trial's start):")
        print(trace.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
        extra[f"trace_{args.trace}.csv"] = lambda p: trace.to_csv(p, index=False)
    paths = save_simulations(sims, out, n_trials, ts.__version__, extra)
    print(f"\nwrote {', '.join(p.name for p in paths)} to {out}/")
    return 0


def _headline(study, n_trials, seed, metrics, elapsed) -> str:
    unit = study.dose_unit or "dose units"
    kind = study.config["design"]["type"]
    if "true_mtd" in metrics.attrs:
        obd = ""
        if "true_optimal_dose" in metrics.attrs:
            v = metrics.attrs["true_optimal_dose"]
            obd = f", true optimal dose {'none' if v is None else format(v, 'g')}"
        return (f"{study.name}: {n_trials} trials, seed {seed}, design {kind} "
                f"({type(study.design).__name__}), doses in {unit}, target toxicity "
                f"{study.target:g} (true MTD {metrics.attrs['true_mtd']:g}{obd}); "
                f"{elapsed:.2f} s")
    a = study.analysis
    if study.scenarios:
        return (f"{study.name}: {n_trials} phase II trials in each of {len(study.scenarios)} "
                f"scenarios ({', '.join(study.scenarios)}) on common random numbers, seed "
                f"{seed}, design {kind}, {study.design.n_total} patients, endpoint "
                f"{study.endpoint.type} at {study.endpoint.visit_h:g} h, MCP-Mod (alpha "
                f"{a.alpha:g}, delta {a.delta:g}); {elapsed:.2f} s")
    td, fwd = metrics.attrs["true_td"], metrics.attrs["true_forward"]
    return (f"{study.name}: {n_trials} phase II trials, seed {seed}, design {kind}, "
            f"{study.design.n_total} patients, endpoint {study.endpoint.type} at "
            f"{study.endpoint.visit_h:g} h, MCP-Mod (alpha {a.alpha:g}, delta {a.delta:g}); "
            f"true TD {'none' if td != td else f'{td:.4g} {unit}'}, true dose to take forward "
            f"{'none' if fwd != fwd else format(fwd, 'g')}; {elapsed:.2f} s")


def cmd_validate(args) -> int:
    import trialsim as ts

    from trialsim.config.sweep import is_sweep_file, load_sweep

    bad = 0
    for path in args.config:
        try:
            if is_sweep_file(path):
                if args.set:
                    raise ConfigError("--set changes study files; change the sweep's axes or "
                                      "its study instead", (), str(path))
                ok = f"OK (a sweep of {len(load_sweep(path).cells)} cells)"
            else:
                ts.load(path, overrides=args.set or [])
                ok = "OK"
        except ConfigError as e:
            bad += 1
            errs = getattr(e, "errors", [e])
            print(f"{path}: {len(errs)} error{'s' if len(errs) > 1 else ''}")
            for err in errs:
                print(f"  {err}")
        else:
            print(f"{path}: {ok}")
    return EXIT_INPUT if bad else 0


def cmd_table(args) -> int:
    """Print the design's boundary table (interval designs) and its dose-transition pathways;
    with ``--out FOLDER`` also write them as ``boundaries.csv`` and ``pathways.csv`` (the
    folder checked first and replaced whole, as ``run``'s)."""
    import trialsim as ts
    from trialsim.designs.tables import boundary_table, dose_transition_pathways, format_pathways
    from trialsim.store import check_output, write_outputs

    files = ("pathways.csv", "boundaries.csv")
    out = check_output(args.out, files) if args.out is not None else None
    if args.cohorts > 10:
        raise ValueError(f"--cohorts: expected at most 10 cohorts ahead, got {args.cohorts}")
    study = ts.load(args.config, overrides=args.set or [])
    design = getattr(study, "design", None)
    if design is None or not hasattr(design, "decide"):
        raise ConfigError(f"{args.config}: 'trialsim table' needs a dose-escalation design "
                          "(a phase II study has no dose-transition pathways)")
    try:
        paths = dose_transition_pathways(design, list(study.doses), args.cohorts,
                                         args.history or "")
    except ValueError as e:
        raise ValueError(f"--history {args.history!r}: {e}" if args.history else str(e)) \
            from None
    bounds = boundary_table(design)
    if bounds is not None:
        print(f"{study.name}: boundaries at the current dose (counts of DLTs)\n")
        print(_fmt_table(bounds.fillna(pd.NA)))
        print()
    new = paths.loc[paths["cohort"] >= 1, "path"].str.split().str[-1]
    sizes = sorted({len(step.lstrip("0123456789")) for step in new} or {design.cohort_size})
    of, note = ((f"{sizes[0]}", "") if len(sizes) == 1 else
                (", ".join(map(str, sizes[:-1])) + f" or {sizes[-1]} patients",
                 "sizes set by the design; "))
    follow = ("\nEach patient is followed to the end of the window here; a trial decides with "
              "partial follow-up, so its path can differ.\n"
              if getattr(design, "follow_up", False) else "")
    print(f"{study.name}: dose-transition pathways over {args.cohorts} cohort"
          f"{'s' if args.cohorts > 1 else ''} of {of} ({note}dose levels from 1)\n{follow}")
    print(format_pathways(paths, getattr(study, "dose_unit", "") or ""))
    if out is not None:
        tables = {"pathways.csv": paths} if bounds is None else {"pathways.csv": paths,
                                                                 "boundaries.csv": bounds}
        written = write_outputs(out, {name: lambda p, df=df: df.to_csv(p, index=False)
                                      for name, df in tables.items()})
        print("\nwrote " + ", ".join(p.name for p in written) + f" to {out}/")
    return 0


def _number_option(convert: type, low: float, above: bool, what: str):
    """An argparse type: ``convert`` of the text, at least (or, with ``above``, more than)
    ``low`` and finite; the message says ``what`` was expected."""
    def parse(text: str):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (v > low if above else v >= low) or v == float("inf"):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return v
    return parse


def cmd_sweep(args) -> int:
    from trialsim.config.sweep import load_sweep
    from trialsim.sweep import collect, run_sweep
    from trialsim.sweep.run import SweepProgress, pending, plan

    sweep = load_sweep(args.sweep)
    if (args.task is None) != (args.of is None):
        raise ConfigError("--task and --of go together (task I of N array jobs)", ("--task",))
    mine = plan(sweep, args.task, args.of or 1)
    print(f"{sweep.source}: {len(sweep.cells)} cells x {sweep.n_trials:,} trials "
          f"(seed {sweep.seed}), {len(mine)} tasks of up to {sweep.chunk:,} trials"
          + ("" if args.task is None else f" (array task {args.task} of {args.of})"), flush=True)
    todo = pending(mine, Path(args.out))       # a resumed sweep counts what is left
    progress = SweepProgress(len(todo), sum(t.stop - t.start for t in todo))
    try:
        ran = run_sweep(sweep, args.out, backend=args.backend, workers=args.workers,
                        task_index=args.task, n_tasks=args.of or 1, progress=progress,
                        scheduler=args.scheduler)
    except (KeyboardInterrupt, Terminated) as e:
        raise type(e)(f"the finished tasks are kept in {args.out}/; the same command "
                      "resumes the sweep") from None
    print(f"ran {len(ran)} tasks ({len(mine) - len(ran)} already done) into {args.out}/")
    if args.task is None:
        return _print_collected(collect(args.out)[1], args.out)
    return 0


def cmd_collect(args) -> int:
    from trialsim.sweep import collect
    return _print_collected(collect(args.folder)[1], args.folder)


def cmd_report(args) -> int:
    from trialsim.report import write_report
    path = write_report(args.folder, args.out)
    print(f"wrote {path} (and report_comparison.csv in {args.folder}/)")
    return 0


def _print_collected(metrics: pd.DataFrame, out) -> int:
    head = metrics[metrics["metric"].isin(["correct_selection_pct", "no_selection_pct"])]
    print(_fmt_table(head) if len(head) else _fmt_table(metrics.head(20)))
    print(f"\nwrote summary.csv, metrics.csv to {out}/")
    return 0


_positive_int = _number_option(int, 0, True, "a positive integer")
_seed = _number_option(int, 0, False, "an integer >= 0")
_positive_float = _number_option(float, 0.0, True, "a positive number")


def build_parser() -> argparse.ArgumentParser:
    from trialsim.simulate import DEFAULT_MAX_MEMORY_GB

    p = argparse.ArgumentParser(prog="trialsim", description="Simulate dose-finding clinical "
                                                             "trials.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="simulate a study and write its operating characteristics")
    r.add_argument("config", help="study YAML file")
    r.add_argument("--trials", type=_positive_int,
                   help=f"number of simulated trials (default: simulation.n_trials or "
                        f"{DEFAULT_TRIALS})")
    r.add_argument("--seed", type=_seed,
                   help="root seed (default: simulation.seed or %d)" % DEFAULT_SEED)
    r.add_argument("--out", help="output folder (default: out/<study name>); an existing "
                                 "results folder is replaced whole")
    r.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a config value, e.g. --set design.target=0.25 (repeatable)")
    r.add_argument("--trace", type=_seed, metavar="K",
                   help="print and write (trace_K.csv) the calendar of trial K: arrivals, "
                        "dosing, decisions (studies with a conduct: section)")
    r.add_argument("--scenario", metavar="NAME",
                   help="run only this scenario of a phase II study's scenarios: section")
    r.add_argument("--max-memory-gb", type=_positive_float, default=DEFAULT_MAX_MEMORY_GB,
                   help="refuse runs estimated to need more memory (GiB; default "
                        f"{DEFAULT_MAX_MEMORY_GB:g})")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="check study (or sweep) files; exit status 1 if any is "
                                       "invalid")
    v.add_argument("config", nargs="+")
    v.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a config value in every file, as run's (repeatable)")
    v.set_defaults(func=cmd_validate)
    a = sub.add_parser("analyse", help="MCP-Mod on a trial's data (CSV) with an analysis plan "
                                       "(YAML): print the result and write it as JSON")
    a.add_argument("data", help="CSV file with a header row (dose, response, covariates)")
    a.add_argument("--models", required=True, metavar="PLAN.yaml",
                   help="analysis plan: candidate models with guesstimates, delta or p, "
                        "alpha, ... (see docs/analysis.md)")
    a.add_argument("--out", metavar="FILE.json",
                   help="JSON output (default: <data file stem>.mcpmod.json here)")
    a.set_defaults(func=cmd_analyse)
    t = sub.add_parser("table", help="what the design will do: its boundary table (interval "
                                     "designs) and dose-transition pathways for the next "
                                     "cohorts")
    t.add_argument("config", help="study YAML file")
    t.add_argument("--cohorts", type=_positive_int, default=2,
                   help="cohorts ahead to enumerate (default 2, at most 10)")
    t.add_argument("--history", metavar="OUTCOMES",
                   help="start from these outcomes, e.g. '1NNN 2NTN' (dose levels from 1)")
    t.add_argument("--out", metavar="FOLDER",
                   help="also write pathways.csv (and boundaries.csv) there")
    t.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a config value, as run's (repeatable)")
    t.set_defaults(func=cmd_table)
    w = sub.add_parser("sweep", help="run a sweep of studies (cells x trials) into a folder of "
                                     "task files; re-running resumes")
    w.add_argument("sweep", help="sweep YAML file (a base study and axes)")
    w.add_argument("--out", required=True, help="results folder (task files, summary.csv, "
                                                "metrics.csv)")
    w.add_argument("--backend", choices=("processes", "serial", "dask"), default="processes",
                   help="where tasks run (default: local processes; dask: an embedded "
                        "LocalCluster of --workers processes)")
    w.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the tasks on this running Dask scheduler (e.g. tcp://host:8786); "
                        "its workers must see --out")
    w.add_argument("--workers", type=_positive_int, help="worker processes (default: cores)")
    w.add_argument("--task", type=_seed, metavar="I", help="array-job mode: run task share I ...")
    w.add_argument("--of", type=_positive_int, metavar="N", help="... of N (then collect)")
    w.set_defaults(func=cmd_sweep)
    c = sub.add_parser("collect", help="combine a sweep folder's tasks into summary.csv and "
                                       "metrics.csv")
    c.add_argument("folder")
    c.set_defaults(func=cmd_collect)
    rp = sub.add_parser("report", help="a self-contained HTML report of a run or sweep folder")
    rp.add_argument("folder", help="a trialsim run or sweep output folder")
    rp.add_argument("--out", metavar="FILE.html", help="where to write (default: "
                                                       "FOLDER/report.html)")
    rp.set_defaults(func=cmd_report)
    s = sub.add_parser("show", help="list the registered types of a kind ('show design'), or "
                                    "describe one ('show design crm', 'show pk NAME')")
    s.add_argument("what", choices=SHOW_KINDS)
    s.add_argument("name", nargs="?")
    s.set_defaults(func=cmd_show)
    return p


#: The last signal that asked the run to end (raising from the handler can surface inside
#: compiled code as a SystemError, so the handler also records it here).
_SIGNALLED: list[int] = []


def _on_signal(signum, frame):  # pragma: no cover - exercised in a subprocess test
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _report(e: BaseException) -> int:
    """One line on stderr for what ended the command, and its exit status."""
    if _SIGNALLED or isinstance(e, (KeyboardInterrupt, Terminated)):
        # a signal, possibly surfacing inside compiled code as another exception; a command
        # that keeps what it finished says so in the exception
        what = (e.args[0] if isinstance(e, (KeyboardInterrupt, Terminated)) and e.args
                else "nothing was written")
        if isinstance(e, KeyboardInterrupt) or (_SIGNALLED and _SIGNALLED[-1] == signal.SIGINT):
            print(f"\ninterrupted: {what}", file=sys.stderr)
            return EXIT_INT
        print(f"terminated: {what}", file=sys.stderr)
        return EXIT_TERM
    if isinstance(e, BrokenPipeError):    # the reader left (| head): end quietly, as SIGPIPE
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_PIPE
    if os.environ.get("TRIALSIM_DEBUG"):
        traceback.print_exception(e)
        for x in getattr(e, "errors", [e]):
            if getattr(x, "origin", None) is not None:
                print(f"\n{format_path(x.path)}: the error above was raised by:", file=sys.stderr)
                traceback.print_exception(x.origin)
    if isinstance(e, (ConfigError, ValueError, TypeError)):
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(e, OSError):
        print(f"error: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
              file=sys.stderr)
        return EXIT_INPUT
    print(f"error: internal error ({type(e).__name__}: {e}); please report it (set "
          "TRIALSIM_DEBUG=1 to see the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _SIGNALLED.clear()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in previous:
            signal.signal(s, _on_signal)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        return args.func(args)
    except (Exception, KeyboardInterrupt, Terminated) as e:  # noqa: BLE001 - the front door
        return _report(e)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
