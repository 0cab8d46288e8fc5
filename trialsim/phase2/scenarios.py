"""A phase II trial over a set of scenarios (flat, linear, Emax, umbrella, placebo-heavy, ...)
on common random numbers: every scenario simulates the same trials from the same seed and
scenario address, so the same virtual patients (their covariates, PK variability, subject
effects and noise), the same randomisation and the same dropout draws meet each version of the
world.  Differences between scenarios are then due to the world alone, and their Monte Carlo
error is much smaller than that of independent runs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from trialsim.phase2.results import Phase2Simulations
from trialsim.phase2.simulate import memory_estimate, simulate_phase2
from trialsim.phase2.study import Phase2Study


def scenario_memory(study: Phase2Study, n_trials: int) -> float:
    """Bytes a scenario set needs at its peak (the results of every scenario are kept)."""
    return sum(memory_estimate(s, n_trials) for s in study.scenarios.values())


def simulate_scenarios(study: Phase2Study, n_trials: int, seed: int, *, scenario: int = 0,
                       first_trial: int = 0,
                       progress: Callable[[int, int], None] | None = None,
                       max_memory_gb: float = 8.0) -> "ScenarioSimulations":
    """Simulate trials ``first_trial ..`` of every scenario of ``study`` (in the order of the
    study file) on common random numbers.  ``progress(done, total)`` counts trials over all
    scenarios."""
    if not study.scenarios:
        raise ValueError("the study has no scenarios (add a scenarios: section)")
    from trialsim.limits import check_memory_limit

    check_memory_limit(scenario_memory(study, n_trials),
                       f"{len(study.scenarios)} scenarios x {n_trials:,} phase II trials",
                       max_memory_gb)
    total = n_trials * len(study.scenarios)
    results = {}
    for k, (name, s) in enumerate(study.scenarios.items()):
        step = None
        if progress is not None:
            step = (lambda done, _n, k=k: progress(k * n_trials + done, total))
        results[name] = simulate_phase2(s, n_trials, seed, scenario=scenario,
                                        first_trial=first_trial, progress=step,
                                        max_memory_gb=max_memory_gb,
                                        like=next(iter(results.values()), None))
    first = next(iter(results.values()))
    return ScenarioSimulations(study=study, seed=first.seed, scenario=scenario, results=results)


@dataclass(frozen=True)
class ScenarioSimulations:
    """Results of :func:`simulate_scenarios`: ``results`` scenario name →
    :class:`~trialsim.phase2.results.Phase2Simulations`; the tables stack them with a leading
    ``scenario`` column."""

    study: Phase2Study
    seed: int
    scenario: int
    results: dict[str, Phase2Simulations]

    @property
    def n_trials(self) -> int:
        return next(iter(self.results.values())).n_trials

    def _stack(self, get) -> pd.DataFrame:
        parts = []
        for name, r in self.results.items():
            df = get(r).copy()
            df.insert(0, "scenario", name)
            parts.append(df)
        return pd.concat(parts, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per scenario and arm (see :meth:`Phase2Simulations.summary`)."""
        return self._stack(lambda r: r.summary())

    def metrics(self) -> pd.DataFrame:
        """Per scenario the trial-level operating characteristics, with the true target dose
        and the true dose to take forward in columns ``true_td`` and ``true_forward``."""
        return self._stack(lambda r: r.metrics())

    @property
    def trials(self) -> pd.DataFrame:
        return self._stack(lambda r: r.trials)

    @property
    def patients(self) -> pd.DataFrame:
        return self._stack(lambda r: r.patients)

    def printed_tables(self, summary: pd.DataFrame | None = None
                       ) -> list[tuple[str, pd.DataFrame]]:
        """For the terminal: the operating characteristics side by side (a column per
        scenario, "value (se)"), then the percentage of trials taking each dose forward."""
        m = self.metrics()
        names = list(self.results)
        cell = m.apply(lambda r: f"{r['value']:.2f} ({r['se']:.2f})", axis=1)
        oc = (pd.DataFrame({"metric": m["metric"], "scenario": m["scenario"], "cell": cell})
              .pivot(index="metric", columns="scenario", values="cell")
              .reindex(index=list(dict.fromkeys(m["metric"])), columns=names).fillna(""))
        truth = pd.DataFrame([[_fmt(r.truth.td) for r in self.results.values()],
                              [_dose(r) for r in self.results.values()]],
                             index=["true TD", "true dose forward"], columns=names)
        oc = pd.concat([truth, oc]).reset_index(names="metric")
        s = self.summary()
        fw = (s.pivot(index="dose", columns="scenario", values="forward_pct")
              .reindex(index=list(dict.fromkeys(s["dose"])), columns=names)
              .reset_index())
        unit = self.study.dose_unit or "dose"
        fw = fw.rename(columns={"dose": f"dose ({unit})"})
        return [("operating characteristics per scenario: value (Monte Carlo SE), common "
                 "random numbers", oc),
                ("% of trials taking each dose forward", fw)]


def _fmt(x: float) -> str:
    return "none" if x != x else f"{x:.4g}"


def _dose(r: Phase2Simulations) -> str:
    f = r.truth.forward
    return "none" if f < 0 else f"{r.truth.doses[f]:g}"
