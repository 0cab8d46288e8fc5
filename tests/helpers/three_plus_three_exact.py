"""Exact operating characteristics of the 3+3 design without de-escalation.

Recursion over the rules of :class:`trialsim.designs.ThreePlusThree` with binomial
probabilities (no simulation).  Works with floats or :class:`fractions.Fraction` (exact
rational arithmetic) for the true DLT probabilities.

Rules at the current dose ``d`` (entered with 0 patients, every lower dose cleared):
first cohort X ~ Bin(3, p_d).  X >= 2: stop, select ``d - 1`` (none at the starting dose).
X = 0 below the top: escalate.  X = 1, or X = 0 at the top: second cohort Y ~ Bin(3, p_d);
X + Y <= 1: escalate (select the top dose at the top); otherwise stop, select ``d - 1``.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Sequence


@dataclass(frozen=True)
class ExactThreePlusThree:
    """``select[d]``: P(dose d selected); ``none``: P(no dose selected);
    ``reach[d]``: P(dose d gets a first cohort); ``expand[d]``: P(dose d gets 6 patients);
    ``expected_n[d] = 3 reach + 3 expand``; ``var_n[d]`` its variance; ``expected_tox[d]``:
    expected DLTs at dose d."""

    select: tuple
    none: object
    reach: tuple
    expand: tuple
    expected_n: tuple
    var_n: tuple
    expected_tox: tuple


def _pmf(k: int, p):
    return comb(3, k) * p**k * (1 - p) ** (3 - k)


def exact_three_plus_three(p: Sequence, start_dose: int = 0) -> ExactThreePlusThree:
    D = len(p)
    zero = p[0] * 0
    select = [zero] * D
    reach = [zero] * D
    expand = [zero] * D
    tox = [zero] * D
    none = zero

    def stop_toxic(d: int, prob) -> None:
        nonlocal none
        if d - 1 >= start_dose:
            select[d - 1] += prob
        else:
            none += prob

    # P(arriving fresh at dose d) flows upward; one pass over doses suffices because the
    # design never goes down.
    arrive = [zero] * D
    arrive[start_dose] = zero + 1
    for d in range(start_dose, D):
        a = arrive[d]
        reach[d] = a
        top = d == D - 1
        for x in range(4):
            px = a * _pmf(x, p[d])
            tox[d] += x * px
            if x >= 2:
                stop_toxic(d, px)
            elif x == 0 and not top:
                arrive[d + 1] += px
            else:  # 1 DLT in 3, or 0 DLTs at the top dose: 3 more at d
                expand[d] += px
                for y in range(4):
                    pxy = px * _pmf(y, p[d])
                    tox[d] += y * pxy
                    if x + y <= 1:
                        if top:
                            select[d] += pxy
                        else:
                            arrive[d + 1] += pxy
                    else:
                        stop_toxic(d, pxy)
    en = [3 * reach[d] + 3 * expand[d] for d in range(D)]
    en2 = [9 * (reach[d] - expand[d]) + 36 * expand[d] for d in range(D)]
    var = [en2[d] - en[d] ** 2 for d in range(D)]
    return ExactThreePlusThree(tuple(select), none, tuple(reach), tuple(expand), tuple(en),
                               tuple(var), tuple(tox))
