"""A randomised phase II dose-ranging study: the scenario (population → PK → MADRS time course,
optionally an active placebo), the design (allocation), the visits, the endpoint, dropout, the
analysis plan (MCP-Mod) and the rule that chooses the dose to take forward.

Units: doses in the study's unit (mg or mg/kg; placebo is dose 0), times in hours from the
start of dosing, MADRS points.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from trialsim.conduct import Conduct
from trialsim.designs.phase2 import Phase2Design
from trialsim.pk import PKSpec
from trialsim.population import Population
from trialsim.response.safety import SafetyMeasure
from trialsim.response.timecourse import MadrsTimeCourse, profile_shape, time_profile
from trialsim.spec import context, spec

Hours = Annotated[float, Field(gt=0, le=1e5)]


def check_measures(by_name: dict, prefix: str = "") -> None:
    """Every key of ``by_name`` names a safety measure of the study being validated
    (``ValueError`` listing the known ones); unchecked outside a study's validation."""
    names = context().get("safety_names")
    if names is None:
        return
    for k in by_name:
        if k not in names:
            raise ValueError(f"{prefix}{k!r} is not a safety measure of the study; known: "
                             f"{', '.join(names) or 'none (add a safety: section)'}")


@spec
class Endpoint:
    """The primary endpoint at ``visit_h``: ``change`` (MADRS change from baseline,
    negative = improvement), ``response`` (a fall of at least 50 %) or ``remission``
    (MADRS <= 10)."""

    type: Literal["change", "response", "remission"] = "change"
    visit_h: Hours = 24.0

    @property
    def binary(self) -> bool:
        return self.type != "change"


@spec
class Dropout:
    """Dropout by a constant hazard ``rate_per_week`` (per patient and week), multiplied by
    ``hazard_ratio`` of the patient's arm (one per dose, placebo first; MAR by arm) and by
    ``no_response_hazard_ratio`` for a patient whose MADRS at ``response_visit_h`` has not
    fallen by ``response_fraction`` of baseline (missing not at random: it depends on the
    patient's own, then unobserved, course; the ratio applies over the whole follow-up, from
    the dose on, so dropout before that visit depends on the response there too;
    ``response_visit_h`` must be one of the study's visits).  A patient who drops out misses
    every visit after the dropout time.  ``adverse_event_hazard_ratio`` (safety measure name →
    ratio) multiplies the hazard of a patient who had that acute adverse event."""

    rate_per_week: Annotated[float, Field(ge=0, le=50)] = 0.0
    hazard_ratio: tuple[Annotated[float, Field(ge=0, le=100)], ...] | None = None
    no_response_hazard_ratio: Annotated[float, Field(ge=0, le=100)] = 1.0
    response_visit_h: Hours = 24.0
    response_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    adverse_event_hazard_ratio: dict[str, Annotated[float, Field(ge=0, le=100)]] = field(
        default_factory=dict)

    @field_validator("adverse_event_hazard_ratio")
    @classmethod
    def _known_measures(cls, v):
        check_measures(v)
        return v

    @field_validator("hazard_ratio")
    @classmethod
    def _one_per_dose(cls, v):
        n = context().get("n_doses")
        if v is not None and n is not None and len(v) != n:
            raise ValueError(f"expected one hazard ratio per dose ({n}, placebo first), got "
                             f"{len(v)}")
        return v


@spec
class ActiveControl:
    """An active placebo in the control arm (dose 0), such as midazolam, given to keep the
    blind against the drug's acute effects: its patients improve by a further ``effect``
    MADRS points (between-patient SD ``sd``) on top of the placebo response, over the time
    profile ``onset_h``/``peak_h``/``waning_h`` (default: the drug effect's profile of the
    efficacy model)."""

    effect: Annotated[float, Field(ge=0, le=60)]
    name: Annotated[str, Field(min_length=1, max_length=60)] = "active placebo"
    sd: Annotated[float, Field(ge=0, le=60)] = 0.0
    onset_h: Hours | None = None
    peak_h: Hours | None = None
    waning_h: Hours | None = None

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.onset_h, self.peak_h, self.waning_h)]
        if any(given) and not all(given):
            raise ValueError("give all of onset_h, peak_h and waning_h, or none (the drug "
                             "effect's profile)")
        if all(given):
            profile_shape(self.onset_h, self.peak_h, self.waning_h)

    def improvement(self, efficacy: MadrsTimeCourse, z: np.ndarray, times_h) -> np.ndarray:
        """Improvement (..., n_times) in MADRS points of patients with normals ``z`` (...)."""
        if self.onset_h is None:
            g = efficacy.profile(times_h)
        else:
            g = time_profile(times_h, self.onset_h, self.peak_h, self.waning_h)
        return (self.effect + self.sd * np.asarray(z, float))[..., None] * g


@spec
class Analysis:
    """The analysis plan: MCP-Mod with candidate ``models`` (guesstimates in dose units),
    one-sided level ``alpha``, clinically relevant effect ``delta`` (MADRS points for a change;
    on the logit scale for response/remission), model ``selection`` (AIC, maxT, average),
    ``missing`` data handling (``completers``; ``locf``: the last observed visit, baseline if
    none; ``mmrm``: a longitudinal model of every visit up to the primary one — arm-by-visit
    means, unstructured covariance, missing at random — whose arm means at the primary visit
    and their covariance enter generalised MCP-Mod; a continuous endpoint only), and
    ``covariates`` for ANCOVA, or for the longitudinal model with a slope per visit
    (population covariates, e.g. baseline_madrs; a continuous endpoint only)."""

    models: dict[str, Any]
    delta: Annotated[float, Field(gt=0, le=1e6)]
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.025
    selection: Literal["AIC", "maxT", "average"] = "AIC"
    missing: Literal["completers", "locf", "mmrm"] = "completers"
    covariates: tuple[str, ...] = ()
    off: Annotated[float, Field(gt=0)] | None = None
    scal: Annotated[float, Field(gt=0)] | None = None


@spec
class Decision:
    """The rule that takes a dose forward (or none: no-go), on the trial's own estimates.

    ``target_dose``: with a dose-response signal, the smallest studied dose at or above the
    estimated target dose TD(delta); no-go without a signal, when the fitted curve does not
    reach delta within the studied doses, or when that dose's observed rate of a safety event
    exceeds its limit in ``safety_limits`` (measure name → largest acceptable proportion).

    ``utility``: with a signal, the studied dose maximising the clinical utility index
    ``U(d) = min(E(d)/delta, cap) − Σ_s weight_s · rate_s(d)``, where ``E(d)`` is the fitted
    effect over placebo in the direction of benefit and ``rate_s(d)`` the observed rate of
    safety event ``s`` (``utility_weights``: measure name → weight); no-go when the best
    ``U`` is not above ``min_utility`` (or a limit of ``safety_limits`` is exceeded)."""

    type: Literal["target_dose", "utility"] = "target_dose"
    safety_limits: dict[str, Annotated[float, Field(ge=0, le=1)]] = field(default_factory=dict)
    utility_weights: dict[str, Annotated[float, Field(ge=0, le=1e6)]] = field(
        default_factory=dict)
    cap: Annotated[float, Field(gt=0, le=1e6)] = 1.0
    min_utility: Annotated[float, Field(ge=-1e6, le=1e6)] = 0.0

    def __post_init__(self) -> None:
        if self.type == "target_dose" and self.utility_weights:
            raise ValueError("utility_weights apply to type: utility")
        check_measures(self.safety_limits, "safety_limits: ")
        check_measures(self.utility_weights, "utility_weights: ")


@dataclass(frozen=True)
class Phase2Study:
    """Everything a phase II simulation needs (see the module docstring).  ``scenarios``:
    named variants of the world (population, PK, response, safety, dropout), each a study of
    its own running the same trial, simulated together on common random numbers by
    :func:`trialsim.phase2.scenarios.simulate_scenarios`."""

    name: str
    doses: tuple[float, ...]
    dose_unit: str
    population: Population
    pk: PKSpec | None
    efficacy: MadrsTimeCourse
    design: Phase2Design
    visits_h: tuple[float, ...]
    endpoint: Endpoint
    dropout: Dropout
    analysis: Analysis
    decision: Decision
    safety: dict[str, SafetyMeasure] = field(default_factory=dict)
    config: dict = field(default_factory=dict, compare=False, hash=False)
    source: str | None = None
    scenarios: dict[str, "Phase2Study"] = field(default_factory=dict, compare=False,
                                                hash=False)
    control: ActiveControl | None = None
    conduct: Conduct | None = None   # calendar time: accrual, screening, chairs, duration

    def __post_init__(self) -> None:
        if self.conduct is not None and getattr(self.design, "accrual_per_week", None):
            raise ValueError("give either conduct: (sites) or the design's accrual_per_week, "
                             "not both")
        if self.doses[0] != 0:
            raise ValueError("a phase II study needs placebo: the first dose must be 0")
        if self.design.n_arms != len(self.doses):
            raise ValueError(f"the design has {self.design.n_arms} arms but the study has "
                             f"{len(self.doses)} doses")
        if self.endpoint.visit_h not in self.visits_h:
            raise ValueError(f"the primary visit ({self.endpoint.visit_h:g} h) must be one of "
                             f"the visits {list(self.visits_h)}")

    @property
    def calendar_conduct(self) -> Conduct | None:
        """The conduct the calendars run: patients enrolled one after another (no window),
        each followed to the last visit, the population's eligibility in the screening."""
        c = self.conduct
        if c is None:
            return None
        return dataclasses.replace(c.screening(self.population.p_eligible), window_h=0.0,
                                   read_out_h=float(max(self.visits_h)))

    @property
    def n_doses(self) -> int:
        return len(self.doses)

    @property
    def primary(self) -> int:
        """Index of the primary visit in ``visits_h``."""
        return self.visits_h.index(self.endpoint.visit_h)

    @property
    def direction(self) -> str:
        """A fall in MADRS is the benefit of a change endpoint; a rise in the rate of
        response or remission."""
        return "decreasing" if self.endpoint.type == "change" else "increasing"

    @property
    def n_z(self) -> int:
        """Normals per patient: the time course's two subject effects, one noise draw per
        visit, then the response to an active placebo — drawn with a plain placebo too, so
        that scenarios with and without an active placebo share their patients."""
        return 3 + len(self.visits_h)

    def control_improvement(self, z: np.ndarray, times_h) -> np.ndarray | None:
        """The active placebo's improvement (..., n_times) for patients' normals ``z``
        (..., n_z), or None with a plain placebo."""
        if self.control is None:
            return None
        return self.control.improvement(self.efficacy, z[..., 2 + len(self.visits_h)],
                                        times_h)

    @property
    def n_safety_z(self) -> int:
        """Normals per patient of the safety measures (their own stream)."""
        return sum(m.n_z for m in self.safety.values())

    def exposure_names(self) -> tuple[str, ...]:
        names = () if self.efficacy.exposure == "dose" else (self.efficacy.exposure,)
        for m in self.safety.values():
            names += tuple(n for n in m.metric_names() if n not in names)
        return names


def doses_array(study: Phase2Study) -> np.ndarray:
    return np.asarray(study.doses, dtype=float)
