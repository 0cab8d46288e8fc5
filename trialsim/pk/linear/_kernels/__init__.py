"""Numba kernels of the linear PK engine: exact closed forms (and, over the short steps of the
metrics walk, their Taylor series, exact to rounding too), no ODE solver.  This module is the
one import point of the subpackage; each concept lives in its own module:

* :mod:`trialsim.pk.linear._kernels.divdiff` — divided differences ``D[x0..xm](dt)`` of decaying
  exponentials (:func:`dd1`, :func:`dd2`, :func:`dd3`);
* :mod:`trialsim.pk.linear._kernels.eigen` — eigenvalues and modal gains of the disposition
  (:func:`modes`, :func:`modes_batch`);
* :mod:`trialsim.pk.linear._kernels.step` — dose events, the exact superposition step and the walk
  that records concentrations at requested times (:func:`profile_kernel`);
* :mod:`trialsim.pk.linear._kernels.series` — the Taylor series of the state over a short step;
* :mod:`trialsim.pk.linear._kernels.cell` — evaluation inside a grid cell, extrema and threshold
  crossings refined to :data:`ROOT_TOL_H`;
* :mod:`trialsim.pk.linear._kernels.tail` — the certificate that C and Ce decrease for good once
  every input has ended;
* :mod:`trialsim.pk.linear._kernels.metric` — the streamed exposure metrics (:func:`metrics_kernel`).

Units: time h, amounts mg, volumes L, rate constants 1/h, concentrations mg/L.  Kernels take
arrays and numbers only; :mod:`trialsim.pk.linear.engine` unpacks the dataclasses.
"""
from __future__ import annotations

from trialsim.pk.linear._kernels.cell import ROOT_TOL_H
from trialsim.pk.linear._kernels.divdiff import SPREAD, dd1, dd2, dd3
from trialsim.pk.linear._kernels.eigen import modes, modes_batch
from trialsim.pk.linear._kernels.metric import metrics_kernel
from trialsim.pk.linear._kernels.step import profile_kernel
from trialsim.pk.linear._kernels.tail import tail_decreasing

__all__ = ["SPREAD", "ROOT_TOL_H", "dd1", "dd2", "dd3", "modes", "modes_batch", "profile_kernel",
           "metrics_kernel", "tail_decreasing"]
