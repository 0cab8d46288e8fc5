"""Randomised phase II dose-ranging designs: parallel groups over placebo and several doses.

A phase II design says how many patients are randomised to which arm and in what order; the
endpoint, the missing-data rule, the analysis (MCP-Mod) and the choice of the dose to take
forward belong to the study (:mod:`trialsim.phase2`).  Allocation draws come from each
trial's ``allocation`` stream, so the same virtual patients (common random numbers) enter
every design compared on a scenario.
"""
from __future__ import annotations

from dataclasses import field
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator

from trialsim.registry import register
from trialsim.spec import context, spec

#: Most patients a phase II trial may randomise.
MAX_PHASE2_PATIENTS = 10_000


def check_arms(v: tuple, what: str = "allocation ratio") -> tuple:
    """One entry per dose of the study (placebo first), placebo and at least one dose arm
    above 0; ``ValueError`` saying what was expected otherwise."""
    n = context().get("n_doses")
    if n is not None and len(v) != n:
        raise ValueError(f"expected one {what} per dose ({n}, placebo first), got {len(v)}")
    if len(v) < 2 or v[0] < 1 or not any(x > 0 for x in v[1:]):
        raise ValueError(f"expected a placebo arm and at least one dose arm with a {what} >= 1 "
                         f"(placebo first), got {list(v)}")
    return v


class Phase2Design:
    """Base class of the phase II designs: ``arms`` (doses, placebo first), ``n_total`` and
    :meth:`allocate` (the arm of each patient in order of randomisation)."""

    n_total: int

    @property
    def n_arms(self) -> int:
        """Arms, placebo first (one per ratio of ``allocation``; override if a design has
        none)."""
        return len(self.allocation)

    #: Covariate → cut points of the strata randomised separately (empty: none).
    strata: dict = {}

    def n_uniforms(self) -> int:  # pragma: no cover - abstract
        """Uniforms per trial :meth:`allocate` needs."""
        raise NotImplementedError

    def allocate(self, u: np.ndarray, stratum: np.ndarray | None = None
                 ) -> np.ndarray:  # pragma: no cover - abstract
        """Arms (T, n_total) of the patients in order, from uniforms ``u`` (T,
        :meth:`n_uniforms`) and, for a stratified design, each patient's ``stratum`` (T,
        n_total) from :meth:`stratum_of`."""
        raise NotImplementedError

    @property
    def n_strata(self) -> int:
        return int(np.prod([len(c) + 1 for c in self.strata.values()])) if self.strata else 1

    def stratum_of(self, covariates: dict) -> np.ndarray:
        """Stratum index (T, N) of each patient from the covariates (T, N) named in
        ``strata``: the covariate's interval between the cut points, combined over
        covariates in order (mixed radix)."""
        code = None
        for name, cuts in self.strata.items():
            k = np.searchsorted(np.asarray(cuts, float), covariates[name], side="right")
            code = k if code is None else code * (len(cuts) + 1) + k
        return code.astype(np.int64)

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
    patient independently with probabilities proportional to the ratios.

    ``n_per_arm`` instead of ``allocation`` and ``n_total``: exactly these numbers per arm
    (the ratios, in one block of all patients).  ``strata`` (population covariate → cut
    points, e.g. ``{baseline_madrs: [30]}``): stratified randomisation, each stratum (the
    intervals between the cut points, crossed over covariates) with its own sequence of
    blocks, so every stratum is balanced after each of its blocks."""

    allocation: tuple[Annotated[int, Field(ge=0, le=10_000)], ...] | None = None
    n_total: Annotated[int, Field(ge=2, le=MAX_PHASE2_PATIENTS)] | None = None
    randomisation: Literal["block", "simple"] = "block"
    block_size: Annotated[int, Field(ge=1, le=MAX_PHASE2_PATIENTS)] | None = None
    n_per_arm: tuple[Annotated[int, Field(ge=0, le=MAX_PHASE2_PATIENTS)], ...] | None = None
    strata: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @field_validator("n_per_arm")
    @classmethod
    def _per_arm(cls, v):
        if v is None:
            return v
        check_arms(v, "number")
        if not 2 <= sum(v) <= MAX_PHASE2_PATIENTS:
            raise ValueError(f"n_per_arm must add up to 2 to {MAX_PHASE2_PATIENTS:,} patients, "
                             f"got {sum(v)}")
        return v

    @field_validator("strata")
    @classmethod
    def _strata(cls, v):
        if len(v) > 4:
            raise ValueError(f"at most 4 stratification covariates, got {len(v)}")
        total = 1
        for name, cuts in v.items():
            if not cuts or len(cuts) > 9:
                raise ValueError(f"{name}: expected 1 to 9 cut points, got {len(cuts)}")
            if not all(np.isfinite(cuts)) or any(b <= a for a, b in zip(cuts, cuts[1:])):
                raise ValueError(f"{name}: the cut points must be finite and increasing, got "
                                 f"{list(cuts)}")
            total *= len(cuts) + 1
        if total > 64:
            raise ValueError(f"at most 64 strata, got {total}")
        return v

    @field_validator("allocation")
    @classmethod
    def _ratios(cls, v):
        return v if v is None else check_arms(v)

    def __post_init__(self) -> None:
        if self.n_per_arm is not None:
            if self.allocation is not None or self.n_total is not None:
                raise ValueError("give n_per_arm, or allocation and n_total, not both")
            if self.randomisation != "block" or self.block_size is not None:
                raise ValueError("n_per_arm randomises all patients in one block: leave out "
                                 "randomisation and block_size")
            # the same design as allocation: n_per_arm in one block of n_total
            object.__setattr__(self, "allocation", tuple(self.n_per_arm))
            object.__setattr__(self, "n_total", int(sum(self.n_per_arm)))
            object.__setattr__(self, "n_per_arm", None)
        elif self.allocation is None or self.n_total is None:
            raise ValueError("expected allocation and n_total (or n_per_arm)")
        if self.strata and self.randomisation == "simple":
            raise ValueError("strata apply to block randomisation (simple randomisation draws "
                             "every patient independently: there is nothing to balance)")
        total = sum(self.allocation)
        if self.block_size is not None and self.block_size % total:
            raise ValueError(f"block_size must be a multiple of the sum of the ratios ({total}), "
                             f"got {self.block_size}")

    @property
    def n_arms(self) -> int:
        """Arms, placebo first (one per ratio of ``allocation``; override if a design has
        none)."""
        return len(self.allocation)
    @property
    def expected_per_arm(self) -> np.ndarray:
        """Patients per arm if the allocation were exact (float)."""
        r = np.asarray(self.allocation, float)
        return self.n_total * r / r.sum()

    def _block(self) -> int:
        return self.block_size or int(sum(self.allocation))

    def _per_stratum(self) -> int:
        if self.randomisation == "simple":
            return self.n_total
        B = self._block()
        return -(-self.n_total // B) * B

    def n_uniforms(self) -> int:
        return self._per_stratum() * (self.n_strata if self.randomisation == "block" else 1)

    def allocate(self, u: np.ndarray, stratum: np.ndarray | None = None) -> np.ndarray:
        if self.strata and self.randomisation == "block":
            if stratum is None:
                raise ValueError("a stratified design needs each patient's stratum")
            M = self._per_stratum()
            arm = np.zeros(stratum.shape, np.int64)
            for s in range(self.n_strata):
                seq = self._allocate(u[:, s * M:(s + 1) * M])
                mine = stratum == s
                rank = np.cumsum(mine, axis=1) - 1
                arm = np.where(mine, np.take_along_axis(seq, np.maximum(rank, 0), axis=1), arm)
            return arm
        return self._allocate(u)

    def _allocate(self, u: np.ndarray) -> np.ndarray:
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
