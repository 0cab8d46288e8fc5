"""numba right-hand sides of the built-in ODE models with effect compartments.

Each wraps the plain right-hand side of :mod:`._kernels` (which reads only its own states
and parameters) and appends one effect-site state per analyte, in **mg/L**:
``dCe/dt = ke0·(C − Ce)`` with ``C`` the analyte's plasma concentration (mg/L) and ``ke0``
(1/h) the last parameter.  The effect site holds no mass (it does not drain the plasma).
Parameter order: the model's ``param_names`` followed by ``ke0``.
"""
from __future__ import annotations

from numba import njit

from trialsim.pk.ode._kernels import mm1_rhs, mm2_rhs, parent_metabolite_rhs


@njit(cache=True)
def mm1_effect_rhs(t, y, p, dydt):
    """y = [depot, central (mg), parent_effect (mg/L)];
    p = [V1, Vmax, Km, ka, F, tlag, ke0 (1/h)] (see :func:`mm1_rhs`)."""
    mm1_rhs(t, y, p, dydt)
    dydt[2] = p[6] * (y[1] / p[0] - y[2])


@njit(cache=True)
def mm2_effect_rhs(t, y, p, dydt):
    """y = [depot, central, peripheral (mg), parent_effect (mg/L)];
    p = [V1, Q2, V2, Vmax, Km, ka, F, tlag, ke0 (1/h)] (see :func:`mm2_rhs`)."""
    mm2_rhs(t, y, p, dydt)
    dydt[3] = p[8] * (y[1] / p[0] - y[3])


@njit(cache=True)
def parent_metabolite_effect_rhs(t, y, p, dydt):
    """y = [depot, central, periph2, periph3, met_central, met_periph (mg),
    parent_effect, metabolite_effect (mg/L)]; p = the 15 parameters of
    :func:`parent_metabolite_rhs` + [ke0 (1/h)], one ke0 for both analytes."""
    parent_metabolite_rhs(t, y, p, dydt)
    dydt[6] = p[15] * (y[1] / p[1] - y[6])
    dydt[7] = p[15] * (y[4] / p[8] - y[7])
