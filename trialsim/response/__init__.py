"""Exposure → response: the outcome-model protocol (:mod:`.base`), probabilities of binary
events (:mod:`.models`), clinical-score time courses (:mod:`.timecourse`), and Jusko indirect
responses for PK/PD time courses from Python (:mod:`.indirect`)."""
from trialsim.response.base import OutcomeModel  # noqa: F401
from trialsim.response.indirect import IndirectResponse  # noqa: F401
from trialsim.response.models import BinaryResponse, Emax, Logistic  # noqa: F401
from trialsim.response.timecourse import MadrsTimeCourse  # noqa: F401
