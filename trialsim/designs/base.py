"""The design contract.

A design is an immutable specification.  It decides for a whole batch of trials advancing in
lockstep (:meth:`Design.decide_batch` on a :class:`BatchState`), and for one trial through
:meth:`Design.decide` on a :class:`~trialsim.outcomes.TrialHistory` (a batch of one).
Whatever it fits is returned, never stored on it.

Modifiers wrap a parent design and adjust its decision (see ``modifiers.py``).

Every decision that stops a trial carries a **stop code** (a short machine-readable name of
the rule that ended it: ``max_patients``, ``n_reached``, ``too_toxic``, ``toxic``,
``top_dose_cleared``, ...) beside the readable reason; results count stops by code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from trialsim.outcomes import TrialHistory

NO_DOSE = -1  # in index arrays: "no dose" (not given / none recommended)
#: Largest trial size (patients) a design may ask for.
MAX_PATIENTS = 100_000


@dataclass(frozen=True)
class FollowUp:
    """Patients of ``T`` trials in the order treated, as seen at a decision taken before every
    outcome is known (designs with partial follow-up, e.g. the TITE-CRM): ``dose`` int64
    ``(T, K)`` (``NO_DOSE``: no patient), ``tox`` bool ``(T, K)`` (DLT observed by now) and
    ``elapsed`` ``(T, K)``, the fraction of each patient's observation window followed so far
    (at most 1), or for a patient with a DLT observed, the fraction at which it occurred."""

    dose: np.ndarray
    tox: np.ndarray
    elapsed: np.ndarray

    def subset(self, mask: np.ndarray) -> "FollowUp":
        return FollowUp(self.dose[mask], self.tox[mask], self.elapsed[mask])


@dataclass(frozen=True)
class BatchState:
    """What has been observed in each of ``T`` trials over ``D`` doses.

    All arrays are int64: ``n``, ``tox`` and ``eff`` have shape ``(T, D)`` (patients, DLTs and
    efficacy responses per dose); ``current`` shape ``(T,)``, the dose index of the most
    recent cohort or ``NO_DOSE`` before the first; ``last_cohort_n`` and ``last_cohort_tox``
    shape ``(T,)``, the size and DLT count of that cohort; ``eff_tox`` ``(T, D)``, patients
    with both a DLT and an efficacy response per dose (with ``n``, ``tox`` and ``eff`` it gives
    the four joint outcomes that efficacy-toxicity designs need; zeros if not given).

    ``followup``: at a decision taken with partial follow-up (the timed path of designs that
    decide before every outcome is in, ``Design.follow_up``), each patient's dose, observed
    DLT and follow-up so far; the counts then hold the DLTs observed so far.  ``None``: every
    outcome is known.

    ``u``: for designs that randomise the next dose (``Design.randomises``), one uniform in
    [0, 1) per trial, ``(T,)`` float64; the simulator draws it from the trial's ``model``
    stream at the index of the patients treated so far, so a trial's draws do not depend on
    its batch.  ``None``: no draw given (such a design then refuses to randomise).
    """

    n: np.ndarray
    tox: np.ndarray
    eff: np.ndarray
    current: np.ndarray
    last_cohort_n: np.ndarray
    last_cohort_tox: np.ndarray
    eff_tox: np.ndarray | None = None
    followup: FollowUp | None = None
    u: np.ndarray | None = None
    escalated: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.eff_tox is None:
            object.__setattr__(self, "eff_tox", np.zeros_like(self.n))

    @property
    def n_trials(self) -> int:
        return self.n.shape[0]

    @property
    def n_doses(self) -> int:
        return self.n.shape[1]

    @property
    def total(self) -> np.ndarray:
        """Patients treated so far in each trial (escalation cohorts only where backfill
        patients are counted apart, ``escalated``), shape ``(T,)``."""
        return self.n.sum(axis=1) if self.escalated is None else self.escalated

    @property
    def highest_tried(self) -> np.ndarray:
        """Highest dose index given so far in each trial (``NO_DOSE`` if none), shape ``(T,)``."""
        tried = self.n > 0
        idx = self.n_doses - 1 - np.argmax(tried[:, ::-1], axis=1)
        return np.where(tried.any(axis=1), idx, NO_DOSE)

    @classmethod
    def empty(cls, n_trials: int, n_doses: int) -> "BatchState":
        z2 = np.zeros((n_trials, n_doses), dtype=np.int64)
        z1 = np.zeros(n_trials, dtype=np.int64)
        return cls(z2, z2.copy(), z2.copy(), np.full(n_trials, NO_DOSE, np.int64), z1, z1.copy(),
                   z2.copy())

    @classmethod
    def from_history(cls, history: TrialHistory, u: float | None = None) -> "BatchState":
        n, t, e = history.counts()
        both = np.bincount(np.asarray(history.dose, np.int64),
                           weights=np.asarray(history.tox, float) * np.asarray(history.eff, float),
                           minlength=history.n_doses).astype(np.int64)
        if history.n_patients:
            last = history.cohort[-1]
            idx = [i for i, c in enumerate(history.cohort) if c == last]
            cur = history.dose[-1]
            lcn, lct = len(idx), sum(history.tox[i] for i in idx)
        else:
            cur, lcn, lct = NO_DOSE, 0, 0
        one = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
        return cls(n[None], t[None], e[None], one(cur), one(lcn), one(lct), both[None],
                   u=None if u is None else np.array([u], dtype=float))

    def subset(self, mask: np.ndarray) -> "BatchState":
        """The trials selected by a boolean mask or index array."""
        return BatchState(self.n[mask], self.tox[mask], self.eff[mask], self.current[mask],
                          self.last_cohort_n[mask], self.last_cohort_tox[mask],
                          self.eff_tox[mask],
                          None if self.followup is None else self.followup.subset(mask),
                          None if self.u is None else self.u[mask],
                          None if self.escalated is None else self.escalated[mask])


@dataclass(frozen=True)
class BatchDecision:
    """A design's decision for each of ``T`` trials.

    ``next_dose`` (int64, ``NO_DOSE`` when the trial stops), ``stop`` (bool),
    ``recommended`` (int64, the dose the design would select if the trial ended now, or
    ``NO_DOSE``), ``admissible`` (bool ``(T, D)``, doses the design considers safe enough to
    give), ``reason`` (str array: the rule that determined the decision, e.g. ``"escalate"``,
    ``"stop: 2 or more DLTs at the current dose"``, ``"stop: max_patients reached"``),
    ``stop_code`` (str array: the code of the rule that stopped the trial, ``""`` where it
    continues), and ``cohort_size`` (int64 array, the size of each trial's next cohort, or
    ``None`` for the design's fixed ``cohort_size``; the simulator caps it at
    ``max_patients``).
    """

    next_dose: np.ndarray
    stop: np.ndarray
    recommended: np.ndarray
    admissible: np.ndarray
    reason: np.ndarray
    stop_code: np.ndarray
    cohort_size: np.ndarray | None = None

    def item(self, i: int = 0) -> "Decision":
        nd, rec = int(self.next_dose[i]), int(self.recommended[i])
        return Decision(
            next_dose=None if self.stop[i] or nd == NO_DOSE else nd,
            stop=bool(self.stop[i]),
            recommended=None if rec == NO_DOSE else rec,
            admissible=tuple(bool(x) for x in self.admissible[i]),
            reasons=tuple(r for r in str(self.reason[i]).split("; ") if r),
            stop_code=str(self.stop_code[i]) or None,
            cohort_size=None if self.cohort_size is None or self.stop[i]
            else int(self.cohort_size[i]),
        )


@dataclass(frozen=True)
class Decision:
    """One trial's decision: next dose (or None), stop flag, current recommendation (or None),
    admissible doses, the reasons (the rules that fired), when it stops the stop code, and the
    next cohort's size where the design sets it per cohort (else None: its ``cohort_size``)."""

    next_dose: int | None
    stop: bool
    recommended: int | None
    admissible: tuple[bool, ...]
    reasons: tuple[str, ...]
    stop_code: str | None = None
    cohort_size: int | None = None


class Design:
    """Base class of every design and modifier.

    Subclasses are frozen ``@spec`` dataclasses registered with ``@register("design", name)``
    (modifiers: ``@register("modifier", name)``) and implement :meth:`decide_batch` and the
    classmethod :meth:`example`.  Attributes every design provides: ``n_doses`` (dose levels),
    ``cohort_size`` (patients per cohort), ``max_patients`` (trial size cap: a design stops a
    trial once ``state.total`` reaches it, e.g. through
    :func:`trialsim.designs._common.stop_at_max_patients`; modifiers do it for their parent;
    the simulator takes the recommendation of that last decision, made on all the data, and
    refuses a cohort beyond the cap), ``start_dose`` (0-based index of the first dose), and
    ``toxicity_model`` (whether :meth:`prob_tox_exceeds` is available).  Checks that need the
    study (the number of doses) read :func:`trialsim.spec.context`.
    """

    n_doses: int
    cohort_size: int
    max_patients: int
    start_dose: int
    #: Whether the design has a probability model of toxicity (``prob_tox_exceeds``).
    toxicity_model: ClassVar[bool] = False
    #: Whether the design's rules assume cohorts of its own fixed size (3+3-type rules).
    fixed_cohorts: ClassVar[bool] = False
    #: Whether its rules set the size of each cohort (accelerated titration: 1, 2, then 3).
    own_cohort_sizes: ClassVar[bool] = False
    #: Whether the design decides on efficacy too (the study must give an efficacy outcome).
    needs_efficacy: ClassVar[bool] = False
    #: Whether the design decides with partial follow-up (reads ``BatchState.followup``); its
    #: studies need a ``conduct:`` section, whose calendar times the decisions.
    follow_up: ClassVar[bool] = False
    #: Whether the design may randomise the next dose (reads ``BatchState.u``).
    randomises: ClassVar[bool] = False
    #: Whether patients are backfilled at cleared doses (a ``backfill`` modifier; the study
    #: then runs on its calendar, :mod:`trialsim.conduct.backfill`).
    backfills: ClassVar[bool] = False
    #: Stop codes of a trial that ran its course (not an early stop, in the operating
    #: characteristics): its size reached; rule-based designs add their own ends.
    completion_codes: ClassVar[tuple[str, ...]] = ("max_patients", "n_reached")

    def decide_batch(self, state: BatchState) -> BatchDecision:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define decide_batch(state)")

    def decide(self, history: TrialHistory | str, u: float | None = None) -> Decision:
        """Decide for a single trial (a batch of one).  ``history`` is a
        :class:`~trialsim.outcomes.TrialHistory` or its text in the outcome mini-language
        (``"1NNN 2NTN"``, read with this design's number of doses); ``u``, a uniform in [0, 1)
        for designs that randomise the next dose (``randomises``)."""
        if isinstance(history, str):
            history = TrialHistory.parse(history, self.n_doses)
        if not isinstance(history, TrialHistory):
            raise TypeError(f"decide() takes a TrialHistory or its text (e.g. '1NNN 2NTN'), got "
                            f"{type(history).__name__}")
        if history.n_doses != self.n_doses:
            raise ValueError(f"the history has {history.n_doses} doses but the design has "
                             f"{self.n_doses}")
        if u is not None and not 0.0 <= u < 1.0:
            raise ValueError(f"u must be a uniform draw in [0, 1), got {u}")
        return decide_checked(self, BatchState.from_history(history, u)).item(0)

    @property
    def planned_patients(self) -> int:
        """The trial size the design plans (the fully informed benchmark's): ``max_patients``,
        or less where a modifier stops at fewer (``stop_at_n``)."""
        return int(self.max_patients)

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        """Posterior P(true toxicity rate > threshold), shape ``(T, D)``; model-based designs only."""
        raise TypeError(f"{type(self).__name__} has no probability model of toxicity")

    def randomisation(self, state: BatchState) -> np.ndarray:
        """Designs that randomise the next dose (``randomises``): the probability of each dose,
        ``(T, D)``, where the next cohort is randomised."""
        raise TypeError(f"{type(self).__name__} does not randomise its next dose")

    def optimal_dose(self, tox: np.ndarray, eff: np.ndarray,
                     eff_tox: np.ndarray) -> np.ndarray | None:
        """Efficacy-toxicity designs: the dose their criterion calls optimal (or ``NO_DOSE``)
        for each row of probabilities of toxicity, efficacy and both, each ``(T, D)``; used for
        the true optimal dose and the fully informed benchmark.  ``None``: the design targets
        the MTD."""
        return None

    def startup_plan(self, sizes) -> np.ndarray | None:
        """Designs with a rule-based start-up stage: the dose of each cohort (of ``sizes``)
        while no DLT is seen, ``(C,)``; ``None``: no start-up.  A design deciding with partial
        follow-up (``follow_up``) escalates within it only once the last patient's window
        has passed or a DLT is seen (see :mod:`trialsim.conduct.followup`)."""
        return None

    @classmethod
    def example(cls, n_doses: int = 5) -> "Design":  # pragma: no cover - abstract
        """A typical instance over ``n_doses`` doses (used by the contract test suite)."""
        raise NotImplementedError(f"{cls.__name__} must provide example()")


def decide_checked(design: "Design", state: BatchState) -> BatchDecision:
    """``design.decide_batch(state)``, its answer checked before the simulator indexes arrays
    with it: a :class:`BatchDecision` of one row per trial, integer doses within the study's
    (``next_dose`` where the trial goes on, ``recommended`` or ``NO_DOSE``), boolean ``stop``,
    admissibility per dose, cohorts of at least one patient.  ValueError names the design, the
    field, the value and the trial's data."""
    dec = design.decide_batch(state)
    T, D = state.n.shape
    who = f"{type(design).__name__}.decide_batch"
    if not isinstance(dec, BatchDecision):
        raise ValueError(f"{who} returned {type(dec).__name__}; expected a BatchDecision")

    def fail(what: str, want: str, i: int | None = None) -> None:
        data = "" if i is None else (f" for a trial with patients {state.n[i].tolist()} and "
                                     f"DLTs {state.tox[i].tolist()} per dose")
        raise ValueError(f"{who} returned {what}{data}; expected {want}")

    fields = {k: np.asarray(getattr(dec, k)) for k in ("next_dose", "stop", "recommended",
                                                       "reason", "stop_code")}
    fields["admissible"] = np.asarray(dec.admissible)
    if dec.cohort_size is not None:
        fields["cohort_size"] = np.asarray(dec.cohort_size)
    for k, a in fields.items():
        want = (T, D) if k == "admissible" else (T,)
        if a.shape != want:
            fail(f"{k} of shape {a.shape}", str(want))
    for k in ("stop", "admissible"):
        if fields[k].dtype != np.bool_:
            fail(f"{k} of dtype {fields[k].dtype}", "bool")
    for k in ("next_dose", "recommended", "cohort_size"):
        if k in fields and not np.issubdtype(fields[k].dtype, np.integer):
            fail(f"{k} of dtype {fields[k].dtype}", "integers")
    go = ~fields["stop"] & (fields["next_dose"] != NO_DOSE)
    checks = (("next_dose", go & ((fields["next_dose"] < 0) | (fields["next_dose"] >= D)),
               f"0..{D - 1} where the trial goes on"),
              ("recommended", (fields["recommended"] < NO_DOSE) | (fields["recommended"] >= D),
               f"0..{D - 1} or NO_DOSE ({NO_DOSE})"))
    if "cohort_size" in fields:
        checks += (("cohort_size", go & (fields["cohort_size"] < 1),
                    "at least 1 where the trial goes on"),)
    for k, bad, want in checks:
        if bad.any():
            i = int(np.argmax(bad))
            fail(f"{k} {int(fields[k][i])}", want, i)
    return dec
