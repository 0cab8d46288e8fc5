"""The interims of an adaptive phase II design (:mod:`trialsim.designs.adaptive`), run on
every trial of a batch at once."""
from __future__ import annotations

import numpy as np

from trialsim.analysis.doseresponse.batch import batch_contrast_test, batch_mcpmod
from trialsim.designs.adaptive import Adaptive, InterimState
from trialsim.phase2.study import Phase2Study


def run_interims(study: Phase2Study, design: Adaptive, u, arm, analyse_first, cands,
                 times: tuple[np.ndarray, np.ndarray] | None = None):
    """Run the interims of an adaptive design on every trial of the batch: ``(arm,
    n_enrolled (T,), n_interims (T,), stopped (T,), dropped (T, D))``.  At interim k the first
    ``interims[k]`` patients have their primary outcome (``analyse_first(arm, n)``: the
    estimates from the first n patients); the next stage's patients are drawn with the
    interim's probabilities.  Patients enrolled while the interim's patients reach the
    primary visit keep the arms drawn before the look and stay in the trial if it stops;
    nobody enrols after that.  Who they are: with ``times``, each trial's enrolment and dosing
    times (h, (T, N) each, in order of enrolment) on its calendar, those enrolled (randomised
    on arrival) by the time the last of the interim's patients to be dosed reaches the primary
    visit; without, ``design.pipeline`` patients."""
    T, N = arm.shape
    D = study.n_doses
    arm = arm.copy()
    active = design.initial_active(T)
    going = np.ones(T, bool)
    n_enrolled = np.full(T, N)
    n_interims = np.zeros(T, np.int16)
    stopped = np.zeros(T, np.int8)
    benefit = 1.0 if study.direction == "increasing" else -1.0
    shapes = benefit * cands.shapes(np.asarray(study.doses, float))
    a = study.analysis
    ratios = np.asarray(design.allocation, float)
    pipeline = design.pipeline(study.endpoint.visit_h)
    for k, n_k in enumerate(design.interims):
        est = analyse_first(arm, n_k)
        t, _, _ = batch_contrast_test(est, shapes)
        reject = np.zeros(T, bool)
        level = design.efficacy_level(k)
        if level > 0:
            reject = batch_mcpmod(est, cands, alpha=level, delta=a.delta,
                                  selection=a.selection, direction=study.direction).signal
        se = np.sqrt(np.einsum("tdd->td", est.cov))
        state = InterimState(n=np.stack([(arm[:, :n_k] == d).sum(axis=1) for d in range(D)], 1),
                             mean=est.est, se=se, benefit=benefit,
                             max_t=np.where(est.valid, t.max(axis=1), np.inf),
                             reject=reject & est.valid, active=active)
        dec = design.adapt(state)
        ok = going & est.valid           # an interim without estimates changes nothing
        n_interims += going
        eff, fut = ok & dec.stop_efficacy, ok & dec.stop_futility
        stopped[eff], stopped[fut] = 1, 2
        if times is None:                           # enrolled when the decision is taken
            m_k = np.full(T, min(n_k + pipeline, N))
        else:           # sites have their own chairs: the n_k-th enrolled need not be dosed last
            enrolled, dosed = times
            look = dosed[:, :n_k].max(axis=1) + study.endpoint.visit_h
            m_k = np.maximum((enrolled <= look[:, None]).sum(axis=1), n_k)
        n_enrolled = np.where(eff | fut, m_k, n_enrolled)
        going &= ~(eff | fut)
        active = np.where(ok[:, None], dec.active, active)
        kept = np.where(active, ratios, 0.0)
        probs = np.where(ok[:, None], dec.probs, kept / kept.sum(axis=1, keepdims=True))
        lo = int(m_k.min())
        if lo < N:                  # each patient's arm from their own uniform, from m_k on
            new = design.allocate_stage(probs, design.uniforms_from(u, lo))
            later = np.arange(lo, N)[None, :] >= m_k[:, None]
            arm[:, lo:] = np.where(later, new, arm[:, lo:])
    dropped = design.initial_active(T) & ~active
    return arm, n_enrolled, n_interims, stopped, dropped
