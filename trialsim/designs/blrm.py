"""The Bayesian logistic regression model with escalation with overdose control (BLRM/EWOC)."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator

from trialsim.analysis.blrm import BLRMPrior, prob_at_or_above
from trialsim.designs._common import (LogDoses, check_state, make_decision,
                                      max_patients_at_least_cohort, start_dose_below_doses,
                                      stop_at_max_patients, stop_trials)
from trialsim.designs.base import MAX_PATIENTS, NO_DOSE, BatchDecision, BatchState, Design
from trialsim.registry import register
from trialsim.spec import spec

START = "start"
MOVE = "{}: the highest posterior probability of the target interval among doses passing EWOC"
STOP_NONE_SAFE = "stop: no dose passes the overdose control (P(DLT rate >= upper) < overdose_prob)"


@register("design", "blrm")
@spec
class BLRM(Design):
    """Two-parameter Bayesian logistic regression with escalation with overdose control
    (Neuenschwander, Branson & Gsponer 2008, Stat Med 27:2420-2439; Babb, Rogatko & Zacks 1998).

    Model ``logit P(DLT at dose d) = log(alpha) + beta log(d / reference_dose)``, prior
    ``(log alpha, log beta) ~ N(prior_mean, diag(prior_sd) R diag(prior_sd))`` with correlation
    ``prior_corr``.  After each cohort the posterior probability of each dose's DLT rate lying
    in the underdosing ``[0, lower)``, target ``[lower, upper)`` and overdosing ``[upper, 1]``
    intervals is computed by quadrature (:mod:`trialsim.analysis.blrm`).  A dose passes the
    overdose control (EWOC) if ``P(overdosing) < overdose_prob``; the next cohort gets the dose
    passing it with the highest probability of the target interval (ties to the lower dose).
    If no dose passes, the trial stops with no dose selected (code ``too_toxic``).  The
    recommendation is the same rule restricted to doses already given (none before any data).

    No restriction on skipping is built in: add ``dont_skip_doses`` as a modifier.  Defaults:
    ``reference_dose`` the middle dose, ``prior_mean`` = (logit of the middle of the target
    interval, 0) and ``prior_sd`` = (2, 1) — a weakly informative prior that puts the median DLT
    rate at the reference dose in the target interval; state your own for a real trial.
    ``doses`` are the study's (filled in from the study file).
    """

    doses: LogDoses
    max_patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                       description="trial size cap (patients)")]
    target_interval: Annotated[tuple[float, float], Field(description="[lower, upper) DLT rates "
                                                                      "of the target interval")] \
        = (0.16, 0.33)
    overdose_prob: Annotated[float, Field(gt=0, lt=1, description="EWOC: largest allowed "
                                                                  "P(DLT rate >= upper)")] = 0.25
    reference_dose: Annotated[float | None, Field(gt=0, description="dose d* of the model "
                                                                    "(default the middle "
                                                                    "dose)")] = None
    prior_mean: Annotated[tuple[float, float] | None,
                          Field(description="prior means of log(alpha), log(beta)")] = None
    prior_sd: Annotated[tuple[float, float], Field(description="prior sds of log(alpha), "
                                                               "log(beta)")] = (2.0, 1.0)
    prior_corr: Annotated[float, Field(gt=-1, lt=1, description="prior correlation")] = 0.0
    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 3
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0

    toxicity_model = True

    @field_validator("target_interval")
    @classmethod
    def _interval_ok(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < v[1] < 1:
            raise ValueError(f"target_interval must be [lower, upper) with 0 < lower < upper "
                             f"< 1, got {list(v)}")
        return v

    @field_validator("prior_sd")
    @classmethod
    def _sd_ok(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.01 <= s <= 100 for s in v):
            raise ValueError(f"prior_sd must be two numbers in [0.01, 100], got {list(v)}")
        return v

    @field_validator("prior_mean")
    @classmethod
    def _mean_ok(cls, v):
        if v is not None and not all(abs(m) <= 100 for m in v):
            raise ValueError(f"prior_mean must be two numbers in [-100, 100], got {list(v)}")
        return v

    _start_ok = start_dose_below_doses
    _sizes_ok = max_patients_at_least_cohort

    @property
    def n_doses(self) -> int:
        return len(self.doses)

    @property
    def target(self) -> float:
        """The middle of the target interval."""
        return 0.5 * (self.target_interval[0] + self.target_interval[1])

    @property
    def prior(self) -> BLRMPrior:
        lo, hi = self.target_interval
        mid = 0.5 * (lo + hi)
        mean = (float(np.log(mid / (1 - mid))), 0.0) if self.prior_mean is None \
            else self.prior_mean
        return BLRMPrior(tuple(mean), tuple(self.prior_sd), self.prior_corr)

    @property
    def d_ref(self) -> float:
        return self.doses[(len(self.doses) - 1) // 2] if self.reference_dose is None \
            else self.reference_dose

    def interval_probabilities(self, state: BatchState) -> np.ndarray:
        """Posterior probabilities of the underdosing, target and overdosing intervals at each
        dose: shape (T, D, 3)."""
        check_state(state, self.n_doses, "blrm")
        ge = prob_at_or_above(state.n, state.tox, self.doses, self.d_ref, self.prior,
                              self.target_interval)
        return np.stack([1.0 - ge[..., 0], ge[..., 0] - ge[..., 1], ge[..., 1]], axis=-1)

    def decide_batch(self, state: BatchState) -> BatchDecision:
        T = state.n_trials
        probs = self.interval_probabilities(state)
        ok = probs[..., 2] < self.overdose_prob
        score = np.where(ok, probs[..., 1], -1.0)
        best = np.argmax(score, axis=1).astype(np.int64)
        none = ~ok.any(axis=1)
        tried = np.where(ok & (state.n > 0), probs[..., 1], -1.0)
        rec = np.where((tried >= 0).any(axis=1), np.argmax(tried, axis=1), NO_DOSE)
        fresh = state.total == 0
        cur = state.current
        nxt = np.where(fresh, self.start_dose, best)
        reason = np.where(fresh, START, np.where(none, "", np.where(  # none: the stop says why
            best > cur, MOVE.format("escalate"), np.where(best == cur, MOVE.format("stay"),
                                                         MOVE.format("de-escalate")))))
        decision = make_decision(nxt, np.zeros(T, bool), np.where(fresh, NO_DOSE, rec), ok,
                                 reason)
        decision = stop_trials(decision, none & ~fresh, STOP_NONE_SAFE, "too_toxic", withdraw=True)
        return stop_at_max_patients(state, decision, self.max_patients)

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        """Posterior ``P(DLT rate at dose i > threshold)``, shape ``(T, D)``."""
        check_state(state, self.n_doses, "blrm")
        return prob_at_or_above(state.n, state.tox, self.doses, self.d_ref, self.prior,
                                [threshold])[..., 0]

    @classmethod
    def example(cls, n_doses: int = 5) -> "BLRM":
        """Doses 1, 2, 4, ... (doubling), target interval [0.16, 0.33), 30 patients."""
        return cls(doses=tuple(float(2 ** i) for i in range(n_doses)), max_patients=30)
