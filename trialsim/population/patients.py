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

from trialsim.population.distributions import (U_MIN, Categorical, Distribution,
                                               normal_quantile)
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


#: Smallest share of a covariate's distribution an eligibility criterion may keep.
MIN_ELIGIBLE = 1e-6


@dataclass(frozen=True)
class Eligibility:
    """An inclusion criterion on one covariate: ``low <= x <= high`` (a bound ``None``: none)
    for a continuous covariate, or membership of ``levels`` for a categorical one."""

    low: float | None = None
    high: float | None = None
    levels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Population:
    """Covariate distributions by name (``weight_kg``, ``baseline_madrs``, ...) and the
    eligibility criteria of enrolment.

    With ``eligibility`` the virtual patients are drawn from the eligible part of each
    criterion's covariate (its distribution truncated to the criterion, by inverse CDF, so each
    patient still takes one uniform per covariate), and :attr:`p_eligible` is the share of
    arrivals who meet every criterion (covariates are independent, so it is the product of
    the shares); the timed path screens arrivals out with that probability.
    """

    covariates: dict[str, Distribution] = field(default_factory=dict)
    eligibility: dict[str, Eligibility] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, rule in self.eligibility.items():
            dist = self.covariates.get(name)
            if dist is None:
                raise ValueError(f"eligibility names {name!r}, which is not a covariate "
                                 f"(known: {', '.join(self.covariates) or 'none'})")
            if (rule.levels is not None) != isinstance(dist, Categorical):
                raise ValueError(f"eligibility of {name!r}: give levels for a categorical "
                                 "covariate, min and/or max for a continuous one")
            if rule.levels is not None:
                bad = [v for v in rule.levels if v not in dist.levels]
                if bad or not rule.levels:
                    raise ValueError(f"eligibility of {name!r}: levels must be among "
                                     f"{list(dist.levels)}, got {list(rule.levels)}")
            elif rule.low is not None and rule.high is not None and not rule.low < rule.high:
                raise ValueError(f"eligibility of {name!r}: min ({rule.low:g}) must be below "
                                 f"max ({rule.high:g})")
            share = self._share(name)
            if not share >= MIN_ELIGIBLE:
                raise ValueError(f"eligibility of {name!r} keeps {share:.3g} of its "
                                 f"distribution (at least {MIN_ELIGIBLE:g} needed): no patient "
                                 "would be eligible")

    def _share(self, name: str) -> float:
        rule, dist = self.eligibility[name], self.covariates[name]
        if rule.levels is not None:
            return float(sum(p for k, p in dist.probs.items() if k in rule.levels))
        a, b = self._cdf_bounds(dist, rule)
        return b - a

    @staticmethod
    def _cdf_bounds(dist: Distribution, rule: Eligibility) -> tuple[float, float]:
        a = 0.0 if rule.low is None else float(dist.cdf(rule.low))
        b = 1.0 if rule.high is None else float(dist.cdf(rule.high))
        return a, b

    @property
    def p_eligible(self) -> float:
        """The share of the population meeting every eligibility criterion."""
        return float(np.prod([self._share(n) for n in self.eligibility])) if self.eligibility \
            else 1.0

    def extremes(self, name: str) -> tuple[float, float]:
        """The smallest and largest value an enrolled patient's covariate can take."""
        a, b = self.covariates[name].extremes()
        rule = self.eligibility.get(name)
        if rule is not None and rule.levels is None:
            a = a if rule.low is None else max(a, rule.low)
            b = b if rule.high is None else min(b, rule.high)
        return a, b

    def _quantile(self, name: str, dist: Distribution, u: np.ndarray) -> np.ndarray:
        rule = self.eligibility.get(name)
        if rule is None:
            return dist.quantile(u)
        if rule.levels is not None:               # renormalised over the eligible levels
            codes = np.array([i for i, k in enumerate(dist.levels) if k in rule.levels])
            p = np.array([dist.probs[dist.levels[i]] for i in codes])
            cum = np.cumsum(p / p.sum())
            cum[-1] = 1.0
            return codes[np.minimum(np.searchsorted(cum, u, side="right"), codes.size - 1)]
        a, b = self._cdf_bounds(dist, rule)
        x = dist.quantile(a + u * (b - a))
        lo = -np.inf if rule.low is None else rule.low
        hi = np.inf if rule.high is None else rule.high
        return np.clip(x, lo, hi)

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
        cov = {name: self._quantile(name, dist, np.maximum(U[..., c + j], U_MIN))
               for j, (name, dist) in enumerate(self.covariates.items())}
        eta_z = normal_quantile(U[..., U.shape[-1] - n_eta:]) if n_eta else None
        return VirtualPatients(U[..., :N_UNIFORM], z, cov, eta_z)
