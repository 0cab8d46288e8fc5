"""Virtual patients: covariate distributions, IIV random effects and latent draws."""
from trialsim.population.distributions import (  # noqa: F401
    Categorical, Distribution, LogNormal, Normal, TruncatedNormal, Uniform)
from trialsim.population.patients import Eligibility, Population, VirtualPatients  # noqa: F401
