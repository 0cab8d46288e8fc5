"""``trialsim analyse``: MCP-Mod on a trial's data (CSV) with an analysis plan (YAML)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from trialsim.errors import ConfigError


def cmd_analyse(args) -> int:
    import json

    import trialsim as ts
    from trialsim.analysis import mcpmod
    from trialsim.analysis.doseresponse.models import Candidates
    from trialsim.config.analysis import load_analysis_plan, read_trial_data
    from trialsim.store import write_file_atomic

    plan = load_analysis_plan(args.models)
    if plan.longitudinal is not None:
        return _analyse_visits(args, plan)
    dose, resp, X, dropped = read_trial_data(args.data, plan)
    levels = _levels(args.data, dose)
    try:
        Candidates.from_models(levels, plan.models, plan.off, plan.scal)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e), ("models",), str(args.models)) from None
    try:
        res = mcpmod(dose, resp, models=plan.models, alpha=plan.alpha, delta=plan.delta,
                     p=plan.p, selection=plan.selection, direction=plan.direction,
                     endpoint=plan.endpoint, covariates=X, off=plan.off, scal=plan.scal,
                     two_sided=plan.two_sided)
    except ValueError as e:
        raise ValueError(f"{args.data}: {e}") from None
    out = Path(args.out) if args.out is not None else Path(Path(args.data).stem + ".mcpmod.json")
    print(f"{args.data}: {dose.size} patients at {levels.size} doses"
          + (f" ({dropped} row{'s' if dropped > 1 else ''} without a response left out)"
             if dropped else "") + "\n")
    print(res.summary())
    forward = _take_forward(res, levels)
    doc = {"data": str(args.data), "analysis_plan": str(args.models),
           "trialsim_version": ts.__version__, "n_patients": int(dose.size),
           "rows_without_response": dropped, "plan": plan.to_dict(), "result": res.to_dict(),
           "take_forward": forward}
    path = write_file_atomic(out, json.dumps(doc, indent=2, allow_nan=False,
                                             default=_json_default) + "\n")
    print(f"\nwrote {path}")
    return 0


def _analyse_visits(args, plan) -> int:
    """``trialsim analyse`` on long data: the repeated-measures model's arm means at the
    primary visit, then generalised MCP-Mod."""
    import json

    import trialsim as ts
    from trialsim.analysis.doseresponse import analyse
    from trialsim.analysis.doseresponse.models import Candidates
    from trialsim.analysis.longitudinal import mmrm
    from trialsim.config.analysis import read_visit_data
    from trialsim.store import write_file_atomic

    lg = plan.longitudinal
    dose, Y, X, visits, dropped = read_visit_data(args.data, plan)
    levels = _levels(args.data, dose)
    try:
        Candidates.from_models(levels, plan.models, plan.off, plan.scal)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e), ("models",), str(args.models)) from None
    v = int(np.flatnonzero(visits == lg.primary_visit)[0])
    try:
        fit = mmrm(Y, np.searchsorted(levels, dose), levels.size, v, X, lg.method)
        res = analyse(fit.to_dose_estimates(levels), plan.models, alpha=plan.alpha,
                      delta=plan.delta, p=plan.p, selection=plan.selection,
                      direction=plan.direction, off=plan.off, scal=plan.scal,
                      two_sided=plan.two_sided)
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"{args.data}: {e}") from None
    out = Path(args.out) if args.out is not None else Path(Path(args.data).stem + ".mcpmod.json")
    seen = np.isfinite(Y)
    print(f"{args.data}: {dose.size} patients at {levels.size} doses, {visits.size} visits "
          f"({', '.join(f'{x:g}' for x in visits)}); repeated-measures model ({lg.method}), "
          f"primary visit {lg.primary_visit:g}: {int(seen[:, v].sum())} patients seen there, "
          f"{int(seen.any(axis=1).sum())} at least once"
          + (f"; {dropped} row{'s' if dropped > 1 else ''} without a response" if dropped
             else "") + "\n")
    print(res.summary())
    forward = _take_forward(res, levels)
    doc = {"data": str(args.data), "analysis_plan": str(args.models),
           "trialsim_version": ts.__version__, "n_patients": int(dose.size),
           "rows_without_response": dropped, "plan": plan.to_dict(), "take_forward": forward,
           "longitudinal": {"visits": visits.tolist(), "primary_visit": lg.primary_visit,
                            "method": lg.method, "df": fit.df,
                            "n_at_primary": fit.n.tolist(),
                            "within_patient_covariance": fit.sigma.tolist()},
           "result": res.to_dict()}
    path = write_file_atomic(out, json.dumps(doc, indent=2, allow_nan=False,
                                             default=_json_default) + "\n")
    print(f"\nwrote {path}")
    return 0


def _take_forward(res, levels: np.ndarray) -> dict:
    """The dose to take forward by the phase II studies' ``target_dose`` rule (the smallest
    studied dose at or above the target dose; none without a signal or when the target is not
    reached; no safety limits: the data have no safety events); printed, and for the JSON."""
    from trialsim.phase2.decision import take_forward
    from trialsim.phase2.study import Decision

    k = int(take_forward(Decision(), levels, np.array([res.signal]), np.array([res.dose]),
                         np.zeros((1, levels.size)), {}, 1.0)[0])
    dose = float(levels[k]) if k > 0 else None
    why = ("" if dose is not None else " (no dose-response signal)" if not res.signal
           else " (the target dose is not reached within the studied doses)")
    print(f"Dose to take forward (the smallest studied dose at or above the target dose): "
          + (f"{dose:g}" if dose is not None else "none, no-go") + why)
    return {"rule": "the smallest studied dose at or above the target dose", "dose": dose}


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _levels(path, dose: np.ndarray) -> np.ndarray:
    """The dose levels of the data in ``path``: placebo (0) and at least one active dose."""
    levels = np.unique(dose)
    if levels[0] < 0:
        raise ValueError(f"{path}: doses must be >= 0 (placebo 0), got {levels[0]:g}")
    if levels.size < 2 or levels[0] != 0:
        raise ValueError(f"{path}: the dose column holds {levels.size} dose level(s) "
                         f"({', '.join(f'{x:g}' for x in levels[:6])}); expected placebo (0) "
                         "and at least one active dose")
    return levels
