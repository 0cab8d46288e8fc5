"""Exposure → response: probabilities of binary events, indirect responses, clinical-score time courses."""
from trialsim.response.indirect import IndirectResponse  # noqa: F401
from trialsim.response.models import BinaryResponse, Emax, Logistic  # noqa: F401
from trialsim.response.timecourse import MadrsTimeCourse  # noqa: F401
