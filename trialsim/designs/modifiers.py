"""Modifiers: designs that wrap a parent design and adjust its decision.

A modifier asks its parent for a decision on the same state, then changes it.  Wrapping is
function composition, so **the outermost modifier acts last and has the final word**, and
order matters for any modifier that can undo another's decision.  In a YAML ``modifiers:``
list the first entry wraps the design, the next wraps that, and so on.

The three modifiers here only ever add restrictions, so their effects commute; their order
shows in the order of the ``reason`` strings.  ``dont_skip_doses`` changes the next dose of
continuing trials only; ``stop_at_n`` stops and keeps the recommendation;
``stop_when_too_toxic`` stops and withdraws the recommendation (``NO_DOSE``) wherever it
fires, whatever the rules inside it decided, including at the end of the trial.

Modifiers forward ``cohort_size``, ``max_patients``, ``start_dose`` and ``prob_tox_exceeds``
to their parent, and apply the shared ``max_patients`` stop last, like every design.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from trialsim.designs._common import join_reasons, make_decision, stop_at_max_patients
from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState, Design
from trialsim.registry import register
from trialsim.spec import spec


class Modifier(Design):
    """Mixin: forwards the design attributes of ``self.parent``."""

    parent: Design

    @property
    def cohort_size(self) -> int:
        return self.parent.cohort_size

    @property
    def max_patients(self) -> int:
        return self.parent.max_patients

    @property
    def start_dose(self) -> int:
        return self.parent.start_dose

    def prob_tox_exceeds(self, state: BatchState, threshold: float) -> np.ndarray:
        return self.parent.prob_tox_exceeds(state, threshold)

    def _finish(self, state: BatchState, decision: BatchDecision) -> BatchDecision:
        return stop_at_max_patients(state, decision, self.max_patients)


@register("modifier", "dont_skip_doses")
@spec
class DontSkipDoses(Modifier):
    """Never escalate more than one level above the highest dose tried so far.

    Where the parent's next dose is above ``highest tried + 1`` (and the trial continues),
    it becomes ``highest tried + 1``, with the reason ``"dont_skip_doses: ..."`` appended.
    De-escalation by several levels at once is always allowed.  Before any patient is treated
    the parent's start dose is kept.  ``recommended`` (the selection if the trial ended now)
    is the parent's, unchanged: the rule restricts dosing only, as in dfcrm's
    ``restrict = TRUE`` simulations.  (To lift the rule, leave the modifier out.)
    """

    parent: Design

    def decide_batch(self, state: BatchState) -> BatchDecision:
        d = self.parent.decide_batch(state)
        cap = state.highest_tried + 1
        capped = ~d.stop & (state.total > 0) & (d.next_dose > cap)
        if capped.any():
            d = make_decision(np.where(capped, cap, d.next_dose), d.stop, d.recommended,
                              d.admissible,
                              join_reasons(d.reason, "dont_skip_doses: capped at one level "
                                                     "above the highest dose tried", capped))
        return self._finish(state, d)


@register("modifier", "stop_at_n")
@spec
class StopAtN(Modifier):
    """Stop once at least ``n`` patients have been treated, keeping the parent's
    recommendation (reason ``"stop: n patients reached"``, appended only where the parent did
    not stop already)."""

    parent: Design
    n: Annotated[int, Field(ge=1, description="stop once this many patients are treated")]

    def decide_batch(self, state: BatchState) -> BatchDecision:
        d = self.parent.decide_batch(state)
        hit = (state.total >= self.n) & ~d.stop
        if hit.any():
            d = make_decision(d.next_dose, d.stop | hit, d.recommended, d.admissible,
                              join_reasons(d.reason, f"stop: {self.n} patients reached", hit))
        return self._finish(state, d)


@register("modifier", "stop_when_too_toxic")
@spec
class StopWhenTooToxic(Modifier):
    """Stop with **no dose selected** when ``P(p_dose > threshold | data) > prob``.

    ``dose`` is a 0-based index (default the lowest dose); the probability comes from the
    parent's model (``parent.prob_tox_exceeds``; a design without one raises ``TypeError``).
    The rule is evaluated whenever the trial has data (at least one patient treated,
    at any dose), also when the parent stopped for another reason, so that the final
    selection is withdrawn if the data show the reference dose to be too toxic.  Reason:
    ``"stop: P(tox at dose k > threshold) > prob"`` with ``k`` numbered from 1 as in the
    outcome mini-language.  Doses whose own probability exceeds ``prob`` are marked not
    ``admissible`` (informative only; the next dose is not changed unless the trial stops).
    """

    parent: Design
    threshold: Annotated[float, Field(gt=0, lt=1, description="DLT probability deemed "
                                                              "too toxic")]
    prob: Annotated[float, Field(gt=0, lt=1, description="posterior probability that "
                                                         "triggers the stop")]
    dose: Annotated[int, Field(ge=0, description="0-based index of the reference dose")] = 0

    def decide_batch(self, state: BatchState) -> BatchDecision:
        d = self.parent.decide_batch(state)
        if self.dose >= state.n_doses:
            raise ValueError(f"stop_when_too_toxic.dose must be a 0-based dose index below "
                             f"{state.n_doses}, got {self.dose}")
        has_data = state.total >= 1
        if not has_data.any():
            return self._finish(state, d)
        p_exceed = np.zeros(state.n.shape)
        p_exceed[has_data] = self.prob_tox_exceeds(state.subset(has_data), self.threshold)
        too_toxic = p_exceed > self.prob
        fire = too_toxic[:, self.dose] & has_data
        text = f"stop: P(tox at dose {self.dose + 1} > {self.threshold:g}) > {self.prob:g}"
        d = make_decision(np.where(fire, NO_DOSE, d.next_dose), d.stop | fire,
                          np.where(fire, NO_DOSE, d.recommended),
                          d.admissible & ~too_toxic, join_reasons(d.reason, text, fire))
        return self._finish(state, d)
