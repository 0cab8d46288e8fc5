"""Wages & Tait's seamless phase I/II design for molecularly targeted agents (Wages & Tait
2015, J Biopharm Stat 25:903-920), with the rules of R escalation's ``get_wages_and_tait``
(Brock 2019, version 0.2).

Models (:func:`trialsim.analysis.crm.skeleton_fits`): toxicity follows a Bayesian power-model
CRM on ``tox_skeleton``; efficacy follows one of ``K`` power models, one per row of
``eff_skeletons`` (each encodes where efficacy plateaus or peaks; rows need not increase),
each with prior weight ``eff_skeleton_weights``.  Both use ``a ~ Normal(0, prior_sd**2)``
(dfcrm's default ``sqrt(1.34)``) and the plug-in estimate ``s ** exp(E[a | data])``, as
dfcrm.  The efficacy model is the skeleton of highest posterior probability (ties: the first).

After each cohort:

1. **Admissible** doses have estimated toxicity at most ``tox_limit`` (before any patient,
   every dose).  None admissible: stop, no dose (``none_admissible``).
2. **Safety**: if the lower limit of the exact (Clopper-Pearson) ``ci_level`` interval of the
   toxicity rate at the lowest dose exceeds ``tox_limit``, stop, no dose
   (``lowest_too_toxic``).
3. While fewer than ``num_randomise`` patients have been treated, the next cohort is
   **randomised** among the admissible doses with probabilities proportional to their
   estimated efficacy (the draw ``u`` comes from the trial's ``model`` stream).  After that it
   gets the admissible dose of highest estimated efficacy; if that dose has been given and the
   upper limit of the exact ``ci_level`` interval of its efficacy rate is below
   ``eff_limit``, stop, no dose (``futile``).

The recommendation (the selection if the trial ended now, and at ``max_patients``) is the
admissible dose of highest estimated efficacy, withdrawn where it is futile.  The design does
not forbid skipping untried doses (neither does R escalation): add the ``dont_skip_doses``
modifier for that.  The true optimal dose of a scenario is the dose of highest true efficacy
(ties: the lowest) among doses with toxicity at most ``tox_limit``, or none if its efficacy
is below ``eff_limit``.
"""
from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator
from scipy.special import betaincinv

from trialsim.analysis.crm import DEFAULT_PRIOR_SD, prob_tox_exceeds, skeleton_fits
from trialsim.designs._common import (check_state, make_decision, max_patients_at_least_cohort,
                                      stop_at_max_patients, stop_trials)
from trialsim.designs.base import MAX_PATIENTS, NO_DOSE, BatchDecision, BatchState, Design
from trialsim.registry import register
from trialsim.spec import context, spec

START = "start"
RANDOMISE = "randomise among the admissible doses (P proportional to estimated efficacy)"
BEST = "{}: highest estimated efficacy among the admissible doses"
STOP_NONE = "stop: no admissible dose (estimated toxicity above tox_limit everywhere)"
STOP_LOWEST = ("stop: the lowest dose is too toxic (lower confidence limit of its toxicity "
               "rate above tox_limit)")
STOP_FUTILE = ("stop: futility (upper confidence limit of the efficacy rate at the best "
               "admissible dose below eff_limit)")


def exact_limits(x: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson ``level`` limits of ``x`` events in ``n`` trials, elementwise (R's
    ``binom.test(x, n)$conf.int``); ``n == 0`` gives ``(0, 1)``."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    a = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, betaincinv(np.maximum(x, 1), np.maximum(n - x + 1, 1), a), 0.0)
        hi = np.where(x < n, betaincinv(x + 1, np.maximum(n - x, 1), 1 - a), 1.0)
    return lo, hi


def _probabilities(v: tuple[float, ...], what: str) -> tuple[float, ...]:
    s = np.asarray(v, float)
    if s.size == 0 or not ((s > 0) & (s < 1)).all():
        raise ValueError(f"{what} must be probabilities in (0, 1), got {list(v)}")
    n = context().get("n_doses")
    if n is not None and s.size != n:
        raise ValueError(f"{what} needs one probability per dose ({n}), got {s.size}")
    return tuple(float(x) for x in v)


@register("design", "wages_tait")
@spec
class WagesTait(Design):
    """Wages & Tait (2015; docs/designs.md): toxicity by a power-model CRM (admissible:
    estimated toxicity <= tox_limit), efficacy by the most probable of several power models
    (``eff_skeletons``); the first ``num_randomise`` patients are randomised among admissible
    doses in proportion to estimated efficacy, later cohorts get the most efficacious
    admissible dose; stops for no admissible dose, a too toxic lowest dose, or futility."""

    tox_skeleton: Annotated[tuple[float, ...], Field(description="prior guesses of the "
                                                                 "toxicity probability at each "
                                                                 "dose (increasing)")]
    eff_skeletons: Annotated[tuple[tuple[float, ...], ...],
                             Field(description="efficacy skeletons, one row per efficacy "
                                               "model, one probability per dose")]
    tox_limit: Annotated[float, Field(gt=0, lt=1, description="highest acceptable toxicity "
                                                              "probability")]
    eff_limit: Annotated[float, Field(gt=0, lt=1, description="lowest acceptable efficacy "
                                                              "probability")]
    num_randomise: Annotated[int, Field(ge=0, le=MAX_PATIENTS,
                                        description="patients in the adaptive randomisation "
                                                    "stage")]
    max_patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                       description="trial size cap (patients)")]
    eff_skeleton_weights: Annotated[tuple[float, ...] | None,
                                    Field(description="prior weights of the efficacy models "
                                                      "(default: equal)")] = None
    prior_sd: Annotated[float, Field(ge=0.01, le=20, description="prior sd of each model's "
                                                             "parameter")] = DEFAULT_PRIOR_SD
    ci_level: Annotated[float, Field(gt=0, lt=1, description="level of the exact intervals of "
                                                             "the safety and futility "
                                                             "stops")] = 0.95
    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 1
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0

    needs_efficacy = True
    toxicity_model = True
    randomises = True
    _sizes_ok = max_patients_at_least_cohort

    @field_validator("tox_skeleton")
    @classmethod
    def _tox_ok(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        v = _probabilities(v, "tox_skeleton")
        if (np.diff(v) <= 0).any():
            raise ValueError(f"tox_skeleton must increase strictly, got {list(v)}")
        return v

    @field_validator("eff_skeletons")
    @classmethod
    def _eff_ok(cls, v: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
        if not v:
            raise ValueError("eff_skeletons needs at least one skeleton")
        return tuple(_probabilities(row, f"eff_skeletons[{i}]") for i, row in enumerate(v))

    @field_validator("max_patients")
    @classmethod
    def _randomised_within(cls, v: int, info: ValidationInfo) -> int:
        r = info.data.get("num_randomise")
        if r is not None and r > v:
            raise ValueError(f"max_patients must be at least num_randomise ({r}): the "
                             f"randomisation stage cannot outlast the trial; got {v}")
        return v

    @model_validator(mode="after")
    def _shapes_ok(self) -> "WagesTait":
        D = len(self.tox_skeleton)
        bad = [i for i, row in enumerate(self.eff_skeletons) if len(row) != D]
        if bad:
            raise ValueError(f"each efficacy skeleton needs one probability per dose ({D}); "
                             f"rows {bad} do not")
        w = self.eff_skeleton_weights
        if w is not None and (len(w) != len(self.eff_skeletons)
                              or not all(math.isfinite(x) and x > 0 for x in w)):
            raise ValueError(f"eff_skeleton_weights needs one positive weight per efficacy "
                             f"skeleton ({len(self.eff_skeletons)}), got {list(w)}")
        if self.start_dose >= D:
            raise ValueError(f"start_dose must be a 0-based dose index (0..{D - 1}), got "
                             f"{self.start_dose}")
        return self

    @property
    def n_doses(self) -> int:
        return len(self.tox_skeleton)

    @property
    def target(self) -> float:
        """The toxicity limit (the highest acceptable toxicity probability)."""
        return self.tox_limit

    def estimates(self, state: BatchState) -> tuple[np.ndarray, np.ndarray]:
        """Estimated toxicity and efficacy probabilities ``(T, D)`` (the plug-in curves of the
        toxicity model and of the most probable efficacy model)."""
        check_state(state, self.n_doses, "wages_tait")
        tox = skeleton_fits(state.n, state.tox, [self.tox_skeleton], self.prior_sd)
        eff = skeleton_fits(state.n, state.eff, self.eff_skeletons, self.prior_sd)
        prior = (np.ones(len(self.eff_skeletons)) if self.eff_skeleton_weights is None
                 else self.eff_skeleton_weights)
        k = np.argmax(eff.model_weights(prior), axis=1)
        return tox.curves[:, 0], eff.curves[np.arange(state.n_trials), k]

    def _scores(self, state: BatchState) -> tuple[np.ndarray, np.ndarray]:
        """Admissible doses ``(T, D)`` (every dose before the first patient) and their
        estimated efficacy (0 where not admissible)."""
        tox_hat, eff_hat = self.estimates(state)
        ok = (tox_hat <= self.tox_limit) | (state.total == 0)[:, None]
        return ok, np.where(ok, eff_hat, 0.0)

    def decide_batch(self, state: BatchState) -> BatchDecision:
        T, D = state.n_trials, self.n_doses
        fresh = state.total == 0
        ok, score = self._scores(state)
        best = np.argmax(score, axis=1).astype(np.int64)
        rows = np.arange(T)
        n_best = state.n[rows, best]
        futile = (n_best > 0) & (exact_limits(state.eff[rows, best], n_best,
                                              self.ci_level)[1] < self.eff_limit)
        none = ~ok.any(axis=1)
        lowest = (state.n[:, 0] > 0) & (exact_limits(state.tox[:, 0], state.n[:, 0],
                                                     self.ci_level)[0] > self.tox_limit)
        randomising = state.total < self.num_randomise
        nxt = np.where(fresh, self.start_dose, best)
        draw = randomising & ~fresh & ~none
        if draw.any():
            if state.u is None:
                raise ValueError(f"wages_tait randomises the next dose while fewer than "
                                 f"num_randomise={self.num_randomise} patients are treated: "
                                 f"give a uniform draw u")
            cum = np.cumsum(score[draw], axis=1)
            pick = (cum <= (state.u[draw] * cum[:, -1])[:, None]).sum(axis=1)
            nxt[draw] = np.minimum(pick, D - 1)
        cur = state.current
        reason = np.where(fresh, START, np.where(none, "", np.where(draw, RANDOMISE, np.where(
            nxt > cur, BEST.format("escalate"), np.where(nxt == cur, BEST.format("stay"),
                                                         BEST.format("de-escalate"))))))
        rec = np.where(fresh | none | futile, NO_DOSE, best)
        decision = make_decision(nxt, np.zeros(T, bool), rec, ok, reason)
        decision = stop_trials(decision, none & ~fresh, STOP_NONE, "none_admissible",
                               withdraw=True)
        decision = stop_trials(decision, lowest, STOP_LOWEST, "lowest_too_toxic", withdraw=True)
        decision = stop_trials(decision, futile & ~randomising, STOP_FUTILE, "futile",
                               withdraw=True)
        return stop_at_max_patients(state, decision, self.max_patients)

    def randomisation(self, state: BatchState) -> np.ndarray:
        """The probabilities ``(T, D)`` with which the next cohort would be randomised (the
        admissible doses in proportion to estimated efficacy)."""
        score = self._scores(state)[1]
        total = score.sum(axis=1, keepdims=True)
        return np.divide(score, total, out=np.zeros_like(score), where=total > 0)

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        """Posterior ``P(toxicity at dose i > threshold)`` of the toxicity model, ``(T, D)``."""
        return prob_tox_exceeds(state.n, state.tox, self.tox_skeleton, threshold,
                                self.prior_sd)

    def optimal_dose(self, tox, eff, eff_tox) -> np.ndarray:
        """The dose of highest efficacy (ties: the lowest) among doses with toxicity at most
        ``tox_limit``; ``NO_DOSE`` if none, or if its efficacy is below ``eff_limit``."""
        tox, eff = np.atleast_2d(tox), np.atleast_2d(eff)
        ok = tox <= self.tox_limit
        e = np.where(ok, eff, -np.inf)
        best = np.argmax(e, axis=1)
        good = ok.any(axis=1) & (e[np.arange(e.shape[0]), best] >= self.eff_limit)
        return np.where(good, best, NO_DOSE).astype(np.int64)

    @classmethod
    def example(cls, n_doses: int = 5) -> "WagesTait":
        """R escalation's Wages & Tait example shape: toxicity skeleton rising by 0.07 per
        dose, efficacy skeletons peaking (umbrella) or plateauing at each dose, 64 patients
        one at a time, the first 16 randomised."""
        D = n_doses
        tox = tuple(round(0.01 + 0.07 * i, 4) if D <= 14 else (i + 1) / (D + 1)
                    for i in range(D))
        rows = []
        for peak in range(D):          # umbrella: peak 0.6 at dose `peak`, 0.1 lower per level
            rows.append(tuple(round(max(0.6 - 0.1 * abs(i - peak), 0.05), 4) for i in range(D)))
        for plateau in range(D - 1):   # plateau from dose `plateau` on
            rows.append(tuple(round(max(0.6 - 0.1 * max(plateau - i, 0), 0.05), 4)
                              for i in range(D)))
        return cls(tox_skeleton=tox, eff_skeletons=tuple(rows), tox_limit=0.33,
                   eff_limit=0.05, num_randomise=16, max_patients=64)
