"""Transient adverse effects of a phase II trial, per patient, on the clinical assessment
schedule: dissociation (e.g. the CADSS score) and blood-pressure rise after ketamine.

The measure of patient ``i`` at assessment ``t_j`` (h after the start of dosing) is

    value_ij = baseline_i + b_i + s_i · Emax · C_ij^γ / (EC50^γ + C_ij^γ) + e_ij,

with ``C_ij`` the patient's concentration at ``t_j`` (``ce``: effect site, which lags plasma
and suits the central effects of ketamine; ``c``: plasma), ``s_i = exp(ω z)`` a log-normal
sensitivity, ``b_i ~ N(placebo_mean, placebo_sd²)`` what the procedure does without drug,
``e_ij ~ N(0, residual_sd²)`` measurement noise, and ``baseline_i`` a population covariate
(e.g. pre-dose systolic blood pressure) or 0.  The effect follows the concentration, so it
rises during the infusion and fades as the drug leaves the effect site (Olofsen et al.
2022 for the effect-site link of ketamine's dissociative effects).

An **event** is an assessment at or above ``threshold``; its **resolution** is the first
assessment below the threshold after the last one at or above it (``inf``: still at or above
it at the last assessment) — as the trial itself would see them.  Units are the measure's
(CADSS points, mmHg).
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator

from trialsim.spec import spec

Hours = Annotated[float, Field(gt=0, le=1e4)]


@spec
class SafetyMeasure:
    """A concentration-driven transient adverse effect (see the module docstring): ``emax``
    (measure units), ``ec50`` (ng/mL), ``hill``, ``omega`` (SD of the log sensitivity),
    ``placebo_mean``/``placebo_sd``, ``residual_sd``, the event ``threshold``, an optional
    ``baseline`` covariate added to the change, and the assessment times ``times_h``."""

    emax: Annotated[float, Field(gt=0, le=1e6)]
    ec50: Annotated[float, Field(gt=0, le=1e9)]
    threshold: Annotated[float, Field(ge=-1e6, le=1e6)]
    times_h: tuple[Hours, ...]
    exposure: Literal["ce", "c"] = "ce"
    hill: Annotated[float, Field(gt=0, le=20)] = 1.0
    omega: Annotated[float, Field(ge=0, le=5)] = 0.0
    placebo_mean: Annotated[float, Field(ge=-1e6, le=1e6)] = 0.0
    placebo_sd: Annotated[float, Field(ge=0, le=1e6)] = 0.0
    residual_sd: Annotated[float, Field(ge=0, le=1e6)] = 0.0
    baseline: Annotated[str, Field(min_length=1)] | None = None
    unit: str = ""

    @field_validator("times_h")
    @classmethod
    def _increasing(cls, v):
        if not v:
            raise ValueError("expected at least one assessment time (h)")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"assessment times must increase, got {list(v)}")
        if len(v) > 200:
            raise ValueError(f"at most 200 assessment times, got {len(v)}")
        return v

    @property
    def n_z(self) -> int:
        """Standard normals per patient: sensitivity, placebo part, one noise per assessment."""
        return 2 + len(self.times_h)

    def metric_names(self) -> tuple[str, ...]:
        """The exposure metrics (concentration at each assessment) this measure reads."""
        kind = "ce_at" if self.exposure == "ce" else "c_at"
        return tuple(f"{kind}:{t!r}" for t in self.times_h)

    def values(self, conc: np.ndarray, z: np.ndarray, baseline: np.ndarray | None = None
               ) -> np.ndarray:
        """The measure (..., J) from concentrations ``conc`` (..., J) in ng/mL, normals ``z``
        (..., 2 + J) and the ``baseline`` covariate (...) (when the measure has one)."""
        c = np.maximum(np.asarray(conc, float), 0.0) / self.ec50
        cg = c ** self.hill
        sens = np.exp(self.omega * z[..., 0])
        level = self.placebo_mean + self.placebo_sd * z[..., 1]
        v = (level[..., None] + (self.emax * sens)[..., None] * (cg / (1.0 + cg))
             + self.residual_sd * z[..., 2:2 + len(self.times_h)])
        if self.baseline is not None:
            v = v + np.asarray(baseline, float)[..., None]
        return v

    def summarise(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(event, peak, resolved_h)`` from ``values`` (..., J): any assessment at or above
        the threshold; the largest value; the time of resolution (NaN without an event,
        ``inf`` if unresolved at the last assessment)."""
        above = values >= self.threshold
        event = above.any(axis=-1)
        J = values.shape[-1]
        last = J - 1 - np.argmax(above[..., ::-1], axis=-1)       # last assessment above
        t = np.append(np.asarray(self.times_h, float), np.inf)
        resolved = np.where(event, t[np.minimum(last + 1, J)], np.nan)
        return event, values.max(axis=-1), resolved
