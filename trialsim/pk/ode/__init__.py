"""The ODE engine: nonlinear PK (and joint PK/PD) by numerical integration.

A numba Dormand–Prince 5(4) solver with exact bolus jumps and piecewise-constant infusion
input (:mod:`._kernels`), built-in models (:mod:`.models`) and their exposure metrics for the
simulator (:mod:`.metrics`).  Units: h, mg, L, L/h, mg/L.  Slow SciPy twins used by the tests
live in the repository's ``tests/reference/pk_ode.py``.

Writing your own model: see :class:`CustomODEModel`; the right-hand side is any numba
function with the signature :data:`RHS_SIG`, ``rhs(t, y, p, dydt) -> None``.
"""
from trialsim.pk.ode._kernels import RHS_SIG, RHS_TYPE
from trialsim.pk.ode.models import (
    DEFAULT_ATOL,
    DEFAULT_MAX_STEPS,
    DEFAULT_RTOL,
    CustomODEModel,
    ExposureSummary,
    MichaelisMenten1Cmt,
    MichaelisMenten2Cmt,
    ODEModelMixin,
    ODESolverError,
    ODESystem,
    ParentMetabolite,
    as_hours,
    check_status,
    concentration,
    observable,
    parameter_matrix,
    solve,
    summarize,
)

__all__ = [
    "RHS_SIG", "RHS_TYPE", "DEFAULT_ATOL", "DEFAULT_MAX_STEPS", "DEFAULT_RTOL",
    "CustomODEModel", "ExposureSummary", "MichaelisMenten1Cmt", "MichaelisMenten2Cmt",
    "ODEModelMixin", "ODESolverError", "ODESystem", "ParentMetabolite", "as_hours",
    "check_status", "concentration", "observable", "parameter_matrix", "solve", "summarize",
]
