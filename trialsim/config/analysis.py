"""The inputs of ``trialsim analyse``: an analysis plan (YAML) and a trial's data (CSV).

A plan names the candidate models and the test and estimation settings of
:func:`trialsim.analysis.mcpmod`, and which CSV columns hold the dose, the response and any
covariates::

    models: {linear: null, emax: 0.2, sig_emax: [0.4, 3], exponential: 0.5, quadratic: -0.85}
    delta: 0.3                 # or p: 0.5 (ED50 rather than the target dose)
    alpha: 0.025
    selection: AIC             # AIC | maxT | average
    direction: increasing      # decreasing for a fall in a score, e.g. MADRS
    endpoint: continuous       # or binary (0/1 responses)
    covariates: [baseline]     # ANCOVA (continuous endpoint)
    columns: {dose: dose, response: resp, patient: id}   # patient: optional, ids unique
    longitudinal:              # optional: long data, one row per patient and visit, analysed
      patient: patient         #   by the repeated-measures model (MMRM) at primary_visit
      visit: visit_h
      primary_visit: 24
      method: reml             #   reml | ml

Errors name the file, the YAML path or the CSV line (the header is line 1) and column, and
what was expected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from trialsim.config.build import construct, expect_mapping
from trialsim.config.collect import Collector
from trialsim.config.reader import read_yaml
from trialsim.errors import ConfigError, FieldError
from trialsim.spec import spec

#: Largest data file ``trialsim analyse`` reads (bytes).
MAX_DATA_BYTES = 200 * 2 ** 20


@spec
class Columns:
    """CSV column names: ``dose``, ``response``, and optionally ``patient`` (one row per
    patient: a patient id given twice is an error)."""

    dose: Annotated[str, Field(min_length=1)] = "dose"
    response: Annotated[str, Field(min_length=1)] = "response"
    patient: Annotated[str, Field(min_length=1)] | None = None


@spec
class Longitudinal:
    """Long-format data for the repeated-measures model: the ``patient`` and ``visit``
    columns, the ``primary_visit`` (a value of the visit column) and the ``method``."""

    primary_visit: Annotated[float, Field(ge=-1e12, le=1e12)]
    patient: Annotated[str, Field(min_length=1)] = "patient"
    visit: Annotated[str, Field(min_length=1)] = "visit"
    method: Literal["reml", "ml"] = "reml"


@spec
class AnalysisPlan:
    """An MCP-Mod analysis plan (see the module docstring); exactly one of ``delta`` (the
    clinically relevant effect, for the target dose) and ``p`` (for ``ED_p``)."""

    models: dict[str, Any]
    delta: Annotated[float, Field(gt=0, le=1e12)] | None = None
    p: Annotated[float, Field(gt=0, le=1)] | None = None
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.025
    selection: Literal["AIC", "maxT", "average"] = "AIC"
    direction: Literal["increasing", "decreasing"] = "increasing"
    endpoint: Literal["continuous", "binary"] = "continuous"
    two_sided: bool = False
    covariates: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    columns: Columns = Columns()
    off: Annotated[float, Field(gt=0)] | None = None
    scal: Annotated[float, Field(gt=0)] | None = None
    longitudinal: Longitudinal | None = None

    def __post_init__(self) -> None:
        if (self.delta is None) == (self.p is None):
            raise ValueError("give exactly one of delta (the clinically relevant effect, for "
                             "the target dose) and p (for ED_p)")
        if self.covariates and self.endpoint == "binary":
            raise ValueError("covariates apply to a continuous endpoint")
        if self.longitudinal is not None and self.endpoint == "binary":
            raise ValueError("the longitudinal model applies to a continuous endpoint")
        roles = {self.columns.dose: "the dose column (columns.dose)",
                 self.columns.response: "the response column (columns.response)"}
        if self.columns.patient is not None:
            roles[self.columns.patient] = "the patient column (columns.patient)"
        if self.longitudinal is not None:
            roles[self.longitudinal.patient] = "the patient column (longitudinal.patient)"
            roles[self.longitudinal.visit] = "the visit column (longitudinal.visit)"
        for i, c in enumerate(self.covariates):
            if c in roles:
                raise FieldError("covariates", f"covariate {c!r} is {roles[c]}; expected "
                                               "baseline columns other than those")
            if c in self.covariates[:i]:
                raise FieldError("covariates", f"covariate {c!r} is listed twice")

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("models", "delta", "p", "alpha", "selection",
                                             "direction", "endpoint", "two_sided", "off",
                                             "scal")}
        out["covariates"] = list(self.covariates)
        out["columns"] = {"dose": self.columns.dose, "response": self.columns.response}
        if self.columns.patient is not None:
            out["columns"]["patient"] = self.columns.patient
        if self.longitudinal is not None:
            lg = self.longitudinal
            out["longitudinal"] = {"patient": lg.patient, "visit": lg.visit,
                                   "primary_visit": lg.primary_visit, "method": lg.method}
        return {k: v for k, v in out.items() if v is not None}


def load_analysis_plan(path: str | Path) -> AnalysisPlan:
    """Read and check an analysis plan; ConfigError naming the file and YAML path."""
    doc = read_yaml(path, "an analysis plan")
    try:
        node = dict(doc)
        if "columns" in node:
            node["columns"] = construct(Columns, dict(expect_mapping(
                node["columns"], ("columns",), "CSV column names {dose: ..., response: ...}")),
                ("columns",))
        if "longitudinal" in node:
            node["longitudinal"] = construct(Longitudinal, dict(expect_mapping(
                node["longitudinal"], ("longitudinal",),
                "{patient: column, visit: column, primary_visit: value}")), ("longitudinal",))
        if "models" in node:
            expect_mapping(node["models"], ("models",),
                           "candidate models with their guesstimates, e.g. {emax: 0.2}")
        plan = construct(AnalysisPlan, node, ())
    except ConfigError as e:
        raise e.at((), str(path)) from None
    return plan


def read_trial_data(path: str | Path, plan: AnalysisPlan) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray | None, int]:
    """``(dose, response, covariates or None, rows dropped)`` from a CSV file with a header
    row: the plan's dose, response and covariate columns as numbers.  Rows with a missing
    response are dropped (and counted); any other missing or non-numeric value is an error
    naming the line of the file (the header is line 1) and the column."""
    cols = plan.columns
    ids = [] if cols.patient is None else [cols.patient]
    values, df, where = _read_columns(path, plan, [cols.dose, cols.response, *plan.covariates],
                                      ids)
    if ids:
        twice = pd.Series(values[cols.patient]).duplicated().to_numpy()
        if twice.any():
            i = int(np.flatnonzero(twice)[0])
            raise ConfigError(f"line {i + 2}, column {cols.patient!r}: patient "
                              f"{values[cols.patient][i]} has an earlier row; the data have one "
                              "row per patient", (), where)
    keep = np.isfinite(values[cols.response])
    _check_arms(values[cols.dose], keep, cols.response, where)
    dose, resp = values[cols.dose][keep], values[cols.response][keep]
    if plan.endpoint == "binary" and not np.all((resp == 0) | (resp == 1)):
        i = int(np.flatnonzero(keep)[np.flatnonzero((resp != 0) & (resp != 1))[0]])
        raise ConfigError(f"line {i + 2}, column {cols.response!r}: a binary endpoint takes 0 "
                          f"or 1, got {df[cols.response].iloc[i]!r}", (), where)
    X = (np.column_stack([values[c][keep] for c in plan.covariates])
         if plan.covariates else None)
    return dose, resp, X, int((~keep).sum())


def _check_arms(dose: np.ndarray, has_response: np.ndarray, response: str, where: str,
                when: str = "") -> None:
    """Refuse data with no response at all, an arm (dose level) whose patients have no
    response (``when``: e.g. at the primary visit), or two dose levels that differ only by
    rounding."""
    if not has_response.any():
        raise ConfigError(f"column {response!r}: no patient has a response{when}", (), where)
    levels = np.unique(dose)
    for d in levels:
        if not has_response[dose == d].any():
            arm = "placebo (dose 0)" if d == 0 else f"dose {d:g}"
            raise ConfigError(f"column {response!r}: no patient at {arm} has a response"
                              f"{when}; remove the arm's rows to analyse without it", (), where)
    close = np.flatnonzero(np.diff(levels) <= 1e-6 * levels[1:])
    if close.size:
        a, b = levels[close[0]], levels[close[0] + 1]
        raise ConfigError(f"doses {float(a)!r} and {float(b)!r} differ by less than a "
                          "millionth: one dose written two ways? Round the dose column", (),
                          where)


def read_visit_data(path: str | Path, plan: AnalysisPlan):
    """Long data (one row per patient and visit) for the repeated-measures model: ``(dose
    (N,), responses (N, V) with NaN where missing, covariates (N, q) or None, visits (V,),
    rows without a response)``.  A patient's dose and covariates must be the same on every
    row; a patient may have a visit once."""
    lg = plan.longitudinal
    cols = plan.columns
    values, df, where = _read_columns(path, plan, [lg.visit, cols.dose, cols.response,
                                                   *plan.covariates], [lg.patient])
    pid, vis = values[lg.patient], values[lg.visit]
    ids, who = np.unique(pid, return_inverse=True)
    visits, col = np.unique(vis, return_inverse=True)
    if lg.primary_visit not in visits:
        raise ConfigError(f"primary_visit {lg.primary_visit:g} is not a value of the column "
                          f"{lg.visit!r} ({', '.join(f'{v:g}' for v in visits[:12])})",
                          ("longitudinal", "primary_visit"), where)
    seen = np.zeros((ids.size, visits.size), bool)
    for i, (p, v) in enumerate(zip(who, col)):
        if seen[p, v]:
            raise ConfigError(f"line {i + 2}: patient {pid[i]} has visit {vis[i]:g} twice",
                              (), where)
        seen[p, v] = True
    Y = np.full((ids.size, visits.size), np.nan)
    Y[who, col] = values[cols.response]
    per_patient = {}
    for c in [cols.dose, *plan.covariates]:
        first = np.full(ids.size, np.nan)
        first[who[::-1]] = values[c][::-1]                     # each patient's first row
        differs = values[c] != first[who]
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise ConfigError(f"line {i + 2}, column {c!r}: patient {pid[i]} has another "
                              f"value on an earlier row; a patient's {_role(plan, c)} is the "
                              "same on every visit", (), where)
        per_patient[c] = first
    X = (np.column_stack([per_patient[c] for c in plan.covariates])
         if plan.covariates else None)
    primary = int(np.flatnonzero(visits == lg.primary_visit)[0])
    _check_arms(per_patient[cols.dose], np.isfinite(Y[:, primary]), cols.response, where,
                f" at the primary visit ({lg.visit} {lg.primary_visit:g})")
    dropped = int((~np.isfinite(values[cols.response])).sum())
    return per_patient[cols.dose], Y, X, visits, dropped


def _read_columns(path, plan: AnalysisPlan, wanted: list[str], ids: list[str] = ()):
    """``(column → numbers (NaN: a missing response), the raw table, file name)``; the
    ``ids`` columns (patient ids) as text, none missing."""
    path = Path(path)
    where = str(path)
    try:
        if path.is_dir():
            raise ConfigError("is a folder, not a CSV file", (), where)
        size = path.stat().st_size
        if size > MAX_DATA_BYTES:
            raise ConfigError(f"the file has {size:,} bytes; at most {MAX_DATA_BYTES:,} are "
                              "read", (), where)
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read file: {e.strerror or e}", (), where) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text; save the file as UTF-8 CSV", (), where) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise ConfigError(f"not a readable CSV file with a header row: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                          (), where) from None
    cols = plan.columns
    missing = [c for c in [*ids, *wanted] if c not in df.columns]
    if missing:
        shown = ", ".join(map(repr, list(df.columns)[:12]))
        raise ConfigError(f"column {missing[0]!r} not found (the analysis plan's "
                          f"{_role(plan, missing[0])}); the columns are: {shown or 'none'}",
                          (), where)
    if len(df) == 0:
        raise ConfigError("the file has a header but no data rows", (), where)
    checks = Collector()
    values = {}
    for c in ids:
        text = df[c].str.strip()
        blank = text.isin(["", "NA", "NaN", "nan", "."]).to_numpy()
        if blank.any():
            i = int(np.flatnonzero(blank)[0])
            checks.errors.append(ConfigError(f"line {i + 2}, column {c!r}: a patient id is "
                                             "missing", (), where))
        num = pd.to_numeric(text, errors="coerce")
        if num.notna().all():       # numeric ids compare as numbers (1 and 1.0 are one id)
            text = pd.Series([str(int(v)) if float(v).is_integer() else repr(float(v))
                              for v in num])
        values[c] = text.to_numpy(str)
    for c in wanted:
        text = df[c].str.strip()
        blank = text.isin(["", "NA", "NaN", "nan", "."])
        num = pd.to_numeric(text.where(~blank), errors="coerce")
        bad = num.isna() & ~blank
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            checks.errors.append(ConfigError(f"line {i + 2}, column {c!r}: expected a number, "
                                             f"got {df[c].iloc[i]!r}", (), where))
            continue
        num = num.to_numpy(float)
        if not np.all(np.isfinite(num[~blank.to_numpy()])):
            i = int(np.flatnonzero(~np.isfinite(num) & ~blank.to_numpy())[0])
            checks.errors.append(ConfigError(f"line {i + 2}, column {c!r}: expected a finite "
                                             f"number, got {df[c].iloc[i]!r}", (), where))
            continue
        if c != cols.response and blank.any():
            i = int(np.flatnonzero(blank.to_numpy())[0])
            checks.errors.append(ConfigError(f"line {i + 2}, column {c!r}: a value is "
                                             "missing", (), where))
            continue
        values[c] = num
    checks.raise_any()
    return values, df, where


def _role(plan: AnalysisPlan, column: str) -> str:
    if column == plan.columns.dose:
        return "dose column (columns.dose)"
    if column == plan.columns.response:
        return "response column (columns.response)"
    if column == plan.columns.patient:
        return "patient column (columns.patient)"
    lg = plan.longitudinal
    if lg is not None and column in (lg.patient, lg.visit):
        return "patient column (longitudinal.patient)" if column == lg.patient else \
            "visit column (longitudinal.visit)"
    return "covariate (covariates)"
