"""numba kernel of the lockstep simulator's inner step (:func:`trialsim.simulate.run_batch`):
give each running trial its next cohort and record what it reveals.  Arrays and numbers only."""
from __future__ import annotations

import numba


@numba.njit(cache=True)
def give_cohorts(act, nxt, sizes, P, step, tox_po, eff_po, n, ntox, neff, neff_tox, pat_dose,
                 pat_cohort, total, current, lc_n, lc_tox, leave, onset, window, dropped):
    """For each running trial ``act[i]``: ``sizes[i]`` evaluable patients (fewer if the trial
    would pass ``P`` evaluable patients) at dose ``nxt[i]``, their potential outcomes
    ``tox_po``/``eff_po[t, slot, dose]`` revealed into the per-dose counts (``neff_tox``:
    both), the patient records and the last-cohort state.  ``total[t]`` counts the patient
    slots used.

    With dropout (``leave`` of shape ``(T, slots)``; empty without): a patient who leaves
    (``leave`` hours after the dose) before ``window`` without a DLT observed by then (the DLT
    at ``onset`` hours) is not evaluable: recorded in ``dropped``, not counted, and replaced
    by the next slot.  Returns -1, or the first ``i`` whose trial has no room or no slot left
    (the caller raises)."""
    S = tox_po.shape[1]
    drop = leave.shape[0] > 0
    for i in range(act.size):
        t = act[i]
        d = nxt[i]
        had = 0
        for k in range(n.shape[1]):
            had += n[t, k]
        size = min(sizes[i], P - had)
        if size <= 0:
            return i
        y = 0
        got = 0
        while got < size:
            pos = total[t]
            if pos >= S:
                return i
            total[t] += 1
            pat_dose[t, pos] = d
            pat_cohort[t, pos] = step
            tox = tox_po[t, pos, d]
            if drop and leave[t, pos] < window and not (tox and onset[t, pos] <= leave[t, pos]):
                dropped[t, pos] = True
                continue
            got += 1
            if tox:
                y += 1
            if eff_po[t, pos, d]:
                neff[t, d] += 1
                if tox:
                    neff_tox[t, d] += 1
        n[t, d] += size
        ntox[t, d] += y
        current[t] = d
        lc_n[t] = size
        lc_tox[t] = y
    return -1
