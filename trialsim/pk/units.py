"""Concentration units.  The engines work in mg/L (= µg/mL); the simulator reports ng/mL."""
from __future__ import annotations

import numpy as np

#: ng/mL per mg/L.
NG_PER_ML_PER_MG_PER_L = 1000.0
#: Concentration units: factor from mg/L.
CONC_UNITS = {"mg/L": 1.0, "ug/mL": 1.0, "µg/mL": 1.0, "ng/mL": NG_PER_ML_PER_MG_PER_L}


def conc_factor(unit: str) -> float:
    """Multiplier from mg/L to ``unit`` (ng/mL: 1000)."""
    try:
        return CONC_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown concentration unit {unit!r}; known: {sorted(CONC_UNITS)}") from None


def to_ng_per_ml(c_mg_per_l):
    """mg/L (= µg/mL) → ng/mL."""
    return np.asarray(c_mg_per_l) * NG_PER_ML_PER_MG_PER_L


def to_mg_per_l(c_ng_per_ml):
    """ng/mL → mg/L."""
    return np.asarray(c_ng_per_ml) / NG_PER_ML_PER_MG_PER_L
