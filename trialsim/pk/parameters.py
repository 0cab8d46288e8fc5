"""The one declaration of every PK parameter name: its unit and meaning, shared by the linear
(closed-form) and the nonlinear (ODE) structures, the YAML ``pk:`` mapping and
``trialsim show pk``.

Units: time h, amounts mg, volumes L, clearances L/h, rate constants 1/h, concentrations mg/L
(1 mg/L = 1000 ng/mL); fractions are dimensionless (``-``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParamInfo:
    """Unit and meaning of one named parameter."""

    unit: str
    meaning: str


PARAMETERS: dict[str, ParamInfo] = {
    # disposition (mammillary; the parent drug in a parent -> metabolite model)
    "CL": ParamInfo("L/h", "clearance from the central compartment"),
    "V1": ParamInfo("L", "central volume of distribution"),
    "Q2": ParamInfo("L/h", "inter-compartmental clearance, central <-> peripheral 2"),
    "V2": ParamInfo("L", "volume of peripheral compartment 2"),
    "Q3": ParamInfo("L/h", "inter-compartmental clearance, central <-> peripheral 3"),
    "V3": ParamInfo("L", "volume of peripheral compartment 3"),
    "k10": ParamInfo("1/h", "elimination rate constant from the central compartment"),
    "k12": ParamInfo("1/h", "rate constant central -> peripheral 2"),
    "k21": ParamInfo("1/h", "rate constant peripheral 2 -> central"),
    "k13": ParamInfo("1/h", "rate constant central -> peripheral 3"),
    "k31": ParamInfo("1/h", "rate constant peripheral 3 -> central"),
    # absorption and effect site
    "ka": ParamInfo("1/h", "first-order absorption rate constant of the depot"),
    "F": ParamInfo("-", "bioavailable fraction of a depot dose"),
    "tlag": ParamInfo("h", "absorption lag time of depot doses"),
    "ke0": ParamInfo("1/h", "effect-site equilibration rate constant (Ce driven by C)"),
    "device_factor": ParamInfo("-", "bioavailability multiplier of the 2nd and later devices of "
                                    "one administration"),
    # hepato-portal intranasal structure (Perez-Ruixo 2021)
    "Qh": ParamInfo("L/h", "hepatic blood flow, central <-> hepato-portal compartment"),
    "Vh": ParamInfo("L", "hepato-portal volume"),
    "kel": ParamInfo("1/h", "hepatic elimination rate constant (to other metabolites)"),
    "kmet": ParamInfo("1/h", "hepatic rate constant of metabolism to the main metabolite"),
    "FRn": ParamInfo("-", "fraction of a nasal device absorbed through the nasal mucosa"),
    "ka_sw": ParamInfo("1/h", "absorption rate constant of the swallowed part (gut depot -> "
                              "liver)"),
    "Dsw": ParamInfo("h", "duration of the zero-order input of the swallowed part into the gut "
                          "depot"),
    "Fgut": ParamInfo("-", "fraction of a swallowed dose escaping gut-wall metabolism"),
    # nonlinear elimination and metabolites
    "Vmax": ParamInfo("mg/h", "maximal Michaelis-Menten elimination rate"),
    "Km": ParamInfo("mg/L", "concentration at half-maximal elimination"),
    "fm": ParamInfo("-", "fraction of the parent clearance forming the metabolite"),
    "CLm": ParamInfo("L/h", "metabolite clearance"),
    "Vm": ParamInfo("L", "metabolite central volume"),
    "Qm": ParamInfo("L/h", "metabolite inter-compartmental clearance"),
    "Vm2": ParamInfo("L", "metabolite peripheral volume"),
    "mw_ratio": ParamInfo("-", "MW(metabolite) / MW(parent)"),
}

#: Parameters that may be 0 (all others must be > 0).
MAY_BE_ZERO = frozenset({"tlag", "Dsw", "fm"})


def info(name: str) -> ParamInfo:
    """Unit and meaning of ``name``; ``KeyError`` naming the known parameters."""
    try:
        return PARAMETERS[name]
    except KeyError:
        raise KeyError(f"unknown PK parameter {name!r}; known: {', '.join(PARAMETERS)}") from None
