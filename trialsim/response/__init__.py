"""Exposure → response: probabilities of binary events, indirect responses, clinical-score time courses."""
from trialsim.response.models import BinaryResponse, Emax, Logistic  # noqa: F401
