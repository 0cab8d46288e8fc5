"""Pharmacokinetics: two engines behind one interface.

* :mod:`trialsim.pk.linear` — linear compartment models solved in closed form (numba);
* :mod:`trialsim.pk.ode` — nonlinear models integrated numerically (numba Dormand–Prince);
* shared by both: the parameter table (:mod:`.parameters`), units (:mod:`.units`), metric
  names (:mod:`.metrics`), regimens and routes (:mod:`.regimen`), variability
  (:mod:`.variability`), the structure contract (:mod:`.structure`), the resolved model
  (:class:`PKSpec`) and :func:`pk_exposures`.

Units: time h, amounts mg, volumes L, clearances L/h, rate constants 1/h; concentrations are
mg/L (= µg/mL) inside the engines and **ng/mL** (= mg/L × 1000) in :func:`pk_exposures`.

Main entry points

* :func:`pk_exposures` — exposure metrics of every patient at every dose level (simulator).
* :class:`PKSpec` — a resolved model (built from a YAML ``pk:`` mapping by
  :mod:`trialsim.config.pk`, or :func:`from_library`).
* :func:`draw_eta` — random effects (n, n_eta) from a patient's Generator.
* :func:`concentrations`, :func:`profiles`, :func:`amounts`, :func:`exposure_metrics` —
  vectorised curves and streamed metrics of the linear engine.
* :mod:`trialsim.pk.library` — ``available()``, ``describe(name)``, ``pd_constant(name)``.
"""
from __future__ import annotations

from trialsim.pk.exposure import check_metrics, pk_exposures
from trialsim.pk.library import available, describe, entry, from_library, pd_constant
from trialsim.pk.linear import (Clearances, HepatoPortalNasal, Mammillary, MicroConstants,
                                amounts, clearances_from_micro, concentrations, exposure_metrics,
                                micro_from_clearances, prepare, profiles, run_metrics)
from trialsim.pk.metrics import CONC_KINDS, Metric, parse_metric
from trialsim.pk.parameters import PARAMETERS
from trialsim.pk.regimen import (Bolus, Devices, DoseEvent, FirstOrder, Infusion, Regimen, Route,
                                 Schedule)
from trialsim.pk.spec import PKSpec
from trialsim.pk.structure import Structure
from trialsim.pk.units import conc_factor, to_mg_per_l, to_ng_per_ml
from trialsim.pk.variability import (Allometry, CategoricalEffect, CovariateEffect, LinearEffect,
                                     Omega, draw_eta, individual_parameters)

__all__ = [
    "pk_exposures", "check_metrics", "PKSpec", "from_library", "draw_eta",
    "individual_parameters", "concentrations", "profiles", "amounts", "exposure_metrics",
    "prepare", "run_metrics", "to_ng_per_ml", "to_mg_per_l", "conc_factor", "available",
    "describe", "entry", "pd_constant", "PARAMETERS", "Structure", "Clearances",
    "MicroConstants", "Mammillary", "HepatoPortalNasal", "micro_from_clearances",
    "clearances_from_micro", "Regimen", "DoseEvent", "Route", "Bolus", "Infusion", "FirstOrder",
    "Devices", "Schedule", "Omega", "Allometry", "CovariateEffect", "CategoricalEffect",
    "LinearEffect", "Metric", "parse_metric", "CONC_KINDS",
]

