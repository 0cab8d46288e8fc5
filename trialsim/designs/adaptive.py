"""Adaptive phase II dose-ranging: interim analyses with efficacy and futility stopping, arm
dropping and response-adaptive randomisation (RAR) after a burn-in.

The trial randomises its first ``interims[0]`` patients in permuted blocks in the ratio
``allocation`` (the burn-in).  When the first ``interims[k]`` patients have reached the primary
visit (or dropped out), an interim looks at their data, all trials at once, through an
:class:`InterimState` (per-arm estimates on the analysis scale and their standard errors, the
largest contrast statistic and whether the multiple contrast test rejects at ``efficacy_p``),
and :meth:`Adaptive.adapt` returns an :class:`InterimDecision`: stop for efficacy (the test
rejects at the small level ``efficacy_p``, as Haybittle–Peto), stop for futility (the largest
contrast t statistic below ``futility_t``), drop doses whose estimated effect over placebo
in the direction of benefit is below ``drop_below`` (placebo is never dropped; a trial with no
dose left stops for futility), and the randomisation probabilities of the next patients.

With ``rar: none`` the next patients are randomised in the burn-in ratio among the arms left.
With RAR, placebo keeps ``placebo_share`` (default its burn-in share) and each dose left gets a
share of the rest proportional to ``w_d^rar_power``:

* ``best``: ``w_d = P(dose d has the largest mean benefit)`` among the doses left;
* ``target``: ``w_d = P(effect of d over placebo >= rar_target)``;

under the conjugate normal model with a flat prior — each arm's mean ``~ N(estimate, se²)``,
independent — computed in closed form (``target``: a normal probability; ``best``: a
one-dimensional integral by piecewise Gauss–Legendre quadrature, accurate to ~1e-14).  Doses whose share
falls below ``min_share`` get none at this stage (they stay in the trial).  Patients after an
interim are randomised independently with these probabilities.  Thall & Wathen (2007, *Eur J
Cancer* 43:859–866) for tempering with a power; Berry et al. (2011, *Bayesian Adaptive
Methods for Clinical Trials*, ch. 4) for allocation by the probability of being best.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator
from scipy.special import ndtr

from trialsim.designs.phase2 import MAX_PHASE2_PATIENTS, Parallel, Phase2Design, check_arms
from trialsim.errors import FieldError
from trialsim.registry import register
from trialsim.spec import spec

#: Breakpoints (in SDs around each arm's mean) and the Gauss–Legendre rule of P(best).
_K = np.array([-6.0, -3.0, -1.5, -0.5, 0.5, 1.5, 3.0, 6.0])
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


@dataclass(frozen=True)
class InterimState:
    """What an interim sees in each of T trials: ``n`` (T, D) patients with the primary
    outcome per arm; ``mean`` (T, D) the arm estimates on the analysis scale (mean change, or
    logit of the rate) and ``se`` (T, D) their standard errors; ``benefit`` +1 when larger is
    better, −1 when smaller is (a fall in MADRS); ``max_t`` (T,) the largest contrast t
    statistic in the direction of benefit; ``reject`` (T,) the multiple contrast test rejects
    flatness at ``efficacy_p``; ``active`` (T, D) arms still randomised."""

    n: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    benefit: float
    max_t: np.ndarray
    reject: np.ndarray
    active: np.ndarray


@dataclass(frozen=True)
class InterimDecision:
    """``probs`` (T, D) randomisation probabilities of the next patients, ``active`` (T, D)
    the arms left, ``stop_efficacy`` and ``stop_futility`` (T,)."""

    probs: np.ndarray
    active: np.ndarray
    stop_efficacy: np.ndarray
    stop_futility: np.ndarray


def prob_best(mean: np.ndarray, se: np.ndarray, active: np.ndarray) -> np.ndarray:
    """P(arm d has the largest mean) (T, D) among the ``active`` arms, the means independent
    normals ``N(mean, se²)`` (0 for inactive arms):
    ``∫ φ_d(x) Π_{j≠d} Φ_j(x) dx`` over ``mean_d ± 9 se_d``, by 16-point Gauss–Legendre on
    the pieces between breakpoints at every arm's ``mean_j + k se_j`` (k = ±0.5, ±1.5, ±3,
    ±6), so that steep factors of precise arms are resolved: accurate to ~1e-14 whatever the
    ratio of the standard errors (tested against adaptive quadrature)."""
    T, D = mean.shape
    lo, hi = mean - 9.0 * se, mean + 9.0 * se                               # (T, D)
    c = (mean[:, :, None] + se[:, :, None] * _K).reshape(T, 1, -1)          # (T, 1, 8D)
    c = np.where(np.repeat(active, _K.size, axis=1)[:, None, :], c, lo[:, :, None])
    pts = np.concatenate([lo[:, :, None], np.clip(c, lo[:, :, None], hi[:, :, None]),
                          hi[:, :, None]], axis=2)
    pts.sort(axis=2)                                                        # (T, D, P)
    a, b = pts[..., :-1], pts[..., 1:]
    x = (a[..., None] + (b - a)[..., None] * (_GL_X + 1) / 2).reshape(T, D, -1)
    w = ((b - a)[..., None] / 2 * _GL_W).reshape(T, D, -1)
    zd = (x - mean[..., None]) / se[..., None]
    dens = np.exp(-0.5 * zd * zd) / (np.sqrt(2 * np.pi) * se[..., None])
    prod = np.ones_like(x)
    for j in range(D):
        f = ndtr((x - mean[:, j, None, None]) / se[:, j, None, None])
        f[:, j] = 1.0
        prod *= np.where(active[:, j, None, None], f, 1.0)
    return np.where(active, (w * dens * prod).sum(axis=2), 0.0)


@register("phase2_design", "adaptive")
@spec
class Adaptive(Phase2Design):
    """Interim analyses, stopping, arm dropping and response-adaptive randomisation.
    ``allocation``: burn-in ratios (placebo first), in blocks of ``block_size``; ``n_total``;
    ``interims``: patients with the primary outcome at each look (increasing, below
    ``n_total``); ``efficacy_p``: stop when MCP-Mod rejects at this level (one for every
    look, or a list with one per look, e.g. increasing as O'Brien–Fleming; 0: no efficacy
    stop at that look); ``futility_t``:
    stop when every contrast's t statistic is below it; ``drop_below``: drop a dose whose
    effect over placebo (direction of benefit) is below it; ``rar``: none (burn-in ratio
    among the arms left), best (shares by P(best)^rar_power) or target (by P(effect >=
    rar_target)^rar_power), with ``placebo_share`` for placebo and doses below ``min_share``
    skipped until the next look; ``accrual_per_week``: patients keep entering while the
    interim's patients reach the primary visit (they are randomised as before the look and
    followed to the end even if the trial stops); without it enrolment pauses at each look."""

    allocation: tuple[Annotated[int, Field(ge=0, le=100)], ...]
    n_total: Annotated[int, Field(ge=2, le=MAX_PHASE2_PATIENTS)]
    interims: tuple[Annotated[int, Field(ge=2, le=MAX_PHASE2_PATIENTS)], ...]
    block_size: Annotated[int, Field(ge=1, le=1000)] | None = None
    efficacy_p: (Annotated[float, Field(gt=0, lt=0.5)]
                 | tuple[Annotated[float, Field(ge=0, lt=0.5)], ...] | None) = None
    futility_t: Annotated[float, Field(ge=-10, le=10)] | None = None
    drop_below: Annotated[float, Field(ge=-1e6, le=1e6)] | None = None
    rar: Literal["none", "best", "target"] = "none"
    rar_target: Annotated[float, Field(ge=-1e6, le=1e6)] | None = None
    rar_power: Annotated[float, Field(ge=0, le=10)] = 1.0
    placebo_share: Annotated[float, Field(gt=0, lt=1)] | None = None
    min_share: Annotated[float, Field(ge=0, lt=1)] = 0.0
    accrual_per_week: Annotated[float, Field(gt=0, le=1e5)] | None = None

    @field_validator("allocation")
    @classmethod
    def _ratios(cls, v):
        return check_arms(v)

    def __post_init__(self) -> None:
        if 0 in self.allocation:
            raise FieldError("allocation", f"every arm needs a positive burn-in ratio: an arm "
                                           f"of ratio 0 never gets a patient, and the analysis "
                                           f"compares every arm with placebo; got "
                                           f"{list(self.allocation)}")
        if not self.interims or any(b <= a for a, b in zip(self.interims, self.interims[1:])):
            raise ValueError(f"interims must be increasing patient numbers, got "
                             f"{list(self.interims)}")
        if self.interims[-1] >= self.n_total:
            raise ValueError(f"every interim must come before the last patient ({self.n_total}),"
                             f" got {list(self.interims)}")
        if len(self.interims) > 20:
            raise ValueError(f"at most 20 interims, got {len(self.interims)}")
        if isinstance(self.efficacy_p, tuple) and len(self.efficacy_p) != len(self.interims):
            raise ValueError(f"efficacy_p: expected one level per interim ({len(self.interims)})"
                             f", got {len(self.efficacy_p)}")
        if (self.rar == "target") != (self.rar_target is not None):
            raise ValueError("rar_target goes with rar: target (and rar: target needs it)")
        if self.rar == "none" and (self.placebo_share is not None or self.min_share > 0):
            raise ValueError("placebo_share and min_share apply to response-adaptive "
                             "randomisation (rar: best or target)")
        self._burn_in()                          # block_size checks

    def efficacy_level(self, k: int) -> float:
        """The level of the efficacy test at interim ``k`` (0: none)."""
        if self.efficacy_p is None:
            return 0.0
        return float(self.efficacy_p[k] if isinstance(self.efficacy_p, tuple)
                     else self.efficacy_p)

    def _burn_in(self) -> Parallel:
        return Parallel(allocation=self.allocation, n_total=self.interims[0],
                        block_size=self.block_size)

    def n_uniforms(self) -> int:
        """The burn-in's block uniforms, then one per patient after it."""
        return self._burn_in().n_uniforms() + self.n_total - self.interims[0]

    def allocate(self, u: np.ndarray, stratum: np.ndarray | None = None) -> np.ndarray:
        """Arms (T, n_total) before any adaptation: the burn-in in blocks, the later patients
        drawn in the burn-in ratio.  The simulator redraws each later stage's patients with
        the probabilities of the interim before it (:meth:`allocate_stage`), from the same
        uniforms."""
        first = self._burn_in().allocate(u[:, :self._burn_in().n_uniforms()])
        r = np.asarray(self.allocation, float)
        rest = self.allocate_stage(np.broadcast_to(r, (u.shape[0], r.size)),
                                   u[:, self._burn_in().n_uniforms():])
        return np.concatenate([first, rest], axis=1)

    def uniforms_from(self, u: np.ndarray, i: int) -> np.ndarray:
        """The uniforms (T, n_total - i) of the patients from ``i`` (>= interims[0]) on."""
        return u[:, self._burn_in().n_uniforms() + i - self.interims[0]:]

    def pipeline(self, visit_h: float) -> int:
        """Patients enrolled while the last one analysed at an interim reaches the primary
        visit ``visit_h`` (h): with accrual at ``accrual_per_week`` (evenly spaced), those
        who enter within ``visit_h`` after that patient; 0 when enrolment pauses at each
        interim (``accrual_per_week`` not given)."""
        if self.accrual_per_week is None:
            return 0
        return int(np.floor(visit_h * self.accrual_per_week / 168.0 + 1e-9))

    def duration_weeks(self, n_enrolled: np.ndarray, visit_h: float) -> np.ndarray:
        """Calendar duration (weeks) from the first patient in to the last one's primary
        visit, with accrual at ``accrual_per_week`` (NaN without)."""
        n = np.asarray(n_enrolled, float)
        if self.accrual_per_week is None:
            return np.full(n.shape, np.nan)
        return (n - 1) / self.accrual_per_week + visit_h / 168.0

    @staticmethod
    def allocate_stage(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Arms (T, m) of a stage's patients drawn with ``probs`` (T, D) from uniforms (T, m)."""
        cum = np.cumsum(probs, axis=1)
        cum = cum / cum[:, -1:]
        return (u[:, :, None] >= cum[:, None, :-1]).sum(axis=2)

    def initial_active(self, T: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.allocation) > 0, (T, self.n_arms)).copy()

    def adapt(self, state: InterimState) -> InterimDecision:
        """The interim decision of every trial (see the module docstring)."""
        T, D = state.mean.shape
        active = state.active.copy()
        effect = state.benefit * (state.mean - state.mean[:, :1])
        if self.drop_below is not None:
            active[:, 1:] &= ~(effect[:, 1:] < self.drop_below)
        none_left = ~active[:, 1:].any(axis=1)
        fut = none_left.copy()
        if self.futility_t is not None:
            fut |= state.max_t < self.futility_t
        eff = np.zeros(T, bool) if self.efficacy_p is None else state.reject.copy()
        eff &= ~none_left
        fut &= ~eff
        ratios = np.asarray(self.allocation, float)
        if self.rar == "none":
            w = np.where(active, ratios, 0.0)
            probs = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
        else:
            if self.rar == "best":
                p = prob_best(state.benefit * state.mean[:, 1:], state.se[:, 1:],
                              active[:, 1:])
            else:
                s = np.sqrt(state.se[:, 1:] ** 2 + state.se[:, :1] ** 2)
                p = np.where(active[:, 1:], ndtr((effect[:, 1:] - self.rar_target) / s), 0.0)
            w = p ** self.rar_power
            w = np.where(active[:, 1:], w, 0.0)
            tot = w.sum(axis=1, keepdims=True)
            equal = active[:, 1:] / np.maximum(active[:, 1:].sum(axis=1, keepdims=True), 1)
            share = np.where(tot > 0, w / np.maximum(tot, 1e-300), equal)
            if self.min_share > 0:
                plc = self._placebo_share()
                small = share * (1 - plc) < self.min_share
                kept = np.where(small, 0.0, share)
                ks = kept.sum(axis=1, keepdims=True)
                share = np.where(ks > 0, kept / np.maximum(ks, 1e-300), share)
            plc = self._placebo_share()
            probs = np.concatenate([np.full((T, 1), plc), (1 - plc) * share], axis=1)
        return InterimDecision(probs=probs, active=active, stop_efficacy=eff,
                               stop_futility=fut)

    def _placebo_share(self) -> float:
        if self.placebo_share is not None:
            return float(self.placebo_share)
        return float(self.allocation[0] / sum(self.allocation))

    @classmethod
    def example(cls, n_doses: int = 5) -> "Adaptive":
        return cls(allocation=(1,) * n_doses, n_total=20 * n_doses,
                   interims=(10 * n_doses,), efficacy_p=0.001, futility_t=0.0, rar="best")
