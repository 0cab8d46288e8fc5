"""Linear compartment models: clearance ↔ micro-constant conversions, and the structures that
turn per-patient parameter arrays into the arrays the closed-form kernels take.

Units: time h, amounts mg, volumes L, clearances L/h, rate constants 1/h, concentrations mg/L
(= µg/mL; 1 mg/L = 1000 ng/mL); every parameter name is declared once, with its unit, in
:data:`trialsim.pk.parameters.PARAMETERS`.

A *structure* (:class:`Mammillary`, :class:`HepatoPortalNasal`) holds typical values.
``parameters()`` lists them by name, ``replace(**values)`` overrides some, ``system(v, n)``
builds a :class:`LinearSystem` from per-patient values ``v`` (name → (n,) array; missing
names take the typical value) and ``kernel_events(regimen, v, n)`` the :class:`KernelEvents`
(bioavailability and depot routing applied per patient and event).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace as _dc_replace
from typing import Annotated, NamedTuple

import numpy as np
from pydantic import Field

from trialsim.pk.regimen import Regimen
from trialsim.pk.structure import ParameterError, Structure
from trialsim.registry import register
from trialsim.spec import spec

Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class LinearSystem(NamedTuple):
    """Kernel arrays of n patients: central volume ``V1`` (n,) L, ``k10`` (n,) 1/h, peripheral
    rate constants ``k1p``/``kp1``/``kp0`` (n, P) 1/h (out of central, back, eliminated from the
    peripheral), depot ``ka`` and ``tlag`` (n, ND), ``site`` (ND,) compartment fed by each depot
    (0 central, j peripheral j), ``ke0`` (n,) 1/h and ``has_ce``."""

    V1: np.ndarray
    k10: np.ndarray
    k1p: np.ndarray
    kp1: np.ndarray
    kp0: np.ndarray
    ka: np.ndarray
    tlag: np.ndarray
    site: np.ndarray
    ke0: np.ndarray
    has_ce: bool

    @property
    def n(self) -> int:
        return self.V1.shape[0]


class KernelEvents(NamedTuple):
    """Dose events as kernel arrays: time ``t`` (E,) h, amount ``amt`` (E,) mg, duration
    ``dur`` (1 or n, E) h, channel ``chan`` (E,) (0 central, 1 + d depot d), bioavailable
    fraction ``f`` (1 or n, E)."""

    t: np.ndarray
    amt: np.ndarray
    dur: np.ndarray
    chan: np.ndarray
    f: np.ndarray


def _pairs(obj, pairs) -> None:
    for a, b in pairs:
        if (getattr(obj, a) is None) != (getattr(obj, b) is None):
            raise ValueError(f"{a} and {b} go together: give both or neither")


@spec
class Clearances:
    """Mammillary disposition by clearances (L/h) and volumes (L): 1, 2 or 3 compartments."""

    CL: Pos
    V1: Pos
    Q2: Pos | None = None
    V2: Pos | None = None
    Q3: Pos | None = None
    V3: Pos | None = None

    def __post_init__(self):
        _pairs(self, (("Q2", "V2"), ("Q3", "V3")))
        if self.Q3 is not None and self.Q2 is None:
            raise ValueError("a third compartment (Q3, V3) needs a second one (Q2, V2)")

    @property
    def n_compartments(self) -> int:
        return 1 + (self.Q2 is not None) + (self.Q3 is not None)

    def parameters(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("CL", "V1", "Q2", "V2", "Q3", "V3")
                if getattr(self, k) is not None}

    def to_micro(self) -> "MicroConstants":
        return MicroConstants(**{k: float(v) for k, v in micro_from_clearances(**self.parameters()).items()})

    def to_clearances(self) -> "Clearances":
        return self


@spec
class MicroConstants:
    """Mammillary disposition by micro-constants (1/h) and the central volume V1 (L)."""

    V1: Pos
    k10: Pos
    k12: Pos | None = None
    k21: Pos | None = None
    k13: Pos | None = None
    k31: Pos | None = None

    def __post_init__(self):
        _pairs(self, (("k12", "k21"), ("k13", "k31")))
        if self.k13 is not None and self.k12 is None:
            raise ValueError("a third compartment (k13, k31) needs a second one (k12, k21)")

    @property
    def n_compartments(self) -> int:
        return 1 + (self.k12 is not None) + (self.k13 is not None)

    def parameters(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("V1", "k10", "k12", "k21", "k13", "k31")
                if getattr(self, k) is not None}

    def to_clearances(self) -> Clearances:
        return Clearances(**{k: float(v) for k, v in clearances_from_micro(**self.parameters()).items()})

    def to_micro(self) -> "MicroConstants":
        return self


def micro_from_clearances(CL, V1, Q2=None, V2=None, Q3=None, V3=None) -> dict:
    """k10 = CL/V1, k12 = Q2/V1, k21 = Q2/V2, k13 = Q3/V1, k31 = Q3/V3 (scalars or arrays)."""
    out = {"V1": V1, "k10": np.divide(CL, V1)}
    if Q2 is not None:
        out.update(k12=np.divide(Q2, V1), k21=np.divide(Q2, V2))
    if Q3 is not None:
        out.update(k13=np.divide(Q3, V1), k31=np.divide(Q3, V3))
    return out


def clearances_from_micro(V1, k10, k12=None, k21=None, k13=None, k31=None) -> dict:
    """CL = k10 V1, Q2 = k12 V1, V2 = V1 k12/k21, Q3 = k13 V1, V3 = V1 k13/k31."""
    out = {"CL": np.multiply(k10, V1), "V1": V1}
    if k12 is not None:
        out.update(Q2=np.multiply(k12, V1), V2=np.multiply(V1, np.divide(k12, k21)))
    if k13 is not None:
        out.update(Q3=np.multiply(k13, V1), V3=np.multiply(V1, np.divide(k13, k31)))
    return out


def _col(v: Mapping, name: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v[name], dtype=np.float64), (n,))


class LinearStructure(Structure):
    """Shared behaviour of the closed-form structures (typical values in fields)."""

    _own: tuple[str, ...] = ()

    def parameters(self) -> dict[str, float]:  # pragma: no cover - overridden
        raise NotImplementedError

    def values(self, v: Mapping[str, np.ndarray] | None, n: int) -> dict[str, np.ndarray]:
        """Per-patient values (n,) of every parameter: ``v`` where given, typical otherwise."""
        v = dict(v or {})
        typ = self.parameters()
        unknown = sorted(set(v) - set(typ))
        if unknown:
            raise KeyError(f"not parameters of this model: {unknown}; known: {sorted(typ)}")
        return {k: _col(v if k in v else typ, k, n) for k in typ}



@register("pk_structure", "mammillary")
@spec
class Mammillary(LinearStructure):
    """1-, 2- or 3-compartment mammillary model with optional depot (first-order absorption:
    ``ka``, bioavailability ``F``, lag ``tlag``; ``device_factor`` multiplies F for the 2nd and
    later devices of one administration) and optional effect compartment (``ke0``)."""

    disposition: Clearances | MicroConstants
    ka: Pos | None = None
    F: Pos = 1.0
    tlag: NonNeg = 0.0
    ke0: Pos | None = None
    device_factor: Pos = 1.0

    _own = ("ka", "F", "tlag", "ke0", "device_factor")
    _DISPOSITION = ("CL", "V1", "Q2", "V2", "Q3", "V3", "k10", "k12", "k21", "k13", "k31")

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        return cls._DISPOSITION + cls._own

    @classmethod
    def from_parameters(cls, values: Mapping[str, float]) -> "Mammillary":
        """Clearances (CL, V1 [, Q2, V2 [, Q3, V3]]) or micro-constants (V1, k10 [, k12, k21
        [, k13, k31]]), plus the absorption and effect-site parameters."""
        own = {k: v for k, v in values.items() if k in cls._own}
        disp = {k: v for k, v in values.items() if k not in cls._own}
        if "CL" in disp:
            kind = Clearances
        elif "k10" in disp:
            kind = MicroConstants
        else:
            raise ValueError("a mammillary model needs CL and V1 (clearances: Q2, V2, Q3, V3 for "
                             "more compartments) or V1 and k10 (micro-constants: k12, k21, k13, "
                             "k31)")
        bad = [k for k in disp if k not in kind.__dataclass_fields__]
        if bad:
            raise ParameterError(bad[0], f"{bad[0]} does not belong to a {kind.__name__} model "
                                         f"({', '.join(kind.__dataclass_fields__)})")
        return cls(disposition=kind(**disp), **own)

    def parameters(self) -> dict[str, float]:
        """Disposition parameters, absorption ones (ka, F, tlag, device_factor) when ka is set,
        and ke0 when set."""
        out = dict(self.disposition.parameters())
        own = self._own if self.ka is not None else ("ke0",)
        out.update({k: getattr(self, k) for k in own if getattr(self, k) is not None})
        return out

    def replace(self, **values) -> "Mammillary":
        """A copy with some parameters replaced (disposition and absorption names alike)."""
        disp = {k: v for k, v in values.items() if k not in self._own}
        known = set(type(self.disposition).__dataclass_fields__)
        bad = sorted(set(disp) - known)
        if bad:
            raise KeyError(f"not parameters of this model: {bad}; known: {sorted(known | set(self._own))}")
        d = _dc_replace(self.disposition, **disp) if disp else self.disposition
        return _dc_replace(self, disposition=d, **{k: v for k, v in values.items() if k in self._own})

    def system(self, v: Mapping[str, np.ndarray] | None = None, n: int = 1) -> LinearSystem:
        v = self.values(v, n)
        if isinstance(self.disposition, Clearances):
            mc = micro_from_clearances(**{k: v[k] for k in self.disposition.parameters()})
        else:
            mc = {k: v[k] for k in self.disposition.parameters()}
        P = self.disposition.n_compartments - 1
        k1p = np.empty((n, P))
        kp1 = np.empty((n, P))
        for j, (a, b) in enumerate((("k12", "k21"), ("k13", "k31"))[:P]):
            k1p[:, j] = mc[a]
            kp1[:, j] = mc[b]
        nd = 0 if self.ka is None else 1
        ka = v["ka"].reshape(n, 1) if nd else np.empty((n, 0))
        tlag = v["tlag"].reshape(n, 1) if nd else np.empty((n, 0))
        ke0 = v["ke0"] if self.ke0 is not None else np.zeros(n)
        return LinearSystem(np.ascontiguousarray(mc["V1"], dtype=float), np.ascontiguousarray(mc["k10"]),
                            k1p, kp1, np.zeros((n, P)), np.ascontiguousarray(ka),
                            np.ascontiguousarray(tlag), np.zeros(nd, np.int64),
                            np.ascontiguousarray(ke0, dtype=float), self.ke0 is not None)

    def kernel_events(self, regimen: Regimen, v: Mapping[str, np.ndarray] | None = None,
                      n: int = 1) -> KernelEvents:
        t, amt, dur, chan = regimen.arrays()
        depot = chan == 1
        if depot.any() and self.ka is None:
            raise ValueError("depot doses need an absorption rate constant ka in the model")
        if not depot.any():
            return KernelEvents(t, amt, dur[None, :], chan, np.ones((1, len(t))))
        v = self.values(v, n)
        later = (regimen.devices() > 0)[None, :]
        f = np.where(depot[None, :], v["F"][:, None] * np.where(later, v["device_factor"][:, None], 1.0), 1.0)
        return KernelEvents(t, amt, dur[None, :], chan, np.ascontiguousarray(f))


@register("pk_structure", "hepatoportal_nasal")
@spec
class HepatoPortalNasal(LinearStructure):
    """Perez-Ruixo et al. (2021) esketamine structure: 3-compartment disposition (V1, Q2/V2,
    Q3/V3) plus a hepato-portal compartment (Vh, exchanging Qh with central, eliminating at
    kel + kmet: well-stirred first pass, systemic CL = Qh·E with E = Vh(kel+kmet)/(Qh +
    Vh(kel+kmet))).  A ``depot`` dose is a nasal device: FRn' = FRn (× device_factor for the
    2nd and later devices) is absorbed from the nasal depot (ka) into central; the swallowed
    rest, (1 − FRn')·Fgut, enters a gut depot at zero order over Dsw and moves at ka_sw into
    the liver (first pass).  ``central`` doses are IV.  Everything is linear: exact."""

    V1: Pos
    Q2: Pos
    V2: Pos
    Q3: Pos
    V3: Pos
    Qh: Pos
    Vh: Pos
    kel: Pos
    kmet: Pos
    ka: Pos
    FRn: Fraction
    device_factor: Pos
    ka_sw: Pos
    Dsw: NonNeg
    Fgut: Fraction
    tlag: NonNeg = 0.0
    ke0: Pos | None = None

    def parameters(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if getattr(self, k) is not None}

    def replace(self, **values) -> "HepatoPortalNasal":
        bad = sorted(set(values) - set(self.__dataclass_fields__))
        if bad:
            raise KeyError(f"not parameters of this model: {bad}; known: {sorted(self.__dataclass_fields__)}")
        return _dc_replace(self, **values)

    def systemic_clearance(self) -> float:
        """Qh·E (L/h), the clearance seen from plasma."""
        cli = self.Vh * (self.kel + self.kmet)
        return self.Qh * cli / (self.Qh + cli)

    def system(self, v: Mapping[str, np.ndarray] | None = None, n: int = 1) -> LinearSystem:
        v = self.values(v, n)
        k1p = np.stack([v["Q2"] / v["V1"], v["Q3"] / v["V1"], v["Qh"] / v["V1"]], axis=1)
        kp1 = np.stack([v["Q2"] / v["V2"], v["Q3"] / v["V3"], v["Qh"] / v["Vh"]], axis=1)
        kp0 = np.zeros((n, 3))
        kp0[:, 2] = v["kel"] + v["kmet"]
        ka = np.stack([v["ka"], v["ka_sw"]], axis=1)
        tlag = np.stack([v["tlag"], v["tlag"]], axis=1)
        ke0 = v["ke0"] if self.ke0 is not None else np.zeros(n)
        return LinearSystem(np.ascontiguousarray(v["V1"]), np.zeros(n), k1p, kp1, kp0, ka, tlag,
                            np.array([0, 3], np.int64), np.ascontiguousarray(ke0, dtype=float),
                            self.ke0 is not None)

    def kernel_events(self, regimen: Regimen, v: Mapping[str, np.ndarray] | None = None,
                      n: int = 1) -> KernelEvents:
        t, amt, dur, chan = regimen.arrays()
        dev = regimen.devices()
        v = self.values(v, n)
        ts, amts, durs, chans, fs = [], [], [], [], []
        for e in range(len(t)):
            if chan[e] == 0:
                ts.append(t[e]), amts.append(amt[e]), chans.append(0)
                durs.append(np.full(n, dur[e])), fs.append(np.ones(n))
                continue
            frn = np.clip(v["FRn"] * (v["device_factor"] if dev[e] > 0 else 1.0), 0.0, 1.0)
            ts += [t[e], t[e]]
            amts += [amt[e], amt[e]]
            chans += [1, 2]
            durs += [np.full(n, dur[e]), v["Dsw"].copy()]
            fs += [frn, (1.0 - frn) * v["Fgut"]]
        E = len(ts)
        return KernelEvents(np.array(ts, float), np.array(amts, float),
                            np.ascontiguousarray(np.array(durs).reshape(E, n).T),
                            np.array(chans, np.int64),
                            np.ascontiguousarray(np.array(fs).reshape(E, n).T))

