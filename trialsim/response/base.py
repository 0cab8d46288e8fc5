"""The outcome-model protocol: what the simulator asks of a toxicity or efficacy model.

An outcome model (registry kind ``response``) maps a patient's exposure at every dose to
their potential outcome at every dose:

* ``exposure`` — the exposure that drives it: ``"dose"`` (the dose level in the study's unit)
  or a PK metric name (``"cmax"``, ``"ce_max"``, ``"auc"``, ... see :mod:`trialsim.pk.metrics`);
* ``n_z`` — how many standard normals per patient it needs (random effects, noise);
* ``outcome(x, u, z, covariates)`` — outcomes (T, P, D) from exposures ``x`` (T, P, D), the
  patient's latent uniform ``u`` (T, P), normals ``z`` (T, P, n_z) and covariates
  (name → (T, P));
* ``probability(x)`` — each patient's probability of the event at exposure ``x``, or
  ``None`` when the model has no closed form (the truth is then the mean of the outcomes);
* ``required_covariates()`` — covariates it reads, with the range their values must lie in.

Binary outcomes today; continuous endpoints (a clinical score at visits) extend the same
protocol.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np


class OutcomeModel:
    """Base class of every outcome model (see the module docstring)."""

    exposure: str
    #: Standard normals per patient the model needs.
    n_z: ClassVar[int] = 0

    def outcome(self, x: np.ndarray, u: np.ndarray, z: np.ndarray,
                covariates: Mapping[str, np.ndarray]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def probability(self, x: np.ndarray) -> np.ndarray | None:
        """Individual probability of the event at exposure ``x``, or None."""
        return None

    def required_covariates(self) -> dict[str, tuple[float, float]]:
        """Covariates read by :meth:`outcome`, each with the closed range its values must lie
        in (the population's distribution must not leave it)."""
        return {}
