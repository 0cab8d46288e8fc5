"""Covariate distributions, written in YAML as ``{dist: NAME, ...}``.

Each draws through :meth:`quantile` of standard uniforms supplied by the caller (the
patient's stream), so one uniform per patient per covariate is consumed whatever the
distribution: changing a covariate's distribution never shifts any other draw.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator
from scipy.special import ndtr, ndtri

from trialsim.registry import register
from trialsim.spec import spec

Positive = Annotated[float, Field(gt=0)]


class Distribution:
    """Base class: ``quantile(u)`` maps standard uniforms to draws (vectorised)."""

    def quantile(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, size) -> np.ndarray:
        return self.quantile(rng.random(size))


@register("distribution", "normal")
@spec
class Normal(Distribution):
    """Normal(mean, sd)."""

    mean: float
    sd: Positive

    def quantile(self, u):
        return self.mean + self.sd * ndtri(u)


@register("distribution", "lognormal")
@spec
class LogNormal(Distribution):
    """Log-normal given its median and coefficient of variation (cv = sqrt(exp(s^2) - 1))."""

    median: Positive
    cv: Positive

    def quantile(self, u):
        s = np.sqrt(np.log1p(self.cv**2))
        return self.median * np.exp(s * ndtri(u))


@register("distribution", "uniform")
@spec
class Uniform(Distribution):
    """Uniform on [low, high)."""

    low: float
    high: float

    def __post_init__(self):
        if not self.high > self.low:
            raise ValueError(f"high must be greater than low, got low={self.low}, high={self.high}")

    def quantile(self, u):
        return self.low + (self.high - self.low) * u


@register("distribution", "truncated_normal")
@spec
class TruncatedNormal(Distribution):
    """Normal(mean, sd) truncated to [low, high] (inverse-CDF draws)."""

    mean: float
    sd: Positive
    low: float = -np.inf
    high: float = np.inf

    def __post_init__(self):
        if not self.high > self.low:
            raise ValueError(f"high must be greater than low, got low={self.low}, high={self.high}")
        a, b = ndtr((self.low - self.mean) / self.sd), ndtr((self.high - self.mean) / self.sd)
        if not b - a > 1e-12:
            raise ValueError("the interval [low, high] holds no probability mass of Normal(mean, sd)")

    def quantile(self, u):
        a = ndtr((self.low - self.mean) / self.sd)
        b = ndtr((self.high - self.mean) / self.sd)
        x = self.mean + self.sd * ndtri(a + u * (b - a))
        return np.clip(x, self.low, self.high)


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
