"""Nonlinear PK models solved numerically, and the driver that feeds them to the kernels.

Units throughout: time h, amounts mg, volumes L, clearances L/h, concentrations mg/L
(1 mg/L = 1000 ng/mL), AUC mg·h/L.

An :class:`ODESystem` is the kernel-facing bundle of one model: its numba right-hand side
``rhs(t, y, p, dydt)``, the names of its states and parameters (in the order of ``y`` and
``p``), typical parameter values, which state each dose target feeds, which parameter is the
bioavailable fraction of a target, and which (state, volume) pair gives the concentration of
each analyte.  :func:`solve`, :func:`concentration` and :func:`summarize` take a system, a
:class:`~trialsim.pk.regimen.Regimen` and per-patient parameters.  The ``@spec`` models below
build their system with ``.system()`` and offer the same three calls as methods.

Per-patient parameters are a mapping ``name -> scalar or (n,) array`` overriding the typical
values (or an ``(n, n_params)`` array in ``param_names`` order); ``dose_scale`` (n,)
multiplies every amount of the regimen (e.g. body weight for a mg/kg regimen).  With ``ke0``
(1/h) a built-in model adds one effect site (mg/L, ``dCe/dt = ke0·(C − Ce)``) per analyte,
observed as ``"parent_effect"`` (and ``"metabolite_effect"``); ``ke0`` is the last parameter.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace as _dc_replace
from typing import Any

import numpy as np
from pydantic import Field

from trialsim.pk.ode import _effect as E
from trialsim.pk.ode import _kernels as K
from trialsim.pk.parameters import PARAMETERS
from trialsim.pk.regimen import Regimen
from trialsim.pk.structure import Structure
from trialsim.registry import register
from trialsim.spec import spec

DEFAULT_RTOL = 1e-8
DEFAULT_ATOL = 1e-10   # in state units (mg)
DEFAULT_MAX_STEPS = 200_000
_STATUS = {K.TOO_MANY_STEPS: "more than max_steps steps in one dosing interval",
           K.STEP_UNDERFLOW: "step size underflow (stiff or singular right-hand side)"}


class ODESolverError(RuntimeError):
    """The adaptive solver failed for some patients."""


@dataclass(frozen=True)
class ODESystem:
    """Everything the kernels need to know about one ODE model (see the module docstring).

    ``dose_states`` maps a dose target (``"central"``/``"depot"``) to a state name;
    ``bioavailability`` and ``lag`` map a target to the name of its bioavailable-fraction and
    lag-time (h) parameters;
    ``observables`` maps an analyte to ``(state name, volume parameter name or None)``, the
    first one being the default; ``initial_state(P) -> (n, n_states)`` gives non-zero
    initial states (e.g. a PD baseline), zeros when ``None``.
    """

    rhs: Any
    state_names: tuple[str, ...]
    param_names: tuple[str, ...]
    param_values: tuple[float, ...]
    dose_states: Mapping[str, str]
    observables: Mapping[str, tuple[str, str | None]]
    bioavailability: Mapping[str, str] = field(default_factory=dict)
    initial_state: Callable[[np.ndarray], np.ndarray] | None = None
    name: str = "ode"
    lag: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.param_names) != len(self.param_values):
            raise ValueError("param_names and param_values differ in length")
        for label, names, known in (
                ("dose target state", self.dose_states.values(), self.state_names),
                ("observed state", [s for s, _ in self.observables.values()], self.state_names),
                ("volume parameter", [v for _, v in self.observables.values() if v],
                 self.param_names),
                ("bioavailability parameter", self.bioavailability.values(), self.param_names),
                ("lag-time parameter", self.lag.values(), self.param_names)):
            for nm in names:
                if nm not in known:
                    raise ValueError(f"{self.name}: unknown {label} {nm!r}; known: {known}")
        if not self.observables:
            raise ValueError(f"{self.name}: at least one observable is needed")


@dataclass(frozen=True)
class ExposureSummary:
    """Per-patient exposure over ``[0, t_end_h]``: ``cmax`` (mg/L), ``tmax`` (h), ``auc``
    (mg·h/L), arrays of shape (n,)."""

    cmax: np.ndarray
    tmax: np.ndarray
    auc: np.ndarray
    analyte: str
    t_end_h: float


def parameter_matrix(system: ODESystem, params: Any = None, n: int | None = None) -> np.ndarray:
    """Per-patient parameters, shape (n, n_params), from a mapping or an array."""
    names = system.param_names
    base = np.asarray(system.param_values, dtype=np.float64)
    if isinstance(params, np.ndarray) and params.ndim == 2:
        if params.shape[1] != len(names):
            raise ValueError(f"{system.name}: parameter array needs {len(names)} columns "
                             f"{names}, got {params.shape[1]}")
        P = np.array(params, dtype=np.float64, order="C")
    else:
        params = dict(params or {})
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"{system.name}: unknown parameter(s) {unknown}; known: {names}")
        cols = {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in params.items()}
        sizes = {c.size for c in cols.values()} | ({n} if n else set())
        size = max(sizes | {1})
        if any(s not in (1, size) for s in sizes):
            raise ValueError(f"{system.name}: per-patient arrays differ in length: "
                             f"{sorted(sizes)}")
        P = np.tile(base, (size, 1))
        for k, c in cols.items():
            P[:, names.index(k)] = c.ravel()
    if n is not None and P.shape[0] == 1 and n > 1:
        P = np.tile(P, (n, 1))
    if n is not None and P.shape[0] != n:
        raise ValueError(f"{system.name}: {P.shape[0]} parameter rows for {n} patients")
    if not np.all(np.isfinite(P)):
        raise ValueError(f"{system.name}: parameters must be finite")
    return np.ascontiguousarray(P)


def _prepare(system, regimen, params, dose_scale):
    scale = None if dose_scale is None else np.atleast_1d(np.asarray(dose_scale, np.float64))
    if scale is not None and (scale.ndim != 1 or not np.all(np.isfinite(scale))
                              or np.any(scale < 0)):
        raise ValueError("dose_scale must be a scalar or a 1-D array of finite numbers >= 0")
    P = parameter_matrix(system, params, None if scale is None or scale.size == 1 else scale.size)
    n = P.shape[0]
    scale = np.ones(n) if scale is None else np.broadcast_to(scale, (n,))
    t, a, d, code = regimen.arrays()
    targets = ("central", "depot")
    states, fidx, lidx = [], [], []
    for c in code:
        tgt = targets[c]
        if tgt not in system.dose_states:
            raise ValueError(f"{system.name}: has no {tgt!r} dose target "
                             f"(targets: {sorted(system.dose_states)})")
        states.append(system.state_names.index(system.dose_states[tgt]))
        fp, lp = system.bioavailability.get(tgt), system.lag.get(tgt)
        fidx.append(system.param_names.index(fp) if fp else -1)
        lidx.append(system.param_names.index(lp) if lp else -1)
    for lp in set(system.lag.values()):
        if np.any(P[:, system.param_names.index(lp)] < 0):
            raise ValueError(f"{system.name}: lag time {lp} must be >= 0 hours")
    amt = np.ascontiguousarray(scale[:, None] * a[None, :])
    if system.initial_state is None:
        Y0 = np.zeros((n, len(system.state_names)))
    else:
        Y0 = np.ascontiguousarray(system.initial_state(P), dtype=np.float64)
    ev = (np.ascontiguousarray(t), np.ascontiguousarray(d), amt, np.asarray(states, np.int64),
          np.asarray(fidx, np.int64), np.asarray(lidx, np.int64))
    return P, Y0, ev


def check_status(system, status):
    bad = np.flatnonzero(status)
    if bad.size:
        why = _STATUS.get(int(status[bad[0]]), "unknown failure")
        raise ODESolverError(f"{system.name}: ODE solver failed for {bad.size} patient(s) "
                             f"(first: patient {bad[0]}, {why}); raise max_steps or check "
                             "the parameters")


def as_hours(times_h) -> np.ndarray:
    tt = np.ascontiguousarray(np.atleast_1d(np.asarray(times_h, dtype=np.float64)))
    if tt.ndim != 1 or not np.all(np.isfinite(tt)) or np.any(tt < 0) or np.any(np.diff(tt) < 0):
        raise ValueError("times_h must be a sorted 1-D array of finite hours >= 0")
    return tt


def solve(system: ODESystem, regimen: Regimen, times_h, params: Any = None, *,
          dose_scale=None, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
          max_steps: int = DEFAULT_MAX_STEPS, breakpoints_h=()) -> np.ndarray:
    """States (state units) of every patient at ``times_h``: shape (n, n_times, n_states).

    ``breakpoints_h`` are extra times (h, sorted) where the right-hand side has a kink (e.g. a
    linearly interpolated input): the solver never steps across one."""
    tt = as_hours(times_h)
    bp = as_hours(breakpoints_h)
    P, Y0, ev = _prepare(system, regimen, params, dose_scale)
    out = np.empty((P.shape[0], tt.size, len(system.state_names)))
    status = np.zeros(P.shape[0], np.int64)
    if tt.size:
        K.solve_batch(system.rhs, P, Y0, *ev, bp, tt, float(rtol), float(atol),
                      int(max_steps), out, status)
    check_status(system, status)
    return out


def observable(system, analyte):
    analyte = analyte or next(iter(system.observables))
    if analyte not in system.observables:
        raise ValueError(f"{system.name}: unknown analyte {analyte!r}; "
                         f"known: {sorted(system.observables)}")
    state, vol = system.observables[analyte]
    return analyte, system.state_names.index(state), (system.param_names.index(vol) if vol else -1)


def concentration(system: ODESystem, regimen: Regimen, times_h, params: Any = None, *,
                  analyte: str | None = None, dose_scale=None, rtol: float = DEFAULT_RTOL,
                  atol: float = DEFAULT_ATOL, max_steps: int = DEFAULT_MAX_STEPS) -> np.ndarray:
    """Concentration (mg/L) of ``analyte`` at ``times_h``: shape (n, n_times)."""
    _, obs, vidx = observable(system, analyte)
    y = solve(system, regimen, times_h, params, dose_scale=dose_scale, rtol=rtol, atol=atol,
              max_steps=max_steps)
    n = y.shape[0]
    vol = parameter_matrix(system, params, n)[:, vidx] if vidx >= 0 else np.ones(n)
    return y[:, :, obs] / vol[:, None]


def summarize(system: ODESystem, regimen: Regimen, t_end_h: float, params: Any = None, *,
              analyte: str | None = None, dose_scale=None, rtol: float = DEFAULT_RTOL,
              atol: float = DEFAULT_ATOL, max_steps: int = DEFAULT_MAX_STEPS) -> ExposureSummary:
    """Cmax, Tmax and AUC(0–t_end) of ``analyte`` per patient, without storing curves."""
    if not (np.isfinite(t_end_h) and t_end_h >= 0):
        raise ValueError(f"t_end_h must be a finite number of hours >= 0, got {t_end_h}")
    name, obs, vidx = observable(system, analyte)
    P, Y0, ev = _prepare(system, regimen, params, dose_scale)
    n = P.shape[0]
    cmax, tmax, auc = np.empty(n), np.empty(n), np.empty(n)
    status = np.zeros(n, np.int64)
    K.summarize_batch(system.rhs, P, Y0, *ev, float(t_end_h), obs, vidx, float(rtol),
                      float(atol), int(max_steps), cmax, tmax, auc, status)
    check_status(system, status)
    return ExposureSummary(cmax, tmax, auc, name, float(t_end_h))


class ODEModelMixin(Structure):
    """A structure solved by the ODE engine: ``simulate``/``concentration``/``summary`` for
    any class with a ``system()`` method."""

    linear = False

    def system(self) -> ODESystem:  # pragma: no cover - overridden
        raise NotImplementedError

    def simulate(self, regimen: Regimen, times_h, params: Any = None, **kw) -> np.ndarray:
        """States at ``times_h``, shape (n, n_times, n_states); keywords as :func:`solve`."""
        return solve(self.system(), regimen, times_h, params, **kw)

    def concentration(self, regimen: Regimen, times_h, params: Any = None, **kw) -> np.ndarray:
        """Concentration (mg/L), shape (n, n_times); keywords as :func:`concentration`."""
        return concentration(self.system(), regimen, times_h, params, **kw)

    def summary(self, regimen: Regimen, t_end_h: float, params: Any = None,
                **kw) -> ExposureSummary:
        """Cmax/Tmax/AUC(0–t_end_h) per patient; keywords as :func:`summarize`."""
        return summarize(self.system(), regimen, t_end_h, params, **kw)

    def parameters(self) -> dict[str, float]:
        """Typical values of the parameters in use (units in :data:`~trialsim.pk.parameters.PARAMETERS`): unset
        optional ones (``None``) are left out, and ``F``/``tlag`` without a depot (no ``ka``)."""
        skip = ("F", "tlag") if getattr(self, "ka", None) is None else ()
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__
                if k in PARAMETERS and getattr(self, k) is not None and k not in skip}

    def replace(self, **values) -> "ODEModelMixin":
        """A copy with some typical values replaced (``KeyError`` for unknown names)."""
        known = list(self.parameter_names())
        bad = sorted(set(values) - set(known))
        if bad:
            raise KeyError(f"not parameters of this model: {bad}; known: {known}")
        return _dc_replace(self, **values)


def _system(rhs, rhs_effect, states, names, values, targets, observables, bio, name, lag, ke0):
    """An :class:`ODESystem`, with the effect sites of the module docstring when ``ke0``."""
    obs = dict(observables)
    if ke0 is not None:
        eff = tuple(f"{a}_effect" for a in observables)
        states, names, values, rhs = states + eff, names + ("ke0",), values + (ke0,), rhs_effect
        obs.update({e: (e, None) for e in eff})
    return ODESystem(rhs, states, names, values, targets, obs, bio, None, name, lag)


def _absorption(ka):
    """Dose targets, bioavailability and lag maps, and the kernel value of ka (0: no depot)."""
    if ka is None:
        return {"central": "central"}, {}, {}, 0.0
    return {"central": "central", "depot": "depot"}, {"depot": "F"}, {"depot": "tlag"}, ka


def _field(name, default=..., **kw):
    p = PARAMETERS[name]
    return Field(default, description=f"{p.meaning}, {p.unit}", **kw)


@register("pk_structure", "michaelis_menten_1cmt")
@spec
class MichaelisMenten1Cmt(ODEModelMixin):
    """One compartment, Michaelis–Menten elimination ``Vmax·C/(Km + C)``, optional
    first-order absorption (``ka``; depot doses enter with fraction ``F`` after ``tlag`` h).

    States ``[depot, central]`` (mg).  As ``Km -> inf`` with ``Vmax/Km = CL`` fixed it tends
    to the linear model with clearance ``CL``.
    """

    V1: float = _field("V1", gt=0)
    Vmax: float = _field("Vmax", gt=0)
    Km: float = _field("Km", gt=0)
    ka: float | None = _field("ka", None, gt=0)
    F: float = _field("F", 1.0, gt=0, le=1)
    tlag: float = _field("tlag", 0.0, ge=0)
    ke0: float | None = _field("ke0", None, gt=0)

    def system(self) -> ODESystem:
        targets, bio, lag, ka = _absorption(self.ka)
        return _system(K.mm1_rhs, E.mm1_effect_rhs, ("depot", "central"),
                       ("V1", "Vmax", "Km", "ka", "F", "tlag"),
                       (self.V1, self.Vmax, self.Km, ka, self.F, self.tlag), targets,
                       {"parent": ("central", "V1")}, bio, "michaelis_menten_1cmt", lag, self.ke0)


@register("pk_structure", "michaelis_menten_2cmt")
@spec
class MichaelisMenten2Cmt(ODEModelMixin):
    """Two compartments (central ``V1``, peripheral ``V2``, inter-compartmental clearance
    ``Q2``), Michaelis–Menten elimination from the central one, optional first-order
    absorption.  States ``[depot, central, peripheral]`` (mg)."""

    V1: float = _field("V1", gt=0)
    Q2: float = _field("Q2", gt=0)
    V2: float = _field("V2", gt=0)
    Vmax: float = _field("Vmax", gt=0)
    Km: float = _field("Km", gt=0)
    ka: float | None = _field("ka", None, gt=0)
    F: float = _field("F", 1.0, gt=0, le=1)
    tlag: float = _field("tlag", 0.0, ge=0)
    ke0: float | None = _field("ke0", None, gt=0)

    def system(self) -> ODESystem:
        targets, bio, lag, ka = _absorption(self.ka)
        return _system(K.mm2_rhs, E.mm2_effect_rhs, ("depot", "central", "peripheral"),
                       ("V1", "Q2", "V2", "Vmax", "Km", "ka", "F", "tlag"),
                       (self.V1, self.Q2, self.V2, self.Vmax, self.Km, ka, self.F, self.tlag),
                       targets, {"parent": ("central", "V1")}, bio, "michaelis_menten_2cmt", lag,
                       self.ke0)


PARENT_METABOLITE_STATES = ("depot", "central", "periph2", "periph3", "met_central", "met_periph")
PARENT_METABOLITE_PARAMS = ("CL", "V1", "Q2", "V2", "Q3", "V3", "fm", "CLm", "Vm", "Qm", "Vm2",
                            "mw_ratio", "ka", "F", "tlag")


@register("pk_structure", "parent_metabolite")
@spec
class ParentMetabolite(ODEModelMixin):
    """Linear 2- or 3-cmt parent whose clearance ``CL`` forms a metabolite with fraction
    ``fm``; the metabolite is linear 1- or 2-cmt with its own ``CLm``/``Vm``.

    The metabolite is formed at ``fm·mw_ratio·CL·C_parent`` mg/h, ``mw_ratio`` being
    MW(metabolite)/MW(parent) so metabolite amounts are mg of metabolite (use 1 for molar
    mass balance checks).  Leave ``Q3``/``V3`` (third parent compartment) or ``Qm``/``Vm2``
    (metabolite peripheral) as ``None`` for the smaller structures.  Analytes ``"parent"``
    (default) and ``"metabolite"``.  No first-pass metabolite formation: a depot dose reaches
    the parent's central compartment (fraction ``F``) before any is metabolised.
    """

    CL: float = _field("CL", gt=0)
    V1: float = _field("V1", gt=0)
    Q2: float = _field("Q2", gt=0)
    V2: float = _field("V2", gt=0)
    CLm: float = _field("CLm", gt=0)
    Vm: float = _field("Vm", gt=0)
    fm: float = _field("fm", 1.0, ge=0, le=1)
    Q3: float | None = _field("Q3", None, gt=0)
    V3: float | None = _field("V3", None, gt=0)
    Qm: float | None = _field("Qm", None, gt=0)
    Vm2: float | None = _field("Vm2", None, gt=0)
    mw_ratio: float = _field("mw_ratio", 1.0, gt=0)
    ka: float | None = _field("ka", None, gt=0)
    F: float = _field("F", 1.0, gt=0, le=1)
    tlag: float = _field("tlag", 0.0, ge=0)
    ke0: float | None = _field("ke0", None, gt=0)

    def __post_init__(self) -> None:
        for a, b in (("Q3", "V3"), ("Qm", "Vm2")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ValueError(f"give both {a} and {b} or neither")

    def system(self) -> ODESystem:
        targets, bio, lag, ka = _absorption(self.ka)
        vals = (self.CL, self.V1, self.Q2, self.V2, self.Q3 or 0.0, self.V3 or 1.0, self.fm,
                self.CLm, self.Vm, self.Qm or 0.0, self.Vm2 or 1.0, self.mw_ratio, ka, self.F,
                self.tlag)
        return _system(K.parent_metabolite_rhs, E.parent_metabolite_effect_rhs,
                       PARENT_METABOLITE_STATES, PARENT_METABOLITE_PARAMS, vals, targets,
                       {"parent": ("central", "V1"), "metabolite": ("met_central", "Vm")},
                       bio, "parent_metabolite", lag, self.ke0)

    @classmethod
    def ketamine_norketamine(cls, weight_kg: float = 70.0) -> "ParentMetabolite":
        """S-ketamine → S-norketamine (docs/parameters.md §2.2, §6 item 2; tags [V-code]).

        Parent: S-FANTA 3-cmt (Fanta 2015 as fixed in Otto 2021): V1 133 L, CL 95.2 L/h,
        Vp1 187 L / Q1 23.2 L/h, Vp2 98.8 L / Q2 157 L/h at 70 kg; V1 ∝ (WT/70), CL ∝
        (WT/70)^0.75, peripheral terms unscaled (Otto 2021).  Metabolite: S-norketamine
        (Otto 2021 re-estimate, all S-ketamine CL forms norketamine, fm = 1): V 98.6 L,
        CL 57.7 L/h, Vp 160 L, Q 42.8 L/h, left unscaled by weight (docs/parameters.md gives no
        allometry for it).  mw_ratio = 223.70 / 237.73 g/mol (norketamine / ketamine base).
        docs/parameters.md (§2.5) applies these S-ketamine values to the total racemate as one
        option; that use is a scenario assumption.
        """
        w = weight_kg / 70.0
        return cls(CL=95.2 * w**0.75, V1=133.0 * w, Q2=23.2, V2=187.0, Q3=157.0, V3=98.8,
                   fm=1.0, CLm=57.7, Vm=98.6, Qm=42.8, Vm2=160.0, mw_ratio=223.70 / 237.73)


@spec
class CustomODEModel(ODEModelMixin):
    """A user-written model: any numba function ``rhs(t, y, p, dydt)``.

    ``rhs`` must assign **every** entry of ``dydt`` (state units per hour) from ``t`` (h),
    the states ``y`` and the parameters ``p`` (ordered as ``params``), and must not add dose
    input (the solver does).  ``dose_targets`` maps ``"central"``/``"depot"`` to a state;
    ``observed`` is the state whose concentration is reported, ``volume`` the parameter it is
    divided by (``None``: report the amount); ``bioavailability`` and ``lag`` map a target to
    a fraction and a lag-time (h) parameter; ``initial`` gives non-zero initial amounts.
    Example (linear 1-cmt, oral)::

        from numba import njit
        from trialsim.pk.ode import RHS_SIG, CustomODEModel

        @njit(RHS_SIG, cache=True)          # plain @njit works too
        def oral_1cmt(t, y, p, dydt):       # y = [gut, central] mg; p = [ka, CL, V1, F]
            dydt[0] = -p[0] * y[0]
            dydt[1] = p[0] * y[0] - p[1] / p[2] * y[1]

        model = CustomODEModel(rhs=oral_1cmt, states=("gut", "central"),
                               params={"ka": 1.0, "CL": 5.0, "V1": 50.0, "F": 0.6},
                               dose_targets={"depot": "gut", "central": "central"},
                               observed="central", volume="V1",
                               bioavailability={"depot": "F"})
        c = model.concentration(Regimen.single(100.0, target="depot"), [0.5, 1, 2],
                                {"CL": [4.0, 6.0]})       # shape (2, 3), mg/L
    """

    rhs: Any
    states: tuple[str, ...]
    params: dict[str, float]
    observed: str
    volume: str | None = None
    dose_targets: dict[str, str] | None = None
    bioavailability: dict[str, str] = Field(default_factory=dict)
    lag: dict[str, str] = Field(default_factory=dict)
    initial: dict[str, float] = Field(default_factory=dict)
    name: str = "custom_ode"

    def __post_init__(self) -> None:
        if not hasattr(self.rhs, "py_func"):
            raise TypeError("rhs must be a numba.njit function rhs(t, y, p, dydt)")
        for s in self.initial:
            if s not in self.states:
                raise ValueError(f"initial: unknown state {s!r}; known: {self.states}")
        self.system()  # validates names

    def parameters(self) -> dict[str, float]:
        """Typical values of ``params`` (units as the user's right-hand side expects)."""
        return {k: float(v) for k, v in self.params.items()}

    def replace(self, **values) -> "CustomODEModel":
        """A copy with some of ``params`` replaced (``KeyError`` for unknown names)."""
        bad = sorted(set(values) - set(self.params))
        if bad:
            raise KeyError(f"not parameters of this model: {bad}; known: {list(self.params)}")
        return _dc_replace(self, params={**self.params, **values})

    def system(self) -> ODESystem:
        targets = self.dose_targets or {"central": self.states[0]}
        init = None
        if self.initial:
            row = np.array([self.initial.get(s, 0.0) for s in self.states])
            init = lambda P: np.tile(row, (P.shape[0], 1))  # noqa: E731
        return ODESystem(self.rhs, tuple(self.states), tuple(self.params),
                         tuple(float(v) for v in self.params.values()), targets,
                         {"parent": (self.observed, self.volume)}, dict(self.bioavailability),
                         init, self.name, dict(self.lag))
