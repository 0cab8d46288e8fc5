"""Stopping rules that combine with ``&`` and ``|``, and the ``stop_when`` modifier that applies
them to any design (crmPack's idea of stopping rules as composable objects, each with a reason).

A rule looks at the trial state and the wrapped design's decision and says, per trial, whether
it fires, why (a readable reason), under which stop code, and whether the selection is withdrawn
(rules on toxicity).  ``rule_a | rule_b`` fires when either does and reports the first that
fired; ``rule_a & rule_b`` fires when both do and reports both.  In YAML::

    modifiers:
      - type: stop_when
        rule:
          type: any
          rules:
            - {type: n_patients, n: 36}
            - type: all
              rules:
                - {type: n_at_recommended, n: 9}
                - {type: target_probability, lower: 0.2, upper: 0.35, prob: 0.5}
"""
from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from trialsim.designs._common import stop_trials
from trialsim.designs.base import MAX_PATIENTS, BatchDecision, BatchState, Design
from trialsim.designs.modifiers import Modifier, posterior_exceeds, too_toxic_text
from trialsim.errors import FieldError
from trialsim.registry import lookup, register, registered_name
from trialsim.spec import spec


class StoppingRule:
    """Base of the stopping rules (frozen ``@spec`` dataclasses registered as
    ``stopping_rule``)."""

    #: Whether the rule needs a design with a toxicity model (``prob_tox_exceeds``).
    needs_model: ClassVar[bool] = False

    def evaluate(self, design: Design, state: BatchState, d: BatchDecision):
        """``(fires, reason, code, withdraw)``: arrays of shape (T,) (bool, str, str, bool)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def leaves(self) -> list["StoppingRule"]:
        return [self]

    def __and__(self, other: "StoppingRule") -> "AllOf":
        return AllOf(rules=(self, other))

    def __or__(self, other: "StoppingRule") -> "AnyOf":
        return AnyOf(rules=(self, other))


def rule_result(T: int, fires, reason: str, code: str, withdraw: bool = False):
    """What :meth:`StoppingRule.evaluate` returns for ``T`` trials: where ``fires`` (T,), the
    rule stops the trial with ``reason`` and stop ``code``; ``withdraw``: the selection is
    withdrawn (no dose)."""
    return (np.asarray(fires, bool), np.full(T, reason), np.full(T, code),
            np.full(T, withdraw))


def parse_rule(node: Any) -> StoppingRule:
    """A rule from its YAML mapping ``{type: NAME, ...}`` (``any``/``all`` take ``rules:``)."""
    if isinstance(node, StoppingRule):
        return node
    if not isinstance(node, dict) or "type" not in node:
        raise ValueError(f"a stopping rule is a mapping with a 'type:' key, got {node!r}")
    kw = {k: v for k, v in node.items() if k != "type"}
    if not isinstance(node["type"], str):
        raise ValueError(f"a stopping rule's type is a name, got {node['type']!r}")
    try:
        cls = lookup("stopping_rule", node["type"])
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in kw if k not in fields]
    if unknown:
        raise ValueError(f"stopping rule {node['type']}: unknown key {unknown[0]!r}; expected "
                         f"{', '.join(fields)}")
    return cls(**kw)


@spec
class _Combination(StoppingRule):
    """A list of rules (parsed from their YAML mappings)."""

    rules: tuple[Any, ...]

    @field_validator("rules", mode="before")
    @classmethod
    def _parse(cls, v):
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"'rules' must be a list of rules, got {v!r}")
        if not v:
            raise ValueError("'rules' must list at least one rule")
        return tuple(parse_rule(r) for r in v)

    def leaves(self):
        return [x for r in self.rules for x in r.leaves()]


@register("stopping_rule", "any")
@spec
class AnyOf(_Combination):
    """Fires when any of ``rules`` fires; reports the first that fired (``a | b``)."""

    def evaluate(self, design, state, d):
        T = state.n_trials
        fires, reason = np.zeros(T, bool), np.full(T, "", dtype=object)
        code, withdraw = np.full(T, "", dtype=object), np.zeros(T, bool)
        for r in self.rules:
            f, why, c, w = r.evaluate(design, state, d)
            new = f & ~fires
            reason[new], code[new], withdraw[new] = why[new], c[new], w[new]
            fires |= f
        return fires, reason.astype(str), code.astype(str), withdraw


@register("stopping_rule", "all")
@spec
class AllOf(_Combination):
    """Fires when every one of ``rules`` fires; reports them all (``a & b``)."""

    def evaluate(self, design, state, d):
        parts = [r.evaluate(design, state, d) for r in self.rules]
        fires = np.logical_and.reduce([p[0] for p in parts])
        reason = parts[0][1].astype(object)
        code = parts[0][2].astype(object)
        for p in parts[1:]:
            reason = reason + " and " + p[1].astype(object)
            code = code + "+" + p[2].astype(object)
        withdraw = np.logical_or.reduce([p[3] for p in parts])
        return fires, reason.astype(str), code.astype(str), withdraw


@register("stopping_rule", "n_patients")
@spec
class NPatients(StoppingRule):
    """At least ``n`` patients treated (code ``n_reached``)."""

    n: Annotated[int, Field(ge=1, le=MAX_PATIENTS, description="patients treated")]

    def evaluate(self, design, state, d):
        return rule_result(state.n_trials, state.total >= self.n, f"{self.n} patients treated",
                      "n_reached")


@register("stopping_rule", "n_at_recommended")
@spec
class NAtRecommended(StoppingRule):
    """At least ``n`` patients treated at the currently recommended dose (code
    ``n_at_recommended``)."""

    n: Annotated[int, Field(ge=1, le=MAX_PATIENTS, description="patients at the recommended "
                                                               "dose")]

    def evaluate(self, design, state, d):
        rec = d.recommended
        at = np.where(rec >= 0, state.n[np.arange(state.n_trials), np.maximum(rec, 0)], 0)
        return rule_result(state.n_trials, at >= self.n,
                      f"{self.n} patients at the recommended dose", "n_at_recommended")


@register("stopping_rule", "too_toxic")
@spec
class TooToxic(StoppingRule):
    """``P(DLT rate at dose > threshold | data) > prob`` (a 0-based ``dose``, default the lowest)
    once a patient has been treated; withdraws the selection (code ``too_toxic``)."""

    threshold: Annotated[float, Field(gt=0, lt=1, description="DLT rate deemed too toxic")]
    prob: Annotated[float, Field(gt=0, lt=1, description="posterior probability that fires")]
    dose: Annotated[int, Field(ge=0, le=1000, description="0-based reference dose")] = 0
    needs_model: ClassVar[bool] = True

    def evaluate(self, design, state, d):
        T = state.n_trials
        fires = np.zeros(T, bool)
        if self.dose < state.n_doses:
            fires = (posterior_exceeds(design, state, self.threshold)[:, self.dose] > self.prob) \
                & (state.total > 0)
        return rule_result(T, fires, too_toxic_text(self.dose, self.threshold, self.prob),
                      "too_toxic", withdraw=True)


@register("stopping_rule", "target_probability")
@spec
class TargetProbability(StoppingRule):
    """The MTD estimate is precise enough: ``P(lower < DLT rate at the recommended dose <= upper
    | data) >= prob`` (crmPack's ``StoppingTargetProbability``; code ``precise``)."""

    lower: Annotated[float, Field(ge=0, lt=1, description="lower end of the target interval")]
    upper: Annotated[float, Field(gt=0, le=1, description="upper end of the target interval")]
    prob: Annotated[float, Field(gt=0, lt=1, description="posterior probability that fires")]
    needs_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"lower < upper is required, got {self.lower}, {self.upper}")

    def evaluate(self, design, state, d):
        T = state.n_trials
        fires = np.zeros(T, bool)
        ok = (state.total > 0) & (d.recommended >= 0)
        if ok.any():
            sub = state.subset(ok)
            rec = d.recommended[ok]
            rows = np.arange(rec.size)
            lo = (design.prob_tox_exceeds(sub, self.lower)[rows, rec] if self.lower > 0
                  else np.ones(rec.size))
            hi = (design.prob_tox_exceeds(sub, self.upper)[rows, rec] if self.upper < 1
                  else np.zeros(rec.size))
            fires[ok] = lo - hi >= self.prob
        return rule_result(T, fires, f"P({self.lower:g} < tox at the recommended dose <= "
                                f"{self.upper:g}) >= {self.prob:g}", "precise")


@register("modifier", "stop_when")
@spec
class StopWhen(Modifier):
    """Stop when ``rule`` (a stopping rule, possibly combined with ``any``/``all`` or ``|``/``&``)
    fires; the reason names the rules that fired, the stop code is theirs (joined by ``+`` for
    ``all``).  Rules on toxicity withdraw the selection (no dose), like ``stop_when_too_toxic``;
    the others keep it.  Evaluated also where the parent stopped already (a toxicity rule then
    still withdraws the selection)."""

    parent: Design
    rule: Any

    @field_validator("rule", mode="before")
    @classmethod
    def _parse(cls, v):
        return parse_rule(v)

    def __post_init__(self) -> None:
        if any(r.needs_model for r in self.rule.leaves()) and not self.parent.toxicity_model:
            raise ValueError(f"stop_when: a rule on posterior probabilities needs a design with "
                             f"a toxicity model (such as a Bayesian crm, or blrm); "
                             f"{type(self.base_design).__name__} with these settings has none")
        D, cap = self.parent.n_doses, self.parent.max_patients
        for r in self.rule.leaves():    # rules that could never fire
            if isinstance(r, TooToxic) and r.dose >= D:
                raise FieldError("rule", f"too_toxic: dose must be a 0-based dose index below "
                                         f"{D}, got {r.dose}")
            if isinstance(r, (NPatients, NAtRecommended)) and r.n > cap:
                raise FieldError("rule", f"{registered_name(r)[1]}: n must be at most the "
                                         f"design's max_patients ({cap}), got {r.n}")

    def adjust(self, state: BatchState, d: BatchDecision) -> BatchDecision:
        fires, reason, code, withdraw = self.rule.evaluate(self.parent, state, d)
        if not fires.any():
            return d
        text = np.char.add("stop: ", reason.astype(str))
        for w in (True, False):
            d = stop_trials(d, fires & (withdraw == w), text, code, withdraw=w)
        return d

    @classmethod
    def wrap(cls, parent: Design) -> "StopWhen":
        rule = (NPatients(n=max(1, parent.max_patients // 2))
                | NAtRecommended(n=min(9, parent.max_patients)))
        if parent.toxicity_model:
            rule = rule | TooToxic(threshold=0.35, prob=0.9)
        return cls(parent=parent, rule=rule)


__all__ = ["StoppingRule", "AnyOf", "AllOf", "NPatients", "NAtRecommended", "TooToxic",
           "TargetProbability", "StopWhen", "parse_rule"]
