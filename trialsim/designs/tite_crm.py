"""The time-to-event CRM (TITE-CRM; Cheung & Chappell 2000, Biometrics 56:1177-82): the CRM
deciding before every patient's observation window has passed."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

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
    :func:`trialsim.analysis.crm.tite_weights`).  Otherwise it is the :class:`CRM` (power or
    logistic model, ``prior_sd``, the dose with the estimate closest to ``target``):
    ``method: bayes``, the posterior mean of ``a`` under this weighted likelihood, or
    ``method: likelihood``, its maximiser on ``[-10, 10]`` (dfcrm's ``method = "mle"``, which
    needs a ``startup``).  The final recommendation uses every patient's complete follow-up.

    The calendar comes from the study's ``conduct:`` section (arrivals, chairs, opening hours;
    ``window_h`` is the observation window, in hours; a DLT occurs uniformly within it,
    dfcrm's ``surv = "uniform"``), which a study with this design must have.  Add
    ``dont_skip_doses`` with ``relative_to: current`` for dfcrm's ``restrict = TRUE`` (never
    more than one level above the current dose).  Without partial follow-up (a state with every
    outcome known) it decides as the CRM.  With dropout (``conduct.dropout_per_week``) a
    patient who leaves is censored: followed up until they leave, not replaced (see
    :mod:`trialsim.conduct.followup`).

    Two-stage TITE-CRM (dfcrm's vector ``x0``): ``startup`` gives the patients to treat at each
    dose from ``start_dose`` up (then the highest dose) while no DLT is known, as the CRM's.
    As in dfcrm's ``titesim`` (with ``tgrp = obswin``, its default):

    * within a dose the start-up doses patients as they come; a cohort that goes one dose up
      waits until the last patient dosed has completed ``window_h`` hours without a DLT (a
      patient arriving meanwhile waits in the queue, up to ``conduct.max_wait_days``; dfcrm
      turns such patients away, which a short ``max_wait_days`` reproduces);
    * a DLT is "seen" when it occurs (``onset`` hours after its dose, or at the next
      assessment with ``conduct.visits_h``), not at the end of its window: it ends the wait
      at once, and the first cohort formed at or after that time is the model's (stage 2);
      a DLT that has not yet occurred when a cohort is formed does not end the start-up;
    * that first model decision uses every patient so far with their partial follow-up (the
      DLT weighs 1), and ``dont_skip_doses`` (``relative_to: current``) caps it at one level
      above the last dose given, as dfcrm's ``restrict``; in the start-up itself the sequence
      rises one level at a time, so the restriction never binds there (dfcrm does not apply it
      to ``x0`` either);
    * with ``method: likelihood`` the estimate exists from then on, since the data hold a DLT;
      it is the bounded maximiser, also when every patient so far has had a DLT (then the
      lowest dose).  dfcrm's ``titesim`` instead takes a vague-prior fit (prior sd 500) while
      every enrolled patient has an observed DLT, with either method, which lands on about
      the prior MTD (then capped at one level up); trialsim keeps the design's own estimate
      there (the bounded MLE, or the posterior under ``prior_sd``), as the CRM does.  dfcrm
      took such decisions in at most ~3% of its trials in the checks, mostly when the first
      patient's DLT occurs before the second patient arrives
      (``tests/fixtures/tite_crm_two_stage_reference.json`` counts its fallback fits).
    """

    follow_up: ClassVar[bool] = True

    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 1
    scheme: Annotated[Literal["linear", "adaptive"],
                      Field(description="follow-up weights: linear or adaptive")] = "linear"

    def estimate(self, state: BatchState) -> np.ndarray:
        f = state.followup
        if f is None:
            return super().estimate(state)
        check_state(state, self.n_doses, "tite_crm")
        w = posterior_api.tite_weights(f.dose, f.tox, f.elapsed, self.scheme)
        if self.method == "likelihood":
            return posterior_api.crm_mle_weighted(f.dose, f.tox, w, self.skeleton,
                                                  model=self.model, intercept=self.intercept,
                                                  ptox=True)[1]
        return posterior_api.crm_posterior_weighted(
            f.dose, f.tox, w, self.skeleton, self.prior_sd, model=self.model,
            intercept=self.intercept).ptox

    @classmethod
    def example(cls, n_doses: int = 5) -> "TITECRM":
        """Target 0.25, a skeleton spread between 0.05 and 0.5, one patient at a time, 24."""
        return cls(target=0.25, skeleton=tuple(np.linspace(0.05, 0.5, n_doses).round(4)),
                   max_patients=24)
