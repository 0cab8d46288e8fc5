"""Safety outcomes of phase II patients: the study's transient adverse effects
(:mod:`trialsim.response.safety`) per patient from their exposures and normals, and event
rates per arm."""
from __future__ import annotations

import numpy as np

from trialsim.phase2.study import Phase2Study
from trialsim.population.distributions import normal_quantile
from trialsim.rng import stream_uniforms


def safety_outcomes(study: Phase2Study, z: np.ndarray, exposures: dict, covariates: dict):
    """``(event, peak, resolved_h)``, each (..., S), of the study's safety measures for
    patients with normals ``z`` (..., n_safety_z) and exposures/covariates (...) — see
    :mod:`trialsim.response.safety`."""
    outs = []
    j = 0
    for m in study.safety.values():
        conc = np.stack([exposures[k] for k in m.metric_names()], axis=-1)
        v = m.values(conc, z[..., j:j + m.n_z],
                     covariates[m.baseline] if m.baseline is not None else None)
        outs.append(m.summarise(v))
        j += m.n_z
    shape = z.shape[:-1] + (0,)
    if not outs:
        return np.zeros(shape, bool), np.zeros(shape), np.zeros(shape)
    return tuple(np.stack([o[i] for o in outs], axis=-1) for i in range(3))


def safety_normals(study: Phase2Study, seed: int, scenario: int, trials: np.ndarray,
                   N: int) -> np.ndarray:
    """Standard normals (T, N, n_safety_z) of the safety measures, from their own stream."""
    K = study.n_safety_z
    u = stream_uniforms(seed, scenario, trials, "safety", N * K).reshape(len(trials), N, K)
    return normal_quantile(u)


def arm_rates(flag: np.ndarray, arm: np.ndarray, D: int) -> np.ndarray:
    """Per trial and arm the proportion of patients with ``flag`` (T, N, S) → (T, S, D)
    (patients with arm −1, never enrolled, left out)."""
    T, N, S = flag.shape
    on = (arm >= 0).ravel().astype(float)
    cell = (np.arange(T)[:, None] * D + np.maximum(arm, 0)).ravel()
    n = np.bincount(cell, weights=on, minlength=T * D).reshape(T, D)
    out = np.empty((T, S, D))
    for s in range(S):
        k = np.bincount(cell, weights=flag[..., s].ravel() * on, minlength=T * D)
        out[:, s] = k.reshape(T, D) / np.maximum(n, 1)
    return out
