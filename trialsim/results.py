"""``Simulations``: the raw arrays of simulated trials, tidy tables, and operating
characteristics with Monte Carlo standard errors."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from trialsim.conduct.arrays import CalendarArrays
from trialsim.conduct.dropout import drops
from trialsim.designs.base import NO_DOSE
from trialsim.stack import PerTrial
from trialsim.study import Study, Truth


@dataclass(frozen=True)
class TrialArrays(PerTrial):
    """Per-trial arrays of one or more batches (``T`` trials, ``D`` doses, ``P`` patient slots).

    ``selected`` (T,) dose index or NO_DOSE; ``reason`` (T,) why the trial stopped and
    ``stop_code`` (T,) the code of the rule that stopped it; ``n``,
    ``tox``, ``eff`` (T, D) counts; ``patient_dose`` / ``patient_cohort`` (T, P), NO_DOSE / -1
    for slots not enrolled; ``patient_tox`` / ``patient_eff`` (T, P) outcomes observed;
    ``patient_dropout`` (T, P) patients who left before their window's end, not evaluable
    (replaced; ``P`` then exceeds ``max_patients``, see ``trialsim.conduct.dropout``);
    ``patient_backfill`` (T, P) patients backfilled at a cleared dose (``P`` then exceeds
    ``max_patients``, see ``trialsim.designs.backfill``);
    ``benchmark`` (T,) the fully informed selection: knowing every patient's outcomes at every
    dose, the dose with toxicity rate closest to the target or, for efficacy-toxicity designs,
    the design's optimal dose at those rates (or NO_DOSE).
    """

    trials: np.ndarray
    selected: np.ndarray
    reason: np.ndarray
    stop_code: np.ndarray
    n: np.ndarray
    tox: np.ndarray
    eff: np.ndarray
    patient_dose: np.ndarray
    patient_cohort: np.ndarray
    patient_tox: np.ndarray
    patient_eff: np.ndarray
    patient_dropout: np.ndarray
    patient_backfill: np.ndarray
    benchmark: np.ndarray


def _mean_se(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[axis]
    se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.full(np.mean(x, axis=axis).shape, np.nan)
    return x.mean(axis=axis), se


def _closest(p: np.ndarray, target: float) -> np.ndarray:
    """Index along the last axis of the value closest to ``target``, ties (distances equal
    to 12 decimals) to the lower index: ``|0.15 - 0.2|`` and ``|0.25 - 0.2|`` differ in the
    last bit of a double, not in fact."""
    return np.argmin(np.round(np.abs(np.asarray(p, float) - target), 12), axis=-1)


def fully_informed_selection(tox: np.ndarray, target: float) -> np.ndarray:
    """The benchmark of O'Quigley, Paoletti & Maccario (2002): knowing every patient's outcome at
    every dose (``tox`` (T, P, D)), select the dose whose observed toxicity rate among the trial's
    patients is closest to ``target`` (ties to the lower dose)."""
    return _closest(tox.mean(axis=1), target).astype(np.int64)


def benchmark_selection(design, target: float, tox: np.ndarray,
                        eff: np.ndarray | None) -> np.ndarray:
    """The fully informed benchmark of each trial (T,): every outcome of the trial's first
    ``design.planned_patients`` patients (``tox``, ``eff`` (T, P, D) potential outcomes, more
    slots allowed) known at every dose; the dose :func:`fully_informed_selection` picks, or
    for an efficacy-toxicity design (``needs_efficacy``, with ``eff``) its own optimal dose of
    those rates."""
    P = int(design.planned_patients)
    t = tox[:, :P]
    if eff is not None and design.needs_efficacy:
        e = eff[:, :P]
        obd = design.optimal_dose(t.mean(axis=1), e.mean(axis=1), (t & e).mean(axis=1))
        if obd is not None:
            return np.asarray(obd, np.int64)
    return fully_informed_selection(t, target)


def true_mtd(tox: np.ndarray, target: float) -> int:
    """Index of the dose whose true toxicity probability is closest to ``target`` (ties: lower)."""
    return int(_closest(tox, target))


@dataclass(frozen=True)
class Simulations:
    """Results of ``simulate``: the study, seed, scenario index and raw arrays."""

    study: Study
    seed: int
    scenario: int
    arrays: TrialArrays
    calendar: CalendarArrays | None = None

    @property
    def n_trials(self) -> int:
        return len(self.arrays.trials)

    @cached_property
    def truth(self) -> Truth:
        return self.study.truth(self.seed, self.scenario)

    @cached_property
    def trials(self) -> pd.DataFrame:
        """One row per trial."""
        a, doses = self.arrays, np.asarray(self.study.doses, float)
        sel = a.selected
        return pd.DataFrame({
            "trial": a.trials,
            "selected": sel,
            "selected_dose": np.where(sel >= 0, doses[np.maximum(sel, 0)], np.nan),
            "n_patients": a.n.sum(axis=1),
            "n_dlt": a.tox.sum(axis=1),
            "n_eff": a.eff.sum(axis=1),
            "stop_reason": a.reason,
            "stop_code": a.stop_code,
            "benchmark": a.benchmark,
            **self._calendar_columns(),
        })

    def _calendar_columns(self) -> dict:
        c = self.calendar
        if c is None:
            return {}
        return {"duration_weeks": c.duration_h / 168.0, "accrual_weeks": c.accrual_h / 168.0,
                "screened": c.screened, "screen_failed": c.screen_failed,
                "turned_away": c.turned_away, "wait_days_mean": c.wait_h / 24.0,
                "chair_use": c.chair_use,
                "decision_days": [np.round(r[np.isfinite(r)] / 24.0, 4).tolist()
                                  for r in c.decision_h]}

    @cached_property
    def patients(self) -> pd.DataFrame:
        """One row per enrolled patient, in order of enrolment within each trial."""
        a, doses = self.arrays, np.asarray(self.study.doses, float)
        ti, pi = np.nonzero(a.patient_dose >= 0)
        d = a.patient_dose[ti, pi].astype(np.int64)
        cols = {
            "trial": a.trials[ti], "patient": pi, "cohort": a.patient_cohort[ti, pi],
            "dose_index": d, "dose": doses[d],
            "tox": a.patient_tox[ti, pi], "eff": a.patient_eff[ti, pi],
        }
        if self._dropout:               # left before the window's end, not evaluable
            cols["dropout"] = a.patient_dropout[ti, pi]
        if self.study.design.backfills:     # backfilled at a cleared dose
            cols["backfill"] = a.patient_backfill[ti, pi]
        return pd.DataFrame(cols)

    @property
    def _dropout(self) -> bool:
        return drops(self.study.conduct)

    def summary(self) -> pd.DataFrame:
        """Operating characteristics per dose, plus a row for "no dose selected".

        Columns: ``dose``, ``true_tox``, ``selected_pct`` and ``selected_se`` (percent of trials
        selecting the dose and its Monte Carlo SE), ``benchmark_pct`` and ``benchmark_se``
        (fully informed selection), ``patients_mean``/``patients_se`` and
        ``dlt_mean``/``dlt_se`` (per trial), and with efficacy ``true_eff`` and
        ``eff_mean``/``eff_se`` (responders per trial).
        """
        a, truth = self.arrays, self.truth
        D = self.study.n_doses
        sel = np.stack([a.selected == d for d in range(D)] + [a.selected == NO_DOSE], axis=1).astype(float)
        bench = np.stack([a.benchmark == d for d in range(D)] + [a.benchmark == NO_DOSE],
                         axis=1).astype(float)
        sel_m, sel_se = _mean_se(sel)
        bench_m, bench_se = _mean_se(bench)
        pm, pse = _mean_se(a.n.astype(float))
        tm, tse = _mean_se(a.tox.astype(float))
        nan = np.array([np.nan])
        df = pd.DataFrame({
            "dose": [*[f"{x:g}" for x in self.study.doses], "none"],
            "true_tox": np.concatenate([truth.tox, nan]),
            "selected_pct": 100 * sel_m,
            "selected_se": 100 * sel_se,
            "benchmark_pct": 100 * bench_m,
            "benchmark_se": 100 * bench_se,
            "patients_mean": np.concatenate([pm, nan]),
            "patients_se": np.concatenate([pse, nan]),
            "dlt_mean": np.concatenate([tm, nan]),
            "dlt_se": np.concatenate([tse, nan]),
        })
        if truth.eff is not None:
            em, ese = _mean_se(a.eff.astype(float))
            df["true_eff"] = np.concatenate([truth.eff, nan])
            df["eff_mean"] = np.concatenate([em, nan])
            df["eff_se"] = np.concatenate([ese, nan])
        return df

    @cached_property
    def true_optimal_dose(self) -> int | None:
        """For efficacy-toxicity designs, the dose their criterion calls optimal under the truth
        (``NO_DOSE`` if none is acceptable); ``None`` for designs that target the MTD."""
        t = self.truth
        if t.eff is None:
            return None
        obd = self.study.design.optimal_dose(t.tox[None], t.eff[None], t.eff_tox[None])
        return None if obd is None else int(obd[0])

    @cached_property
    def goal_dose(self) -> int:
        """The dose correct selection is scored against: the true MTD, or for
        efficacy-toxicity designs :attr:`true_optimal_dose`."""
        obd = self.true_optimal_dose
        return true_mtd(self.truth.tox, self.study.target) if obd is None else obd

    def trial_metrics(self) -> dict[str, np.ndarray]:
        """Per-trial values whose means are :meth:`metrics` (percentages as 0/100 per trial),
        e.g. for paired comparisons of designs run on the same patients.  For efficacy-toxicity
        designs ``correct_selection_pct`` and ``benchmark_correct_pct`` refer to the true
        optimal dose (:attr:`true_optimal_dose`), the rest to the MTD."""
        a, truth = self.arrays, self.truth
        mtd = true_mtd(truth.tox, self.study.target)
        goal = self.goal_dose
        n_tot = a.n.sum(axis=1).astype(float)
        above = a.n[:, mtd + 1:].sum(axis=1) / np.maximum(n_tot, 1)
        # ran its course: its size reached, or a rule-based design's own end (clearing the
        # top dose), then possibly found too toxic (``max_patients+too_toxic``)
        done = self.study.design.completion_codes
        stopped_early = ~np.isin(np.char.partition(a.stop_code.astype(str), "+")[:, 0], done)
        rows = {
            "correct_selection_pct": 100.0 * (a.selected == goal),
            "benchmark_correct_pct": 100.0 * (a.benchmark == goal),
            "no_selection_pct": 100.0 * (a.selected == NO_DOSE),
            "selected_above_mtd_pct": 100.0 * (a.selected > mtd),
            "stopped_before_max_pct": 100.0 * stopped_early,
            "patients_mean": n_tot,
            "dlt_mean": a.tox.sum(axis=1).astype(float),
            "dlt_rate_pct": 100.0 * a.tox.sum(axis=1) / np.maximum(n_tot, 1),
            "patients_above_mtd_pct": 100.0 * above,
        }
        if truth.eff is not None:
            rows["responders_mean"] = a.eff.sum(axis=1).astype(float)
        c = self.calendar
        if c is not None:
            rows.update({
                "duration_weeks": c.duration_h / 168.0,
                "accrual_weeks": c.accrual_h / 168.0,
                "first_decision_days": c.decision_h[:, 0].astype(float) / 24.0,
                "screened_mean": c.screened.astype(float),
                "turned_away_mean": c.turned_away.astype(float),
                "wait_days_mean": c.wait_h / 24.0,
            })
            if self.study.calendar_conduct.session_h > 0:     # chairs modelled
                rows["chair_use_pct"] = 100.0 * c.chair_use
            if self._dropout:
                rows["dropouts_mean"] = a.patient_dropout.sum(axis=1).astype(float)
        if self.study.design.backfills:
            rows["backfilled_mean"] = a.patient_backfill.sum(axis=1).astype(float)
        return rows

    def _repr_html_(self) -> str:
        """Jupyter: the per-dose summary and the metrics."""
        fmt = {"float_format": lambda x: f"{x:.3f}", "index": False, "na_rep": ""}
        return (f"<p>{self.study.name}: {self.n_trials:,} trials, seed {self.seed}</p>"
                + self.summary().to_html(**fmt) + self.metrics().to_html(**fmt))

    def metrics(self) -> pd.DataFrame:
        """Trial-level operating characteristics, each with its Monte Carlo SE.

        The true MTD is the dose whose true toxicity is closest to the study's target;
        ``selected_above_mtd_pct`` is the percent of trials selecting a dose above it,
        ``patients_above_mtd_pct`` the mean percent of a trial's patients treated above it.
        """
        mtd = true_mtd(self.truth.tox, self.study.target)
        out = [(k, *map(float, _mean_se(v))) for k, v in self.trial_metrics().items()]
        df = pd.DataFrame(out, columns=["metric", "value", "se"])
        df.attrs["true_mtd"] = float(self.study.doses[mtd])
        if self.true_optimal_dose is not None:
            obd = self.true_optimal_dose
            df.attrs["true_optimal_dose"] = float(self.study.doses[obd]) if obd >= 0 else None
        return df
