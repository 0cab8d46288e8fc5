"""The one-parameter continual reassessment method (CRM): power or logistic model, Bayesian or
likelihood-based, with an optional rule-based start-up."""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

import trialsim.analysis.crm as posterior_api
from trialsim.designs._common import (check_state, make_decision, max_patients_at_least_cohort,
                                      stop_at_max_patients)
from trialsim.designs.base import MAX_PATIENTS, BatchDecision, BatchState, Design
from trialsim.errors import FieldError
from trialsim.registry import register
from trialsim.spec import context, spec

DEFAULT_PRIOR_SD = 1.34 ** 0.5
#: The one-parameter logistic model's intercept (dfcrm's default, Cheung 2011).
DEFAULT_INTERCEPT = 3.0
START = "start"
ESCALATE = "escalate: estimated DLT rate closest to target"
STAY = "stay: estimated DLT rate closest to target"
DE_ESCALATE = "de-escalate: estimated DLT rate closest to target"
STARTUP = "start-up: next dose of the initial sequence (no DLT yet)"


@register("design", "crm")
@spec
class CRM(Design):
    """The CRM as in R dfcrm's ``crm()`` and ``crmsim()`` (Cheung 2011).

    Model (``model``, see :mod:`trialsim.analysis.crm`): ``empiric`` (power,
    ``P(DLT at dose i) = skeleton[i] ** exp(a)``, the default) or ``logistic``
    (``logit P = intercept + exp(a) * (logit(skeleton[i]) - intercept)``, intercept 3 as in
    dfcrm).  Estimate (``method``): ``bayes``, the posterior mean of ``a`` under the prior
    ``a ~ Normal(0, prior_sd**2)`` (dfcrm's default ``prior_sd = sqrt(1.34)``) computed by
    quadrature (accurate to ~1e-10); or ``likelihood``, the maximum likelihood estimate of ``a``
    on ``[-10, 10]`` (which needs a ``startup``: the estimate exists once the data hold both a
    DLT and a non-DLT).  The DLT curve is estimated by dfcrm's plug-in ``p_i(estimate)``; the
    next dose and the recommendation are both the dose whose estimate is closest to
    ``target`` (absolute distance, ties to the lower dose; the highest dose if every estimate
    is at most the target, the lowest if every one is at least the target, as dfcrm).

    Without ``startup``, the first cohort gets ``start_dose`` and every later cohort the model's
    dose.  With ``startup`` (patients to treat at each dose, a two-stage design as dfcrm's vector
    ``x0``), until the first DLT each cohort goes to the lowest dose from ``start_dose`` up that
    has fewer patients than its start-up count (then to the highest dose); from the first DLT on,
    the model decides.  Without heterogeneity in the data the likelihood estimate is the bound
    (no DLT: every estimate ~0, the highest dose; only DLTs: the lowest dose); dfcrm instead
    falls back on a vague-prior Bayesian fit there.

    No skipping restriction or safety stop is built in: add the ``dont_skip_doses``,
    ``coherent_escalation`` (the two together are dfcrm's ``restrict = TRUE``) and
    ``stop_when_too_toxic`` modifiers.  The trial stops once ``max_patients`` are treated,
    recommending the dose chosen on all the data.  Every dose is ``admissible``.
    """

    target: Annotated[float, Field(gt=0, lt=1, description="target DLT probability")]
    skeleton: Annotated[tuple[float, ...], Field(description="prior guesses of the DLT "
                                                             "probability at each dose")]
    max_patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                       description="trial size cap (patients)")]
    prior_sd: Annotated[float, Field(ge=0.01, le=20, description="prior sd of a; 0.01 to 20 "
                                                                "(quadrature range)")] = \
        DEFAULT_PRIOR_SD
    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 3
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0
    model: Annotated[Literal["empiric", "logistic"],
                     Field(description="dose-toxicity model: empiric (power) or logistic")] = \
        "empiric"
    intercept: Annotated[float, Field(gt=0, le=20, description="intercept of the logistic "
                                                              "model")] = DEFAULT_INTERCEPT
    method: Annotated[Literal["bayes", "likelihood"],
                      Field(description="estimate: posterior mean (bayes) or maximum "
                                        "likelihood")] = "bayes"
    startup: Annotated[tuple[Annotated[int, Field(ge=1, le=MAX_PATIENTS)], ...] | None,
                       Field(description="patients to treat at each dose until the first DLT "
                                         "(one count per dose)")] = None

    @property
    def toxicity_model(self) -> bool:  # type: ignore[override]
        """Posterior probabilities exist for the Bayesian CRM only."""
        return self.method == "bayes"

    @field_validator("skeleton")
    @classmethod
    def _skeleton_ok(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        s = np.asarray(v, dtype=float)
        if s.size == 0 or not ((s > 0) & (s < 1)).all() or (np.diff(s) <= 0).any():
            raise ValueError(
                f"skeleton must be strictly increasing probabilities in (0, 1), got {list(v)}")
        n = context().get("n_doses")
        if n is not None and s.size != n:
            raise ValueError(f"expected one skeleton probability per dose ({n}), got {s.size}")
        return tuple(float(x) for x in v)

    @field_validator("start_dose")
    @classmethod
    def _start_in_range(cls, v: int, info: ValidationInfo) -> int:
        sk = info.data.get("skeleton")
        if sk is not None and v >= len(sk):
            raise ValueError(f"start_dose must be a 0-based index of a skeleton dose "
                             f"(0..{len(sk) - 1}), got {v}")
        return v

    @model_validator(mode="after")
    def _model_ok(self) -> "CRM":
        if self.model == "logistic":
            posterior_api.CRMModel(self.skeleton, self.model, self.intercept)  # checks skeleton
        elif self.intercept != DEFAULT_INTERCEPT:
            raise FieldError("intercept", f"intercept applies to model: logistic; the empiric "
                                          f"model has none (it would be ignored), got "
                                          f"{self.intercept:g}")
        if self.startup is not None and self.startup[0] >= self.max_patients:
            raise FieldError("startup", f"the first start-up cohort ({self.startup[0]}) would "
                                        f"take the whole trial (max_patients "
                                        f"{self.max_patients})")
        if self.startup is not None and len(self.startup) != self.n_doses:
            raise ValueError(f"startup needs one patient count per dose ({self.n_doses}), got "
                             f"{len(self.startup)}")
        if self.method == "likelihood" and self.startup is None:
            raise ValueError("method 'likelihood' needs a startup: the maximum likelihood "
                             "estimate exists only once the data hold a DLT and a non-DLT")
        return self

    _sizes_ok = max_patients_at_least_cohort

    @property
    def n_doses(self) -> int:
        return len(self.skeleton)

    def posterior(self, state: BatchState, mean_ptox: bool = False) -> posterior_api.CRMPosterior:
        """Posterior summaries of every trial in ``state`` (returned, never stored)."""
        check_state(state, self.n_doses, "crm")
        return posterior_api.crm_posterior(state.n, state.tox, self.skeleton, self.prior_sd,
                                           mean_ptox=mean_ptox, model=self.model,
                                           intercept=self.intercept)

    def estimate(self, state: BatchState) -> np.ndarray:
        """Plug-in DLT probabilities ``p_i(estimate of a)`` of every trial, shape ``(T, D)``."""
        if self.method == "bayes":
            return self.posterior(state).ptox
        check_state(state, self.n_doses, "crm")
        return posterior_api.crm_mle(state.n, state.tox, self.skeleton, model=self.model,
                                     intercept=self.intercept, ptox=True)[1]

    def decide_batch(self, state: BatchState) -> BatchDecision:
        p = self.estimate(state)
        best = np.argmin(np.abs(p - self.target), axis=1).astype(np.int64)
        # as dfcrm: the highest dose if every estimate is at most the target, the lowest if
        # every one is at least the target (settles ties of saturated estimates; the
        # estimates increase with dose)
        best = np.where(p[:, -1] <= self.target, self.n_doses - 1,
                        np.where(p[:, 0] >= self.target, 0, best))
        fresh = state.total == 0
        cur = state.current
        next_dose = np.where(fresh, self.start_dose, best)
        reason = np.select([fresh, best > cur, best == cur], [START, ESCALATE, STAY],
                           DE_ESCALATE)
        if self.startup is not None:
            early = ~fresh & (state.tox.sum(axis=1) == 0)
            up = startup_dose(state.n, self.startup, self.start_dose)
            next_dose = np.where(early, up, next_dose)
            reason = np.where(early, STARTUP, reason)
        T = state.n_trials
        decision = make_decision(next_dose, np.zeros(T, bool), best,
                                 np.ones((T, self.n_doses), bool), reason)
        return stop_at_max_patients(state, decision, self.max_patients)

    def startup_plan(self, sizes) -> np.ndarray | None:
        """The doses of cohorts of ``sizes`` while no DLT is seen (the start-up sequence from
        ``start_dose``), or ``None`` without a ``startup``."""
        if self.startup is None:
            return None
        plan = np.empty(len(sizes), np.int64)
        n = np.zeros((1, self.n_doses), np.int64)
        for k, size in enumerate(sizes):
            plan[k] = self.start_dose if k == 0 else startup_dose(n, self.startup,
                                                                  self.start_dose)[0]
            n[0, plan[k]] += size
        return plan

    @classmethod
    def example(cls, n_doses: int = 5) -> "CRM":
        """Target 0.25, a skeleton spread between 0.05 and 0.5, cohorts of 3, 24 patients."""
        return cls(target=0.25, skeleton=tuple(np.linspace(0.05, 0.5, n_doses).round(4)),
                   max_patients=24)

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        """Posterior ``P(DLT probability at dose i > threshold)``, shape ``(T, D)``; exact
        under the model (``p_i > thr`` iff ``a`` is below a cut point).  Bayesian CRM only."""
        if self.method != "bayes":
            raise ValueError("posterior probabilities need method 'bayes'")
        check_state(state, self.n_doses, "crm")
        return posterior_api.prob_tox_exceeds(state.n, state.tox, self.skeleton, threshold,
                                              self.prior_sd, model=self.model,
                                              intercept=self.intercept)


def startup_dose(n: np.ndarray, startup, start_dose: int) -> np.ndarray:
    """The start-up rule for trials with patients ``n`` ``(T, D)`` per dose: the lowest dose
    from ``start_dose`` up with fewer patients than its ``startup`` count, else the highest."""
    short = n < np.asarray(startup)[None, :]
    short[:, :start_dose] = False
    return np.where(short.any(axis=1), np.argmax(short, axis=1), n.shape[1] - 1)
