"""The Bayesian one-parameter continual reassessment method (CRM), power model."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

import trialsim.analysis.crm as posterior_api
from trialsim.designs._common import (check_state, make_decision, max_patients_at_least_cohort,
                                      stop_at_max_patients)
from trialsim.designs.base import MAX_PATIENTS, BatchDecision, BatchState, Design
from trialsim.registry import register
from trialsim.spec import context, spec

DEFAULT_PRIOR_SD = 1.34 ** 0.5
START = "start"
ESCALATE = "escalate: estimated DLT rate closest to target"
STAY = "stay: estimated DLT rate closest to target"
DE_ESCALATE = "de-escalate: estimated DLT rate closest to target"


@register("design", "crm")
@spec
class CRM(Design):
    """Bayesian CRM with the power ("empiric") model, as in dfcrm's ``crm()`` defaults.

    Model: ``P(DLT at dose i) = skeleton[i] ** exp(a)``, prior ``a ~ Normal(0, prior_sd**2)``
    (dfcrm's default ``prior_sd = sqrt(1.34)``).  After each cohort the posterior mean of ``a``
    is computed by quadrature (:mod:`trialsim.analysis.crm`, accurate to ~1e-10) and the DLT
    curve is estimated by dfcrm's plug-in ``skeleton ** exp(E[a | data])``.  The next dose and
    the recommendation are both the dose whose estimate is closest to ``target`` (absolute
    distance, ties to the lower dose); with no data, the first cohort gets ``start_dose`` and
    the recommendation is the prior guess (the skeleton dose closest to the target).

    No skipping restriction or safety stop is built in: add the ``dont_skip_doses`` and
    ``stop_when_too_toxic`` modifiers.  The trial stops once ``max_patients`` are treated,
    recommending the dose chosen on all the data.  Every dose is ``admissible``.
    """

    target: Annotated[float, Field(gt=0, lt=1, description="target DLT probability")]
    skeleton: Annotated[tuple[float, ...], Field(description="prior guesses of the DLT "
                                                             "probability at each dose")]
    max_patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                       description="trial size cap (patients)")]
    prior_sd: Annotated[float, Field(gt=0, le=20, description="prior sd of a; at most 20 "
                                                             "(quadrature range)")] = \
        DEFAULT_PRIOR_SD
    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 3
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0

    toxicity_model = True

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

    _sizes_ok = max_patients_at_least_cohort

    @property
    def n_doses(self) -> int:
        return len(self.skeleton)

    def posterior(self, state: BatchState, mean_ptox: bool = False) -> posterior_api.CRMPosterior:
        """Posterior summaries of every trial in ``state`` (returned, never stored)."""
        check_state(state, self.n_doses, "crm")
        return posterior_api.crm_posterior(state.n, state.tox, self.skeleton, self.prior_sd,
                                           mean_ptox=mean_ptox)

    def decide_batch(self, state: BatchState) -> BatchDecision:
        post = self.posterior(state)
        best = np.argmin(np.abs(post.ptox - self.target), axis=1).astype(np.int64)
        fresh = state.total == 0
        cur = state.current
        next_dose = np.where(fresh, self.start_dose, best)
        reason = np.select([fresh, best > cur, best == cur], [START, ESCALATE, STAY],
                           DE_ESCALATE)
        T = state.n_trials
        decision = make_decision(next_dose, np.zeros(T, bool), best,
                                 np.ones((T, self.n_doses), bool), reason)
        return stop_at_max_patients(state, decision, self.max_patients)

    @classmethod
    def example(cls, n_doses: int = 5) -> "CRM":
        """Target 0.25, a skeleton spread between 0.05 and 0.5, cohorts of 3, 24 patients."""
        return cls(target=0.25, skeleton=tuple(np.linspace(0.05, 0.5, n_doses).round(4)),
                   max_patients=24)

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        """Posterior ``P(DLT probability at dose i > threshold)``, shape ``(T, D)``; exact
        under the model (``p_i > thr`` iff ``a < log(log(thr) / log(skeleton[i]))``)."""
        check_state(state, self.n_doses, "crm")
        return posterior_api.prob_tox_exceeds(state.n, state.tox, self.skeleton, threshold,
                                              self.prior_sd)
