"""Randomised phase II dose-ranging trials: the study (:mod:`.study`), the simulation
(:mod:`.simulate`), the truth (:mod:`.truth`) and the results (:mod:`.results`)."""
from trialsim.phase2.results import Phase2Simulations  # noqa: F401
from trialsim.phase2.simulate import simulate_phase2  # noqa: F401
from trialsim.phase2.study import Analysis, Decision, Dropout, Endpoint, Phase2Study  # noqa: F401
from trialsim.phase2.truth import Phase2Truth, phase2_truth  # noqa: F401
