"""BOIN12: the Bayesian optimal interval phase I/II design for utility-based dose finding
(Lin, Zhou, Yan, Li & Yuan 2020, JCO Precision Oncology 4:1393-1402).

Each patient has one of four outcomes, scored by utilities on a 0-100 scale: response without
DLT 100, DLT without response 0, response with DLT ``utility_both`` (60), neither
``utility_neither`` (40).  At a dose with ``n`` patients the scores add up to ``100 x``; ``x``
is treated as ``x`` successes in ``n`` trials (quasi-binomial) with a Beta(1, 1) prior, and the
dose's **desirability** is ``P(utility > u_b | data)`` where the benchmark
``u_b = (ubar + 100) / 2`` lies halfway between the utility ``ubar`` of a dose at exactly the
toxicity target and the lowest acceptable response rate, and the best possible utility.

After each cohort at the current dose ``d`` (the rules of the authors' simulation code, R
``phase12designs::oc_boin12``):

1. **Elimination** (Beta(1, 1) priors, at least 3 patients): a dose with
   ``P(p_T > target) > cutoff_tox`` is eliminated with every dose above it; one with
   ``P(p_E < efficacy_lower) > cutoff_eff`` is eliminated alone (futility).  If the lowest
   dose is eliminated for toxicity, or every dose is eliminated, the trial stops with no dose.
2. With BOIN's boundaries ``lambda_e < lambda_d`` for the target (``p_saf``, ``p_tox``
   default to 0.6 and 1.4 times it): if the DLT rate at ``d`` is at least ``lambda_d``, the
   next cohort goes to the nearest dose below that is not eliminated (if none: stay, or stop
   with no dose if ``d`` is eliminated).  Otherwise it goes to the most desirable of ``d``,
   the nearest dose below and the nearest dose above that are not eliminated; the dose above
   is a candidate only while ``n_d < n_star`` or the DLT rate is at most ``lambda_e``.  An
   eliminated dose counts as desirability 0; choosing it (only ``d`` can be) stops the trial
   with no dose.  Exact ties go to ``d``, then to the dose below (the authors' code breaks them
   at random; a design here is a deterministic function of the data).
3. **Exploration**: if ``n_d >= n_explore``, the DLT rate is below ``lambda_d`` and the nearest
   non-eliminated dose above is untried, the next cohort goes there.

**Selection** of the optimal biological dose: toxicity rates ``(y + 0.05) / (n + 0.1)``
smoothed by weighted isotonic regression; the MTD is the dose whose estimate is closest to the
target; efficacy rates by the authors' model-averaged unimodal fit (each peak position
weighted by its likelihood); the estimated utility of each dose treats the two as independent;
the selection is the dose of highest estimated utility among the doses up to the MTD that were
tried and not eliminated (none if there is none; the authors' code then returns dose 1).

Checked against a line-by-line R restatement of ``oc_boin12`` that reproduces it trial for
trial (tests/fixtures/make_boin12_fixtures.R).
"""
from __future__ import annotations

import functools
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator
from scipy.special import betainc

from trialsim.analysis.utility import select_obd
from trialsim.designs._common import (NDoses, check_joint_outcomes, check_state,
                                      make_decision, max_patients_at_least_cohort,
                                      start_dose_below_n_doses, stop_at_max_patients,
                                      stop_trials)
from trialsim.designs.base import MAX_PATIENTS, NO_DOSE, BatchDecision, BatchState, Design
from trialsim.designs.interval import boin_boundaries, check_boin_phis
from trialsim.registry import register
from trialsim.spec import spec

#: Fewest patients at a dose before it can be eliminated.
N_ELIMINATE = 3
START = "start"
DE_ESCALATE = "de-escalate: DLT rate at the current dose >= lambda_d"
STAY_NO_LOWER = "stay: DLT rate >= lambda_d but no lower dose is available"
MOVE = {0: "stay: the current dose is the most desirable",
        -1: "de-escalate: the dose below is the most desirable",
        1: "escalate: the dose above is the most desirable"}
EXPLORE = "escalate: dose exploration (n_explore patients at the current dose, next dose untried)"
STOP_LOWEST = "stop: the lowest dose is eliminated (P(DLT rate > target) > cutoff_tox)"
STOP_ALL = "stop: every dose is eliminated (toxicity or futility)"
STOP_CHOSEN = "stop: no dose that is not eliminated is available"


def _beta_tail(n: np.ndarray, k: np.ndarray, cut: float, upper: bool) -> np.ndarray:
    """``P(p > cut)`` (``upper``) or ``P(p < cut)`` for ``p ~ Beta(1 + k, 1 + n - k)``,
    elementwise; ``k`` may be fractional.  Computed once per distinct ``(n, k)`` (the pairs
    are the real and imaginary parts of one complex key)."""
    n, k = np.asarray(n, float), np.asarray(k, float)
    pairs, inv = np.unique((n + 1j * k).ravel(), return_inverse=True)
    low = betainc(1.0 + pairs.imag, 1.0 + pairs.real - pairs.imag, cut)
    return (1.0 - low if upper else low)[inv.ravel()].reshape(n.shape)


#: Elimination rules are tabulated over (n, y) up to this many patients at a dose.
TABLE_MAX = 512


@functools.lru_cache(maxsize=64)
def _rule_table(cut: float, cutoff: float, upper: bool, n_max: int) -> np.ndarray:
    """``[n, y]``: ``n >= N_ELIMINATE`` and the Beta(1 + y, 1 + n - y) tail beyond ``cut``
    exceeds ``cutoff``."""
    n, y = np.meshgrid(np.arange(n_max + 1), np.arange(n_max + 1), indexing="ij")
    ok = y <= n
    tail = _beta_tail(n, np.where(ok, y, 0), cut, upper)
    return ok & (n >= N_ELIMINATE) & (tail > cutoff)


def _eliminates(n: np.ndarray, y: np.ndarray, cut: float, cutoff: float,
                upper: bool) -> np.ndarray:
    """The elimination rule at each ``(n, y)``: read from a table, computed beyond it."""
    n_max = int(n.max(initial=0))
    if n_max <= TABLE_MAX:   # tables of 64, 128, 256 or 512 patients
        size = max(64, 1 << (n_max - 1).bit_length())
        return _rule_table(cut, cutoff, upper, size)[n, y]
    return (n >= N_ELIMINATE) & (_beta_tail(n, y, cut, upper) > cutoff)


@register("design", "boin12")
@spec
class BOIN12(Design):
    """BOIN12 (Lin et al. 2020): see the module docstring for every rule."""

    n_doses: NDoses
    target: Annotated[float, Field(gt=0, lt=1, description="target (highest acceptable) DLT "
                                                           "probability, phi_T")]
    efficacy_lower: Annotated[float, Field(gt=0, lt=1, description="lowest acceptable response "
                                                                   "probability, phi_E")]
    max_patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                       description="trial size cap (patients)")]
    utility_both: Annotated[float, Field(ge=0, le=100, description="utility of a response with "
                                                                   "a DLT (0-100)")] = 60.0
    utility_neither: Annotated[float, Field(ge=0, le=100, description="utility of neither a "
                                                                      "response nor a DLT")] = 40.0
    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 3
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0
    cutoff_tox: Annotated[float, Field(gt=0.5, lt=1, description="P(DLT rate > target) that "
                                                                 "eliminates a dose")] = 0.95
    cutoff_eff: Annotated[float, Field(gt=0.5, lt=1, description="P(response rate < "
                                                                 "efficacy_lower) that "
                                                                 "eliminates a dose")] = 0.9
    n_star: Annotated[int, Field(ge=1, le=MAX_PATIENTS, description="patients at the current "
                                                                    "dose after which only a "
                                                                    "DLT rate <= lambda_e "
                                                                    "allows escalation")] = 6
    n_explore: Annotated[int, Field(ge=1, le=MAX_PATIENTS, description="patients at the "
                                                                       "current dose that send "
                                                                       "the next cohort to an "
                                                                       "untried dose above")] = 9
    p_saf: Annotated[float | None, Field(gt=0, lt=1, description="BOIN's highest "
                                                                 "subtherapeutic DLT rate "
                                                                 "(0.6 target)")] = None
    p_tox: Annotated[float | None, Field(gt=0, lt=1, description="BOIN's lowest overly toxic "
                                                                 "DLT rate (1.4 target)")] = None

    needs_efficacy = True

    _start_ok = start_dose_below_n_doses
    _sizes_ok = max_patients_at_least_cohort

    @model_validator(mode="after")
    def _boundaries_ok(self) -> "BOIN12":
        check_boin_phis(self.target, self.p_saf, self.p_tox)
        return self

    @property
    def boundaries(self) -> tuple[float, float]:
        """BOIN's ``(lambda_e, lambda_d)`` for the toxicity target (Liu & Yuan 2015)."""
        return boin_boundaries(self.target, self.p_saf, self.p_tox)

    @property
    def utilities(self) -> tuple[float, float, float, float]:
        """Utilities of (response only, both, neither, DLT only)."""
        return 100.0, self.utility_both, self.utility_neither, 0.0

    def expected_utility(self, tox, eff, eff_tox=None) -> np.ndarray:
        """Mean utility at response and DLT probabilities ``eff``, ``tox`` (and the probability
        of both, ``eff_tox``; independence if omitted), elementwise."""
        tox, eff = np.asarray(tox, float), np.asarray(eff, float)
        both = tox * eff if eff_tox is None else np.asarray(eff_tox, float)
        u_e, u_b, u_n, u_t = self.utilities
        return (u_e * (eff - both) + u_b * both + u_n * (1 - tox - eff + both)
                + u_t * (tox - both))

    @property
    def benchmark(self) -> float:
        """``u_b``: halfway between the utility at (target, efficacy_lower), independent, and
        100."""
        ubar = float(self.expected_utility(self.target, self.efficacy_lower))
        return ubar + (100.0 - ubar) / 2

    def desirability(self, state: BatchState) -> np.ndarray:
        """``P(utility > u_b / 100 | data)`` of every dose (T, D) under the quasi-binomial
        Beta(1, 1) model (untried doses: the prior value)."""
        u_e, u_b, u_n, u_t = self.utilities
        n, t, e, b = state.n, state.tox, state.eff, state.eff_tox
        x = (u_e * (e - b) + u_b * b + u_n * (n - t - e + b) + u_t * (t - b)) / 100.0
        return _beta_tail(n, x, self.benchmark / 100.0, upper=True)

    def eliminated(self, state: BatchState) -> tuple[np.ndarray, np.ndarray]:
        """``(toxic, futile)`` (T, D): doses eliminated for toxicity (a dose meeting the rule
        and every dose above it) and for futility (the dose alone)."""
        toxic = _eliminates(state.n, state.tox, self.target, self.cutoff_tox, True)
        futile = _eliminates(state.n, state.eff, self.efficacy_lower, self.cutoff_eff, False)
        return np.logical_or.accumulate(toxic, axis=1), futile

    def decide_batch(self, state: BatchState) -> BatchDecision:
        check_state(state, self.n_doses, "boin12")
        check_joint_outcomes(state)
        T, J = state.n_trials, self.n_doses
        rows = np.arange(T)
        toxic, futile = self.eliminated(state)
        elim = toxic | futile
        score = np.where(elim, 0.0, self.desirability(state))
        sel = self._select(state, elim)
        fresh = state.total == 0
        d = np.where(fresh, self.start_dose, state.current)
        n_d = state.n[rows, d]
        rate = state.tox[rows, d] / np.maximum(n_d, 1)
        lam_e, lam_d = self.boundaries
        idx = np.arange(J)[None, :]
        open_ = ~elim
        below = np.where(open_ & (idx < d[:, None]), idx, -1).max(axis=1)
        above = np.where(open_ & (idx > d[:, None]), idx, J).min(axis=1)
        has_below, has_above = below >= 0, above < J
        down = rate >= lam_d
        # de-escalation
        nxt_down = np.where(has_below, below, d)
        # the most desirable of d, the dose below and the dose above (ties in that order)
        s_d = score[rows, d]
        s_b = np.where(has_below, score[rows, np.maximum(below, 0)], -np.inf)
        up_ok = has_above & ((n_d < self.n_star) | (rate <= lam_e))
        s_a = np.where(up_ok, score[rows, np.minimum(above, J - 1)], -np.inf)
        pick = np.where(s_b > s_d, -1, 0)
        pick = np.where(s_a > np.maximum(s_d, s_b), 1, pick)
        nxt_best = np.select([pick == -1, pick == 1], [below, above], d)
        nxt = np.where(down, nxt_down, nxt_best)
        reason = np.where(down, np.where(has_below, DE_ESCALATE, STAY_NO_LOWER),
                          np.array([MOVE[-1], MOVE[0], MOVE[1]])[pick + 1])
        chosen_out = elim[rows, nxt]
        explore = (has_above & (n_d >= self.n_explore) & ~down
                   & (state.n[rows, np.minimum(above, J - 1)] == 0) & ~chosen_out)
        nxt = np.where(explore, above, nxt)
        reason = np.where(explore, EXPLORE, reason)
        nxt = np.where(fresh, self.start_dose, nxt)
        reason = np.where(fresh, START, reason)
        decision = make_decision(np.where(chosen_out & ~fresh, d, nxt), np.zeros(T, bool), sel,
                                 open_, reason)
        lowest = toxic[:, 0]
        none_left = elim.all(axis=1) & ~lowest
        decision = stop_trials(decision, lowest, STOP_LOWEST, "too_toxic", withdraw=True)
        decision = stop_trials(decision, none_left, STOP_ALL, "all_eliminated", withdraw=True)
        decision = stop_trials(decision, ~fresh & chosen_out & ~lowest & ~none_left, STOP_CHOSEN,
                               "no_dose_available", withdraw=True)
        return stop_at_max_patients(state, decision, self.max_patients)

    def _select(self, state: BatchState, elim: np.ndarray) -> np.ndarray:
        return select_obd(state.n, state.tox, state.eff, elim, self.target,
                          self.utilities).dose

    def optimal_dose(self, tox, eff, eff_tox) -> np.ndarray:
        """The dose of highest utility among those with ``tox <= target`` and
        ``eff >= efficacy_lower`` (``NO_DOSE`` if none) for each row of probabilities."""
        tox, eff = np.atleast_2d(tox), np.atleast_2d(eff)
        u = self.expected_utility(tox, eff, np.atleast_2d(eff_tox))
        ok = (tox <= self.target) & (eff >= self.efficacy_lower)
        u = np.where(ok, u, -np.inf)
        return np.where(ok.any(axis=1), np.argmax(u, axis=1), NO_DOSE).astype(np.int64)

    @classmethod
    def example(cls, n_doses: int = 5) -> "BOIN12":
        """The paper's settings: target 0.35, lowest acceptable response rate 0.25, utilities
        (100, 60, 40, 0), 12 cohorts of 3."""
        return cls(n_doses=n_doses, target=0.35, efficacy_lower=0.25, max_patients=36)
