"""numba kernel of the lockstep simulator's inner step (:func:`trialsim.simulate.run_batch`):
give each running trial its next cohort and record what it reveals.  Arrays and numbers only."""
from __future__ import annotations

import numba


@numba.njit(cache=True)
def give_cohorts(act, nxt, sizes, P, step, tox_po, eff_po, n, ntox, neff, neff_tox, pat_dose,
                 pat_cohort, total, current, lc_n, lc_tox):
    """For each running trial ``act[i]``: ``sizes[i]`` patients (fewer if the trial would
    pass ``P``) at dose ``nxt[i]``, their potential outcomes ``tox_po``/``eff_po[t, patient,
    dose]`` revealed into the per-dose counts (``neff_tox``: both), the patient records and the
    last-cohort state.
    Returns -1, or the first ``i`` whose trial has no room left (the caller raises)."""
    for i in range(act.size):
        t = act[i]
        d = nxt[i]
        size = min(sizes[i], P - total[t])
        if size <= 0:
            return i
        y = 0
        for j in range(size):
            pos = total[t] + j
            if tox_po[t, pos, d]:
                y += 1
            if eff_po[t, pos, d]:
                neff[t, d] += 1
                if tox_po[t, pos, d]:
                    neff_tox[t, d] += 1
            pat_dose[t, pos] = d
            pat_cohort[t, pos] = step
        n[t, d] += size
        ntox[t, d] += y
        total[t] += size
        current[t] = d
        lc_n[t] = size
        lc_tox[t] = y
    return -1
