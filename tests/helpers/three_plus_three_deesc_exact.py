"""Exact operating characteristics of the 3+3 design with de-escalation, by recursion over every
cohort outcome with binomial probabilities (no simulation), written from the rules alone
(independently of :class:`trialsim.designs.ThreePlusThree`):

* escalating at dose ``d``: 0 of 3 escalate (3 more at the top dose); 1 of 3: 3 more at ``d``;
  at most 1 of 6: escalate (stop and select the top dose at the top); 2 or more: toxic;
* after a de-escalation to ``d``: at most 1 of 6 there: stop and select ``d``; 2 or more: toxic;
* toxic at ``d``: at the starting dose stop with no dose; if ``d - 1`` has 6 patients stop and
  select it; otherwise 3 more at ``d - 1`` (de-escalation).

Returns the selection probabilities (and of none) and the expected patients and DLTs per dose."""
from __future__ import annotations

from math import comb


def exact_three_plus_three_deescalate(p, start_dose: int = 0):
    D = len(p)
    select = [0.0] * D
    out = {"none": 0.0, "n": [0.0] * D, "tox": [0.0] * D}

    def pmf(k, q):
        return comb(3, k) * q ** k * (1 - q) ** (3 - k)

    def cohort(n, y, d, down, prob):
        for k in range(4):
            pk = prob * pmf(k, p[d])
            if pk == 0:
                continue
            n2, y2 = list(n), list(y)
            n2[d] += 3
            y2[d] += k
            after(tuple(n2), tuple(y2), d, down, pk)

    def finish(n, y, prob, sel):
        for j in range(D):
            out["n"][j] += prob * n[j]
            out["tox"][j] += prob * y[j]
        if sel is None:
            out["none"] += prob
        else:
            select[sel] += prob

    def toxic(n, y, d, prob):
        if d == start_dose:
            finish(n, y, prob, None)
        elif n[d - 1] == 6:
            finish(n, y, prob, d - 1)
        else:
            cohort(n, y, d - 1, True, prob)

    def after(n, y, d, down, prob):
        if y[d] >= 2:
            return toxic(n, y, d, prob)
        if down:                                   # n[d] == 6 here
            return finish(n, y, prob, d)
        top = d == D - 1
        if n[d] == 3 and (y[d] == 1 or top):
            return cohort(n, y, d, False, prob)
        if top:                                    # 6 patients, at most 1 DLT
            return finish(n, y, prob, d)
        cohort(n, y, d + 1, False, prob)

    cohort(tuple([0] * D), tuple([0] * D), start_dose, False, 1.0)
    return {"select": select, **out}
