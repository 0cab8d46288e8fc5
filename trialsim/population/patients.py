"""Virtual patients, drawn trial by trial from each trial's ``patients`` stream.

Order of draws within a trial's stream (fixed; append new kinds of draw at the end):

1. ``u``: standard uniforms, shape ``(P, 2)``: column 0 the patient's tolerance to toxicity,
   column 1 the propensity to respond (efficacy).
2. ``z``: standard normals, shape ``(P, n_z)``, for continuous outcomes (random effects and
   residual noise of a clinical score); ``n_z`` is set by the response models.
3. covariates, in the order the population lists them, one uniform per patient each.
4. PK random effects, drawn by the PK model.

So a patient's outcome at every dose is fixed before any design sees them, and the first
``P`` patients of a trial are the same whatever the trial size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from trialsim.population.distributions import Distribution
from trialsim.rng import stream

N_UNIFORM = 2


@dataclass(frozen=True)
class VirtualPatients:
    """Patients of ``T`` trials with ``P`` patients each.

    ``u`` (T, P, 2) uniforms, ``z`` (T, P, n_z) normals, ``covariates`` name → (T, P),
    ``eta`` (T, P, n_eta) PK random effects (log scale) or None.
    """

    u: np.ndarray
    z: np.ndarray
    covariates: dict[str, np.ndarray] = field(default_factory=dict)
    eta: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.u.shape[0], self.u.shape[1]


@dataclass(frozen=True)
class Population:
    """Covariate distributions by name (``weight_kg``, ``baseline_madrs``, ...)."""

    covariates: dict[str, Distribution] = field(default_factory=dict)

    def draw(self, seed: int, scenario: int, trials: np.ndarray, n_patients: int, n_z: int = 0,
             eta_draw: Callable[[np.random.Generator, int], np.ndarray] | None = None
             ) -> VirtualPatients:
        """Draw ``n_patients`` patients for each trial index in ``trials``."""
        T, P = len(trials), n_patients
        u = np.empty((T, P, N_UNIFORM))
        z = np.empty((T, P, n_z))
        cov = {name: np.empty((T, P)) for name in self.covariates}
        etas = []
        for i, k in enumerate(trials):
            rng = stream(seed, scenario, int(k), "patients")
            u[i] = rng.random((P, N_UNIFORM))
            if n_z:
                z[i] = rng.standard_normal((P, n_z))
            for name, dist in self.covariates.items():
                cov[name][i] = dist.quantile(rng.random(P))
            if eta_draw is not None:
                etas.append(eta_draw(rng, P))
        eta = np.stack(etas) if etas else None
        return VirtualPatients(u, z, cov, eta)
