"""Between-patient variability of PK parameters.

* :class:`Omega`: random effects ``eta ~ N(0, Ω)`` on the log scale (``θ_i = θ·exp(η_i)``) or,
  per parameter, on the logit scale (``θ_i = expit(logit θ + η_i)``, for fractions).  Given
  as a variance–covariance matrix or as CVs and correlations (``ω² = ln(1 + CV²)``, the exact
  CV of a log-normal; ``cov = r·ω_i·ω_j``).
* :class:`Allometry`: ``θ·(WT / reference_kg)^exponent`` per parameter.
* :class:`CategoricalEffect` (multiplicative factor per category) and :class:`LinearEffect`
  (``θ + slope·max(0, x − above)``, e.g. hepatic blood flow falling with age above 60).

Individual values: additive effects on the typical value, then the random effect, then the
multiplicative factors (allometry, categories); for log-scale parameters the order of the last
two does not matter.  Every draw takes a ``numpy.random.Generator`` from the caller.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import numpy as np
from pydantic import Field
from scipy.special import expit, logit

from trialsim.registry import register
from trialsim.spec import spec

Pos = Annotated[float, Field(gt=0)]
#: Largest coefficient of variation accepted (a fraction: 3 = 300 %; published IIVs stay well
#: below it, and a CV of 8 meant as 8 % is refused), and the log-scale variance it gives,
#: ln(1 + 3^2) = 2.30 (the largest a log-scale random effect may have); a logit-scale random
#: effect's variance is at most 9 (sd 3 on the logit scale).
MAX_CV = 3.0
MAX_LOG_VARIANCE = float(np.log1p(MAX_CV ** 2))
MAX_LOGIT_VARIANCE = 9.0
NonNeg = Annotated[float, Field(ge=0)]
Scale = Literal["log", "logit"]


@spec
class Omega:
    """Variance–covariance matrix (log or logit scale) of the random effects ``names``."""

    names: tuple[str, ...] = ()
    matrix: tuple[tuple[float, ...], ...] = ()
    scales: tuple[Scale, ...] = ()

    def __post_init__(self):
        k = len(self.names)
        if len(set(self.names)) != k:
            raise ValueError(f"random-effect names must be unique, got {list(self.names)}")
        if len(self.matrix) != k or any(len(row) != k for row in self.matrix):
            raise ValueError(f"omega must be a {k}×{k} matrix (one row and column per name {list(self.names)})")
        if self.scales and len(self.scales) != k:
            raise ValueError(f"give one scale per random effect ({k}), got {len(self.scales)}")
        if k:
            m = np.array(self.matrix, dtype=float)
            if not np.all(np.isfinite(m)):
                raise ValueError("omega entries must be finite numbers")
            if not np.allclose(m, m.T, rtol=1e-12, atol=1e-15):
                raise ValueError("omega must be symmetric")
            for i, nm in enumerate(self.names):
                logit = self.scales and self.scales[i] == "logit"
                cap = MAX_LOGIT_VARIANCE if logit else MAX_LOG_VARIANCE
                if m[i, i] > cap:
                    raise ValueError(
                        f"the variance of {nm}'s random effect is {m[i, i]:g}; at most {cap:.3g} "
                        + ("(sd 3 on the logit scale)" if logit else
                           f"(a CV of {MAX_CV:g}, i.e. {100 * MAX_CV:g} %: "
                           "variances are omega^2 = ln(1 + CV^2) on the log scale)"))
            try:
                np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                raise ValueError(f"omega must be positive definite, got {m.tolist()} "
                                 f"(eigenvalues {np.linalg.eigvalsh(m).round(6).tolist()})") from None

    @classmethod
    def from_cv(cls, cv: Mapping[str, float], correlation: Mapping[tuple[str, str], float] | None = None,
                scales: Mapping[str, Scale] | None = None) -> "Omega":
        """From CVs (fractions, at most MAX_CV; ω² = ln(1 + CV²)) and correlations keyed by name
        pairs."""
        names = tuple(cv)
        for nm, c in cv.items():
            if not (np.isfinite(c) and 0 <= c <= MAX_CV):
                raise ValueError(f"CV of {nm} must be a fraction between 0 and {MAX_CV:g} "
                                 f"(0.3 = 30 %), got {c}")
        sd = np.sqrt(np.log1p(np.square([float(cv[n]) for n in names])))
        r = np.eye(len(names))
        for (a, b), rho in (correlation or {}).items():
            if a not in cv or b not in cv or a == b:
                raise ValueError(f"correlation {a}-{b}: both names must be distinct random effects {list(names)}")
            if not -1 < rho < 1:
                raise ValueError(f"correlation {a}-{b} must lie in (-1, 1), got {rho}")
            i, j = names.index(a), names.index(b)
            r[i, j] = r[j, i] = rho
        m = r * np.outer(sd, sd)
        return cls(names, tuple(map(tuple, m.tolist())), _scales(names, scales))

    @classmethod
    def from_variances(cls, variances: Mapping[str, float],
                       covariances: Mapping[tuple[str, str], float] | None = None,
                       scales: Mapping[str, Scale] | None = None) -> "Omega":
        """From variances ω² and covariances (log scale) keyed by name pairs."""
        names = tuple(variances)
        m = np.diag([float(variances[n]) for n in names])
        for (a, b), c in (covariances or {}).items():
            i, j = names.index(a), names.index(b)
            m[i, j] = m[j, i] = c
        return cls(names, tuple(map(tuple, m.tolist())), _scales(names, scales))

    @property
    def n(self) -> int:
        return len(self.names)

    def array(self) -> np.ndarray:
        return np.array(self.matrix, dtype=float).reshape(self.n, self.n)

    def cholesky(self) -> np.ndarray:
        """Lower-triangular L with L Lᵀ = Ω, so eta = z Lᵀ for standard normal z."""
        return np.linalg.cholesky(self.array()) if self.n else np.zeros((0, 0))

    def scale(self, name: str) -> Scale:
        return self.scales[self.names.index(name)] if self.scales else "log"

    def cv(self) -> dict[str, float]:
        """CV of each log-scale parameter, sqrt(exp(ω²) − 1) (NaN for logit-scale ones)."""
        d = np.diag(self.array())
        return {n: float(np.sqrt(np.expm1(v))) if self.scale(n) == "log" else float("nan")
                for n, v in zip(self.names, d)}


def _scales(names, scales) -> tuple:
    if not scales:
        return ()
    bad = sorted(set(scales) - set(names))
    if bad:
        raise ValueError(f"scales given for parameters without a random effect: {bad}")
    return tuple(scales.get(n, "log") for n in names)


def draw_eta(spec, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random-effect vectors (n, n_eta): ``eta = z Lᵀ``, z standard normal from ``rng``.

    ``spec`` is a PK specification (its ``omega``) or an :class:`Omega`."""
    om = getattr(spec, "omega", spec)
    if om.n == 0:
        return np.zeros((n, 0))
    return rng.standard_normal((n, om.n)) @ om.cholesky().T


@spec
class Allometry:
    """Weight scaling ``θ·(WT / reference_kg)^exponent`` for the parameters in ``exponents``."""

    exponents: dict[str, float]
    reference_kg: Pos = 70.0
    covariate: str = "weight_kg"

    def factors(self, covariates: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.covariate not in covariates:
            raise ValueError(f"allometric scaling needs the covariate {self.covariate!r} (kg)")
        w = np.asarray(covariates[self.covariate], dtype=float)
        if np.any(~(w > 0)):
            raise ValueError(f"{self.covariate} must be > 0 kg for allometric scaling")
        return {p: (w / self.reference_kg) ** e for p, e in self.exponents.items()}


class CovariateEffect:
    """Base of the covariate effects (registry kind ``covariate_effect``): each names the
    ``covariate`` it reads and the ``parameter`` it changes."""

    covariate: str
    parameter: str
    required: bool


@register("covariate_effect", "categorical")
@spec
class CategoricalEffect(CovariateEffect):
    """``θ × factors[category]`` for the patients in each listed category of ``covariate``;
    unlisted categories are the reference (factor 1).  Category codes (integers, as drawn by
    the population layer) match integer keys, or names through ``levels`` (code k ↔
    ``levels[k]``); string covariates match names.  With ``required=False`` a missing
    covariate means every patient is in the reference category."""

    covariate: str
    parameter: str
    factors: dict[int | str, Pos]
    levels: tuple[str, ...] | None = None
    required: bool = True

    def _factor_of(self, value) -> float:
        if isinstance(value, (str, np.str_)):
            return float(self.factors.get(str(value), 1.0))
        code = int(value)
        if code in self.factors:
            return float(self.factors[code])
        if str(code) in self.factors:
            return float(self.factors[str(code)])
        if self.levels is not None and 0 <= code < len(self.levels):
            return float(self.factors.get(self.levels[code], 1.0))
        return 1.0

    def multiplier(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        uniq, inv = np.unique(x, return_inverse=True)
        return np.array([self._factor_of(u) for u in uniq], dtype=float)[inv.reshape(x.shape)]


@register("covariate_effect", "linear")
@spec
class LinearEffect(CovariateEffect):
    """``θ + slope·max(0, x − above)`` (in θ's unit), applied before the random effect."""

    covariate: str
    parameter: str
    slope: float
    above: float = 0.0
    required: bool = True

    def shift(self, x: np.ndarray) -> np.ndarray:
        return self.slope * np.maximum(0.0, np.asarray(x, dtype=float) - self.above)


def check_targets(parameters: Mapping[str, float], omega: Omega, allometry: Allometry | None,
                  effects) -> None:
    """Every random effect, allometric exponent and covariate effect must name a parameter."""
    known = sorted(parameters)
    for nm in omega.names:
        if nm not in parameters:
            raise ValueError(f"random effect on {nm!r}, which is not a parameter of the model; known: {known}")
        if omega.scale(nm) == "logit" and not 0 < parameters[nm] < 1:
            raise ValueError(f"a logit-scale random effect needs 0 < {nm} < 1, got {parameters[nm]}")
    for nm in (allometry.exponents if allometry else {}):
        if nm not in parameters:
            raise ValueError(f"allometric exponent for {nm!r}, which is not a parameter; known: {known}")
    for e in effects:
        if e.parameter not in parameters:
            raise ValueError(f"covariate effect on {e.parameter!r}, which is not a parameter; known: {known}")


def individual_parameters(spec, covariates: Mapping[str, np.ndarray], eta: np.ndarray) -> dict[str, np.ndarray]:
    """Per-patient parameter values (name → (n,)) of a PK specification (``structure``,
    ``omega``, ``allometry``, ``effects``) for covariates (name → (n,)) and etas (n, n_eta)."""
    eta = np.asarray(eta, dtype=float)
    n = eta.shape[0]
    om = spec.omega
    if eta.shape != (n, om.n):
        raise ValueError(f"eta must have shape (n, {om.n}) for random effects {list(om.names)}, got {eta.shape}")
    v = {k: np.full(n, float(x)) for k, x in spec.structure.parameters().items()}
    mult = []
    for i, e in enumerate(spec.effects):
        if e.covariate not in covariates:
            if e.required:
                raise ValueError(f"covariate effect on {e.parameter} needs the covariate {e.covariate!r}")
            continue
        x = np.asarray(covariates[e.covariate]).reshape(n)
        if isinstance(e, LinearEffect):
            p = v[e.parameter] = v[e.parameter] + e.shift(x)
            top = 1.0 if e.parameter in om.names and om.scale(e.parameter) == "logit" else np.inf
            bad = ~((p > 0) & (p < top))
            if bad.any():
                k = int(np.argmax(bad))
                raise ValueError(
                    f"pk: covariate effect {i + 1} (linear, {e.covariate} on {e.parameter}): a "
                    f"patient with {e.covariate} {x[k]:g} gets {e.parameter} {p[k]:g}, outside "
                    f"its range; bound the population's {e.covariate} or change the effect")
        else:
            mult.append((e.parameter, e.multiplier(x)))
    for j, nm in enumerate(om.names):
        if om.scale(nm) == "logit":
            v[nm] = expit(logit(v[nm]) + eta[:, j])
        else:
            v[nm] = v[nm] * np.exp(eta[:, j])
    if spec.allometry is not None:
        for nm, f in spec.allometry.factors(covariates).items():
            v[nm] = v[nm] * np.asarray(f, dtype=float).reshape(n)
    for nm, f in mult:
        v[nm] = v[nm] * f
    return v
