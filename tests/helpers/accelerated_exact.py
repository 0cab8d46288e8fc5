"""Exact operating characteristics of accelerated titration (Simon et al. 1997, design 2, binary
DLT), by recursion over every patient outcome, from the rules alone: one patient per dose while
no DLT is seen (the top dose reached without DLT, or the first DLT, expands that dose to 3);
then 3+3 in cohorts of 3 (0/3 or <= 1/6: escalate, at the top 3 more then stop there; 1/3: 3
more; >= 2: stop, selecting the dose below, none below the starting dose)."""
from __future__ import annotations

from math import comb


def exact_accelerated_titration(p, start_dose: int = 0):
    D = len(p)
    out = {"select": [0.0] * D, "none": 0.0, "n": [0.0] * D, "tox": [0.0] * D}

    def finish(n, y, prob, sel):
        for j in range(D):
            out["n"][j] += prob * n[j]
            out["tox"][j] += prob * y[j]
        if sel is None or sel < start_dose:
            out["none"] += prob
        else:
            out["select"][sel] += prob

    def give(n, y, d, k, prob, then):
        for x in range(k + 1):
            px = prob * comb(k, x) * p[d] ** x * (1 - p[d]) ** (k - x)
            if px:
                n2, y2 = list(n), list(y)
                n2[d] += k
                y2[d] += x
                then(n2, y2, d, px)

    def standard(n, y, d, prob):
        top = d == D - 1
        if y[d] >= 2:
            return finish(n, y, prob, d - 1)
        if n[d] == 3 and (y[d] == 1 or top):
            return give(n, y, d, 3, prob, standard)
        if top:
            return finish(n, y, prob, d)
        give(n, y, d + 1, 3, prob, standard)

    def single(n, y, d, prob):
        if y[d] == 1 or d == D - 1:
            return give(n, y, d, 2, prob, standard)
        give(n, y, d + 1, 1, prob, single)

    give([0] * D, [0] * D, start_dose, 1, 1.0, single)
    return out
