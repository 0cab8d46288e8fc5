"""MCP-Mod end to end (Bretz, Pinheiro & Branson 2005; Pinheiro et al. 2014):

1. **MCP step** — the multiple contrast test of the candidate shapes: optimal contrasts for the
   actual allocation (or the estimates' covariance), statistics, the multiplicity-adjusted
   critical value and p-values from the multivariate t (normal for ``df = inf``).
2. **Mod step** — if the flat dose-response is rejected, each model family with a
   significant candidate is fitted (bounded least squares, :mod:`.fitting`); one is selected
   by AIC (gAIC for binary/general estimates), or by the largest statistic (``maxT``), or the
   fits are averaged with weights ``exp(−AIC/2)`` (``average``).
3. **Dose** — the target dose on the selected (or averaged) curve: ``TD(Δ)``, the minimum
   effective dose for a clinically relevant ``delta``, or ``ED_p``.

``mcpmod(dose, response, models=..., alpha=0.025, delta=...)`` analyses patient data (a
continuous endpoint, optionally adjusted for covariates such as baseline MADRS; or a binary
endpoint with ``endpoint="binary"``); ``mcpmod(doses, estimates, covariance=S, ...)``
analyses dose-level estimates with a covariance (generalised MCP-Mod).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from trialsim.analysis.doseresponse import estimates as E
from trialsim.analysis.doseresponse.contrasts import ContrastTest, contrast_test
from trialsim.analysis.doseresponse.fitting import Fit, fit_model
from trialsim.analysis.doseresponse.models import Candidates, family
from trialsim.analysis.doseresponse.targets import effective_dose, target_dose

SELECTIONS = ("AIC", "maxT", "average")
ENDPOINTS = ("continuous", "binary")


@dataclass(frozen=True)
class MCPModResult:
    """Everything MCP-Mod found (see the module docstring); ``dose`` is the estimated target
    dose (NaN when no signal or when the curve does not reach the target within the doses)."""

    estimates: E.DoseEstimates
    candidates: Candidates
    test: ContrastTest
    fits: dict
    selection: str
    weights: dict
    direction: str
    delta: float | None
    p: float | None
    model_doses: dict
    dose: float

    @property
    def signal(self) -> bool:
        """Whether the test rejected the flat dose-response."""
        return self.test.reject

    @property
    def selected(self) -> str | None:
        """The selected model family (the one with the largest weight)."""
        return max(self.weights, key=self.weights.get) if self.weights else None

    def predict(self, doses) -> np.ndarray:
        """The selected (or averaged) fitted mean at ``doses`` (NaN without a signal)."""
        d = np.asarray(doses, dtype=float)
        if not self.weights:
            return np.full(d.shape, np.nan)
        return sum(w * self.fits[m].predict(d) for m, w in self.weights.items())

    def effect(self, doses) -> np.ndarray:
        """The selected (or averaged) effect over placebo at ``doses``."""
        d = np.asarray(doses, dtype=float)
        return self.predict(d) - self.predict(np.zeros(1))[0]

    def to_dict(self) -> dict:
        """A JSON-ready rendering of the whole result."""
        t = self.test
        return {
            "endpoint_estimates": {
                "kind": self.estimates.kind, "doses": self.estimates.doses.tolist(),
                "estimates": self.estimates.estimates.tolist(),
                "covariance": self.estimates.cov.tolist(), "n": _clean(self.estimates.n),
                "df": _num(self.estimates.df)},
            "direction": self.direction,
            "contrasts": {lab: t.contrasts[:, m].tolist() for m, lab in enumerate(t.labels)},
            "contrast_correlation": t.corr.tolist(),
            "t": dict(zip(t.labels, t.t.tolist())),
            "p_adjusted": dict(zip(t.labels, t.p_adjusted.tolist())),
            "p_error": dict(zip(t.labels, t.p_error.tolist())),
            "critical_value": t.critical_value, "alpha": t.alpha, "df": _num(t.df),
            "two_sided": t.two_sided, "signal": self.signal,
            "significant": list(t.significant),
            "fits": {m: {"params": f.params, "rss": f.rss, "aic": f.aic,
                         "criterion": "AIC" if self.estimates.kind == "normal" else "gAIC",
                         "at_bound": f.at_bound} for m, f in self.fits.items()},
            "selection": self.selection, "weights": self.weights,
            "selected": self.selected,
            "target": {"type": "TD" if self.delta is not None else "ED",
                       "delta": self.delta, "p": self.p,
                       "by_model": {m: _num(v) for m, v in self.model_doses.items()},
                       "dose": _num(self.dose)},
        }

    def summary(self) -> str:
        """A readable report of the test, the fits and the target dose."""
        t = self.test
        lines = [f"MCP-Mod: {len(t.labels)} candidate shapes, {self.estimates.kind} estimates, "
                 f"direction {self.direction}", ""]
        lines.append("Multiple contrast test (" + ("two-sided" if t.two_sided else "one-sided")
                     + f", alpha {t.alpha:g}, df {t.df:g}):")
        lines.append(f"  {'candidate':<14}{'t':>9}{'adj. p':>12}")
        for m in np.argsort(-t.t):
            lines.append(f"  {t.labels[m]:<14}{t.t[m]:>9.3f}{_p(t.p_adjusted[m]):>12}")
        lines.append(f"  critical value {t.critical_value:.4f}; "
                     + ("dose-response signal" if self.signal else "no dose-response signal"))
        if self.fits:
            crit = "AIC" if self.estimates.kind == "normal" else "gAIC"
            lines += ["", f"Fitted models ({crit}, selection: {self.selection}):"]
            for m, f in self.fits.items():
                pars = ", ".join(f"{k} {v:.4g}" for k, v in f.params.items())
                w = self.weights.get(m, 0.0)
                mark = (f"weight {w:.3f}" if self.selection == "average"
                        else "selected" if w > 0 else "        ")     # AIC or maxT: one model
                lines.append(f"  {m:<12} {crit} {f.aic:10.3f}  {mark}  {pars}"
                             + ("  (a shape parameter at its bound)" if f.at_bound else ""))
            what = (f"TD(delta = {self.delta:g})" if self.delta is not None
                    else f"ED{100 * self.p:g}")
            lines += ["", f"Target dose {what}: " + (
                f"{self.dose:.4g}" if math.isfinite(self.dose) else
                "not reached within the dose range")]
        return "\n".join(lines)


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _clean(a):
    return [_num(x) for x in np.asarray(a, dtype=float)]


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def mcpmod(dose, response=None, *, models: Mapping, alpha: float = 0.025,
           delta: float | None = None, p: float | None = None, selection: str = "AIC",
           direction: str = "increasing", endpoint: str = "continuous", covariates=None,
           covariance=None, df: float | None = None, bounds: Mapping | None = None,
           off: float | None = None, scal: float | None = None,
           two_sided: bool = False) -> MCPModResult:
    """MCP-Mod on patient data (``dose``, ``response``: one entry per patient) or, with
    ``covariance``, on dose-level estimates (``dose`` the distinct doses, ``response`` the
    estimates).  ``models``: candidate shapes with guesstimates (see
    :class:`~trialsim.analysis.doseresponse.models.Candidates`), e.g.
    ``{"linear": None, "emax": 0.2, "sig_emax": [0.4, 3], "exponential": 0.5,
    "quadratic": -0.85}``; ``delta`` the clinically relevant effect for the target dose
    ``TD`` (or ``p`` for ``ED_p``); ``selection`` AIC | maxT | average; ``direction``
    increasing | decreasing (e.g. a fall in a depression score); ``covariates`` (N,) or (N, q)
    for ANCOVA (e.g. baseline score); ``bounds`` per model family; ``off``/``scal`` for the
    linlog/beta models."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    if direction not in ("increasing", "decreasing"):
        raise ValueError(f"direction must be increasing or decreasing, got {direction!r}")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {endpoint!r}")
    if (delta is None) == (p is None):
        raise ValueError("give exactly one of delta (target dose TD) or p (ED_p)")
    if response is None:
        raise ValueError("response is required (patient responses, or dose-level estimates "
                         "with covariance)")
    if covariance is not None:
        est = E.from_general(dose, response, covariance, np.inf if df is None else df)
    elif endpoint == "binary":
        est = E.from_binary(dose, response, covariates)
    else:
        est = E.from_normal(dose, response, covariates)
    return analyse(est, models, alpha=alpha, delta=delta, p=p, selection=selection,
                   direction=direction, bounds=bounds, off=off, scal=scal,
                   two_sided=two_sided)


def analyse(est: E.DoseEstimates, models: Mapping, *, alpha: float = 0.025,
            delta: float | None = None, p: float | None = None, selection: str = "AIC",
            direction: str = "increasing", bounds: Mapping | None = None,
            off: float | None = None, scal: float | None = None,
            two_sided: bool = False) -> MCPModResult:
    """MCP-Mod on :class:`~trialsim.analysis.doseresponse.estimates.DoseEstimates`."""
    cands = Candidates.from_models(est.doses, models, off, scal)
    sign = 1.0 if direction == "increasing" else -1.0
    test = contrast_test(est.estimates, est.cov, sign * cands.shapes(), cands.labels, est.df,
                         alpha, two_sided)
    fits: dict[str, Fit] = {}
    weights: dict[str, float] = {}
    model_doses: dict[str, float] = {}
    dose = float("nan")
    if test.reject:
        bounds = dict(bounds or {})
        sig = [c for c in cands.items if c.label in test.significant]
        for fam_name in dict.fromkeys(c.model for c in sig):
            given = bounds.get(fam_name)
            if given is None:
                given = next((v for k, v in bounds.items() if family(k).name == fam_name), None)
            fits[fam_name] = fit_model(fam_name, est, given, cands.extra)
        if selection == "maxT":
            # the contrasts are oriented towards benefit, so their t are already
            best = max(sig, key=lambda c: _stat(test.t[cands.labels.index(c.label)], two_sided))
            weights = {best.model: 1.0}
        elif selection == "AIC":
            weights = {min(fits, key=lambda m: fits[m].aic): 1.0}
        else:
            a = np.array([fits[m].aic for m in fits])
            w = np.exp(-0.5 * (a - a.min()))
            weights = dict(zip(fits, (w / w.sum()).tolist()))
        top = float(est.doses[-1])
        for m, f in fits.items():
            model_doses[m] = _dose(f.effect, delta, p, top, sign)
        result_effect = (lambda d: sum(w * fits[m].effect(d) for m, w in weights.items()))
        dose = _dose(result_effect, delta, p, top, sign)
    return MCPModResult(est, cands, test, fits, selection, weights, direction, delta, p,
                        model_doses, dose)


def _dose(effect, delta, p, top, sign) -> float:
    if delta is not None:
        return target_dose(effect, delta, top, sign)
    return effective_dose(effect, p, top, sign)


def _stat(t: float, two_sided: bool) -> float:
    """A contrast's test statistic: its t (oriented towards benefit), or ``|t|`` two-sided."""
    return abs(t) if two_sided else t
