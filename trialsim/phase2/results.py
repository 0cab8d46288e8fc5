"""Results of phase II simulations: tidy tables and operating characteristics with Monte Carlo
standard errors, beside the truth."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from trialsim.conduct.arrays import CalendarArrays
from trialsim.phase2.arrays import Phase2Arrays
from trialsim.phase2.study import Phase2Study
from trialsim.phase2.truth import Phase2Truth, phase2_truth


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return float(x.mean()), float(se)


@dataclass(frozen=True)
class Phase2Simulations:
    """Results of :func:`~trialsim.phase2.simulate.simulate_phase2`."""

    study: Phase2Study
    seed: int
    scenario: int
    arrays: Phase2Arrays
    calendar: CalendarArrays | None = None   # with conduct: (calendar time)

    @property
    def n_trials(self) -> int:
        return len(self.arrays.trials)

    def _repr_html_(self) -> str:
        """Jupyter: the per-arm summary and the metrics."""
        fmt = {"float_format": lambda x: f"{x:.3f}", "index": False, "na_rep": ""}
        return (f"<p>{self.study.name}: {self.n_trials:,} phase II trials, seed {self.seed}</p>"
                + self.summary().to_html(**fmt) + self.metrics().to_html(**fmt))

    @cached_property
    def truth(self) -> Phase2Truth:
        return phase2_truth(self.study, self.seed, self.scenario)

    @cached_property
    def trials(self) -> pd.DataFrame:
        """One row per trial."""
        a, doses = self.arrays, np.asarray(self.study.doses, float)
        models = list(dict.fromkeys(_model_names(self.study)))
        fwd = a.forward
        return pd.DataFrame({
            "trial": a.trials, "analysable": a.analysable, "signal": a.signal,
            "p_min": a.p_min,
            "model": [models[i] if i >= 0 else "" for i in a.selected],
            "target_dose": a.td,
            "forward": fwd,
            "forward_dose": np.where(fwd >= 0, doses[np.maximum(fwd, 0)], np.nan),
            "n_patients": a.n.sum(axis=1), "n_analysed": a.analysed.sum(axis=1),
            "n_interims": a.n_interims,
            "stopped": np.array(["", "efficacy", "futility"])[a.stopped],
            "n_period2": (a.arm2 >= 0).sum(axis=1),
            "duration_weeks": self._duration(),
            **self._calendar_columns(),
        })

    def _calendar_columns(self) -> dict:
        c = self.calendar
        if c is None:
            return {}
        return {"accrual_weeks": c.accrual_h / 168.0, "screened": c.screened,
                "screen_failed": c.screen_failed, "turned_away": c.turned_away,
                "wait_days_mean": c.wait_h / 24.0, "chair_use": c.chair_use}

    @cached_property
    def patients(self) -> pd.DataFrame:
        """One row per randomised patient (patients a stopped trial never enrolled are left
        out)."""
        a, doses = self.arrays, np.asarray(self.study.doses, float)
        T, N = a.arm.shape
        cols = {"trial": np.repeat(a.trials, N), "patient": np.tile(np.arange(N), T),
                "arm": a.arm.ravel(), "dose": doses[np.maximum(a.arm.ravel(), 0)],
                "dropout_h": a.dropout_h.ravel(), "endpoint": a.y.ravel()}
        if (a.arm2 >= 0).any():
            cols["period2_arm"] = a.arm2.ravel()
            cols["period2_endpoint"] = a.y2.ravel()
        for s, name in enumerate(self.study.safety):
            cols[f"{name}_event"] = a.event[..., s].ravel()
            cols[f"{name}_peak"] = a.peak[..., s].ravel()
            cols[f"{name}_resolved_h"] = a.resolved_h[..., s].ravel()
        df = pd.DataFrame(cols)
        return df[df["arm"] >= 0].reset_index(drop=True) if (a.arm < 0).any() else df

    def summary(self) -> pd.DataFrame:
        """Per arm: patients randomised and analysed, dropout, the observed and true endpoint,
        the fitted effect over placebo (trials with a signal) with its bias and RMSE against
        the true effect, and the percentage of trials taking the dose forward — each with its
        Monte Carlo SE — plus a row for "no dose" (no-go).  Per safety measure ``name``:
        ``name_pct`` the observed percentage of the arm's patients with the event (mean over
        trials, SE) beside ``name_true_pct``; ``name_peak_mean`` the mean of the patients'
        largest value; ``name_resolved_h`` the mean time to resolution of the events resolved
        by the last assessment and ``name_unresolved_pct`` the percentage still unresolved."""
        a, tr = self.arrays, self.truth
        doses = np.asarray(self.study.doses, float)
        rows = []
        for d in range(self.study.n_doses):
            n_m, n_se = _mean_se(a.n[:, d])
            an_m, an_se = _mean_se(a.analysed[:, d])
            drop = 100.0 * (1 - a.analysed[:, d] / np.maximum(a.n[:, d], 1))
            dr_m, dr_se = _mean_se(drop)
            ob_m, ob_se = _mean_se(a.observed[:, d])
            sig = a.signal
            fit = a.fitted[sig, d]
            fe_m, fe_se = _mean_se(fit)
            err = fit - tr.effect[d]
            rmse = float(np.sqrt(np.mean(err ** 2))) if err.size else float("nan")
            fw_m, fw_se = _mean_se(100.0 * (a.forward == d))
            dp_m, dp_se = _mean_se(100.0 * a.dropped[:, d])
            rows.append({"dose": f"{doses[d]:g}", "n_mean": n_m, "analysed_mean": an_m,
                         "dropout_pct": dr_m, "dropout_se": dr_se,
                         "observed_mean": ob_m, "observed_se": ob_se,
                         "true_mean": tr.mean[d], "true_effect": tr.effect[d],
                         "fitted_effect_mean": fe_m, "fitted_effect_se": fe_se,
                         "fitted_effect_bias": fe_m - tr.effect[d], "fitted_effect_rmse": rmse,
                         "forward_pct": fw_m, "forward_se": fw_se,
                         "true_forward": tr.forward == d, "dropped_pct": dp_m,
                         "dropped_se": dp_se, **self._safety_columns(d)})
        ng_m, ng_se = _mean_se(100.0 * (a.forward < 0))
        rows.append({"dose": "none", "forward_pct": ng_m, "forward_se": ng_se,
                     "true_forward": tr.forward < 0})
        return pd.DataFrame(rows)

    def _duration(self) -> np.ndarray:
        """Calendar weeks of each trial: on its calendar (conduct:), first patient dosed to
        the last patient's last visit; adaptive designs with accrual; NaN otherwise."""
        if self.calendar is not None:
            return self.calendar.duration_h / 168.0
        d = self.study.design
        if getattr(d, "accrual_per_week", None) is None:
            return np.full(self.n_trials, np.nan)
        return d.duration_weeks(self.arrays.n.sum(axis=1), self.study.endpoint.visit_h)

    def printed_tables(self, summary: pd.DataFrame | None = None
                       ) -> list[tuple[str, pd.DataFrame]]:
        """Compact views of :meth:`summary` for the terminal: efficacy and the decision per
        arm, then each safety measure per arm (every column stays in ``summary.csv``)."""
        s = self.summary() if summary is None else summary
        unit = self.study.dose_unit or "dose"
        eff = pd.DataFrame({
            f"dose ({unit})": s["dose"], "analysed": s["analysed_mean"],
            "true effect": s["true_effect"], "fitted": s["fitted_effect_mean"],
            "bias": s["fitted_effect_bias"], "rmse": s["fitted_effect_rmse"],
            "forward %": s["forward_pct"], "± se": s["forward_se"],
            "true forward": s["true_forward"].map({True: "<-", False: ""})})
        if hasattr(self.study.design, "interims"):
            eff.insert(2, "dropped %", s["dropped_pct"])
        out = [("efficacy (change over placebo, fitted in trials with a signal) and the dose "
                "taken forward", eff)]
        for name, m in self.study.safety.items():
            t = s.iloc[:-1]
            out.append((f"{name} ({m.unit or 'event'} >= {m.threshold:g})", pd.DataFrame({
                f"dose ({unit})": t["dose"], "event %": t[f"{name}_pct"],
                "± se": t[f"{name}_se"], "true %": t[f"{name}_true_pct"],
                "mean peak": t[f"{name}_peak_mean"],
                "resolved by (h)": t[f"{name}_resolved_h"],
                "unresolved %": t[f"{name}_unresolved_pct"]})))
        return out

    def _safety_columns(self, d: int) -> dict:
        a, tr = self.arrays, self.truth
        out = {}
        mine = a.arm == d
        for s, name in enumerate(self.study.safety):
            has = a.n[:, d] > 0
            m, se = _mean_se(100.0 * a.event_rate[has, s, d])
            ev = mine & a.event[..., s]
            r = a.resolved_h[..., s][ev]
            out |= {f"{name}_pct": m, f"{name}_se": se,
                    f"{name}_true_pct": 100.0 * tr.event_rate[s, d],
                    f"{name}_peak_mean": _mean_se(a.peak[..., s][mine])[0],
                    f"{name}_resolved_h": _mean_se(r[np.isfinite(r)])[0],
                    f"{name}_unresolved_pct": (100.0 * float(np.mean(~np.isfinite(r)))
                                               if r.size else float("nan"))}
        return out

    def metrics(self) -> pd.DataFrame:
        """Trial-level operating characteristics with Monte Carlo SEs: power of the
        dose-response test, go (a dose taken forward), the correct decision (the dose the
        truth takes forward, or no-go when it takes none), the target-dose estimate's bias and
        RMSE, sample size, dropout and the percentage of patients with each safety event; the
        true target dose and the true dose to take forward in columns (and ``attrs``)
        ``true_td`` and ``true_forward`` (NaN: none)."""
        a, tr = self.arrays, self.truth
        rows = {
            "power_pct": 100.0 * a.signal,
            "go_pct": 100.0 * (a.forward >= 0),
            "correct_decision_pct": 100.0 * (a.forward == tr.forward),
            "td_reached_pct": 100.0 * np.isfinite(a.td),
            # no test possible (too few analysed patients on an arm): counted as no-go
            "analysis_failed_pct": 100.0 * ~a.analysable,
            "patients_mean": a.n.sum(axis=1).astype(float),
            "analysed_mean": a.analysed.sum(axis=1).astype(float),
            "dropout_pct": 100.0 * (1 - a.analysed.sum(axis=1) / a.n.sum(axis=1)),
        }
        if hasattr(self.study.design, "interims"):
            rows |= {"interims_mean": a.n_interims.astype(float),
                     "stopped_efficacy_pct": 100.0 * (a.stopped == 1),
                     "stopped_futility_pct": 100.0 * (a.stopped == 2)}
            if self.study.design.accrual_per_week is not None:
                rows["duration_weeks_mean"] = self._duration()
        c = self.calendar
        if c is not None:
            rows |= {"duration_weeks": c.duration_h / 168.0,
                     "accrual_weeks": c.accrual_h / 168.0,
                     "screened_mean": c.screened.astype(float),
                     "turned_away_mean": c.turned_away.astype(float),
                     "wait_days_mean": c.wait_h / 24.0}
            if self.study.calendar_conduct.session_h > 0:     # chairs modelled
                rows["chair_use_pct"] = 100.0 * c.chair_use
        on = a.arm >= 0
        for s, name in enumerate(self.study.safety):
            rows[f"{name}_pct"] = (100.0 * (a.event[..., s] & on).sum(axis=1)
                                   / np.maximum(on.sum(axis=1), 1))
        out = [(k, *_mean_se(v)) for k, v in rows.items()]
        if np.isfinite(tr.td):
            err = a.td[np.isfinite(a.td)] - tr.td
            if err.size > 1:
                out.append(("td_bias", float(err.mean()), float(err.std(ddof=1)
                                                                 / np.sqrt(err.size))))
                sq = err ** 2
                rmse = float(np.sqrt(sq.mean()))
                out.append(("td_rmse", rmse, float(sq.std(ddof=1) / np.sqrt(sq.size)
                                                   / (2 * max(rmse, 1e-300)))))
        df = pd.DataFrame(out, columns=["metric", "value", "se"])
        df["true_td"] = df.attrs["true_td"] = tr.td
        df["true_forward"] = df.attrs["true_forward"] = (
            float(tr.doses[tr.forward]) if tr.forward >= 0 else float("nan"))
        return df


def _model_names(study: Phase2Study) -> list[str]:
    from trialsim.analysis.doseresponse.models import family

    return [family(m).name for m in study.analysis.models]
