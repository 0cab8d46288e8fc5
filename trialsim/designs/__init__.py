"""Dose-finding designs: the contract (:mod:`.base`), the escalation designs, the modifiers
that wrap a design and the stopping rules they apply.  Importing this package registers them:
``design`` kinds ``three_plus_three``, ``accelerated_titration``, ``crm``, ``blrm``, ``boin``,
``mtpi2``, ``keyboard``, ``i3plus3``, ``boin12``, ``efftox`` and ``tite_crm``; ``modifier`` kinds
``dont_skip_doses``, ``coherent_escalation``, ``cohort_sizes``, ``stop_at_n``,
``stop_when_too_toxic``, ``backfill`` and ``stop_when`` (with the ``stopping_rule`` kinds); ``phase2_design``
kinds ``parallel``, ``adaptive`` and ``spcd``."""
from trialsim.designs.accelerated import AcceleratedTitration
from trialsim.designs.backfill import Backfill
from trialsim.designs.adaptive import Adaptive
from trialsim.designs.blrm import BLRM
from trialsim.designs.boin12 import BOIN12
from trialsim.designs.base import NO_DOSE, BatchDecision, BatchState, Decision, Design
from trialsim.designs.crm import CRM
from trialsim.designs.efftox import EffTox
from trialsim.designs.interval import BOIN, MTPI2, I3Plus3, IntervalDesign, Keyboard
from trialsim.designs.modifiers import (CoherentEscalation, CohortSizes, DontSkipDoses,
                                        Modifier, StopAtN, StopWhenTooToxic)
from trialsim.designs.phase2 import Parallel
from trialsim.designs.spcd import SPCD
from trialsim.designs.stopping import (AllOf, AnyOf, NAtRecommended, NPatients, StoppingRule,
                                       StopWhen, TargetProbability, TooToxic)
from trialsim.designs.three_plus_three import ThreePlusThree
from trialsim.designs.tite_crm import TITECRM
from trialsim.designs.wages_tait import WagesTait

__all__ = [
    "NO_DOSE", "BatchDecision", "BatchState", "Decision", "Design",
    "CRM", "TITECRM", "BLRM", "BOIN12", "EffTox", "WagesTait", "ThreePlusThree", "AcceleratedTitration",
    "IntervalDesign", "BOIN", "MTPI2",
    "Keyboard", "I3Plus3", "Modifier", "DontSkipDoses", "CoherentEscalation", "CohortSizes", "StopAtN",
    "StopWhenTooToxic", "Backfill",
    "Parallel", "Adaptive", "SPCD", "StoppingRule", "AnyOf", "AllOf", "NPatients",
    "NAtRecommended", "TooToxic", "TargetProbability", "StopWhen",
]
