"""trialsim: simulate dose-finding clinical trials end to end.

>>> import trialsim as ts
>>> study = ts.load("configs/examples/crm_direct.yaml")
>>> sims = ts.simulate(study, n_trials=1000, seed=1)
>>> sims.summary()  # doctest: +SKIP
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trialsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from trialsim.config import from_dict, load  # noqa: E402,F401
from trialsim.outcomes import TrialHistory  # noqa: E402,F401
from trialsim.registry import register  # noqa: E402,F401
from trialsim.results import Simulations  # noqa: E402,F401
from trialsim.simulate import simulate  # noqa: E402,F401
from trialsim.compare import compare  # noqa: E402,F401
from trialsim.study import Study  # noqa: E402,F401
