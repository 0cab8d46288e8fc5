"""The dose-response models of MCP-Mod (Bretz, Pinheiro & Branson, Biometrics 2005;61:738-748;
Pinheiro, Bornkamp, Glimm & Bretz, Stat Med 2014;33:1646-1661), in the parameterisation of
the R package DoseFinding (Bornkamp, Pinheiro & Bretz):

=============  =====================================================  ===============  ========
model          mean f(d)                                              shape (guess)    bounds
=============  =====================================================  ===============  ========
linear         e0 + delta·d                                           —                —
linlog         e0 + delta·log(d + off)                                —                —
quadratic      e0 + b1·d + b2·d²                                      b2/b1            —
emax           e0 + emax·d/(ed50 + d)                                 ed50             [0.001, 1.5]·D
sig_emax       e0 + emax·d^h/(ed50^h + d^h)                           (ed50, h)        ed50 as emax, h [0.5, 10]
exponential    e0 + e1·(exp(d/delta) − 1)                             delta            [0.1, 2]·D
logistic       e0 + emax/(1 + exp((ed50 − d)/delta))                  (ed50, delta)    [0.001, 1.5]·D, [0.01, 0.5]·D
beta           e0 + emax·B·(d/scal)^delta1·(1 − d/scal)^delta2        (delta1, delta2) [0.05, 4] each
=============  =====================================================  ===============  ========

with ``D`` the largest dose, ``off = 0.01·D`` and ``scal = 1.2·D`` by default, and
``B = (delta1 + delta2)^(delta1 + delta2) / (delta1^delta1 · delta2^delta2)`` so the beta
curve peaks at ``emax`` above ``e0``.  Every model is ``e0 + sum_j beta_j·g_j(d; theta)``:
linear in ``(e0, beta)`` once the shape parameters ``theta`` are fixed, which is how the
models are fitted (:mod:`.fitting`).  The shape ``g(d; guess)`` of a guesstimate is what the
optimal contrasts are built from (:mod:`.contrasts`); for the quadratic model it is
``d + (b2/b1)·d²``.  Bounds are those of DoseFinding's ``defBnds``.
"""
from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Other spellings accepted for the model names (DoseFinding's and natural variants).
ALIASES = {"sigEmax": "sig_emax", "sigemax": "sig_emax", "betaMod": "beta", "beta_mod": "beta",
           "lin_log": "linlog", "linLog": "linlog", "exp": "exponential", "quad": "quadratic"}


def _xlogx(x: float) -> float:
    return 0.0 if x == 0 else x * np.log(x)


@dataclass(frozen=True)
class Family:
    """One model family: its basis functions ``g_j(d; theta)``, parameter names and the
    default bounds of ``theta`` (as fractions or multiples of the largest dose ``D`` where
    ``scaled``)."""

    name: str
    params: tuple[str, ...]                 # e0, the linear coefficients, then theta
    n_theta: int
    basis: Callable                         # (d (k,), theta (n_theta,), extra) -> (k, p)
    default_bounds: tuple[tuple[float, float], ...] = ()
    scaled: tuple[bool, ...] = ()           # bound j is a multiple of the largest dose
    guess_shape: Callable | None = None     # (d, guess, extra) -> (k,) standardised shape

    @property
    def n_linear(self) -> int:
        return len(self.params) - 1 - self.n_theta

    def bounds(self, max_dose: float, given=None) -> np.ndarray:
        """Bounds of ``theta``, shape (n_theta, 2)."""
        if given is not None:
            b = np.asarray(given, dtype=float).reshape(self.n_theta, 2)
        else:
            b = np.array(self.default_bounds, dtype=float).reshape(self.n_theta, 2)
            b = b * np.where(np.array(self.scaled)[:, None], max_dose, 1.0)
        if np.any(b[:, 0] <= 0) or np.any(b[:, 1] <= b[:, 0]):
            raise ValueError(f"{self.name}: bounds must be positive with low < high, got "
                             f"{b.tolist()}")
        return b

    def shape(self, d: np.ndarray, guess, extra: Mapping) -> np.ndarray:
        """The standardised shape of a guesstimate at doses ``d``."""
        if self.guess_shape is not None:
            return self.guess_shape(d, guess, extra)
        X = self.basis(np.asarray(d, float), np.asarray(guess, float).reshape(self.n_theta), extra)
        return X[:, 0]

    def mean(self, d, coef, extra: Mapping) -> np.ndarray:
        """``f(d)`` for full parameters ``coef`` (in ``params`` order)."""
        d = np.asarray(d, dtype=float)
        coef = np.asarray(coef, dtype=float)
        theta = coef[1 + self.n_linear:]
        X = self.basis(np.atleast_1d(d), theta, extra)
        return (coef[0] + X @ coef[1:1 + self.n_linear]).reshape(d.shape)


def _linear(d, theta, extra):
    return d[:, None]


def _linlog(d, theta, extra):
    return np.log(d + extra["off"])[:, None]


def _quadratic(d, theta, extra):
    return np.stack([d, d * d], axis=1)


def _emax(d, theta, extra):
    return (d / (theta[0] + d))[:, None]


def _sig_emax(d, theta, extra):
    ed50, h = theta
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        x = np.where(d > 0, (d / ed50) ** h, 0.0)
        g = np.where(np.isinf(x), 1.0, x / (1.0 + x))
    return g[:, None]


def _exponential(d, theta, extra):
    with np.errstate(over="ignore"):
        return np.expm1(d / theta[0])[:, None]


def _logistic(d, theta, extra):
    ed50, delta = theta
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp((ed50 - d) / delta)))[:, None]


def _beta(d, theta, extra):
    d1, d2 = theta
    x = d / extra["scal"]
    if np.any(x > 1):
        raise ValueError("the beta model needs every dose <= scal")
    log_b = _xlogx(d1 + d2) - _xlogx(d1) - _xlogx(d2)
    with np.errstate(divide="ignore"):
        g = np.exp(log_b) * np.power(x, d1) * np.power(1.0 - x, d2)
    return g[:, None]


def _quadratic_shape(d, guess, extra):
    delta = float(np.asarray(guess).reshape(()))
    d = np.asarray(d, dtype=float)
    return d + delta * d * d


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("linear", ("e0", "delta"), 0, _linear),
    Family("linlog", ("e0", "delta"), 0, _linlog),
    Family("quadratic", ("e0", "b1", "b2"), 0, _quadratic, guess_shape=_quadratic_shape),
    Family("emax", ("e0", "emax", "ed50"), 1, _emax, ((0.001, 1.5),), (True,)),
    Family("sig_emax", ("e0", "emax", "ed50", "h"), 2, _sig_emax,
           ((0.001, 1.5), (0.5, 10.0)), (True, False)),
    Family("exponential", ("e0", "e1", "delta"), 1, _exponential, ((0.1, 2.0),), (True,)),
    Family("logistic", ("e0", "emax", "ed50", "delta"), 2, _logistic,
           ((0.001, 1.5), (0.01, 0.5)), (True, True)),
    Family("beta", ("e0", "emax", "delta1", "delta2"), 2, _beta,
           ((0.05, 4.0), (0.05, 4.0)), (False, False)),
)}
#: How many shape numbers one guesstimate has.
GUESS_SIZE = {"linear": 0, "linlog": 0, "quadratic": 1, "emax": 1, "sig_emax": 2,
              "exponential": 1, "logistic": 2, "beta": 2}


def family(name: str) -> Family:
    """The model family ``name`` (DoseFinding spellings such as ``sigEmax`` accepted)."""
    key = ALIASES.get(name, name)
    try:
        return FAMILIES[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dose-response model {name!r}; known: "
                         f"{', '.join(FAMILIES)}") from None


@dataclass(frozen=True)
class Candidate:
    """One candidate shape: a model family and a guesstimate (``()`` for linear/linlog)."""

    model: str
    guess: tuple[float, ...]
    label: str


@dataclass(frozen=True)
class Candidates:
    """The candidate set of MCP-Mod: shapes at the study's doses.

    ``models`` maps a model name to its guesstimate(s), as in the R package DoseFinding:
    ``None`` for linear and linlog; a number (or a list of numbers, one candidate each) for
    emax (ed50), exponential (delta) and quadratic (b2/b1); a pair (or a list of pairs) for
    sig_emax (ed50, h), logistic (ed50, delta) and beta (delta1, delta2).  Guesstimates are
    in dose units.  ``off`` (linlog) and ``scal`` (beta) default to 0.01 and 1.2 times the
    largest dose."""

    doses: tuple[float, ...]
    items: tuple[Candidate, ...]
    off: float
    scal: float

    @classmethod
    def from_models(cls, doses, models: Mapping, off: float | None = None,
                    scal: float | None = None) -> "Candidates":
        d = np.unique(np.asarray(doses, dtype=float))
        if d.size < 2 or d[0] != 0 or np.any(~np.isfinite(d)):
            raise ValueError("the doses must include placebo (0) and at least one active dose")
        if not isinstance(models, Mapping) or not models:
            raise ValueError("models must map model names to guesstimates, e.g. "
                             "{'linear': None, 'emax': 0.2}")
        top = float(d[-1])
        off = 0.01 * top if off is None else float(off)
        scal = 1.2 * top if scal is None else float(scal)
        if not off > 0:
            raise ValueError(f"off must be > 0, got {off}")
        if scal < top:
            raise ValueError(f"scal must be at least the largest dose {top:g}, got {scal}")
        items = []
        for name, guess in models.items():
            fam = family(name)
            guesses = _guesses(fam.name, guess)
            for j, g in enumerate(guesses):
                label = fam.name if len(guesses) == 1 else f"{fam.name}{j + 1}"
                items.append(Candidate(fam.name, g, label))
        return cls(tuple(float(x) for x in d), tuple(items), off, scal)

    @property
    def extra(self) -> dict:
        return {"off": self.off, "scal": self.scal}

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.items)

    def shapes(self, doses=None) -> np.ndarray:
        """Standardised shapes (k doses, M candidates): each scaled to run from 0 at placebo
        to 1 at its largest value over the doses (contrasts do not depend on the scaling)."""
        d = np.asarray(self.doses if doses is None else doses, dtype=float)
        cols = []
        for c in self.items:
            g = family(c.model).shape(d, c.guess, self.extra)
            g = g - g[0]
            span = np.max(np.abs(g))
            if not span > 0:
                raise ValueError(f"candidate {c.label} is flat over the doses")
            cols.append(g / span)
        return np.stack(cols, axis=1)


def _guesses(name: str, guess) -> list[tuple[float, ...]]:
    size = GUESS_SIZE[name]
    if size == 0:
        if guess not in (None, (), []):
            raise ValueError(f"{name} takes no guesstimate (give null), got {guess!r}")
        return [()]
    what = "a number" if size == 1 else "a pair"
    try:
        arr = np.asarray(guess, dtype=float) if guess is not None else np.array([])
        if np.asarray(guess).dtype.kind not in "iuf":     # "0.1" is text, true a truth value
            arr = np.array([np.nan])
    except (TypeError, ValueError, OverflowError):
        arr = np.array([np.nan])
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} needs a guesstimate ({what}, or a list of them), got "
                         f"{reprlib.repr(guess)}")
    if arr.size % size:
        raise ValueError(f"{name} needs guesstimates of {size} numbers each, got "
                         f"{reprlib.repr(guess)}")
    arr = arr.reshape(-1, size) if size > 1 else arr.reshape(-1, 1)
    if name != "quadratic" and np.any(arr <= 0):
        raise ValueError(f"{name} guesstimates must be > 0, got {arr.tolist()}")
    return [tuple(float(x) for x in row) for row in arr]


__all__ = ["ALIASES", "FAMILIES", "Family", "Candidate", "Candidates", "family"]
