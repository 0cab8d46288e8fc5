"""Covariate distributions, written in YAML as ``{dist: NAME, ...}``.

Each draws through :meth:`quantile` of standard uniforms supplied by the caller (the
patient's stream), so one uniform per patient per covariate is consumed whatever the
distribution: changing a covariate's distribution never shifts any other draw.  Uniforms are
kept in [:data:`U_MIN`, :data:`U_MAX`], so :meth:`Distribution.extremes` gives the smallest and
largest value a draw can take.  Parameters are bounded in magnitude by :data:`MAX_ABS` so that
every draw is a finite number.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator
from scipy.special import ndtr

from trialsim.population._kernels import normal_quantile_flat
from trialsim.registry import register
from trialsim.spec import spec

#: Uniforms fed to the quantile functions lie in [U_MIN, U_MAX] (draws of 53-bit uniforms in
#: [0, 1), with 0 raised to U_MIN).
U_MIN, U_MAX = 2.0**-54, 1.0 - 2.0**-53
MAX_ABS = 1e12
Value = Annotated[float, Field(ge=-MAX_ABS, le=MAX_ABS)]
Positive = Annotated[float, Field(gt=0, le=MAX_ABS)]


def normal_quantile(u) -> np.ndarray:
    """The standard normal quantile of ``max(u, U_MIN)``, elementwise (same shape as ``u``;
    Wichura's AS 241, agreeing with ``scipy.special.ndtri`` to about 1e-16 relative)."""
    u = np.ascontiguousarray(u, dtype=float)
    out = np.empty_like(u)
    normal_quantile_flat(u.reshape(-1), U_MIN, out.reshape(-1))
    return out


class Distribution:
    """Base class: ``quantile(u)`` maps standard uniforms to draws (vectorised)."""

    def quantile(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def cdf(self, x) -> np.ndarray:  # pragma: no cover - abstract
        """``P(X <= x)``, elementwise (continuous distributions; eligibility bounds)."""
        raise TypeError(f"{type(self).__name__} has no cumulative distribution function")

    def draw(self, rng: np.random.Generator, size) -> np.ndarray:
        return self.quantile(np.maximum(rng.random(size), U_MIN))

    def extremes(self) -> tuple[float, float]:
        """The smallest and largest value a draw can take."""
        q = self.quantile(np.array([U_MIN, U_MAX]))
        return float(q[0]), float(q[1])


@register("distribution", "normal")
@spec
class Normal(Distribution):
    """Normal(mean, sd)."""

    mean: Value
    sd: Positive

    def quantile(self, u):
        return self.mean + self.sd * normal_quantile(u)

    def cdf(self, x):
        return ndtr((np.asarray(x, float) - self.mean) / self.sd)


@register("distribution", "lognormal")
@spec
class LogNormal(Distribution):
    """Log-normal given its median and coefficient of variation (cv = sqrt(exp(s^2) - 1))."""

    median: Positive
    cv: Annotated[float, Field(gt=0, le=10, description="coefficient of variation (0.2 = 20%)")]

    def quantile(self, u):
        s = np.sqrt(np.log1p(self.cv**2))
        return self.median * np.exp(s * normal_quantile(u))

    def cdf(self, x):
        x = np.asarray(x, float)
        s = np.sqrt(np.log1p(self.cv**2))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, ndtr(np.log(np.maximum(x, 1e-300) / self.median) / s), 0.0)


@register("distribution", "uniform")
@spec
class Uniform(Distribution):
    """Uniform on [low, high)."""

    low: Value
    high: Value

    def __post_init__(self):
        if not self.high > self.low:
            raise ValueError(f"high must be greater than low, got low={self.low}, high={self.high}")

    def quantile(self, u):
        return self.low + (self.high - self.low) * u

    def cdf(self, x):
        return np.clip((np.asarray(x, float) - self.low) / (self.high - self.low), 0.0, 1.0)

    def extremes(self) -> tuple[float, float]:
        """``(low, high)``: draws come as close to them as rounding allows (``low`` + 5.6e-15
        for ``high - low`` = 100), so a model that needs values above ``low`` is refused."""
        return float(self.low), float(self.high)


@register("distribution", "truncated_normal")
@spec
class TruncatedNormal(Distribution):
    """Normal(mean, sd) truncated to [low, high] (inverse-CDF draws); a bound left out (null)
    is no bound."""

    mean: Value
    sd: Positive
    low: Value | None = None
    high: Value | None = None

    @property
    def _bounds(self) -> tuple[float, float]:
        return (-np.inf if self.low is None else self.low,
                np.inf if self.high is None else self.high)

    def __post_init__(self):
        lo, hi = self._bounds
        if not hi > lo:
            raise ValueError(f"high must be greater than low, got low={self.low}, high={self.high}")
        a, b = ndtr((lo - self.mean) / self.sd), ndtr((hi - self.mean) / self.sd)
        if not b - a > 1e-12:
            raise ValueError("the interval [low, high] holds no probability mass of Normal(mean, sd)")

    def quantile(self, u):
        lo, hi = self._bounds
        a = ndtr((lo - self.mean) / self.sd)
        b = ndtr((hi - self.mean) / self.sd)
        x = self.mean + self.sd * normal_quantile(a + u * (b - a))
        return np.clip(x, lo, hi)

    def extremes(self) -> tuple[float, float]:
        """Its bounds where it has them (draws come as close to them as rounding allows),
        else the extreme draws."""
        a, b = super().extremes()
        return (a if self.low is None else float(self.low),
                b if self.high is None else float(self.high))

    def cdf(self, x):
        lo, hi = self._bounds
        a = ndtr((lo - self.mean) / self.sd)
        b = ndtr((hi - self.mean) / self.sd)
        x = np.clip(np.asarray(x, float), lo, hi)
        return np.clip((ndtr((x - self.mean) / self.sd) - a) / (b - a), 0.0, 1.0)


@register("distribution", "categorical")
@spec
class Categorical(Distribution):
    """Categories with probabilities, e.g. ``{dist: categorical, probs: {female: 0.6, male: 0.4}}``.

    Draws are category *codes* 0..K-1 in the order given; ``levels`` names them.
    """

    probs: dict[str, Annotated[float, Field(ge=0, le=1)]]

    @field_validator("probs")
    @classmethod
    def _sum_to_one(cls, v):
        if not v:
            raise ValueError("needs at least one category")
        if abs(sum(v.values()) - 1.0) > 1e-9:
            raise ValueError(f"category probabilities must sum to 1, got {sum(v.values())}")
        return v

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.probs)

    def quantile(self, u):
        cum = np.cumsum(list(self.probs.values()))
        cum[-1] = 1.0
        return np.searchsorted(cum, u, side="right").astype(np.int64)
