"""Exposure-metric names, shared by both engines.

``cmax``, ``tmax``, ``auc`` (0–horizon), ``auc_inf``, ``ce_max``, ``ce_tmax``, ``auc:<t_h>``,
``c_at:<t_h>``, ``ce_at:<t_h>``, ``time_above:<conc>`` and ``ce_time_above:<conc>``.
Concentrations in ng/mL, AUC in ng·h/mL, times in h (the simulator's units).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SIMPLE_METRICS = ("cmax", "tmax", "auc", "auc_inf", "ce_max", "ce_tmax")
PARAM_METRICS = ("auc", "c_at", "ce_at", "time_above", "ce_time_above")
#: Metrics that scale with concentration (0 at dose 0); the others are times (NaN at dose 0
#: for ``tmax``/``ce_tmax``; 0 for ``time_above``).
CONC_KINDS = ("cmax", "auc", "auc_inf", "ce_max", "c_at", "ce_at")
#: Largest time (h) or threshold accepted after ``:``.
MAX_ARG = 1e6


@dataclass(frozen=True)
class Metric:
    """A parsed metric name: ``kind`` and its number (time h or threshold) if any."""

    name: str
    kind: str
    arg: float | None = None

    @property
    def needs_effect(self) -> bool:
        return self.kind.startswith("ce_")


def parse_metric(name: str) -> Metric:
    """Parse a metric name (see the module docstring); ``ValueError`` listing the known ones."""
    if not isinstance(name, str):
        raise ValueError(f"an exposure metric is a name such as 'cmax', got {name!r}")
    if name in SIMPLE_METRICS:
        return Metric(name, name)
    kind, sep, arg = name.partition(":")
    if sep and kind in PARAM_METRICS:
        try:
            x = float(arg)
        except ValueError:
            x = float("nan")
        if not (math.isfinite(x) and 0 <= x <= MAX_ARG):
            raise ValueError(f"metric {name!r}: expected a number between 0 and {MAX_ARG:g} "
                             "after ':'")
        return Metric(name, kind, x)
    raise ValueError(f"unknown exposure metric {name!r}; known: {', '.join(SIMPLE_METRICS)}, "
                     + ", ".join(f"{k}:<number>" for k in PARAM_METRICS))
