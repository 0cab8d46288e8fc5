"""The resolved PK specification (:class:`PKSpec`) and its construction from a YAML mapping.

A ``pk:`` mapping names a library model and overrides fields one by one, or states a model
fully::

    model: ketamine_domino               # optional: a name from trialsim.pk.library.available()
    structure: mammillary                # explicit models: mammillary (default) | hepatoportal_nasal
    route: {type: infusion, duration_h: 0.667}      # bolus | infusion | first_order (oral,
                                         # subcutaneous, intranasal) | devices | schedule; ii_h, addl
    iiv: {CL: 0.16, V1: 0.29}            # CVs; or {cv: {...}, correlation: {CL: {V1: 0.5}}};
                                         # or {variance: {...}, covariance: {...}};
                                         # or {names: [CL, V1], omega: [[..], [..]]} (log scale)
    allometry: {CL: 0.75, V1: 1}         # or {exponents: {...}, reference_kg: 70}; false = none
    covariate_effects:                   # replaces the library's list when given
      - {type: categorical, covariate: sex, parameter: CL, factors: {female: 0.8}, levels: [female, male]}
      - {type: linear, covariate: age_years, parameter: Qh, slope: -2.19, above: 60}
    residual: {proportional: 0.2, additive: 1.0}    # ng/mL; or exponential; null = none
    horizon_h: 24                        # metrics over [0, horizon_h]
    grid_step_h: 0.0833                  # internal grid of the streamed metrics (linear models)
    CL: 85.0                             # any model parameter (see trialsim.pk.models.PARAMETERS)
    ke0: olofsen_2022_ke0                # a number (1/h) or a named PD constant

Nonlinear models, solved numerically per dose level (:mod:`trialsim.pk.ode`), take the same
route, iiv, allometry, covariate_effects, residual, horizon_h and ke0 keys::

    structure: michaelis_menten_1cmt     # V1 (L), Vmax (mg/h), Km (mg/L); [ka (1/h), F, tlag (h)]
    structure: michaelis_menten_2cmt     # V1, Q2 (L/h), V2 (L), Vmax, Km; [ka, F, tlag]
    structure: parent_metabolite         # CL (L/h), V1, Q2, V2, CLm (L/h), Vm (L); [Q3, V3,
                                         # Qm, Vm2, fm (0-1, default 1), mw_ratio, ka, F, tlag]
    analyte: parent                      # what the metrics describe: parent | metabolite
    solver: {rtol: 1.0e-8, atol: 1.0e-10, max_steps: 200000}   # atol in mg (effect site: mg/L)

or a library ODE model (``model: s_ketamine_norketamine_otto``).  Their metrics: cmax, tmax,
auc, auc:<h>, c_at:<h>, and with ke0 ce_max, ce_tmax, ce_at:<h>.

Errors raise :class:`~trialsim.errors.ConfigError` with the path inside this mapping.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, ValidationError

from trialsim.errors import ConfigError
from trialsim.pk import library
from trialsim.pk.models import (PARAMETERS, STRUCTURES, Clearances, HepatoPortalNasal,
                                Mammillary, MicroConstants)
from trialsim.pk.ode.metrics import SolverOptions, analytes, is_ode
from trialsim.pk.ode.models import (ODE_PARAMETERS, CustomODEModel, MichaelisMenten1Cmt,
                                    MichaelisMenten2Cmt, ParentMetabolite)
from trialsim.pk.regimen import ROUTES, Bolus, Devices, FirstOrder, Infusion, Schedule
from trialsim.pk.variability import (Allometry, CategoricalEffect, LinearEffect, Omega,
                                     ResidualError, check_targets)
from trialsim.spec import spec

Pos = Annotated[float, Field(gt=0)]

#: Nonlinear structures (solved numerically), by YAML name.
ODE_STRUCTURES = {"michaelis_menten_1cmt": MichaelisMenten1Cmt,
                  "michaelis_menten_2cmt": MichaelisMenten2Cmt, "parent_metabolite": ParentMetabolite}
#: Unit of every parameter name a ``pk:`` mapping may set (linear and nonlinear models).
UNITS = {**{k: u for k, (u, _) in ODE_PARAMETERS.items()}, **{k: p.unit for k, p in PARAMETERS.items()}}


@spec
class PKSpec:
    """A resolved PK model: structure with typical values, route template, IIV (``omega``,
    random effects named ``eta_names``), allometry, covariate effects, residual error, and the
    window of the exposure metrics (``horizon_h``, internal grid ``grid_step_h`` of the linear
    engine).  ODE structures only: ``analyte`` the metrics describe (None: the model's first,
    ``parent``) and the ``solver`` tolerances."""

    structure: (Mammillary | HepatoPortalNasal | MichaelisMenten1Cmt | MichaelisMenten2Cmt
                | ParentMetabolite | CustomODEModel)
    route: Bolus | Infusion | FirstOrder | Devices | Schedule
    omega: Omega = Omega()
    allometry: Allometry | None = None
    effects: tuple[CategoricalEffect | LinearEffect, ...] = ()
    residual: ResidualError | None = None
    horizon_h: Pos = 24.0
    grid_step_h: Pos = 1.0 / 12.0
    name: str | None = None
    analyte: str | None = None
    solver: SolverOptions = SolverOptions()

    def __post_init__(self):
        check_targets(self.structure.parameters(), self.omega, self.allometry, self.effects)
        if isinstance(self.structure, (Mammillary, *ODE_STRUCTURES.values())) and self.structure.ka is None:
            reg = self.route.regimen(self.route.device_mg if isinstance(self.route, Devices) else 1.0)
            if any(e.target == "depot" for e in reg.events):
                raise ValueError(f"route {type(self.route).__name__} puts doses in a depot: the model needs ka")
        if self.analyte is not None:
            known = analytes(self.structure) if is_ode(self.structure) else ()
            if self.analyte not in known:
                raise ValueError(f"analyte {self.analyte!r}: " + (f"known: {', '.join(known)}" if known else
                                 "a linear model describes its one drug (analytes belong to ODE structures)"))

    @property
    def n_eta(self) -> int:
        return self.omega.n

    @property
    def eta_names(self) -> tuple[str, ...]:
        return self.omega.names


TOP_KEYS = ("model", "structure", "route", "iiv", "allometry", "covariate_effects", "residual",
            "horizon_h", "grid_step_h", "analyte", "solver")


def from_library(name: str, **overrides) -> PKSpec:
    """A library model as a :class:`PKSpec` (overrides as in a YAML mapping)."""
    return from_config({"model": name, **overrides})


def from_config(mapping: Mapping) -> PKSpec:
    """Build a :class:`PKSpec` from a ``pk:`` mapping (see the module docstring)."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"expected a mapping describing a PK model, got {type(mapping).__name__}")
    for k in mapping:
        if k not in TOP_KEYS and k not in UNITS:
            raise ConfigError(f"unknown key; expected one of {', '.join(TOP_KEYS)} or a model "
                              f"parameter ({', '.join(UNITS)})", (k,))
    entry = None
    if "model" in mapping:
        name = mapping["model"]
        known = library.available()
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"unknown PK model {name!r}; known models: {', '.join(known)}", ("model",))
        entry = library.entry(name)
        if "structure" in mapping:
            raise ConfigError("give either a library model or an explicit structure, not both", ("structure",))
    values = {k: _param_value(k, v) for k, v in mapping.items() if k in UNITS}
    structure = _structure(entry, mapping.get("structure", "mammillary"), values)
    params = structure.parameters()
    if "route" in mapping:
        route = _route(mapping["route"], ("route",))
    elif entry is not None:
        route = entry.route
    else:
        raise ConfigError("an explicit PK model needs a route, e.g. {type: infusion, duration_h: 0.667}",
                          ("route",))
    base = entry.omega if entry else Omega()
    omega = _omega(mapping["iiv"], ("iiv",), params, base) if "iiv" in mapping else base
    allo = _allometry(mapping["allometry"], params) if "allometry" in mapping else (entry and entry.allometry)
    effects = (_effects(mapping["covariate_effects"], params) if "covariate_effects" in mapping
               else (entry.effects if entry else ()))
    if "residual" not in mapping:
        residual = entry.residual if entry else None
    elif mapping["residual"] is None:
        residual = None
    else:
        residual = _build(ResidualError, _mapping(mapping["residual"], ("residual",)), ("residual",))
    kw = dict(structure=structure, route=route, omega=omega, allometry=allo or None, effects=tuple(effects),
              residual=residual, name=entry.name if entry else None)
    for k in ("horizon_h", "grid_step_h"):
        if k in mapping:
            kw[k] = _positive(mapping[k], (k,))
    for k in ("analyte", "solver"):
        if k in mapping and not is_ode(structure):
            raise ConfigError(f"{k} applies to the ODE structures ({', '.join(ODE_STRUCTURES)}), "
                              f"not to a linear {type(structure).__name__} model", (k,))
    if "analyte" in mapping:
        known = analytes(structure)
        if mapping["analyte"] not in known:
            raise ConfigError(f"unknown analyte {mapping['analyte']!r}; known: {', '.join(known)}", ("analyte",))
        kw["analyte"] = mapping["analyte"]
    if "solver" in mapping:
        kw["solver"] = _build(SolverOptions, _mapping(mapping["solver"], ("solver",),
                                                      "{rtol: ..., atol: ..., max_steps: ...}"), ("solver",))
    try:
        return PKSpec(**kw)
    except ValidationError as e:
        err = _from_validation(e, ())
        raise ConfigError(err.message, ("route",) if err.message.startswith("route") else err.path) from None


# ----------------------------------------------------------------- helpers
def _number(v, path) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"expected a finite number, got {v!r}", path)
    return float(v)


def _positive(v, path) -> float:
    x = _number(v, path)
    if not x > 0:
        raise ConfigError(f"expected a positive number, got {v!r}", path)
    return x


def _mapping(v, path, what="a mapping") -> Mapping:
    if not isinstance(v, Mapping):
        raise ConfigError(f"expected {what}, got {v!r}", path)
    return v


def _param_value(k, v) -> float:
    if k == "ke0" and isinstance(v, str):
        try:
            c = library.pd_constant(v)
        except KeyError as e:
            raise ConfigError(e.args[0], (k,)) from None
        if c.unit != "1/h":
            raise ConfigError(f"{v} is in {c.unit}, not a rate constant (1/h)", (k,))
        return c.value
    x = _number(v, (k,))
    if x < 0 or (x == 0 and k not in ("tlag", "Dsw", "fm")):
        raise ConfigError(f"expected a positive number ({UNITS[k]}) for {k}, got {v!r}", (k,))
    return x


def _from_validation(e: ValidationError, path: tuple) -> ConfigError:
    err = e.errors()[0]
    loc = tuple(x for x in err.get("loc", ()) if x != "__root__")
    msg = err.get("msg", str(e))
    if err.get("type") == "unexpected_keyword_argument":
        msg = "unknown key"
    return ConfigError(msg.removeprefix("Value error, "), path + loc)


def _build(cls, kwargs: Mapping, path: tuple):
    try:
        return cls(**kwargs)
    except ValidationError as e:
        raise _from_validation(e, path) from None
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e), path) from None


def _structure(entry, kind, values):
    if entry is not None:
        try:
            return entry.structure.replace(**values)
        except KeyError as e:
            bad = next(k for k in values if k not in entry.structure.parameters()
                       and k not in type(entry.structure).__dataclass_fields__
                       and k not in getattr(entry.structure, "_own", ()))
            raise ConfigError(f"{bad} is not a parameter of {entry.name} ({e.args[0].split('; ')[-1]})",
                              (bad,)) from None
        except ValidationError as e:
            raise _from_validation(e, ()) from None
        except ValueError as e:
            raise ConfigError(str(e), ()) from None
    if kind in ODE_STRUCTURES:
        return _ode_structure(kind, values)
    if kind not in STRUCTURES:
        raise ConfigError(f"unknown structure {kind!r}; known: {', '.join([*STRUCTURES, *ODE_STRUCTURES])}",
                          ("structure",))
    for k in values:
        if k not in PARAMETERS:
            raise ConfigError(f"{k} is a parameter of the nonlinear structures: set structure to one of "
                              f"{', '.join(ODE_STRUCTURES)}", (k,))
    if kind == "hepatoportal_nasal":
        return _build(HepatoPortalNasal, values, ())
    own = {k: v for k, v in values.items() if k in Mammillary._own}
    disp = {k: v for k, v in values.items() if k not in Mammillary._own}
    if "CL" in disp:
        cls = Clearances
    elif "k10" in disp:
        cls = MicroConstants
    else:
        raise ConfigError("an explicit model needs CL and V1 (clearances: Q2, V2, Q3, V3 for more "
                          "compartments) or V1 and k10 (micro-constants: k12, k21, k13, k31), or "
                          f"a library model: {', '.join(library.available())}")
    for k in disp:
        if k not in cls.__dataclass_fields__:
            raise ConfigError(f"{k} does not belong to a {cls.__name__} model "
                              f"({', '.join(cls.__dataclass_fields__)})", (k,))
    return Mammillary(disposition=_build(cls, disp, ()), **own)


def _ode_structure(kind, values):
    cls = ODE_STRUCTURES[kind]
    fields = [k for k in cls.__dataclass_fields__ if k in ODE_PARAMETERS]
    for k in values:
        if k not in fields:
            raise ConfigError(f"{k} is not a parameter of a {kind} model ({', '.join(fields)})", (k,))
    try:
        return cls(**values)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(x for x in err.get("loc", ()) if x != "__root__")
        if err.get("type") == "missing" and loc:
            unit, meaning = ODE_PARAMETERS[loc[0]]
            raise ConfigError(f"a {kind} model needs {loc[0]} ({meaning}, {unit})", loc) from None
        raise _from_validation(e, ()) from None


def _route(node, path):
    node = _mapping(node, path, "a route mapping such as {type: infusion, duration_h: 0.667}")
    kind = node.get("type")
    if kind not in ROUTES:
        raise ConfigError(f"unknown route type {kind!r}; known: {', '.join(ROUTES)}", path + ("type",))
    return _build(ROUTES[kind], {k: v for k, v in node.items() if k != "type"}, path)


def _check_names(names, params, path):
    for nm in names:
        if nm not in params:
            raise ConfigError(f"{nm!r} is not a parameter of the model; known: {', '.join(params)}",
                              path + (nm,))


def _omega(node, path, params, base: Omega) -> Omega:
    if node is None:
        return Omega()
    node = _mapping(node, path, "CVs by parameter, or cv/correlation, variance/covariance or names/omega")
    keys = set(node)
    base_scales = {n: base.scale(n) for n in base.names}
    if "omega" in keys or "names" in keys:
        for k in keys - {"omega", "names", "scales"}:
            raise ConfigError("unknown key; expected names, omega, scales", path + (k,))
        names = node.get("names")
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise ConfigError("expected a list of parameter names", path + ("names",))
        for i, nm in enumerate(names):
            if nm not in params:
                raise ConfigError(f"{nm!r} is not a parameter of the model; known: {', '.join(params)}",
                                  path + ("names", i))
        m = node.get("omega")
        if not isinstance(m, list) or not all(isinstance(r, list) for r in m):
            raise ConfigError("expected a square matrix (list of rows) of log-scale variances/covariances",
                              path + ("omega",))
        rows = tuple(tuple(_number(x, path + ("omega", i, j)) for j, x in enumerate(r)) for i, r in enumerate(m))
        scales = node.get("scales", {n: base_scales.get(n, "log") for n in names})
        return _omega_build(lambda: Omega(tuple(names), rows, tuple(scales.get(n, "log") for n in names)),
                            path + ("omega",))
    if keys & {"cv", "correlation"}:
        for k in keys - {"cv", "correlation", "scales"}:
            raise ConfigError("unknown key; expected cv, correlation", path + (k,))
        cvs = _mapping(node.get("cv"), path + ("cv",), "CVs by parameter name")
        return _from_cvs(cvs, node.get("correlation") or {}, path, ("cv",), params, base_scales)
    if keys & {"variance", "covariance"}:
        for k in keys - {"variance", "covariance", "scales"}:
            raise ConfigError("unknown key; expected variance, covariance", path + (k,))
        var = _mapping(node.get("variance"), path + ("variance",), "variances by parameter name")
        _check_names(var, params, path + ("variance",))
        v = {k: _number(x, path + ("variance", k)) for k, x in var.items()}
        cov = _pairs(node.get("covariance") or {}, var, path + ("covariance",), _number)
        scales = node.get("scales", {n: base_scales[n] for n in var if n in base_scales})
        return _omega_build(lambda: Omega.from_variances(v, cov, scales), path + ("variance",))
    return _from_cvs(node, {}, path, (), params, base_scales)


def _from_cvs(cvs, corr, path, sub, params, base_scales):
    _check_names(cvs, params, path + sub)
    cv = {}
    for k, x in cvs.items():
        cv[k] = _number(x, path + sub + (k,))
        if cv[k] < 0:
            raise ConfigError(f"expected a CV >= 0 (a fraction, 0.3 = 30%), got {x!r}", path + sub + (k,))
        if base_scales.get(k) == "logit":
            raise ConfigError(f"{k} has a logit-scale random effect: give its variance with "
                              f"iiv: {{variance: {{{k}: ...}}}}", path + sub + (k,))
    pairs = _pairs(corr, cv, path + ("correlation",), _number)
    for (a, b), r in pairs.items():
        if not -1 < r < 1:
            raise ConfigError(f"expected a correlation in (-1, 1), got {r}", path + ("correlation", a, b))
    return _omega_build(lambda: Omega.from_cv(cv, pairs), path)


def _pairs(node, names, path, conv) -> dict:
    node = _mapping(node, path, "a mapping name: {other name: value}")
    out = {}
    for a, inner in node.items():
        inner = _mapping(inner, path + (a,), "a mapping other name: value")
        for b, x in inner.items():
            if a not in names or b not in names or a == b:
                raise ConfigError(f"both {a!r} and {b!r} must be distinct parameters with a random effect "
                                  f"({', '.join(names)})", path + (a, b))
            out[(a, b)] = conv(x, path + (a, b))
    return out


def _omega_build(fn, path) -> Omega:
    try:
        return fn()
    except (ValueError, ValidationError) as e:
        msg = _from_validation(e, ()).message if isinstance(e, ValidationError) else str(e)
        raise ConfigError(msg, path) from None


def _allometry(node, params):
    path = ("allometry",)
    if node is None or node is False:
        return None
    node = _mapping(node, path, "exponents by parameter, or {exponents: ..., reference_kg: 70}")
    if set(node) <= {"exponents", "reference_kg", "covariate"} and "exponents" in node:
        ex = _mapping(node["exponents"], path + ("exponents",), "exponents by parameter name")
        sub = ("exponents",)
        extra = {k: node[k] for k in ("reference_kg", "covariate") if k in node}
    else:
        ex, sub, extra = node, (), {}
    _check_names(ex, params, path + sub)
    exps = {k: _number(v, path + sub + (k,)) for k, v in ex.items()}
    if "reference_kg" in extra:
        extra["reference_kg"] = _positive(extra["reference_kg"], path + ("reference_kg",))
    return _build(Allometry, dict(exponents=exps, **extra), path)


def _effects(node, params):
    path = ("covariate_effects",)
    if node is None:
        return ()
    if not isinstance(node, list):
        raise ConfigError("expected a list of {type: categorical | linear, ...}", path)
    out = []
    for i, e in enumerate(node):
        e = _mapping(e, path + (i,), "a covariate effect {type: categorical | linear, ...}")
        kind = e.get("type")
        cls = {"categorical": CategoricalEffect, "linear": LinearEffect}.get(kind)
        if cls is None:
            raise ConfigError(f"unknown covariate effect type {kind!r}; known: categorical, linear",
                              path + (i, "type"))
        if e.get("parameter") not in params:
            raise ConfigError(f"{e.get('parameter')!r} is not a parameter of the model; known: "
                              f"{', '.join(params)}", path + (i, "parameter"))
        kw = {k: v for k, v in e.items() if k != "type"}
        if "levels" in kw and isinstance(kw["levels"], list):
            kw["levels"] = tuple(kw["levels"])
        out.append(_build(cls, kw, path + (i,)))
    return tuple(out)
