"""numba kernels of the response models: indirect-response right-hand sides.

PD parameter block (appended to the PK parameters in a joint model, or alone for a response
driven by a concentration grid): ``[kin, kout, emax, ec50, hill, model_code]`` with
``model_code`` 1–4 for Jusko models I–IV.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from trialsim.pk.ode import RHS_SIG

N_PD_PARAMS = 6
GRID_OFFSET = N_PD_PARAMS + 1   # grid rhs: p = [pd block..., m, t_1..t_m, c_1..c_m]


@njit(cache=True)
def hill_effect(c, emax, ec50, hill):
    """``emax·C^h / (EC50^h + C^h)``; 0 for ``C <= 0`` (tiny negative solver noise)."""
    if c <= 0.0:
        return 0.0
    x = (c / ec50) ** hill
    return emax * x / (1.0 + x)


@njit(cache=True)
def indirect_drdt(code, c, r, kin, kout, emax, ec50, hill):
    """dR/dt of Jusko indirect response model ``code`` (1: inhibition of kin, 2: inhibition
    of kout, 3: stimulation of kin, 4: stimulation of kout) at concentration ``c``."""
    e = hill_effect(c, emax, ec50, hill)
    if code == 1:
        return kin * (1.0 - e) - kout * r
    if code == 2:
        return kin - kout * (1.0 - e) * r
    if code == 3:
        return kin * (1.0 + e) - kout * r
    return kin - kout * (1.0 + e) * r


@njit(cache=True)
def indirect_grid_rhs(t, y, p, dydt):
    """Response alone, C(t) linearly interpolated on a grid stored in ``p`` after the PD
    block: ``p = [kin, kout, emax, ec50, hill, code, m, t_1..t_m, c_1..c_m]``."""
    m = int(p[N_PD_PARAMS])
    c = np.interp(t, p[GRID_OFFSET:GRID_OFFSET + m], p[GRID_OFFSET + m:GRID_OFFSET + 2 * m])
    dydt[0] = indirect_drdt(int(p[5]), c, y[0], p[0], p[1], p[2], p[3], p[4])


@lru_cache(maxsize=64)
def make_joint_rhs(pk_rhs, n_pk_states: int, n_pk_params: int, obs: int, vidx: int):
    """A numba RHS for PK states ``y[:n_pk_states]`` plus one response state after them.

    ``C = y[obs] / p[vidx]`` (``vidx = -1``: the amount) drives the response; the PD block
    follows the PK parameters in ``p``.  Compiled once per PK model and observable (a
    closure: not cached on disk, about a second to compile).
    """
    ns, q = n_pk_states, n_pk_params

    @njit(RHS_SIG)
    def rhs(t, y, p, dydt):
        pk_rhs(t, y[:ns], p[:q], dydt[:ns])
        v = p[vidx] if vidx >= 0 else 1.0
        dydt[ns] = indirect_drdt(int(p[q + 5]), y[obs] / v, y[ns], p[q], p[q + 1], p[q + 2],
                                 p[q + 3], p[q + 4])

    return rhs
