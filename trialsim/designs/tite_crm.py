"""The time-to-event CRM (TITE-CRM; Cheung & Chappell 2000, Biometrics 56:1177-82): the CRM
deciding before every patient's observation window has passed."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

import trialsim.analysis.crm as posterior_api
from trialsim.designs._common import check_state
from trialsim.designs.base import MAX_PATIENTS, BatchState
from trialsim.designs.crm import CRM
from trialsim.registry import register
from trialsim.spec import spec


@register("design", "tite_crm")
@spec
class TITECRM(CRM):
    """The TITE-CRM as in R dfcrm's ``titecrm()`` and ``titesim()``.

    Patients are dosed as they come, one cohort (by default one patient) at a time, without
    waiting for the previous patients' observation windows.  At each decision a patient without
    a DLT so far counts in the likelihood as ``1 - w * p(d)`` and one with a DLT as ``p(d)``;
    ``scheme`` sets ``w``: ``linear``, the fraction of the window followed (the default), or
    ``adaptive``, placed among the trial's observed DLT times (Cheung & Chappell 2000; see
    :func:`trialsim.analysis.crm.tite_weights`).  Otherwise it is the Bayesian :class:`CRM`
    (power or logistic model, ``prior_sd``, the dose with the estimate closest to ``target``).
    The final recommendation uses every patient's complete follow-up.

    The calendar comes from the study's ``conduct:`` section (arrivals, chairs, opening hours;
    ``window_h`` is the observation window; a DLT occurs uniformly within it, dfcrm's
    ``surv = "uniform"``), which a study with this design must have.  Add
    ``dont_skip_doses`` with ``relative_to: current`` for dfcrm's ``restrict = TRUE`` (never
    more than one level above the current dose).  Without partial follow-up (a state with every
    outcome known) it decides as the CRM.
    """

    follow_up: ClassVar[bool] = True

    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 1
    method: Annotated[Literal["bayes"], Field(description="estimate: posterior mean")] = "bayes"
    scheme: Annotated[Literal["linear", "adaptive"],
                      Field(description="follow-up weights: linear or adaptive")] = "linear"

    @model_validator(mode="after")
    def _tite_ok(self) -> "TITECRM":
        if self.startup is not None:
            raise ValueError("tite_crm has no start-up stage yet: leave out startup (dfcrm's "
                             "two-stage TITE-CRM is not implemented)")
        return self

    def estimate(self, state: BatchState) -> np.ndarray:
        f = state.followup
        if f is None:
            return super().estimate(state)
        check_state(state, self.n_doses, "tite_crm")
        w = posterior_api.tite_weights(f.dose, f.tox, f.elapsed, self.scheme)
        return posterior_api.crm_posterior_weighted(
            f.dose, f.tox, w, self.skeleton, self.prior_sd, model=self.model,
            intercept=self.intercept).ptox

    @classmethod
    def example(cls, n_doses: int = 5) -> "TITECRM":
        """Target 0.25, a skeleton spread between 0.05 and 0.5, one patient at a time, 24."""
        return cls(target=0.25, skeleton=tuple(np.linspace(0.05, 0.5, n_doses).round(4)),
                   max_patients=24)
