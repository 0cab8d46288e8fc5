"""Command line: ``trialsim run | validate | show``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from trialsim.errors import ConfigError

DEFAULT_TRIALS = 1000
DEFAULT_SEED = 20261125


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
        self.stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} trials  {elapsed:5.1f} s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _fmt_table(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="")


def cmd_run(args) -> int:
    import trialsim as ts
    from trialsim.store import save_simulations

    study = ts.load(args.config, overrides=args.set or [])
    sim_cfg = study.config.get("simulation", {})
    n_trials = args.trials or sim_cfg.get("n_trials", DEFAULT_TRIALS)
    seed = args.seed if args.seed is not None else sim_cfg.get("seed", DEFAULT_SEED)
    out = Path(args.out) if args.out else Path("out") / study.name
    t0 = time.perf_counter()
    sims = ts.simulate(study, n_trials=n_trials, seed=seed, progress=Progress())
    summary, metrics = sims.summary(), sims.metrics()
    elapsed = time.perf_counter() - t0
    design = type(study.design).__name__
    print(f"{study.name}: {n_trials} trials, seed {seed}, design {study.config['design']['type']}"
          f" ({design}), doses in {study.dose_unit or 'dose units'}, target toxicity {study.target:g}"
          f" (true MTD {metrics.attrs['true_mtd']:g}); {elapsed:.2f} s")
    print()
    print(_fmt_table(summary))
    print()
    print(_fmt_table(metrics))
    paths = save_simulations(sims, out, n_trials, ts.__version__)
    print(f"\nwrote {', '.join(p.name for p in paths)} to {out}/")
    return 0


def cmd_validate(args) -> int:
    import trialsim as ts

    bad = 0
    for path in args.config:
        try:
            ts.load(path)
        except ConfigError as e:
            bad += 1
            errs = getattr(e, "errors", [e])
            print(f"{path}: {len(errs)} error{'s' if len(errs) > 1 else ''}")
            for err in errs:
                print(f"  {err}")
        else:
            print(f"{path}: OK")
    return 1 if bad else 0


def cmd_show(args) -> int:
    if args.what == "pk":
        from trialsim.pk import library
        if not args.name:
            print("\n".join(library.available()))
            return 0
        try:
            print(library.describe(args.name))
        except KeyError as e:
            print(e.args[0], file=sys.stderr)
            return 1
        return 0
    from trialsim.registry import names
    print("\n".join(names(args.what)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trialsim", description="Simulate dose-finding clinical trials.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="simulate a study and write its operating characteristics")
    r.add_argument("config", help="study YAML file")
    r.add_argument("--trials", type=int, help=f"number of simulated trials (default: simulation.n_trials or {DEFAULT_TRIALS})")
    r.add_argument("--seed", type=int, help="root seed (default: simulation.seed or %d)" % DEFAULT_SEED)
    r.add_argument("--out", help="output folder (default: out/<study name>)")
    r.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a config value, e.g. --set design.target=0.25 (repeatable)")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="check study files; exit status 1 if any is invalid")
    v.add_argument("config", nargs="+")
    v.set_defaults(func=cmd_validate)
    s = sub.add_parser("show", help="show a registered model: 'show pk NAME', or list: 'show design'")
    s.add_argument("what", choices=["pk", "design", "modifier", "response", "distribution"])
    s.add_argument("name", nargs="?")
    s.set_defaults(func=cmd_show)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
