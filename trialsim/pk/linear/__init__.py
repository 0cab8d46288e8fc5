"""The closed-form engine: linear 1-, 2- and 3-compartment models (and the hepato-portal
intranasal structure) solved exactly by superposition in numba kernels (:mod:`._kernels`).

:mod:`.models` holds the structures, :mod:`.engine` the vectorised profiles, amounts and
streamed metrics, :mod:`.exposures` the metrics of every patient at every dose level.
"""
from trialsim.pk.linear.engine import (amounts, concentrations, exposure_metrics, prepare,
                                       profiles, run_metrics)
from trialsim.pk.linear.exposures import linear_exposures
from trialsim.pk.linear.models import (Clearances, HepatoPortalNasal, LinearStructure,
                                       Mammillary, MicroConstants, clearances_from_micro,
                                       micro_from_clearances)

__all__ = ["amounts", "concentrations", "exposure_metrics", "prepare", "profiles",
           "run_metrics", "linear_exposures", "Clearances", "HepatoPortalNasal",
           "LinearStructure", "Mammillary", "MicroConstants", "clearances_from_micro",
           "micro_from_clearances"]
