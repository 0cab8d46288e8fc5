"""Randomised phase II dose-ranging designs: parallel groups over placebo and several doses.

A phase II design says how many patients are randomised to which arm and in what order; the
endpoint, the missing-data rule, the analysis (MCP-Mod) and the choice of the dose to take
forward belong to the study (:mod:`trialsim.phase2`).  Allocation draws come from each
trial's ``allocation`` stream, so the same virtual patients (common random numbers) enter
every design compared on a scenario.
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator

from trialsim.registry import register
from trialsim.spec import context, spec

#: Most patients a phase II trial may randomise.
MAX_PHASE2_PATIENTS = 10_000


class Phase2Design:
    """Base class of the phase II designs: ``arms`` (doses, placebo first), ``n_total`` and
    :meth:`allocate` (the arm of each patient in order of randomisation)."""

    n_total: int

    @property
    def n_arms(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def n_uniforms(self) -> int:  # pragma: no cover - abstract
        """Uniforms per trial :meth:`allocate` needs."""
        raise NotImplementedError

    def allocate(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Arms (T, n_total) of the patients in order, from uniforms ``u`` (T,
        :meth:`n_uniforms`)."""
        raise NotImplementedError

    @classmethod
    def example(cls, n_doses: int = 5) -> "Phase2Design":  # pragma: no cover - abstract
        raise NotImplementedError


@register("phase2_design", "parallel")
@spec
class Parallel(Phase2Design):
    """Parallel groups randomised in the ratio ``allocation`` (one entry per dose, placebo
    first; e.g. ``[3, 1, 1, 1]`` as SYNAPSE), ``n_total`` patients in all.

    ``randomisation``: ``block`` — permuted blocks of ``block_size`` patients (a multiple of
    the sum of the ratios; default that sum), each holding every arm in the ratio, so the
    allocation is balanced after every block (the last block may be cut); ``simple`` — each
    patient independently with probabilities proportional to the ratios."""

    allocation: tuple[Annotated[int, Field(ge=0, le=100)], ...]
    n_total: Annotated[int, Field(ge=2, le=MAX_PHASE2_PATIENTS)]
    randomisation: Literal["block", "simple"] = "block"
    block_size: Annotated[int, Field(ge=1, le=1000)] | None = None

    @field_validator("allocation")
    @classmethod
    def _ratios(cls, v):
        n = context().get("n_doses")
        if n is not None and len(v) != n:
            raise ValueError(f"expected one allocation ratio per dose ({n}, placebo first), got "
                             f"{len(v)}")
        if len(v) < 2 or v[0] < 1 or sum(1 for x in v[1:] if x > 0) < 1:
            raise ValueError(f"the allocation needs a placebo arm and at least one dose arm with "
                             f"a ratio >= 1, got {list(v)}")
        return v

    def __post_init__(self) -> None:
        total = sum(self.allocation)
        if self.block_size is not None and self.block_size % total:
            raise ValueError(f"block_size must be a multiple of the sum of the ratios ({total}), "
                             f"got {self.block_size}")

    @property
    def n_arms(self) -> int:
        return len(self.allocation)

    @property
    def n_doses(self) -> int:
        return len(self.allocation)

    @property
    def expected_per_arm(self) -> np.ndarray:
        """Patients per arm if the allocation were exact (float)."""
        r = np.asarray(self.allocation, float)
        return self.n_total * r / r.sum()

    def _block(self) -> int:
        return self.block_size or int(sum(self.allocation))

    def n_uniforms(self) -> int:
        if self.randomisation == "simple":
            return self.n_total
        B = self._block()
        return -(-self.n_total // B) * B

    def allocate(self, u: np.ndarray) -> np.ndarray:
        N = self.n_total
        ratios = np.asarray(self.allocation, dtype=np.int64)
        if self.randomisation == "simple":
            cum = np.cumsum(ratios) / ratios.sum()
            cum[-1] = 1.0
            return np.searchsorted(cum, u[:, :N], side="right").astype(np.int64)
        B = self._block()
        block = np.repeat(np.arange(ratios.size), ratios * (B // ratios.sum()))
        T = u.shape[0]
        keys = u.reshape(T, -1, B)                 # one random permutation per block
        order = np.argsort(keys, axis=2, kind="stable")
        return block[order].reshape(T, -1)[:, :N]

    @classmethod
    def example(cls, n_doses: int = 5) -> "Parallel":
        return cls(allocation=(1,) * n_doses, n_total=20 * n_doses)
