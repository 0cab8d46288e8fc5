"""The sequential parallel comparison design (SPCD; Fava et al. 2003, *Psychother Psychosom*
72:115–127), as SYNAPSE (Daly et al. 2018) was run.

Period 1 randomises every patient in the ratio ``allocation`` (placebo first; more to placebo,
e.g. 3:1:1:1).  At ``period2_h`` hours after the first dose, the placebo patients still in the
trial who have not responded (MADRS fall below ``response_fraction`` of baseline) are
re-randomised in permuted blocks in ``period2_allocation`` and dosed again; period 2's endpoint
is their change from the period-2 baseline (their score at ``period2_h``) at the primary
visit's time after the new dose.  Their placebo response in period 2 is
``period2_placebo_factor`` times their own in period 1 — placebo non-responders respond less
the second time, the premise of the design (a scenario assumption: set 1 for none).

Analysis (by the simulator): each period's dose-level estimates (ANCOVA, or logits) are
combined with weight ``weight`` on period 1, ``est = w est1 + (1 − w) est2`` with covariance
``w² cov1 + (1 − w)² cov2`` (the periods treated as independent, as in the ordinary weighted
SPCD analysis: Fava et al. 2003; Chen, Yang, Fava & Pocock 2011, *Contemp Clin Trials* 32:592–
604), and the combination goes to generalised MCP-Mod.  Its estimand mixes the whole population
(period 1) with placebo non-responders (period 2); the truth reported is period 1's.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator

from trialsim.designs.phase2 import MAX_PHASE2_PATIENTS, Parallel, Phase2Design, check_arms
from trialsim.registry import register
from trialsim.spec import spec


@register("phase2_design", "spcd")
@spec
class SPCD(Phase2Design):
    """Two-period sequential parallel comparison design (SPCD).  Period 1 randomises all
    ``n_total`` patients in ``allocation`` (placebo first); at ``period2_h`` (h, one of the
    visits) placebo patients still in the trial whose MADRS has not fallen by
    ``response_fraction`` are re-randomised in ``period2_allocation`` and dosed again, with
    ``period2_placebo_factor`` times their first placebo response; the periods' estimates are
    combined with ``weight`` on period 1 for MCP-Mod.  ``block_size``: period 1's blocks."""

    allocation: tuple[Annotated[int, Field(ge=0, le=100)], ...]
    n_total: Annotated[int, Field(ge=2, le=MAX_PHASE2_PATIENTS)]
    period2_h: Annotated[float, Field(gt=0, le=1e4)]
    period2_allocation: tuple[Annotated[int, Field(ge=0, le=100)], ...]
    weight: Annotated[float, Field(ge=0, le=1)] = 0.5
    response_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    period2_placebo_factor: Annotated[float, Field(ge=0, le=2)] = 0.5
    block_size: Annotated[int, Field(ge=1, le=1000)] | None = None

    @field_validator("allocation", "period2_allocation")
    @classmethod
    def _ratios(cls, v):
        return check_arms(v)

    def __post_init__(self) -> None:
        if len(self.period2_allocation) != len(self.allocation):
            raise ValueError("period2_allocation needs one ratio per dose, as allocation")
        self._period1()

    def _period1(self) -> Parallel:
        return Parallel(allocation=self.allocation, n_total=self.n_total,
                        block_size=self.block_size)

    def _period2(self) -> Parallel:
        return Parallel(allocation=self.period2_allocation, n_total=self.n_total)

    def n_uniforms(self) -> int:
        return self._period1().n_uniforms() + self._period2().n_uniforms()

    def allocate(self, u: np.ndarray, stratum: np.ndarray | None = None) -> np.ndarray:
        """Period-1 arms (T, n_total)."""
        return self._period1().allocate(u[:, :self._period1().n_uniforms()])

    def allocate_period2(self, u: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Period-2 arms (T, n_total) of the ``eligible`` patients (the others −1): the
        eligible patients, in order, fill permuted blocks in ``period2_allocation``."""
        seq = self._period2().allocate(u[:, self._period1().n_uniforms():])
        rank = np.cumsum(eligible, axis=1) - 1
        return np.where(eligible, np.take_along_axis(seq, np.maximum(rank, 0), axis=1), -1)

    @classmethod
    def example(cls, n_doses: int = 5) -> "SPCD":
        return cls(allocation=(n_doses - 1,) + (1,) * (n_doses - 1), n_total=20 * n_doses,
                   period2_h=168.0, period2_allocation=(1,) * n_doses)
