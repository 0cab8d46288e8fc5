"""Exposure → probability of a binary outcome (toxicity or efficacy), vectorised.

``exposure`` names what drives the model: ``"dose"`` (the dose level in the study's unit) or
a PK exposure metric (``"cmax"``, ``"auc"``, ``"ce_max"`` …; concentrations in ng/mL, AUC in
ng·h/mL).  A patient with latent uniform ``u`` has the event at a dose when
``u < probability(exposure at that dose)``; since the probabilities increase with exposure and
exposure with dose, each patient's outcomes are monotone in dose.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field
from scipy.special import expit

from trialsim.registry import register
from trialsim.response.base import OutcomeModel
from trialsim.spec import spec

Prob = Annotated[float, Field(ge=0, le=1)]
#: Exposures (ng/mL, ng·h/mL, h or dose units) and exponents are bounded to keep the
#: arithmetic finite.
Exposure = Annotated[float, Field(ge=1e-9, le=1e12)]
Exponent = Annotated[float, Field(ge=0.01, le=100)]
ExposureName = Annotated[str, Field(min_length=1)]


class BinaryResponse(OutcomeModel):
    """Base: ``probability(x)`` for exposure ``x`` (any shape, same shape out); the event
    happens when the patient's uniform is below it (no normals needed)."""

    exposure: str

    def probability(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def outcome(self, x: np.ndarray, u: np.ndarray, z=None, covariates=None) -> np.ndarray:
        """Events for exposures ``x`` (T, P, D) and the patients' uniforms ``u`` (T, P)."""
        return u[..., None] < self.probability(x)


@register("response", "logistic")
@spec
class Logistic(BinaryResponse):
    """Logistic in log-exposure with a background rate.

    ``p(x) = floor + (ceiling - floor) / (1 + (x50 / x) ** slope)``: ``x50`` is the exposure
    at which the drug-related part reaches half its range (same unit as the exposure metric),
    ``slope`` the logistic slope per unit of log exposure, ``floor`` the probability without
    drug, ``ceiling`` the plateau.
    """

    exposure: ExposureName
    x50: Exposure
    slope: Exponent
    floor: Prob = 0.0
    ceiling: Prob = 1.0

    def __post_init__(self):
        if not self.ceiling > self.floor:
            raise ValueError(f"ceiling must exceed floor, got floor={self.floor}, ceiling={self.ceiling}")

    def probability(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            s = expit(self.slope * (np.log(x) - np.log(self.x50)))
        return self.floor + (self.ceiling - self.floor) * s


@register("response", "emax")
@spec
class Emax(BinaryResponse):
    """Sigmoid Emax on the probability scale: ``p(x) = e0 + emax * x^h / (ec50^h + x^h)``.

    ``e0`` is the probability without drug (placebo response), ``emax`` the maximal increase,
    ``ec50`` the exposure giving half of it, ``hill`` the Hill coefficient (1 = hyperbolic).
    """

    exposure: ExposureName
    e0: Prob
    emax: Prob
    ec50: Exposure
    hill: Exponent = 1.0

    def __post_init__(self):
        if self.e0 + self.emax > 1 + 1e-12:
            raise ValueError(f"e0 + emax must not exceed 1, got {self.e0} + {self.emax}")

    def probability(self, x):
        x = np.asarray(x, dtype=float)
        xh = x**self.hill
        return self.e0 + self.emax * xh / (self.ec50**self.hill + xh)
