"""Interval designs: BOIN, mTPI-2, Keyboard and i3+3.

Their dosing decision depends only on the patients ``n`` and DLTs ``y`` at the current dose:
escalate (E), stay (S) or de-escalate (D), read from a table over ``(n, y)`` computed once per
design.  What they share is written once here (:class:`IntervalDesign`):

* **Elimination** (Liu & Yuan 2015, section 2.2): once ``n >= 3`` patients at a dose and
  ``P(p > target | y, n) > cutoff_eli`` under a Beta(1, 1) prior, that dose and every dose
  above it are eliminated (never given again, never selected).  If the lowest dose is
  eliminated the trial stops with no dose selected (code ``too_toxic``).  With ``extra_safe``,
  the trial also stops with no dose when the lowest dose has ``n >= 3`` and
  ``P(p_1 > target) > cutoff_eli - offset`` (R BOIN's ``extrasafe``).
* **Moves**: E at the top dose, or towards an eliminated dose, stays; D at the lowest dose
  stays; a next dose that is eliminated is replaced by the highest dose below it that is not.
* **Stopping**: the trial stops once ``max_patients`` are treated, or once ``n_earlystop``
  patients have been treated at the current dose (code ``n_at_dose``), keeping the selection;
  for BOIN only when the next cohort would stay at that dose, as R BOIN 2.7's ``get.oc`` and R
  bfboin do (R Keyboard stops whatever the move).
* **Selection** (``recommended``): the isotonic MTD of :func:`trialsim.analysis.isotonic
  .isotonic_select` over the doses tried and not eliminated (Liu & Yuan 2015, section 2.3).

Because elimination freezes a dose's counts, it can be read from the counts alone: the designs
keep no state between cohorts, and ``decide`` on a history equals the batch decision.
"""
from __future__ import annotations

import functools
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, model_validator
from scipy.special import betainc

from trialsim.analysis.isotonic import isotonic_select
from trialsim.designs._common import (NDoses, check_state, make_decision,
                                      max_patients_at_least_cohort, start_dose_below_n_doses,
                                      stop_at_max_patients, stop_trials)
from trialsim.designs.base import MAX_PATIENTS, BatchDecision, BatchState, Design
from trialsim.registry import register
from trialsim.spec import spec

E, S, D = 1, 0, -1
START = "start"
STOP_ELIMINATED = "stop: the lowest dose is eliminated (P(DLT rate > target) > cutoff_eli)"
STOP_EXTRA_SAFE = ("stop: extra safety rule at the lowest dose (P(DLT rate > target) > "
                   "cutoff_eli - offset)")
STOP_N_AT_DOSE = "stop: n_earlystop patients treated at the current dose"
STAY_TOP = "stay: the escalation rule is met at the top dose"
STAY_ELIMINATED = "stay: the escalation rule is met but the next dose is eliminated"
STAY_LOWEST = "stay: the de-escalation rule is met at the lowest dose"
#: Smallest number of patients at a dose before it may be eliminated.
N_ELIMINATE = 3
#: Decision tables are precomputed up to this many patients at a dose (computed directly above).
TABLE_MAX = 200


def prob_above(n: np.ndarray, y: np.ndarray, target: float) -> np.ndarray:
    """``P(p > target | y DLTs in n patients)`` under a Beta(1, 1) prior (elementwise)."""
    n, y = np.asarray(n, float), np.asarray(y, float)
    return betainc(1.0 + n - y, 1.0 + y, 1.0 - target)


@spec
class IntervalDesign(Design):
    """Shared fields and decisions of the interval designs (see the module docstring).
    Subclasses implement :meth:`rule` and name their three moves."""

    n_doses: NDoses
    target: Annotated[float, Field(gt=0, lt=1, description="target DLT probability")]
    max_patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                       description="trial size cap (patients)")]
    cohort_size: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="patients per cohort")] = 3
    start_dose: Annotated[int, Field(ge=0, description="0-based index of the first dose")] = 0
    cutoff_eli: Annotated[float, Field(gt=0.5, lt=1, description="posterior probability of a "
                                                                 "DLT rate above target that "
                                                                 "eliminates a dose")] = 0.95
    extra_safe: Annotated[bool, Field(description="also stop when the lowest dose is likely "
                                                  "too toxic (cutoff_eli - offset)")] = False
    offset: Annotated[float, Field(ge=0, lt=0.5, description="margin of the extra safety "
                                                             "rule")] = 0.05
    n_earlystop: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                      description="stop once this many patients are treated "
                                                  "at the current dose")] = 100

    #: ``n_earlystop`` stops the trial only when the next dose would be the current one (R
    #: BOIN 2.7's ``get.oc`` and R bfboin); else whatever the move (R Keyboard's ``get.oc.kb``).
    earlystop_only_staying: ClassVar[bool] = False
    #: Reasons of the three moves (subclasses state their rule).
    MOVES: ClassVar[dict[int, str]] = {E: "escalate", S: "stay", D: "de-escalate"}

    _start_ok = start_dose_below_n_doses

    _sizes_ok = max_patients_at_least_cohort

    @model_validator(mode="after")
    def _offset_ok(self) -> "IntervalDesign":
        if not self.cutoff_eli - self.offset > 0.5:
            raise ValueError(f"cutoff_eli - offset must exceed 0.5, got "
                             f"{self.cutoff_eli} - {self.offset}")
        return self

    # -- the rule ------------------------------------------------------------------------
    def rule(self, n: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """The move (``E`` = 1, ``S`` = 0, ``D`` = -1) for ``y`` DLTs in ``n >= 1`` patients at the
        current dose (arrays of the same shape)."""
        raise NotImplementedError

    def tables(self, n_max: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(move, eliminate)``, each of shape ``(n_max + 1, n_max + 1)`` indexed ``[n, y]``
        (``n_max`` defaults to ``max_patients`` but at most :data:`TABLE_MAX`; entries with
        ``y > n`` or ``n = 0`` are 0 / False).  Cached on the design's parameters."""
        n_max = min(self.max_patients, TABLE_MAX) if n_max is None else int(n_max)
        return _tables(self, n_max)

    def lookup(self, n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(move, eliminate)`` at each ``(n, y)`` (arrays of one shape, ``0 <= y <= n``):
        read from :meth:`tables`, computed directly beyond them."""
        move, elim = self.tables()
        big = n >= move.shape[0]
        if not big.any():
            return move[n, y], elim[n, y]
        m, e = move[np.where(big, 0, n), y * ~big], elim[np.where(big, 0, n), y * ~big]
        nb, yb = n[big], y[big]
        m[big] = self.rule(nb, yb)
        e[big] = _eliminates(nb, yb, self)
        return m, e

    def eliminated(self, state: BatchState) -> np.ndarray:
        """Doses eliminated in each trial (T, D): a dose that met the elimination rule and
        every dose above it."""
        return self._eliminated(state.n, state.tox)

    def _eliminated(self, n: np.ndarray, tox: np.ndarray) -> np.ndarray:
        return np.logical_or.accumulate(self.lookup(n, tox)[1], axis=1)

    def stops_early(self, n_cur, staying) -> np.ndarray:
        """The ``n_earlystop`` rule: ``n_cur`` patients at the current dose, and the next
        cohort ``staying`` there (needed only if ``earlystop_only_staying``)."""
        enough = np.asarray(n_cur) >= self.n_earlystop
        return enough & staying if self.earlystop_only_staying else enough

    def _unsafe_lowest(self, n: np.ndarray, tox: np.ndarray) -> np.ndarray:
        """The extra safety rule (T,): ``n >= 3`` at the lowest dose and ``P(p > target) >
        cutoff_eli - offset``; all False without ``extra_safe``."""
        if not self.extra_safe:
            return np.zeros(n.shape[0], bool)
        return (n[:, 0] >= N_ELIMINATE) & (prob_above(n[:, 0], tox[:, 0], self.target)
                                           > self.cutoff_eli - self.offset)

    # -- the decision --------------------------------------------------------------------
    def decide_batch(self, state: BatchState) -> BatchDecision:
        check_state(state, self.n_doses, type(self).__name__)
        T, Dn = state.n_trials, self.n_doses
        elim = self.eliminated(state)
        fresh = state.total == 0
        rows = np.arange(T)
        cur = np.where(fresh, self.start_dose, state.current)
        n_cur, y_cur = state.n[rows, cur], state.tox[rows, cur]
        move = np.where(fresh, S, self.lookup(n_cur, y_cur)[0])
        up = np.minimum(cur + 1, Dn - 1)
        nxt = np.select([move == E, move == D], [np.where(elim[rows, up], cur, up),
                                                 np.maximum(cur - 1, 0)], cur)
        # never give an eliminated dose: the highest dose below the first eliminated one
        first_elim = np.where(elim.any(axis=1), np.argmax(elim, axis=1), Dn)
        nxt = np.minimum(nxt, first_elim - 1)
        # reason: the move (S 0, E 1, D 2), held back (+3: E at the top or below an
        # eliminated dose, D at the lowest dose); E at the top is told apart (7); start (8)
        held = nxt == cur
        code = np.where(move == D, 2, move) + 3 * (held & (move != S))
        code = np.where(fresh, 8, np.where((code == 4) & (cur == Dn - 1), 7, code))
        reasons = np.array([self.MOVES[S], self.MOVES[E], self.MOVES[D], "", STAY_ELIMINATED,
                            STAY_LOWEST, "", STAY_TOP, START])
        reason = reasons[code]
        sel, _ = isotonic_select(state.n, state.tox, ~elim, self.target, self.selection_upper)
        decision = make_decision(np.maximum(nxt, 0), np.zeros(T, bool), sel, ~elim, reason)
        decision = stop_trials(decision, ~fresh & self.stops_early(n_cur, held), STOP_N_AT_DOSE,
                               "n_at_dose")
        decision = stop_trials(decision, elim[:, 0], STOP_ELIMINATED, "too_toxic", withdraw=True)
        decision = stop_trials(decision, self._unsafe_lowest(state.n, state.tox),
                               STOP_EXTRA_SAFE, "too_toxic", withdraw=True)
        return stop_at_max_patients(state, decision, self.max_patients)

    #: Doses whose isotonic estimate exceeds this are never selected (BOIN's ``bound_mtd``).
    selection_upper: ClassVar[float] = np.inf

    def select(self, n, tox) -> np.ndarray:
        """The dose this design selects from final data: ``n``, ``tox`` patients and DLTs per
        dose, shape (D,) or (T, D); the 0-based dose (``-1`` for none) per trial.  No dose when
        the lowest dose is eliminated (or, with ``extra_safe``, too likely toxic); otherwise
        the isotonic MTD among the doses tried and not eliminated (R BOIN's ``select.mtd``)."""
        n2, t2 = np.atleast_2d(np.asarray(n, np.int64)), np.atleast_2d(np.asarray(tox, np.int64))
        if n2.shape != t2.shape or n2.shape[1] != self.n_doses:
            raise ValueError(f"n and tox need one count per dose ({self.n_doses}), got shapes "
                             f"{np.shape(n)} and {np.shape(tox)}")
        if (t2 < 0).any() or (t2 > n2).any():
            raise ValueError("counts must satisfy 0 <= tox <= n at every dose")
        elim = self._eliminated(n2, t2)
        sel, _ = isotonic_select(n2, t2, ~elim, self.target, self.selection_upper)
        sel = np.where(elim[:, 0] | self._unsafe_lowest(n2, t2), -1, sel)
        return sel if np.ndim(n) == 2 else sel[0]

    def decision_table(self, n_max: int | None = None) -> list[dict]:
        """For each ``n`` from 1 to ``n_max`` (default ``max_patients``): the largest ``y``
        that escalates, the smallest that de-escalates and the smallest that eliminates
        (``None`` where no ``y <= n`` does), as in R BOIN's ``get.boundary``."""
        move, elim = self.tables(n_max)
        out = []
        for n in range(1, move.shape[0]):
            y = np.arange(n + 1)
            m, e = move[n, : n + 1], elim[n, : n + 1]
            out.append({"n": n,
                        "escalate_if_y_le": int(y[m == E].max()) if (m == E).any() else None,
                        "deescalate_if_y_ge": int(y[m == D].min()) if (m == D).any() else None,
                        "eliminate_if_y_ge": int(y[e].min()) if e.any() else None})
        return out


def _eliminates(n: np.ndarray, y: np.ndarray, design: IntervalDesign) -> np.ndarray:
    return (n >= N_ELIMINATE) & (prob_above(n, y, design.target) > design.cutoff_eli)


@functools.lru_cache(maxsize=64)
def _tables(design: IntervalDesign, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    n, y = np.meshgrid(np.arange(n_max + 1), np.arange(n_max + 1), indexing="ij")
    valid = (n >= 1) & (y <= n)
    move = np.zeros(n.shape, np.int8)
    move[valid] = design.rule(n[valid], y[valid])
    elim = np.zeros(n.shape, bool)
    elim[valid] = _eliminates(n[valid], y[valid], design)
    move.setflags(write=False)
    elim.setflags(write=False)
    return move, elim


def boin_phis(target: float, p_saf: float | None, p_tox: float | None) -> tuple[float, float]:
    """BOIN's ``(phi_1, phi_2)``: ``p_saf`` and ``p_tox``, by default 0.6 and 1.4 x target."""
    return (0.6 * target if p_saf is None else p_saf, 1.4 * target if p_tox is None else p_tox)


def check_boin_phis(target: float, p_saf: float | None, p_tox: float | None) -> None:
    """``ValueError`` unless ``0 < phi_1 < target < phi_2 < 1``."""
    lo, hi = boin_phis(target, p_saf, p_tox)
    if not 0 < lo < target < hi < 1:
        raise ValueError(f"0 < p_saf < target < p_tox < 1 is required, got p_saf={lo:g}, "
                         f"target={target:g}, p_tox={hi:g}"
                         + (" (p_tox defaults to 1.4 x target: set it)" if hi >= 1 else ""))


def boin_boundaries(target: float, p_saf: float | None, p_tox: float | None
                    ) -> tuple[float, float]:
    """BOIN's ``(lambda_e, lambda_d)`` (Liu & Yuan 2015, section 2.1)."""
    p, (p1, p2) = target, boin_phis(target, p_saf, p_tox)
    lam_e = np.log((1 - p1) / (1 - p)) / np.log(p * (1 - p1) / (p1 * (1 - p)))
    lam_d = np.log((1 - p) / (1 - p2)) / np.log(p2 * (1 - p) / (p * (1 - p2)))
    return float(lam_e), float(lam_d)


@register("design", "boin")
@spec
class BOIN(IntervalDesign):
    """The Bayesian optimal interval design (Liu & Yuan 2015, J R Stat Soc C 64:507-523).

    With ``p_saf`` (default 0.6 × target, the highest DLT rate deemed subtherapeutic) and
    ``p_tox`` (default 1.4 × target, the lowest deemed overly toxic), the boundaries are
    ``lambda_e = log((1 - p_saf) / (1 - target)) / log(target (1 - p_saf) / (p_saf (1 - target)))``
    and ``lambda_d = log((1 - target) / (1 - p_tox)) / log(p_tox (1 - target) / (target (1 -
    p_tox)))`` (section 2.1); at the current dose, ``y / n <= lambda_e`` escalates,
    ``y / n >= lambda_d`` de-escalates, otherwise the next cohort stays.  Elimination, the extra
    safety rule, stopping and the isotonic selection are those of :class:`IntervalDesign`
    (R BOIN 2.7.2's ``get.oc`` and ``select.mtd`` defaults; as there, ``n_earlystop`` stops
    the trial only when the next cohort would stay at the current dose); with ``bound_mtd`` a
    dose is selected only if its isotonic estimate is at most ``lambda_d`` (``boundMTD = TRUE``).
    """

    p_saf: Annotated[float | None, Field(gt=0, lt=1, description="highest subtherapeutic "
                                                                 "DLT rate (0.6 target)")] = None
    p_tox: Annotated[float | None, Field(gt=0, lt=1, description="lowest overly toxic DLT "
                                                                 "rate (1.4 target)")] = None
    bound_mtd: Annotated[bool, Field(description="select only doses whose isotonic estimate is "
                                                 "at most lambda_d")] = False

    earlystop_only_staying = True
    MOVES = {E: "escalate: DLT rate at the current dose <= lambda_e",
             S: "stay: DLT rate at the current dose between lambda_e and lambda_d",
             D: "de-escalate: DLT rate at the current dose >= lambda_d"}

    @model_validator(mode="after")
    def _interval_ok(self) -> "BOIN":
        check_boin_phis(self.target, self.p_saf, self.p_tox)
        return self

    @property
    def phi_1(self) -> float:
        return boin_phis(self.target, self.p_saf, self.p_tox)[0]

    @property
    def phi_2(self) -> float:
        return boin_phis(self.target, self.p_saf, self.p_tox)[1]

    @property
    def selection_upper(self) -> float:  # type: ignore[override]
        return self.boundaries[1] if self.bound_mtd else np.inf

    @property
    def boundaries(self) -> tuple[float, float]:
        """``(lambda_e, lambda_d)``."""
        return boin_boundaries(self.target, self.p_saf, self.p_tox)

    def rule(self, n, y):
        lam_e, lam_d = self.boundaries
        rate = y / n
        return np.where(rate <= lam_e, E, np.where(rate >= lam_d, D, S))

    @classmethod
    def example(cls, n_doses: int = 5) -> "BOIN":
        """Target 0.3, cohorts of 3, 36 patients (R BOIN's get.oc example)."""
        return cls(n_doses=n_doses, target=0.3, max_patients=36)


@spec
class _EquivalenceInterval(IntervalDesign):
    """An equivalence interval ``[target - eps1, target + eps2]`` around the target."""

    eps1: Annotated[float, Field(gt=0, lt=1, description="the equivalence interval reaches "
                                                         "this far below the target")] = 0.05
    eps2: Annotated[float, Field(gt=0, lt=1, description="the equivalence interval reaches "
                                                         "this far above the target")] = 0.05

    @model_validator(mode="after")
    def _interval_inside(self) -> "_EquivalenceInterval":
        if not (self.target - self.eps1 > 0 and self.target + self.eps2 < 1):
            raise ValueError(f"the equivalence interval [target - eps1, target + eps2] = "
                             f"[{self.target - self.eps1:g}, {self.target + self.eps2:g}] must lie "
                             "inside (0, 1)")
        return self

    @property
    def interval(self) -> tuple[float, float]:
        """``(target - eps1, target + eps2)``."""
        return self.target - self.eps1, self.target + self.eps2


#: Cut points within this distance of 0 or 1 reach it (no sliver intervals from rounding).
_EDGE_TOL = 1e-9


def _cut_points(lo: float, hi: float) -> np.ndarray:
    """Cut points of intervals of width ``hi - lo`` tiling [0, 1] from ``[lo, hi]``, with at
    most one partial interval at each end."""
    w = hi - lo
    below, c = [], lo
    while c > _EDGE_TOL:
        c -= w
        below.append(max(c, 0.0) if c > _EDGE_TOL else 0.0)
    above, c = [], hi
    while c < 1 - _EDGE_TOL:
        c += w
        above.append(min(c, 1.0) if c < 1 - _EDGE_TOL else 1.0)
    return np.array(below[::-1] + [lo, hi] + above)


def _strongest_interval_move(n, y, lo: float, hi: float, ties_up: bool) -> np.ndarray:
    """E/S/D by the interval of largest unit probability mass (posterior probability over
    width, Beta(1 + y, 1 + n - y)), ties to the higher interval if ``ties_up``."""
    cuts = _cut_points(lo, hi)
    n, y = np.asarray(n, float)[..., None], np.asarray(y, float)[..., None]
    cdf = betainc(1.0 + y, 1.0 + n - y, cuts)
    upm = np.diff(cdf, axis=-1) / np.diff(cuts)
    k = upm.shape[-1]
    best = (k - 1 - np.argmax(upm[..., ::-1], axis=-1)) if ties_up else np.argmax(upm, axis=-1)
    ei = int(np.flatnonzero(np.isclose(cuts, lo))[0])  # index of the interval [lo, hi]
    return np.where(best < ei, E, np.where(best > ei, D, S))


@register("design", "mtpi2")
@spec
class MTPI2(_EquivalenceInterval):
    """The modified toxicity probability interval design mTPI-2 (Guo et al. 2017, Contemp Clin
    Trials 58:23-33).

    [0, 1] is cut into the equivalence interval ``[target - eps1, target + eps2]`` and intervals
    of the same width below and above it (a partial one at each end where they do not tile).
    At the current dose the interval with the largest unit probability mass (posterior
    probability / width, Beta(1 + y, 1 + n - y)) decides: below the equivalence interval
    escalate, the interval itself stay, above de-escalate; exact ties go to the lower interval
    (R FIND's ``get_decision_mtpi2``).  Elimination, stopping and the isotonic selection are those
    of :class:`IntervalDesign` (as FIND's ``run_sim_mtpi2`` and ``select_mtd``).
    """

    MOVES = {E: "escalate: strongest interval below the equivalence interval",
             S: "stay: strongest interval is the equivalence interval",
             D: "de-escalate: strongest interval above the equivalence interval"}

    def rule(self, n, y):
        return _strongest_interval_move(n, y, *self.interval, ties_up=False)

    @classmethod
    def example(cls, n_doses: int = 5) -> "MTPI2":
        """Target 0.3, equivalence interval [0.25, 0.35], cohorts of 3, 36 patients."""
        return cls(n_doses=n_doses, target=0.3, max_patients=36)


@register("design", "keyboard")
@spec
class Keyboard(_EquivalenceInterval):
    """The Keyboard design (Yan, Mandrekar & Yuan 2017, Clin Cancer Res 23:3994-4003).

    The target key ``[target - eps1, target + eps2]`` and keys of the same width below and
    above it; the strongest key (largest posterior probability, partial keys at 0 and 1 scaled
    to full width, i.e. the largest probability per unit width) decides: left of the target key
    escalate, the target key stay, right of it de-escalate; exact ties go to the more toxic key
    (R Keyboard's ``get.boundary.kb``).  These are mTPI-2's decisions except at exact ties (Ji &
    Yang 2017 call the two designs equivalent).  Elimination, stopping and the isotonic
    selection are those of :class:`IntervalDesign` (R Keyboard's ``get.oc.kb`` and
    ``select.mtd.kb``).
    """

    MOVES = {E: "escalate: strongest key below the target key",
             S: "stay: strongest key is the target key",
             D: "de-escalate: strongest key above the target key"}

    def rule(self, n, y):
        return _strongest_interval_move(n, y, *self.interval, ties_up=True)

    @classmethod
    def example(cls, n_doses: int = 5) -> "Keyboard":
        """Target 0.3, target key [0.25, 0.35], cohorts of 3, 36 patients."""
        return cls(n_doses=n_doses, target=0.3, max_patients=36)


@register("design", "i3plus3")
@spec
class I3Plus3(_EquivalenceInterval):
    """The i3+3 design (Liu, Wang & Ji 2020, J Biopharm Stat 30(2):294-304).

    With the equivalence interval ``[lo, hi] = [target - eps1, target + eps2]`` and the observed
    rate ``y / n`` at the current dose: ``y / n < lo`` escalates; ``lo <= y / n <= hi`` stays;
    above ``hi`` the next cohort stays if ``(y - 1) / n < lo`` (one DLT fewer would have
    escalated) and de-escalates otherwise.  Elimination, stopping and the isotonic selection
    are those of :class:`IntervalDesign` (R FIND's ``run_sim_i3plus3`` and ``select_mtd``).
    """

    MOVES = {E: "escalate: DLT rate below the equivalence interval",
             S: "stay: DLT rate in the equivalence interval, or above it by one DLT at most",
             D: "de-escalate: DLT rate above the equivalence interval"}

    def rule(self, n, y):
        lo, hi = self.interval
        rate = y / n
        return np.where(rate < lo, E, np.where(rate <= hi, S,
                                               np.where((y - 1) / n < lo, S, D)))

    @classmethod
    def example(cls, n_doses: int = 5) -> "I3Plus3":
        """Target 0.3, equivalence interval [0.25, 0.35], cohorts of 3, 36 patients."""
        return cls(n_doses=n_doses, target=0.3, max_patients=36)
