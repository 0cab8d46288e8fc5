"""Virtual patients, drawn trial by trial from each trial's ``patients`` stream.

Each patient takes one row of ``K`` uniforms from the trial's stream (patient ``i`` takes
numbers ``i*K .. i*K + K - 1``, so the first patients of a trial are the same whatever the
trial size).  Columns, in this fixed order:

1. two uniforms: the patient's tolerance to toxicity and propensity to respond;
2. ``n_z`` standard normals (normal quantiles of uniforms) for continuous outcomes (random effects
   and residual noise of a clinical score), as many as the response models ask for;
3. one uniform per covariate, in the order the population lists them (inverse-CDF draws);
4. ``n_eta`` standard normals for the PK random effects (the PK model correlates them).

So a patient's outcome at every dose is fixed before any design sees them.  Rows are produced
in bulk by :func:`trialsim.rng.stream_uniforms`, bitwise equal to
``stream(seed, scenario, trial, "patients").random(P * K)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trialsim.population.distributions import U_MIN, Distribution, normal_quantile
from trialsim.rng import stream_uniforms

N_UNIFORM = 2


@dataclass(frozen=True)
class VirtualPatients:
    """Patients of ``T`` trials with ``P`` patients each.

    ``u`` (T, P, 2) uniforms, ``z`` (T, P, n_z) normals, ``covariates`` name → (T, P),
    ``eta_z`` (T, P, n_eta) independent standard normals for the PK random effects.
    """

    u: np.ndarray
    z: np.ndarray
    covariates: dict[str, np.ndarray] = field(default_factory=dict)
    eta_z: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.u.shape[0], self.u.shape[1]


@dataclass(frozen=True)
class Population:
    """Covariate distributions by name (``weight_kg``, ``baseline_madrs``, ...)."""

    covariates: dict[str, Distribution] = field(default_factory=dict)

    def width(self, n_z: int = 0, n_eta: int = 0) -> int:
        """Uniforms per patient."""
        return N_UNIFORM + n_z + len(self.covariates) + n_eta

    def draw(self, seed: int, scenario: int, trials: np.ndarray, n_patients: int, n_z: int = 0,
             n_eta: int = 0) -> VirtualPatients:
        """Draw ``n_patients`` patients for each trial index in ``trials``."""
        K = self.width(n_z, n_eta)
        U = stream_uniforms(seed, scenario, np.asarray(trials), "patients", n_patients * K)
        return self.from_uniforms(U.reshape(len(trials), n_patients, K), n_z, n_eta)

    def draw_from(self, rng: np.random.Generator, n: int, n_z: int = 0, n_eta: int = 0) -> VirtualPatients:
        """``n`` patients as one trial, from any Generator (study-level Monte Carlo)."""
        K = self.width(n_z, n_eta)
        return self.from_uniforms(rng.random(n * K).reshape(1, n, K), n_z, n_eta)

    def from_uniforms(self, U: np.ndarray, n_z: int, n_eta: int) -> VirtualPatients:
        """Turn uniforms (T, P, K) laid out as in the module docstring into patients."""
        c = N_UNIFORM + n_z
        z = normal_quantile(U[..., N_UNIFORM:c])
        cov = {name: dist.quantile(np.maximum(U[..., c + j], U_MIN))
               for j, (name, dist) in enumerate(self.covariates.items())}
        eta_z = normal_quantile(U[..., U.shape[-1] - n_eta:]) if n_eta else None
        return VirtualPatients(U[..., :N_UNIFORM], z, cov, eta_z)
