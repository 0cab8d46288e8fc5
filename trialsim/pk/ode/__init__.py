"""Nonlinear PK (and joint PK/PD) by numerical integration.

A numba Dormand–Prince 5(4) solver with exact bolus jumps and piecewise-constant infusion
input (:mod:`._kernels`), built-in models (:mod:`.models`) and SciPy twins for tests
(:mod:`._reference`).  Units: h, mg, L, L/h, mg/L.

Writing your own model: see :class:`CustomODEModel`; the right-hand side is any numba
function with the signature :data:`RHS_SIG`, ``rhs(t, y, p, dydt) -> None``.
"""
from trialsim.pk.ode._kernels import RHS_SIG, RHS_TYPE
from trialsim.pk.ode.models import (
    CustomODEModel,
    ExposureSummary,
    MichaelisMenten1Cmt,
    MichaelisMenten2Cmt,
    ODEModelMixin,
    ODESolverError,
    ODESystem,
    ParentMetabolite,
    concentration,
    parameter_matrix,
    solve,
    summarize,
)

__all__ = [
    "RHS_SIG", "RHS_TYPE", "CustomODEModel", "ExposureSummary", "MichaelisMenten1Cmt",
    "MichaelisMenten2Cmt", "ODEModelMixin", "ODESolverError", "ODESystem", "ParentMetabolite",
    "concentration", "parameter_matrix", "solve", "summarize",
]
