"""A YAML ``pk:`` mapping → :class:`~trialsim.pk.spec.PKSpec`.

The mapping names a library model and overrides fields one by one, or states a model fully::

    model: ketamine_domino               # optional: a name from trialsim.pk.library.available()
    structure: mammillary                # explicit models: a registered PK structure
                                         # (mammillary, hepatoportal_nasal, michaelis_menten_1cmt,
                                         # michaelis_menten_2cmt, parent_metabolite, plugins)
    route: {type: infusion, duration_h: 0.667}      # a registered route: bolus | infusion |
                                         # first_order (oral, subcutaneous, intranasal) | devices
                                         # | schedule; repeat with ii_h, addl
    iiv: {CL: 0.16, V1: 0.29}            # CVs; or {cv: {...}, correlation: {CL: {V1: 0.5}}};
                                         # or {variance: {...}, covariance: {...}};
                                         # or {names: [CL, V1], omega: [[..], [..]]} (log scale)
    allometry: {CL: 0.75, V1: 1}         # or {exponents: {...}, reference_kg: 70}; false = none
    covariate_effects:                   # replaces the library's list when given
      - {type: categorical, covariate: sex, parameter: CL, factors: {female: 0.8}, levels: [female, male]}
      - {type: linear, covariate: age_years, parameter: Qh, slope: -2.19, above: 60}
    horizon_h: 24                        # metrics over [0, horizon_h]
    grid_step_h: 0.0833                  # internal grid of the streamed metrics (linear models)
    CL: 85.0                             # any parameter of the structure (units:
                                         # trialsim.pk.parameters.PARAMETERS)
    ke0: olofsen_2022_ke0                # a number (1/h) or a named PD constant
    analyte: parent                      # ODE structures: what the metrics describe
    solver: {rtol: 1.0e-8, atol: 1.0e-10, max_steps: 200000}   # ODE structures

Every error is a :class:`~trialsim.errors.ConfigError` whose path is relative to the ``pk:``
mapping (the study loader prefixes ``pk``).
"""
from __future__ import annotations

from typing import Any

import pydantic

from trialsim.config.build import (path_key, build, construct, construct_each, describe_value,
                                   expect_mapping, finite_number, lookup_type, positive_number)
from trialsim.errors import ConfigError
from trialsim.pk import library
from trialsim.pk.ode.metrics import SolverOptions, analytes
from trialsim.pk.parameters import MAY_BE_ZERO, PARAMETERS
from trialsim.pk.spec import PKSpec, doses_a_depot, route_name
from trialsim.pk.structure import ParameterError, Structure
from trialsim.pk.variability import (MAX_CV, MAX_LOG_VARIANCE, MAX_LOGIT_VARIANCE, Allometry,
                                      Omega)
from trialsim.registry import names

TOP_KEYS = ("model", "structure", "route", "iiv", "allometry", "covariate_effects",
            "horizon_h", "grid_step_h", "analyte", "solver")


def from_config(mapping: Any) -> PKSpec:
    """Build a :class:`PKSpec` from a ``pk:`` mapping (see the module docstring)."""
    mapping = expect_mapping(mapping, (), "a PK model: model: or structure:, route:, ...")
    entry = None
    if "model" in mapping:
        name = mapping["model"]
        known = library.available()
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"unknown PK model {describe_value(name)}; known models: "
                              f"{', '.join(known)}", ("model",))
        entry = library.entry(name)
        if "structure" in mapping:
            raise ConfigError("give either a library model or an explicit structure, not both",
                              ("structure",))
        cls: type = type(entry.structure)
    else:
        cls = lookup_type("pk_structure", mapping.get("structure", "mammillary"), ("structure",))
    param_names = cls.parameter_names()
    for k in mapping:
        if k not in TOP_KEYS and k not in param_names:
            raise ConfigError(_unknown_key(k, entry, mapping.get("structure", "mammillary"),
                                           param_names), (path_key(k),))
    values = {k: _param_value(k, v) for k, v in mapping.items() if k in param_names}
    structure = _structure(entry, cls, values)
    params = structure.parameters()
    if "route" in mapping:
        route = build("route", _route_events(mapping["route"]), ("route",))
    elif entry is not None:
        route = entry.route
    else:
        raise ConfigError("an explicit PK model needs a route, e.g. {type: infusion, "
                          "duration_h: 0.667}", ("route",))
    if "ka" in mapping and not doses_a_depot(route):
        raise ConfigError(f"ka applies to doses in a depot (first-order absorption); route "
                          f"{route_name(route)} gives none (it would be ignored)", ("ka",))
    base = entry.omega if entry else Omega()
    omega = _omega(mapping["iiv"], ("iiv",), params, base) if "iiv" in mapping else base
    allo = (_allometry(mapping["allometry"], params) if "allometry" in mapping
            else (entry.allometry if entry else None))
    effects = (_effects(mapping["covariate_effects"], params) if "covariate_effects" in mapping
               else (entry.effects if entry else ()))
    kw: dict[str, Any] = dict(structure=structure, route=route, omega=omega, allometry=allo,
                              effects=tuple(effects), name=entry.name if entry else None)
    for k in ("horizon_h", "grid_step_h"):
        if k in mapping:
            kw[k] = positive_number(mapping[k], (k,), "a positive number of hours")
    for k in ("analyte", "solver"):
        if k in mapping and structure.linear:
            ode = ", ".join(n for n in names("pk_structure")
                            if not lookup_type("pk_structure", n, ()).linear)
            raise ConfigError(f"{k} applies to the ODE structures ({ode}), not to a linear "
                              f"{type(structure).__name__} model", (k,))
    if "analyte" in mapping:
        known = analytes(structure)
        if mapping["analyte"] not in known:
            raise ConfigError(f"unknown analyte {describe_value(mapping['analyte'])}; known: "
                              f"{', '.join(known)}", ("analyte",))
        kw["analyte"] = mapping["analyte"]
    if "solver" in mapping:
        kw["solver"] = construct(SolverOptions, expect_mapping(
            mapping["solver"], ("solver",), "{rtol: ..., atol: ..., max_steps: ...}"), ("solver",))
    return _spec(kw)


def _unknown_key(k: Any, entry, structure: str, param_names: tuple[str, ...]) -> str:
    model = entry.name if entry else f"a {structure} model"
    if k in PARAMETERS:
        others = [lookup_type("pk_structure", n, ()) for n in names("pk_structure")]
        others = [(n, c) for n, c in zip(names("pk_structure"), others)
                  if k in c.parameter_names()]
        kind = ("nonlinear " if all(not c.linear for _, c in others) else
                "linear " if all(c.linear for _, c in others) else "")
        hint = (f"; it is a parameter of the {kind}structures {', '.join(n for n, _ in others)}: "
                "set structure: to one of them" if others and not entry else "")
        return f"{k} is not a parameter of {model} ({', '.join(param_names)}){hint}"
    return (f"unknown key; expected one of {', '.join(TOP_KEYS)} or a parameter of {model} "
            f"({', '.join(param_names)})")


def _spec(kw: dict) -> PKSpec:
    try:
        return construct(PKSpec, kw, ())
    except ConfigError as e:
        if e.path == () and e.message.startswith("route"):
            raise ConfigError(e.message.removeprefix("route: "), ("route",)) from None
        if e.path == () and e.message.startswith("grid_step_h"):
            raise ConfigError(e.message.removeprefix("grid_step_h: "), ("grid_step_h",)) from None
        raise


def _param_value(k: str, v: Any) -> float:
    if k == "ke0" and isinstance(v, str):
        try:
            c = library.pd_constant(v)
        except KeyError as e:
            raise ConfigError(e.args[0], (k,)) from None
        if c.unit != "1/h":
            raise ConfigError(f"{v} is in {c.unit}, not a rate constant (1/h)", (k,))
        return c.value
    unit = PARAMETERS[k].unit if k in PARAMETERS else "its unit"
    x = finite_number(v, (k,), f"a number ({unit}) for {k}")
    if x < 0 or (x == 0 and k not in MAY_BE_ZERO):
        raise ConfigError(f"expected a positive number ({unit}) for {k}, got {describe_value(v)}",
                          (k,))
    return x


def _structure(entry, cls: type, values: dict) -> Structure:
    try:
        if entry is not None:
            return entry.structure.replace(**values) if values else entry.structure
        return cls.from_parameters(values)
    except ConfigError:
        raise
    except ParameterError as e:
        raise ConfigError(str(e), (e.name,)) from None
    except KeyError as e:
        raise ConfigError(str(e.args[0]), ()) from None
    except Exception as e:  # noqa: BLE001 - pydantic and ValueError alike, mapped to the keys
        err = _structure_error(cls, e)
        raise err from None


def _structure_error(cls: type, e: Exception) -> ConfigError:
    if isinstance(e, pydantic.ValidationError):
        err = e.errors()[0]
        loc = tuple(x for x in err.get("loc", ()) if x != "__root__" and x != "disposition")
        if err.get("type") == "missing" and loc:
            p = PARAMETERS.get(str(loc[-1]))
            what = f" ({p.meaning}, {p.unit})" if p else ""
            return ConfigError(f"a {cls.__name__} model needs {loc[-1]}{what}", loc[-1:])
        msg = err.get("msg", str(e)).removeprefix("Value error, ")
        return ConfigError(msg, loc[-1:] if loc else ())
    return ConfigError(str(e), ())


def _check_names(names_: Any, params: dict, path: tuple) -> None:
    for nm in names_:
        if nm not in params:
            raise ConfigError(f"{describe_value(nm)} is not a parameter of the model; known: "
                              f"{', '.join(params)}", path + (nm,))


def _omega(node, path, params, base: Omega) -> Omega:
    if node is None:
        return Omega()
    node = expect_mapping(node, path, "CVs by parameter, or cv/correlation, variance/covariance "
                                      "or names/omega")
    keys = set(node)
    base_scales = {n: base.scale(n) for n in base.names}
    if "omega" in keys or "names" in keys:
        for k in keys - {"omega", "names", "scales"}:
            raise ConfigError("unknown key; expected names, omega, scales", path + (k,))
        names_ = node.get("names")
        if not isinstance(names_, list) or not all(isinstance(x, str) for x in names_):
            raise ConfigError("expected a list of parameter names", path + ("names",))
        for i, nm in enumerate(names_):
            if nm not in params:
                raise ConfigError(f"{nm!r} is not a parameter of the model; known: "
                                  f"{', '.join(params)}", path + ("names", i))
        m = node.get("omega")
        if not isinstance(m, list) or not all(isinstance(r, list) for r in m):
            raise ConfigError("expected a square matrix (list of rows) of log-scale variances/"
                              "covariances", path + ("omega",))
        rows = tuple(tuple(finite_number(x, path + ("omega", i, j)) for j, x in enumerate(r))
                     for i, r in enumerate(m))
        scales = expect_mapping(node.get("scales", {}), path + ("scales",),
                                "parameter: log | logit")
        scale_of = {n: scales.get(n, base_scales.get(n, "log")) for n in names_}
        return _omega_build(lambda: Omega(tuple(names_), rows,
                                          tuple(scale_of[n] for n in names_)), path + ("omega",))
    if keys & {"cv", "correlation"}:
        for k in keys - {"cv", "correlation"}:
            raise ConfigError("unknown key; expected cv, correlation", path + (k,))
        cvs = expect_mapping(node.get("cv"), path + ("cv",), "CVs by parameter name")
        return _from_cvs(cvs, node.get("correlation") or {}, path, ("cv",), params, base_scales)
    if keys & {"variance", "covariance"}:
        for k in keys - {"variance", "covariance", "scales"}:
            raise ConfigError("unknown key; expected variance, covariance, scales", path + (k,))
        var = expect_mapping(node.get("variance"), path + ("variance",),
                             "variances by parameter name")
        _check_names(var, params, path + ("variance",))
        v = {k: finite_number(x, path + ("variance", k)) for k, x in var.items()}
        cov = _pairs(node.get("covariance") or {}, var, path + ("covariance",))
        scales = expect_mapping(node.get("scales", {n: base_scales[n] for n in var
                                                    if n in base_scales}),
                                path + ("scales",), "parameter: log | logit")
        for k, x in v.items():
            cap = MAX_LOGIT_VARIANCE if scales.get(k) == "logit" else MAX_LOG_VARIANCE
            if x > cap:
                raise ConfigError(f"expected a variance of at most {cap:.3g} (" + (
                    "sd 3 on the logit scale" if cap == MAX_LOGIT_VARIANCE else
                    f"omega^2 = ln(1 + CV^2) of a CV of {MAX_CV:g}, {100 * MAX_CV:g} %")
                    + f"), got {x:g}", path + ("variance", k))
        return _omega_build(lambda: Omega.from_variances(v, cov, scales), path + ("variance",))
    return _from_cvs(node, {}, path, (), params, base_scales)


def _from_cvs(cvs, corr, path, sub, params, base_scales):
    _check_names(cvs, params, path + sub)
    cv = {}
    for k, x in cvs.items():
        cv[k] = finite_number(x, path + sub + (k,))
        if base_scales.get(k) == "logit":
            raise ConfigError(f"{k} has a logit-scale random effect: give its variance with "
                              f"iiv: {{variance: {{{k}: ...}}}}", path + sub + (k,))
    pairs = _pairs(corr, cv, path + ("correlation",))
    for (a, b), r in pairs.items():
        if not -1 < r < 1:
            raise ConfigError(f"expected a correlation in (-1, 1), got {r}",
                              path + ("correlation", a, b))
    bad = next((k for k, c in cv.items() if not 0 <= c <= MAX_CV), None)
    if bad is not None:
        raise ConfigError(f"expected a CV >= 0 and <= {MAX_CV:g} (a fraction, 0.3 = 30%), got "
                          f"{cv[bad]:g}", path + sub + (bad,))
    cv = {k: c for k, c in cv.items() if c > 0}       # a CV of 0: no variability there
    pairs = {ab: r for ab, r in pairs.items() if ab[0] in cv and ab[1] in cv}
    if not cv:
        return Omega()
    return _omega_build(lambda: Omega.from_cv(cv, pairs), path)


def _pairs(node, names_, path) -> dict:
    node = expect_mapping(node, path, "a mapping name: {other name: value}")
    out = {}
    for a, inner in node.items():
        inner = expect_mapping(inner, path + (a,), "a mapping other name: value")
        for b, x in inner.items():
            if a not in names_ or b not in names_ or a == b:
                raise ConfigError(f"both {a!r} and {b!r} must be distinct parameters with a "
                                  f"random effect ({', '.join(names_)})", path + (a, b))
            out[(a, b)] = finite_number(x, path + (a, b))
    return out


def _omega_build(fn, path) -> Omega:
    try:
        return fn()
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(err.get("msg", str(e)).removeprefix("Value error, "), path) from None
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e), path) from None


def _allometry(node, params):
    path = ("allometry",)
    if node is None or node is False:
        return None
    node = expect_mapping(node, path, "exponents by parameter, or {exponents: ..., "
                                      "reference_kg: 70}")
    if "exponents" in node:
        for k in node:
            if k not in ("exponents", "reference_kg", "covariate"):
                raise ConfigError("unknown key; expected exponents, reference_kg, covariate",
                                  path + (k,))
        ex = expect_mapping(node["exponents"], path + ("exponents",), "exponents by parameter name")
        sub = ("exponents",)
        extra = {k: node[k] for k in ("reference_kg", "covariate") if k in node}
    else:
        ex, sub, extra = node, (), {}
    _check_names(ex, params, path + sub)
    exps = {}
    for k, v in ex.items():
        exps[k] = finite_number(v, path + sub + (k,), "an allometric exponent")
        if abs(exps[k]) > 10:
            raise ConfigError(f"expected an allometric exponent between -10 and 10, got {v}",
                              path + sub + (k,))
    return construct(Allometry, dict(exponents=exps, **extra), path)


def _effects(node, params):
    path = ("covariate_effects",)
    if node is None:
        return ()
    if not isinstance(node, list):
        raise ConfigError("expected a list of {type: categorical | linear, ...}", path)
    out = []
    for i, e in enumerate(node):
        e = build("covariate_effect", e, path + (i,))
        if e.parameter not in params:
            raise ConfigError(f"{e.parameter!r} is not a parameter of the model; known: "
                              f"{', '.join(params)}", path + (i, "parameter"))
        out.append(e)
    return tuple(out)


def _route_events(node):
    """A route mapping with its ``events`` (a schedule's) built one by one, so that an error
    names the event (``route.events[1].fraction``)."""
    if not isinstance(node, dict) or not isinstance(node.get("events"), list):
        return node
    from trialsim.pk.regimen import ScheduledDose
    return {**node, "events": construct_each(ScheduledDose, node["events"], ("route", "events"),
                                             "an event {time_h: ..., ...}")}
