"""Sweeps over many studies (cells), split into tasks of (cell, trial range) whose results are
bit-identical whatever the backend, the number of workers or the chunk size: a task's
randomness comes from its trials' own streams.  :mod:`.tasks` runs one task and stores it,
:mod:`.run` plans and runs a sweep (serially or in local processes, resuming finished tasks),
:mod:`.collect` combines the stored tasks into tables."""
from trialsim.sweep.collect import collect  # noqa: F401
from trialsim.sweep.run import run_sweep  # noqa: F401
