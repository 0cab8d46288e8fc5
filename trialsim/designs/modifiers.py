"""Modifiers: designs that wrap a parent design and adjust its decision.

A modifier implements one hook, :meth:`Modifier.adjust`: it receives the parent's decision on
the same state and returns the changed decision.  Everything else is written once here: the
modifier reads every attribute it does not change through to its parent (``n_doses``,
``target``, ``cohort_size``, ``max_patients``, ``start_dose``, ``prob_tox_exceeds``, ...), and
the shared ``max_patients`` stop is applied after the hook, as every design does.

Wrapping is function composition, so **the outermost modifier acts last and has the final
word**, and order matters for any modifier that can undo another's decision.  In a YAML
``modifiers:`` list the first entry wraps the design, the next wraps that, and so on.

The modifiers here only ever add restrictions, so their effects commute; their order shows in
the order of the ``reason`` strings.  ``dont_skip_doses`` and ``coherent_escalation`` change
the next dose of continuing trials only; ``stop_at_n`` stops and keeps the recommendation;
``stop_when_too_toxic`` stops and withdraws the recommendation (``NO_DOSE``) wherever it
fires, whatever the rules inside it decided, including at the end of the trial.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from trialsim.designs._common import join_reasons, make_decision, stop_at_max_patients, stop_trials
from trialsim.designs.base import MAX_PATIENTS, BatchDecision, BatchState, Design
from trialsim.errors import FieldError
from trialsim.registry import register
from trialsim.spec import spec


def posterior_exceeds(design: Design, state: BatchState, threshold: float) -> np.ndarray:
    """``P(DLT rate at each dose > threshold | data)`` from ``design``'s model, (T, D); 0 for
    trials with no patient yet."""
    has = state.total >= 1
    out = np.zeros(state.n.shape)
    if has.any():
        out[has] = design.prob_tox_exceeds(state.subset(has), threshold)
    return out


def too_toxic_text(dose: int, threshold: float, prob: float) -> str:
    """The reason of a toxicity stop on ``dose`` (0-based, shown from 1)."""
    return f"P(tox at dose {dose + 1} > {threshold:g}) > {prob:g}"


def base_of(design: Design) -> Design:
    """``design`` itself, or the innermost design below its modifiers."""
    while isinstance(design, Modifier):
        design = design.parent
    return design


class Modifier(Design):
    """Base of every modifier: a parent design plus one hook on its decision."""

    parent: Design

    def adjust(self, state: BatchState, decision: BatchDecision) -> BatchDecision:
        """The parent's ``decision`` on ``state``, changed by this modifier."""
        raise NotImplementedError(  # pragma: no cover - abstract
            f"{type(self).__name__} does not define adjust(state, decision)")

    def decide_batch(self, state: BatchState) -> BatchDecision:
        d = self.adjust(state, self.parent.decide_batch(state))
        return stop_at_max_patients(state, d, self.max_patients)

    @property
    def planned_patients(self) -> int:
        return self.parent.planned_patients

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes the modifier does not define: read through to the parent.
        if name.startswith("_") or name == "parent":
            raise AttributeError(name)
        try:
            parent = object.__getattribute__(self, "parent")
        except AttributeError:
            raise AttributeError(name) from None
        return getattr(parent, name)

    @property
    def toxicity_model(self) -> bool:  # type: ignore[override]
        return self.parent.toxicity_model

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        return self.parent.prob_tox_exceeds(state, threshold)

    def optimal_dose(self, tox, eff, eff_tox):
        return self.parent.optimal_dose(tox, eff, eff_tox)

    def randomisation(self, state: BatchState) -> np.ndarray:
        """The parent's randomisation probabilities (before this modifier adjusts the dose)."""
        return self.parent.randomisation(state)

    @property
    def needs_efficacy(self) -> bool:  # type: ignore[override]
        return self.parent.needs_efficacy

    @property
    def follow_up(self) -> bool:  # type: ignore[override]
        return self.parent.follow_up

    def startup_plan(self, sizes) -> np.ndarray | None:
        return self.parent.startup_plan(sizes)

    @property
    def randomises(self) -> bool:  # type: ignore[override]
        return self.parent.randomises

    @property
    def backfills(self) -> bool:  # type: ignore[override]
        return self.parent.backfills

    @property
    def completion_codes(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.parent.completion_codes

    @property
    def base_design(self) -> Design:
        """The innermost design (below every modifier)."""
        return base_of(self)

    @classmethod
    def example(cls, n_doses: int = 5, parent: Design | None = None) -> "Modifier":
        """This modifier around ``parent`` (default: the CRM example)."""
        from trialsim.designs.crm import CRM

        return cls.wrap(parent if parent is not None else CRM.example(n_doses))

    @classmethod
    def accepts(cls, design: Design) -> bool:
        """Whether this kind of modifier can wrap ``design`` at all (else ``wrap`` and the
        constructor raise ``ValueError``)."""
        return True

    @classmethod
    def wrap(cls, parent: Design) -> "Modifier":  # pragma: no cover - abstract
        """A typical instance of this modifier around ``parent`` (contract test suite)."""
        raise NotImplementedError(f"{cls.__name__} must provide wrap()")


@register("modifier", "dont_skip_doses")
@spec
class DontSkipDoses(Modifier):
    """Never escalate more than one level above a reference dose: the highest dose tried so far
    (``relative_to: highest_tried``, the default) or the dose of the last cohort
    (``relative_to: current``, as R dfcrm's ``restrict = TRUE`` and escalation's
    ``dont_skip_doses(when_escalating = TRUE)``).

    Where the parent's next dose is above ``reference + 1`` (and the trial continues), it
    becomes ``reference + 1``, with the reason ``"dont_skip_doses: ..."`` appended.
    De-escalation by several levels at once is always allowed.  Before any patient is treated
    the parent's start dose is kept.  ``recommended`` (the selection if the trial ended now)
    is the parent's, unchanged: the rule restricts dosing only, as in dfcrm's simulations.
    """

    parent: Design
    relative_to: Annotated[Literal["highest_tried", "current"],
                           Field(description="the dose the next one may exceed by one level "
                                             "at most")] = "highest_tried"

    def adjust(self, state: BatchState, d: BatchDecision) -> BatchDecision:
        ref = state.highest_tried if self.relative_to == "highest_tried" else state.current
        cap = ref + 1
        capped = ~d.stop & (state.total > 0) & (d.next_dose > cap)
        if not capped.any():
            return d
        text = ("dont_skip_doses: capped at one level above the "
                + ("highest dose tried" if self.relative_to == "highest_tried" else "current dose"))
        return make_decision(np.where(capped, cap, d.next_dose), d.stop, d.recommended,
                             d.admissible, join_reasons(d.reason, text, capped), d.stop_code,
                             d.cohort_size)

    @classmethod
    def wrap(cls, parent: Design) -> "DontSkipDoses":
        return cls(parent=parent)


@register("modifier", "coherent_escalation")
@spec
class CoherentEscalation(Modifier):
    """No escalation right after a cohort whose DLT rate is at or above the target
    (Cheung 2005, "coherence in dose-finding"): where ``last cohort's DLTs / its size >=
    target`` and the parent's next dose is above the current one, the next cohort gets the
    current dose (reason ``"coherent_escalation: ..."`` appended).  The rate compared,
    ``threshold``, defaults to the parent's ``target``.  With ``dont_skip_doses(relative_to: current)`` this is R dfcrm's
    ``restrict = TRUE``.  The recommendation is the parent's, unchanged.  The dose held is
    the current one even where the parent does not deem it admissible: an efficacy-toxicity
    design can find the current dose unacceptable and still escalate (EffTox after 3 DLTs in 3
    at the lowest dose, its prior favouring the next); add ``stop_when_too_toxic`` for a
    safety stop there.
    """

    parent: Design
    threshold: Annotated[float | None, Field(gt=0, lt=1, description="DLT rate of the last "
                                                                     "cohort that forbids "
                                                                     "escalation (default: the "
                                                                     "design's target)")] = None

    def __post_init__(self) -> None:
        if self.threshold is None and getattr(self.parent, "target", None) is None:
            raise ValueError(f"coherent_escalation needs a threshold: "
                             f"{type(self.base_design).__name__} has no target, set 'threshold'")

    @property
    def limit(self) -> float:
        """The last cohort's DLT rate at or above which escalation is held."""
        return self.parent.target if self.threshold is None else self.threshold

    def adjust(self, state: BatchState, d: BatchDecision) -> BatchDecision:
        toxic = state.last_cohort_tox / np.maximum(state.last_cohort_n, 1) >= self.limit
        held = ~d.stop & (state.total > 0) & (state.last_cohort_n > 0) & toxic \
            & (d.next_dose > state.current)
        if not held.any():
            return d
        return make_decision(np.where(held, state.current, d.next_dose), d.stop, d.recommended,
                             d.admissible,
                             join_reasons(d.reason, "coherent_escalation: no escalation after a "
                                                    "cohort with DLT rate >= target", held),
                             d.stop_code, d.cohort_size)

    @classmethod
    def wrap(cls, parent: Design) -> "CoherentEscalation":
        return cls(parent=parent, threshold=None if getattr(parent, "target", None) else 0.3)


@register("modifier", "cohort_sizes")
@spec
class CohortSizes(Modifier):
    """Cohorts of ``initial`` patients until the first DLT, then the parent's cohort size (an
    accelerated start, e.g. single patients: ``initial: 1``).  The parent decides the doses as
    usual; only the size of each next cohort changes (``BatchDecision.cohort_size``).  Designs
    whose rules assume their own fixed cohorts (3+3, accelerated titration) refuse it."""

    parent: Design
    initial: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                                  description="patients per cohort until the first DLT")] = 1

    def __post_init__(self) -> None:
        if self.initial > self.parent.max_patients:
            raise FieldError("initial", f"initial must be at most the design's max_patients "
                                        f"({self.parent.max_patients}), got {self.initial}")
        if self.base_design.fixed_cohorts:
            raise ValueError(f"cohort_sizes cannot change the cohorts of "
                             f"{type(self.base_design).__name__}, whose rules assume cohorts of "
                             f"{self.base_design.cohort_size}")
        if self.base_design.follow_up:
            raise ValueError(f"cohort_sizes cannot change the cohorts of "
                             f"{type(self.base_design).__name__}: its calendar is laid out for "
                             f"cohorts of {self.base_design.cohort_size} before it decides")

    def adjust(self, state: BatchState, d: BatchDecision) -> BatchDecision:
        later = (np.full(state.n_trials, self.parent.cohort_size, np.int64)
                 if d.cohort_size is None else d.cohort_size)
        sizes = np.where(state.tox.sum(axis=1) == 0, self.initial, later)
        return make_decision(d.next_dose, d.stop, d.recommended, d.admissible, d.reason,
                             d.stop_code, sizes)

    @classmethod
    def wrap(cls, parent: Design) -> "CohortSizes":
        return cls(parent=parent)


@register("modifier", "stop_at_n")
@spec
class StopAtN(Modifier):
    """Stop once ``n`` patients have been treated, keeping the parent's recommendation
    (reason ``"stop: n patients reached"``, code ``n_reached``, only where the parent did not
    stop already).  The cohort that reaches ``n`` is cut to it, as at ``max_patients``; designs
    that keep whole cohorts (3+3, designs with follow-up) need ``n`` a multiple of their cohort
    size, and accelerated titration (which sizes its own cohorts) refuses it."""

    parent: Design
    n: Annotated[int, Field(ge=1, le=MAX_PATIENTS,
                            description="stop once this many patients are treated")]

    @field_validator("n")
    @classmethod
    def _n_reachable(cls, v: int, info: ValidationInfo) -> int:
        cap = getattr(info.data.get("parent"), "max_patients", None)
        if cap is not None and v > cap:
            raise ValueError(f"n must be at most the design's max_patients ({cap}): the trial "
                             f"stops at {cap} patients before {v} are treated; got {v}")
        return v

    def __post_init__(self) -> None:
        base = self.base_design
        if base.own_cohort_sizes:
            raise FieldError("n", f"{type(base).__name__} sets each cohort's size by its rules: "
                                  f"it cannot stop at exactly {self.n} patients")
        if self._whole_cohorts and self.n % base.cohort_size:
            raise FieldError("n", f"n must be a multiple of cohort_size ({base.cohort_size}): "
                                  f"{type(base).__name__} keeps whole cohorts; got {self.n}")

    @classmethod
    def accepts(cls, design: Design) -> bool:
        return not base_of(design).own_cohort_sizes

    @property
    def _whole_cohorts(self) -> bool:
        """Designs whose rules or calendar assume their own cohorts (no cut cohort)."""
        return self.base_design.follow_up or self.base_design.fixed_cohorts

    def adjust(self, state: BatchState, d: BatchDecision) -> BatchDecision:
        d = stop_trials(d, state.total >= self.n, f"stop: {self.n} patients reached",
                        "n_reached")
        if self._whole_cohorts:     # n is a multiple of the cohort size
            return d
        size = (np.full(state.n_trials, self.parent.cohort_size, np.int64)
                if d.cohort_size is None else d.cohort_size)
        left = self.n - state.total
        # the cohort that reaches n is cut to it, as at max_patients (sizes given for every
        # trial, whatever the others in the batch need)
        size = np.where(left > 0, np.minimum(size, left), size)
        return make_decision(d.next_dose, d.stop, d.recommended, d.admissible, d.reason,
                             d.stop_code, size)

    @property
    def planned_patients(self) -> int:
        return min(self.n, self.parent.planned_patients)

    @classmethod
    def wrap(cls, parent: Design) -> "StopAtN":
        c = parent.cohort_size
        return cls(parent=parent, n=max(c, parent.max_patients // 2 // c * c))


@register("modifier", "stop_when_too_toxic")
@spec
class StopWhenTooToxic(Modifier):
    """Stop with **no dose selected** when ``P(p_dose > threshold | data) > prob``.

    ``dose`` is a 0-based index (default the lowest dose); the probability comes from the
    parent's model (``parent.prob_tox_exceeds``): the parent must have a toxicity model
    (e.g. ``crm``; not ``three_plus_three``).  The rule is evaluated whenever the trial has
    data (at least one patient treated, at any dose), also when the parent stopped for another
    reason, so that the final selection is withdrawn if the data show the reference dose to be
    too toxic.  Reason: ``"stop: P(tox at dose k > threshold) > prob"`` with ``k`` numbered
    from 1 as in the outcome mini-language; code ``too_toxic`` (where the parent had not
    stopped).  Doses whose own probability exceeds ``prob`` are marked not ``admissible``
    (informative only; the next dose is not changed unless the trial stops).
    """

    parent: Design
    threshold: Annotated[float, Field(gt=0, lt=1, description="DLT probability deemed "
                                                              "too toxic")]
    prob: Annotated[float, Field(gt=0, lt=1, description="posterior probability that "
                                                         "triggers the stop")]
    dose: Annotated[int, Field(ge=0, description="0-based index of the reference dose")] = 0

    @field_validator("dose")
    @classmethod
    def _dose_in_range(cls, v: int, info: ValidationInfo) -> int:
        parent = info.data.get("parent")
        n = getattr(parent, "n_doses", None)
        if n is not None and v >= n:
            raise ValueError(f"dose must be a 0-based dose index below {n}, got {v}")
        return v

    def __post_init__(self) -> None:
        if not self.parent.toxicity_model:
            raise ValueError(f"stop_when_too_toxic needs a design with a toxicity model (such as "
                             f"a Bayesian crm, or blrm); {type(self.base_design).__name__} "
                             f"with these settings has none")

    def adjust(self, state: BatchState, d: BatchDecision) -> BatchDecision:
        has_data = state.total >= 1
        if not has_data.any():
            return d
        too_toxic = posterior_exceeds(self.parent, state, self.threshold) > self.prob
        fire = too_toxic[:, self.dose] & has_data
        text = "stop: " + too_toxic_text(self.dose, self.threshold, self.prob)
        d = make_decision(d.next_dose, d.stop, d.recommended, d.admissible & ~too_toxic,
                          d.reason, d.stop_code, d.cohort_size)
        return stop_trials(d, fire, text, "too_toxic", withdraw=True)

    @classmethod
    def wrap(cls, parent: Design) -> "StopWhenTooToxic":
        return cls(parent=parent, threshold=0.35, prob=0.9)
