"""Jusko indirect response models (Dayneka, Garg & Jusko, J Pharmacokinet Biopharm 1993).

The response ``R`` is produced at zero order ``kin`` (response units/h) and lost at first
order ``kout`` (1/h); the drug inhibits or stimulates one of the two::

    I    dR/dt = kin·(1 − I(C)) − kout·R          R falls
    II   dR/dt = kin − kout·(1 − I(C))·R          R rises
    III  dR/dt = kin·(1 + S(C)) − kout·R          R rises
    IV   dR/dt = kin − kout·(1 + S(C))·R          R falls

with ``I(C) = Imax·C^γ/(IC50^γ + C^γ)`` (``emax`` = Imax ≤ 1, ``ec50`` = IC50) and
``S(C) = Smax·C^γ/(SC50^γ + C^γ)`` (``emax`` = Smax, ``ec50`` = SC50), C in mg/L, and
baseline ``R0 = kin/kout``.  Without drug R stays at R0 and returns to it once C has gone;
the peak effect comes later than the peak concentration, and later the higher the dose
(Sharma & Jusko, Br J Clin Pharmacol 1998) — for model IV only once the stimulation
saturates, as at low doses its faster turnover ``kout·(1 + S)`` makes the peak slightly
earlier.

Two ways to drive the response: jointly with an ODE PK model (:meth:`IndirectResponse.simulate`,
one system of PK states + R solved together, exact), or from a concentration time course on
a grid (:meth:`IndirectResponse.from_concentration`, C linearly interpolated, e.g. from the
closed-form PK engine).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from trialsim.pk.ode import (DEFAULT_ATOL, DEFAULT_MAX_STEPS, DEFAULT_RTOL, ODESystem, as_hours,
                             observable, parameter_matrix, solve)
from trialsim.pk.regimen import Regimen
from trialsim.response import _kernels as RK
from trialsim.spec import spec

MODEL_CODES = {"I": 1, "II": 2, "III": 3, "IV": 4}
PD_PARAM_NAMES = ("kin", "kout", "emax", "ec50", "hill", "model_code")


@dataclass(frozen=True)
class IndirectResult:
    """Joint PK/PD time course: ``concentration`` (mg/L) and ``response`` (response units),
    both (n, n_times), at ``times_h``."""

    times_h: np.ndarray
    concentration: np.ndarray
    response: np.ndarray


@spec
class IndirectResponse:
    """One Jusko indirect response model (see the module docstring for the equations)."""

    model: Literal["I", "II", "III", "IV"]
    kin: float = Field(gt=0, description="zero-order production rate, response units/h")
    kout: float = Field(gt=0, description="first-order loss rate constant, 1/h")
    emax: float = Field(gt=0, description="Imax (models I, II; at most 1) or Smax (III, IV)")
    ec50: float = Field(gt=0, description="IC50 (I, II) or SC50 (III, IV), mg/L")
    hill: float = Field(1.0, gt=0, description="Hill exponent γ")

    def __post_init__(self) -> None:
        if self.model in ("I", "II") and self.emax > 1:
            raise ValueError(f"emax is Imax for inhibition model {self.model} and must be "
                             f"<= 1, got {self.emax}")

    @property
    def baseline(self) -> float:
        """``R0 = kin/kout`` (response units)."""
        return self.kin / self.kout

    @property
    def direction(self) -> int:
        """+1 if the drug raises the response (II, III), -1 if it lowers it (I, IV)."""
        return 1 if self.model in ("II", "III") else -1

    def _check(self, params: Any) -> None:
        """Per-patient PD overrides keep the constraints of the fields."""
        if not params or isinstance(params, np.ndarray):
            return
        if "model_code" in params:
            raise ValueError("model_code is fixed by the model type; it cannot vary by patient")
        for k in ("kin", "kout", "ec50", "hill"):
            if k in params and np.any(np.asarray(params[k], dtype=float) <= 0):
                raise ValueError(f"{k} must be > 0 for every patient")
        if "emax" in params:
            e = np.asarray(params["emax"], dtype=float)
            inhibition = self.model in ("I", "II")
            if np.any(e <= 0) or (inhibition and np.any(e > 1)):
                raise ValueError("emax must be > 0" + (" and <= 1 (Imax)" if inhibition else "")
                                 + " for every patient")

    def pd_values(self) -> tuple[float, ...]:
        return (self.kin, self.kout, self.emax, self.ec50, self.hill,
                float(MODEL_CODES[self.model]))

    def joint_system(self, pk: Any, analyte: str | None = None) -> ODESystem:
        """PK states + response ``R`` as one ODE system; parameters PK + ``PD_PARAM_NAMES``.

        ``pk`` is an ODE model (with ``.system()``) or an :class:`ODESystem`.
        """
        pks = pk if isinstance(pk, ODESystem) else pk.system()
        clash = set(pks.param_names) & set(PD_PARAM_NAMES)
        if clash:
            raise ValueError(f"PK parameter names {sorted(clash)} clash with the PD ones")
        name, obs, vidx = observable(pks, analyte)
        ns, q = len(pks.state_names), len(pks.param_names)
        rhs = RK.make_joint_rhs(pks.rhs, ns, q, obs, vidx)

        def initial(P, pk_init=pks.initial_state):
            y0 = np.zeros((P.shape[0], ns + 1))
            if pk_init is not None:
                y0[:, :ns] = pk_init(P[:, :q])
            y0[:, ns] = P[:, q] / P[:, q + 1]
            return y0

        obs_name, vol = pks.observables[name]
        return ODESystem(rhs, pks.state_names + ("response",), pks.param_names + PD_PARAM_NAMES,
                         pks.param_values + self.pd_values(), dict(pks.dose_states),
                         {"parent": (obs_name, vol), "response": ("response", None)},
                         dict(pks.bioavailability), initial, f"{pks.name}+indirect_{self.model}",
                         dict(pks.lag))

    def simulate(self, pk: Any, regimen: Regimen, times_h, params: Any = None, *,
                 analyte: str | None = None, dose_scale=None, rtol: float = DEFAULT_RTOL,
                 atol: float = DEFAULT_ATOL, max_steps: int = DEFAULT_MAX_STEPS) -> IndirectResult:
        """Concentration and response of every patient at ``times_h`` (PK and PD solved
        jointly).  ``params`` may override PK and PD parameters per patient by name."""
        self._check(params)
        system = self.joint_system(pk, analyte)
        y = solve(system, regimen, times_h, params, dose_scale=dose_scale, rtol=rtol,
                  atol=atol, max_steps=max_steps)
        P = parameter_matrix(system, params, y.shape[0])
        state, vol = system.observables["parent"]
        v = P[:, system.param_names.index(vol)] if vol else np.ones(y.shape[0])
        conc = y[:, :, system.state_names.index(state)] / v[:, None]
        return IndirectResult(as_hours(times_h), conc, y[:, :, -1])

    def from_concentration(self, t_grid_h, conc, times_h, params: Any = None, *,
                           rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                           max_steps: int = DEFAULT_MAX_STEPS) -> np.ndarray:
        """Response (n, n_times) driven by C (mg/L) given on a grid.

        ``t_grid_h`` (m,) sorted, from 0, covering ``times_h``; ``conc`` (m,) or (n, m); C is
        linearly interpolated between grid points (which are integration breakpoints), so
        the grid must resolve the concentration curve.  ``params`` may override the PD
        parameters per patient (mapping name -> (n,) array).
        """
        self._check(params)
        tg = as_hours(t_grid_h)
        tt = as_hours(times_h)
        cg = np.atleast_2d(np.asarray(conc, dtype=np.float64))
        if tg.size < 2 or tg[0] != 0.0 or cg.shape[-1] != tg.size:
            raise ValueError("t_grid_h must start at 0, have >= 2 points and match the last "
                             "axis of conc")
        if tt.size and tt[-1] > tg[-1]:
            raise ValueError(f"times_h reach {tt[-1]} h, beyond the grid end {tg[-1]} h")
        m = tg.size
        grid_names = ("m",) + tuple(f"t{i}" for i in range(m)) + tuple(f"c{i}" for i in range(m))
        pd_sys = ODESystem(RK.indirect_grid_rhs, ("response",), PD_PARAM_NAMES + grid_names,
                           self.pd_values() + (float(m),) + tuple(tg) + (0.0,) * m, {},
                           {"response": ("response", None)},
                           initial_state=lambda P: P[:, 0:1] / P[:, 1:2],
                           name=f"indirect_{self.model}")
        Ppd = parameter_matrix(pd_sys, params)
        n = max(Ppd.shape[0], cg.shape[0])
        if {Ppd.shape[0], cg.shape[0]} - {1, n}:
            raise ValueError(f"{cg.shape[0]} concentration rows for {Ppd.shape[0]} parameter rows")
        P = np.array(np.broadcast_to(Ppd, (n, Ppd.shape[1])))
        P[:, P.shape[1] - m:] = np.broadcast_to(cg, (n, m))
        y = solve(pd_sys, Regimen(()), tt, P, rtol=rtol, atol=atol, max_steps=max_steps,
                  breakpoints_h=tg)
        return y[:, :, 0]
