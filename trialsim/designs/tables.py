"""What a design will do, written out before the trial: the boundary table of an interval design
(R BOIN's ``get.boundary``) and the dose-transition pathways of any design (Yap et al. 2017,
Clin Cancer Res 23:7440-7447): every possible outcome of the next cohorts and the decision after
each.  ``trialsim table CONFIG`` prints both and writes them as CSV."""
from __future__ import annotations

import numpy as np
import pandas as pd

from trialsim.designs.base import BatchState, Design
from trialsim.outcomes import TrialHistory

#: Largest number of pathway rows written (cohorts of 3 over 6 cohorts give 5,460).
MAX_ROWS = 100_000


def _base(design: Design) -> Design:
    return getattr(design, "base_design", design)


def boundary_table(design: Design) -> pd.DataFrame | None:
    """Per number of patients at the current dose: the largest DLT count that escalates, the
    smallest that de-escalates and the smallest that eliminates (``None`` where no count does);
    ``None`` for designs without such a table (model-based and rule-based designs)."""
    base = _base(design)
    if not hasattr(base, "decision_table"):
        return None
    rows = base.decision_table()
    df = pd.DataFrame(rows).rename(columns={
        "n": "patients_at_dose", "escalate_if_y_le": "escalate_if_dlts_at_most",
        "deescalate_if_y_ge": "deescalate_if_dlts_at_least",
        "eliminate_if_y_ge": "eliminate_if_dlts_at_least"})
    return df.astype("Int64")


def dose_transition_pathways(design: Design, doses, cohorts: int = 2,
                             history: str | TrialHistory = "") -> pd.DataFrame:
    """Every outcome of the next ``cohorts`` cohorts after ``history`` (default: the start) and
    the decision after each.  One row per node of the tree: ``path`` in the outcome
    mini-language (dose levels from 1; ``T`` a DLT, ``N`` none; for designs that decide on
    efficacy also ``E`` a response and ``B`` both; within a cohort only the counts matter),
    ``cohort`` (1 = the first new cohort), ``dlts`` (and ``responses``) in that cohort, then
    the decision:
    ``next_level`` (1-based, empty when the trial stops) and ``next_dose`` (the dose itself),
    ``recommended_level``, ``stop`` and ``reason``.  A stopped path has no children."""
    if not isinstance(cohorts, int) or not 1 <= cohorts <= 10:
        raise ValueError(f"cohorts must be an integer from 1 to 10, got {cohorts!r}")
    D, c = design.n_doses, design.cohort_size
    eff = design.needs_efficacy
    per_cohort = (max(c, 3) + 1) * (max(c, 3) + 2) * (max(c, 3) + 3) // 6 if eff else max(c, 3) + 1
    if per_cohort ** cohorts > MAX_ROWS:
        raise ValueError(f"{cohorts} cohorts of {c} give more than {MAX_ROWS:,} pathways; "
                         "ask for fewer cohorts")
    h0 = TrialHistory.parse(history, D) if isinstance(history, str) else history
    if len(doses) != D:
        raise ValueError(f"expected {D} doses, got {len(doses)}")
    rows: list[dict] = []

    def visit(h: TrialHistory, depth: int, path: str) -> None:
        node = dict(rows[-1])           # the outcome's row, before its decision
        for i, (d, p) in enumerate(_branches(design, h)):
            if i:                       # another randomised next dose after the same outcome
                rows.append(dict(node))
            rows[-1].update(_decision_columns(d, doses, p if design.randomises else None))
            _children(h, d, depth, path)

    def _children(h: TrialHistory, d, depth: int, path: str) -> None:
        if d.stop or d.next_dose is None or depth == cohorts:
            return
        want = c if d.cohort_size is None else d.cohort_size   # designs may set it per cohort
        size = min(want, design.max_patients - h.n_patients)   # the last may be smaller
        for nt, ne, nb in _outcomes(size, eff):
            nn = size - nt - ne - nb
            step = f"{d.next_dose + 1}" + "N" * nn + "T" * nt + "E" * ne + "B" * nb
            rows.append({"path": f"{path} {step}".strip(), "cohort": depth + 1, "dlts": nt + nb,
                         **({"responses": ne + nb} if eff else {})})
            tox = [False] * nn + [True] * nt + [False] * ne + [True] * nb
            resp = [False] * (nn + nt) + [True] * (ne + nb)
            visit(h.add_cohort(d.next_dose, tox, resp), depth + 1, f"{path} {step}".strip())

    for d, p in _branches(design, h0):
        rows.append({"path": h0.format() or "(start)", "cohort": 0, "dlts": pd.NA,
                     **_decision_columns(d, doses, p if design.randomises else None)})
        _children(h0, d, 0, h0.format())
    df = pd.DataFrame(rows)
    for col in ("cohort", "dlts", "responses", "next_level", "recommended_level"):
        if col in df:
            df[col] = df[col].astype("Int64")
    return df


def _outcomes(size: int, eff: bool):
    """``(DLT only, response only, both)`` counts of a cohort of ``size``: every split when the
    design decides on efficacy, else DLT counts only."""
    if not eff:
        return [(y, 0, 0) for y in range(size + 1)]
    return [(t, e, b) for b in range(size + 1) for t in range(size + 1 - b)
            for e in range(size + 1 - b - t)]


def _branches(design: Design, h: TrialHistory) -> list[tuple]:
    """The decisions after ``h`` with their probabilities: one for a deterministic design; for
    a design that randomises the next dose (``randomises``), one per distinct outcome of the
    draw, each decided at the middle of its dose's share of ``u`` (modifiers included)."""
    if not design.randomises:
        return [(design.decide(h), 1.0)]
    base = getattr(design, "base_design", design)
    p = base.randomisation(BatchState.from_history(h))[0]
    cum = np.cumsum(p)
    out: dict = {}
    for k in np.flatnonzero(p > 0):
        d = design.decide(h, u=float(min(cum[k] - p[k] / 2, np.nextafter(1.0, 0.0))))
        key = (d.stop, d.next_dose)
        out[key] = (d, out[key][1] + p[k]) if key in out else (d, p[k])
    return list(out.values()) if out else [(design.decide(h, u=0.5), 1.0)]


def _decision_columns(d, doses, probability: float | None = None) -> dict:
    nxt = None if d.stop or d.next_dose is None else d.next_dose
    cols = {"next_level": pd.NA if nxt is None else nxt + 1,
            "next_dose": pd.NA if nxt is None else doses[nxt],
            "recommended_level": pd.NA if d.recommended is None else d.recommended + 1,
            "stop": d.stop, "reason": "; ".join(d.reasons)}
    if probability is not None:      # designs that randomise: the chance of this next dose
        cols["probability"] = round(float(probability), 6)
    return cols


def format_pathways(paths: pd.DataFrame, unit: str = "") -> str:
    """The pathways as an indented tree, one line per node: the outcomes so far, the next dose
    (or ``stop``; with its probability where randomised), the current recommendation and the
    reason."""
    unit = f" {unit}" if unit else ""
    width = max(len("outcomes"),
                *(2 * int(k) + len(p) for k, p in zip(paths["cohort"], paths["path"]))) + 2
    lines = [f"{'outcomes':<{width}}{'next':<29}{'selects':<9}reason"]
    for r in paths.itertuples(index=False):
        label = "  " * int(r.cohort) + r.path
        nxt = ("stop" if r.stop or pd.isna(r.next_level)
               else f"level {r.next_level} ({r.next_dose:g}{unit})")
        p = getattr(r, "probability", 1.0)
        if p < 1.0:                     # a randomised next dose: its probability
            nxt = f"{nxt} p={p:.2f}"
        sel = "-" if pd.isna(r.recommended_level) else f"level {r.recommended_level}"
        lines.append(f"{label:<{width}}{nxt:<29}{sel:<9}{r.reason}")
    return "\n".join(lines)
