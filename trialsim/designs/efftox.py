"""EffTox: dose finding on efficacy-toxicity trade-offs (Thall & Cook 2004, Biometrics
60:684-693; the version of Thall, Herrick, Nguyen, Venier & Norris 2014, Clinical Trials
11:657-666, as implemented in R trialr 0.1.6, ``stan_efftox``).

Model (:mod:`trialsim.analysis.efftox`): logistic toxicity and quadratic-logistic efficacy
curves in the coded dose ``x = log d - mean(log d)``, joined by an association ``psi``, with
independent normal priors on ``(alpha, beta, gamma, zeta, eta, psi)``.

After each cohort:

1. A dose is **acceptable** if ``P(pi_E > efficacy_hurdle | data) > p_e`` and
   ``P(pi_T < toxicity_hurdle | data) > p_t``, and it lies at most one level below the lowest
   and one above the highest dose given so far (no untried dose is skipped).
2. The **utility** (desirability) of a dose is that of its posterior mean probabilities on the
   L^p contours through ``(eff0, 0)``, ``(eff_star, tox_star)`` and ``(1, tox1)`` (Thall,
   Cook & Estey 2006): ``1 - (((1 - pi_E) / (1 - eff0))^p + (pi_T / tox1)^p)^(1/p)``.
3. The next cohort gets the acceptable dose of highest utility (exact ties: the lower dose);
   if no dose is acceptable the trial stops with no dose selected (code ``none_acceptable``).

The posterior summaries come from importance sampling on ``points`` quasi-random points; each
decision is first taken on the first ``points / 8`` of them (at least 512), and on twice as many
while the summaries' standard errors leave it in doubt, up to all ``points``
(:class:`trialsim.analysis.efftox.Screen`).
The selection at the end is the dose the same rule gives on all the data.  The true optimal
dose of a scenario (for operating characteristics) is the dose of highest true utility among
those with ``pi_E >= efficacy_hurdle`` and ``pi_T <= toxicity_hurdle``.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator, model_validator

from trialsim.analysis.efftox import (EffToxPosterior, Screen, outcome_counts, posterior, solve_p,
                                      utility)
from trialsim.designs._common import (LogDoses, check_joint_outcomes, check_state,
                                      make_decision, max_patients_at_least_cohort,
                                      start_dose_below_doses, stop_at_max_patients, stop_trials)
from trialsim.designs.base import MAX_PATIENTS, NO_DOSE, BatchDecision, BatchState, Design
from trialsim.registry import register
from trialsim.spec import spec

START = "start"
MOVE = "{}: highest utility among the acceptable doses"
STOP_NONE = ("stop: no acceptable dose (P(efficacy > hurdle) > p_e and P(toxicity < hurdle) > "
             "p_t, within one level of the doses given)")
Six = tuple[float, float, float, float, float, float]
#: Decisions are first taken on the first ``points // SCREEN`` importance points (at least
#: ``MIN_SCREEN``); while a trial's decision could change within ``MARGIN_SE`` standard errors
#: of the summaries (plus ``MARGIN_ABS``), the points are doubled, up to all ``points``.
SCREEN, MIN_SCREEN, MARGIN_SE, MARGIN_ABS = 8, 512, 3.0, 0.002


@register("design", "efftox")
@spec
class EffTox(Design):
    """EffTox (Thall & Cook 2004; Thall et al. 2014; docs/designs.md): each next cohort gets
    the acceptable dose (P(efficacy > efficacy_hurdle) > p_e, P(toxicity < toxicity_hurdle) >
    p_t, within one level of the doses given) whose posterior mean efficacy and toxicity have
    the highest utility on the contour through (eff0, 0), (eff_star, tox_star), (1, tox1); none
    acceptable: stop with no dose.  ``doses`` are the study's (filled in from the study file);
    priors in the order ``(alpha, beta, gamma, zeta, eta, psi)``
    (``trialsim.analysis.efftox.elicited_prior`` derives them from prior guesses)."""

    doses: LogDoses
    max_patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                       description="trial size cap (patients)")]
    prior_mean: Annotated[Six, Field(description="prior means of alpha, beta (toxicity), "
                                                 "gamma, zeta, eta (efficacy), psi "
                                                 "(association)")]
    prior_sd: Annotated[Six, Field(description="prior standard deviations, same order")]
    efficacy_hurdle: Annotated[float, Field(gt=0, lt=1, description="lowest acceptable "
                                                                    "efficacy probability")]
    toxicity_hurdle: Annotated[float, Field(gt=0, lt=1, description="highest acceptable "
                                                                    "toxicity probability")]
    eff0: Annotated[float, Field(gt=0, lt=1, description="contour point (eff0, 0): efficacy "
                                                         "probability worth no toxicity")]
    tox1: Annotated[float, Field(gt=0, lt=1, description="contour point (1, tox1): toxicity "
                                                         "probability accepted for certain "
                                                         "efficacy")]
    eff_star: Annotated[float, Field(gt=0, lt=1, description="efficacy of the intermediate "
                                                             "contour point")]
    tox_star: Annotated[float, Field(gt=0, lt=1, description="toxicity of the intermediate "
                                                             "contour point")]
    p_e: Annotated[float, Field(gt=0, lt=1, description="P(efficacy > hurdle) a dose must "
                                                        "exceed")] = 0.1
    p_t: Annotated[float, Field(gt=0, lt=1, description="P(toxicity < hurdle) a dose must "
                                                        "exceed")] = 0.1
    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 3
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0
    points: Annotated[int, Field(ge=256, le=1 << 20, description="importance-sampling points "
                                                                 "of the posterior (a power "
                                                                 "of 2)")] = 4096

    needs_efficacy = True
    toxicity_model = True
    _sizes_ok = max_patients_at_least_cohort

    @field_validator("prior_sd")
    @classmethod
    def _sd_ok(cls, v: Six) -> Six:
        if not all(1e-3 <= s <= 100 for s in v):
            raise ValueError(f"prior_sd must be 6 numbers in [0.001, 100], got {list(v)}")
        return v

    @field_validator("prior_mean")
    @classmethod
    def _mean_ok(cls, v: Six) -> Six:
        if not all(abs(m) <= 100 for m in v):
            raise ValueError(f"prior_mean must be 6 numbers in [-100, 100], got {list(v)}")
        return v

    @field_validator("points")
    @classmethod
    def _points_ok(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"points must be a power of 2, got {v}")
        return v

    _start_ok = start_dose_below_doses

    @model_validator(mode="after")
    def _contour_ok(self) -> "EffTox":
        if not (self.eff0 < self.eff_star and self.tox_star < self.tox1):
            raise ValueError(f"the contour's points must satisfy eff0 < eff_star and tox_star "
                             f"< tox1, got eff0 {self.eff0}, eff_star {self.eff_star}, "
                             f"tox_star {self.tox_star}, tox1 {self.tox1}")
        return self

    @property
    def n_doses(self) -> int:
        return len(self.doses)

    @property
    def target(self) -> float:
        """The toxicity hurdle (the highest acceptable toxicity probability)."""
        return self.toxicity_hurdle

    @property
    def p(self) -> float:
        """The ``p`` of the utility contours (through the three points)."""
        return solve_p(self.eff0, self.tox1, self.eff_star, self.tox_star)

    def utility(self, eff, tox) -> np.ndarray:
        """Desirability of efficacy and toxicity probabilities, elementwise."""
        return utility(eff, tox, self.p, self.eff0, self.tox1)

    def posterior(self, state: BatchState, tox_cuts=None, points: int | None = None,
                  standard_errors: bool = False, screen: bool = False) -> EffToxPosterior:
        """Posterior summaries per trial and dose (``prob_tox_above`` at ``toxicity_hurdle``
        by default, else at ``tox_cuts``; on ``points`` importance points, by default the
        design's; their standard errors only if asked for).  With ``screen``: on the first
        ``points // 8`` of them (at least 512), doubled while the trial's decision is in doubt,
        up to all ``points`` (:class:`trialsim.analysis.efftox.Screen`; at ``toxicity_hurdle``
        only)."""
        if screen and tox_cuts is not None:
            raise ValueError("a screened posterior is the decision's: at toxicity_hurdle only")
        check_state(state, self.n_doses, "efftox")
        check_joint_outcomes(state)
        counts = outcome_counts(state.n, state.tox, state.eff, state.eff_tox)
        cuts = [self.toxicity_hurdle] if tox_cuts is None else tox_cuts
        points = self.points if points is None else points
        first, rule = max(points // SCREEN, MIN_SCREEN), None
        if screen and first < points:
            rule = Screen(first, self.within_reach(state), self.p_e, self.p_t, self.p, self.eff0,
                          self.tox1, MARGIN_SE, MARGIN_ABS)
        return posterior(counts, self.doses, self.prior_mean, self.prior_sd,
                         self.efficacy_hurdle, cuts, points, standard_errors, rule)

    def decision_posterior(self, state: BatchState) -> EffToxPosterior:
        """The posterior the decisions use (:meth:`posterior` with ``screen``).  A decision
        differs from the one on all ``points`` only where the summaries miss by more than 3 of
        their standard errors (plus 0.002)."""
        return self.posterior(state, screen=True)

    def acceptable(self, state: BatchState, post: EffToxPosterior | None = None) -> np.ndarray:
        """Acceptable doses (T, D): both posterior criteria, within one level of the doses
        given."""
        post = self.posterior(state) if post is None else post
        ok = (post.prob_eff_above > self.p_e) & (1.0 - post.prob_tox_above[..., 0] > self.p_t)
        return ok & self.within_reach(state)

    def within_reach(self, state: BatchState) -> np.ndarray:
        """Doses (T, D) at most one level below the lowest and one above the highest dose
        given."""
        tried = state.n > 0
        idx = np.arange(self.n_doses)[None, :]
        lowest = np.where(tried, idx, self.n_doses).min(axis=1)
        highest = np.where(tried, idx, -1).max(axis=1)
        return (idx >= lowest[:, None] - 1) & (idx <= highest[:, None] + 1)

    def decide_batch(self, state: BatchState) -> BatchDecision:
        T = state.n_trials
        post = self.decision_posterior(state)
        ok = self.acceptable(state, post)
        u = np.where(ok, self.utility(post.mean_eff, post.mean_tox), -np.inf)
        best = np.argmax(u, axis=1).astype(np.int64)
        none = ~ok.any(axis=1)
        fresh = state.total == 0
        cur = state.current
        nxt = np.where(fresh, self.start_dose, best)
        reason = np.where(fresh, START, np.where(none, "", np.where(
            best > cur, MOVE.format("escalate"), np.where(best == cur, MOVE.format("stay"),
                                                          MOVE.format("de-escalate")))))
        rec = np.where(fresh | none, NO_DOSE, best)
        decision = make_decision(nxt, np.zeros(T, bool), rec, ok, reason)
        decision = stop_trials(decision, none & ~fresh, STOP_NONE, "none_acceptable",
                               withdraw=True)
        return stop_at_max_patients(state, decision, self.max_patients)

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        """Posterior ``P(pi_T at dose i > threshold)``, shape ``(T, D)``."""
        return self.posterior(state, [threshold]).prob_tox_above[..., 0]

    def optimal_dose(self, tox, eff, eff_tox) -> np.ndarray:
        """The dose of highest utility among those with ``eff >= efficacy_hurdle`` and
        ``tox <= toxicity_hurdle`` (``NO_DOSE`` if none), for each row of probabilities."""
        tox, eff = np.atleast_2d(tox), np.atleast_2d(eff)
        ok = (tox <= self.toxicity_hurdle) & (eff >= self.efficacy_hurdle)
        u = np.where(ok, self.utility(eff, tox), -np.inf)
        return np.where(ok.any(axis=1), np.argmax(u, axis=1), NO_DOSE).astype(np.int64)

    @classmethod
    def example(cls, n_doses: int = 5) -> "EffTox":
        """Thall et al. (2014)'s prostate cancer example (doses 1, 2, 4, 6.6, 10 with 5 doses,
        else 1, 2, 4, ...), 13 cohorts of 3; 1,024 posterior points (a quick instance: the
        default 4,096 is about four times slower)."""
        doses = (1.0, 2.0, 4.0, 6.6, 10.0) if n_doses == 5 \
            else tuple(float(2 ** i) for i in range(n_doses))
        return cls(doses=doses, max_patients=39,
                   prior_mean=(-7.9593, 1.5482, 0.7367, 3.4181, 0.0, 0.0),
                   prior_sd=(3.5487, 3.5018, 2.5423, 2.4406, 0.2, 1.0),
                   efficacy_hurdle=0.5, toxicity_hurdle=0.3, eff0=0.5, tox1=0.65,
                   eff_star=0.7, tox_star=0.25, points=1024)
