"""Named, cited published PK parameter sets (adult ketamine / esketamine) and PD constants.

Every number comes from the project's parameter dossier ``docs/parameters.md`` (§2 PK, §3.1 PD
constants), which gives the primary sources and a verification tag for each: **V** read in the
primary paper/abstract, **V-code** read in a public implementation citing the paper (opentiva,
nlmixr2lib), **D** derived (unit conversion), **U** unverified.
Source rate constants per minute are converted to per hour (× 60); weight-normalised volumes
(L/kg) become a 70-kg value with allometric exponent 1 (so ``V1 = 0.063 × WT`` exactly).

``available()`` lists every model and ``available_ode()`` the nonlinear (ODE, :mod:`trialsim.pk.ode`)
ones among them, ``entry(name)`` returns a :class:`LibraryEntry`,
``describe(name)`` renders its parameter table with units and citation, and
``pd_constant(name)`` gives the named PD constants (Olofsen 2022 ke0 and C50).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from trialsim.pk.linear.models import Clearances, HepatoPortalNasal, Mammillary, MicroConstants
from trialsim.pk.ode.models import ParentMetabolite
from trialsim.pk.parameters import PARAMETERS
from trialsim.pk.regimen import Devices, Infusion, Route
from trialsim.pk.spec import PKSpec, route_name
from trialsim.pk.structure import Structure
from trialsim.pk.variability import Allometry, CategoricalEffect, LinearEffect, Omega

PER_MIN = 60.0   # 1/min → 1/h
IV_40MIN = Infusion(duration_h=40.0 / 60.0)


@dataclass(frozen=True)
class LibraryEntry:
    """A published model: structure with typical values (70-kg adult), default route,
    variability, and where the numbers come from."""

    name: str
    title: str
    structure: Structure
    route: Route
    citation: str
    tag: str
    source: str
    doi: str | None = None
    pmid: str | None = None
    omega: Omega = field(default_factory=Omega)
    allometry: Allometry | None = None
    effects: tuple = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PDConstant:
    """A published pharmacodynamic constant the response layer can use by name."""

    name: str
    value: float
    unit: str
    meaning: str
    citation: str
    doi: str
    tag: str


OLOFSEN_2022 = ("Olofsen E, Kamp J, Henthorn TK, van Velzen M, Niesters M, Sarton E, Dahan A. "
                "Ketamine psychedelic and antinociceptive effects are connected. "
                "Anesthesiology 2022;136(5):792-801.")
PD_CONSTANTS: dict[str, PDConstant] = {
    "olofsen_2022_ke0": PDConstant(
        "olofsen_2022_ke0", 0.0835 * PER_MIN, "1/h",
        "S-ketamine blood-effect-site equilibration (t1/2ke0 8.3 min, 95% CI 5.1-13.0) for external "
        "perception / dissociation", OLOFSEN_2022, "10.1097/ALN.0000000000004176", "V (t1/2); D (ke0)"),
    "olofsen_2022_c50": PDConstant(
        "olofsen_2022_c50", 121.0, "ng/mL",
        "S-ketamine effect-site C50 for external perception = antinociception (0.51 nmol/mL, "
        "95% CI 90-157 ng/mL)", OLOFSEN_2022, "10.1097/ALN.0000000000004176", "V (nmol/mL); D (ng/mL)"),
}

#: Published residual errors describe assay and model misfit of measured concentrations; the
#: simulator drives responses by true exposures, so they are documented, not applied.
RESIDUAL_NOTE = ("Published residual error (of measured concentrations; not applied: responses "
                 "are driven by the true exposure): ")

_ALL_LINEAR = Allometry(exponents={k: 1.0 for k in ("CL", "V1", "Q2", "V2", "Q3", "V3")})
_ALL_LINEAR_2 = Allometry(exponents={k: 1.0 for k in ("CL", "V1", "Q2", "V2")})
_STD = {"V1": 1.0, "CL": 0.75}

_ENTRIES = (
    LibraryEntry(
        "ketamine_domino", "Racemic ketamine, Domino 3-compartment (TCI set)",
        Mammillary(disposition=MicroConstants(
            V1=0.063 * 70, k10=0.4381 * PER_MIN, k12=0.5921 * PER_MIN, k21=0.2470 * PER_MIN,
            k13=0.5900 * PER_MIN, k31=0.0146 * PER_MIN).to_clearances()),
        IV_40MIN, "Domino EF et al. (early 1980s; attribution from the opentiva class name, year/journal unverified)",
        "V-code", "opentiva/opentiva opentiva/ketamine.py class Domino (V1 L/kg, k per min)",
        pmid="7198883", allometry=_ALL_LINEAR,
        notes=("Source: V1 0.063 L/kg; k10 0.4381, k12 0.5921, k13 0.5900, k21 0.2470, k31 0.0146 per min. "
               "Stored as clearances/volumes (D: CL = k10 V1, Q2 = k12 V1, V2 = V1 k12/k21, ...; k x 60 "
               "per h) at 70 kg, all scaled by (WT/70)^1: identical to V1 = 0.063 L/kg x WT with fixed k's, "
               "and lets IIV and overrides name CL and V1.",
               "No IIV published (TCI model). opentiva ke0 0.652/min is a 'tpeak 1 min' convention, "
               "not a fitted PD value: not included.",
               "Derived (D): CL 116 L/h per 70 kg, Vss 193 L; 0.5 mg/kg over 40 min -> Cmax 240 ng/mL.")),
    LibraryEntry(
        "ketamine_clements", "Racemic ketamine, Clements 2-compartment (opentiva Clements250)",
        Mammillary(disposition=MicroConstants(
            V1=1.7522 * 70, k10=0.0109 * PER_MIN, k12=0.0186 * PER_MIN, k21=0.0137 * PER_MIN).to_clearances()),
        IV_40MIN, "Clements JA, Nimmo WS. Br J Anaesth 1981;53(1):27 (author/year unverified)",
        "V-code", "opentiva/opentiva opentiva/ketamine.py class Clements250",
        doi="10.1093/bja/53.1.27", pmid="7459184", allometry=_ALL_LINEAR_2,
        notes=("Source: V1 1.7522 L/kg; k10 0.0109, k12 0.0186, k21 0.0137 per min; stored as clearances "
               "and volumes at 70 kg scaled by (WT/70)^1 (= fixed k's); derived CL 80 L/h per 70 kg, "
               "Vss 4.1 L/kg.",
               "opentiva ke0 5.2/min is the 'tpeak 1 min' convention: not included.")),
    LibraryEntry(
        "ketamine_kamp_meta", "Racemic ketamine, Kamp 2020 meta-analysis as a 1-compartment model",
        Mammillary(disposition=Clearances(CL=79.0, V1=252.0)),
        IV_40MIN, "Kamp J, Olofsen E, Henthorn TK, van Velzen M, Niesters M, Dahan A. Ketamine "
        "pharmacokinetics: a systematic review of the literature, meta-analysis, and population "
        "analysis. Anesthesiology 2020;133(6):1192-1213.", "V", "abstract (weighted means)",
        doi="10.1097/ALN.0000000000003577", allometry=Allometry(exponents=dict(_STD)),
        notes=("Weighted mean V 252 L/70 kg (95% CI 200-304), CL 79 L/h at 70 kg (69-90).",
               "1-compartment reduction and allometric exponents (V 1, CL 0.75) are this library's "
               "assumptions, not the paper's raw-data model (arterial + venous delay compartments).")),
    LibraryEntry(
        "s_ketamine_fanta", "S-ketamine, Fanta 2015 3-compartment with Otto 2021 IIV",
        Mammillary(disposition=Clearances(CL=95.2, V1=133.0, Q2=23.2, V2=187.0, Q3=157.0, V3=98.8)),
        IV_40MIN, "Fanta S, Kinnunen M, Backman JT, Kalso E. Population pharmacokinetics of "
        "S-ketamine and norketamine in healthy volunteers after intravenous and oral dosing. "
        "Eur J Clin Pharmacol 2015;71(4):441-447.", "V-code (CL 95: V)",
        "nlmixr2lib Otto_2021_s_ketamine (Fanta parameters as fixed by Otto 2021)",
        doi="10.1007/s00228-015-1826-y", pmid="25724645",
        omega=Omega.from_variances({"V1": 0.084, "CL": 0.026}, {("V1", "CL"): 0.023}),
        allometry=Allometry(exponents=dict(_STD)),
        notes=(RESIDUAL_NOTE + "proportional SD 0.236 (Otto 2021).",
               "Peripheral terms (Q2, V2 = Vp1/Q1; Q3, V3 = Vp2/Q2 of the source) are not weight-scaled "
               "(Otto 2021).",
               "IIV: Otto ME et al. Eur J Clin Pharmacol 2021;77(8):1181-1192, doi 10.1007/s00228-021-03104-1: "
               "omega2 V1 0.084, CL 0.026, cov 0.023 (CV ~29%/16%, r 0.49).",
               "Venous sampling. For a racemic dose give S-ketamine = 50% of the amount.")),
    LibraryEntry(
        "s_norketamine_otto", "S-norketamine disposition, Otto 2021 2-compartment",
        Mammillary(disposition=Clearances(CL=57.7, V1=98.6, Q2=42.8, V2=160.0)),
        IV_40MIN, "Otto ME, Bergmann KR, Jacobs G, van Esdonk MJ. Eur J Clin Pharmacol "
        "2021;77(8):1181-1192.", "V-code", "nlmixr2lib Otto_2021_s_ketamine",
        doi="10.1007/s00228-021-03104-1",
        omega=Omega.from_variances({"V1": 0.040, "CL": 0.103}, {("V1", "CL"): 0.044}),
        allometry=Allometry(exponents=dict(_STD)),
        notes=(RESIDUAL_NOTE + "proportional SD 0.143 (Otto 2021).",
               "Metabolite: a dose here is S-norketamine reaching the circulation.  Formation from "
               "S-ketamine (all S-ketamine CL assumed to form it) is the parent->metabolite model of "
               "trialsim.pk.ode, not of this linear engine.",
               "Allometry (V 1, CL 0.75) assumed as for S-ketamine.")),
    LibraryEntry(
        "s_ketamine_simons", "S-ketamine, Simons 2022 3-compartment (arterial), IV part",
        Mammillary(disposition=Clearances(CL=1.48 * PER_MIN, V1=11.6, Q2=2.43 * PER_MIN, V2=39.0,
                                          Q3=1.21 * PER_MIN, V3=174.0)),
        IV_40MIN, "Simons P et al., Dahan A. S-Ketamine oral thin film - Part 1: population "
        "pharmacokinetics of S-ketamine, S-norketamine and S-hydroxynorketamine. Front Pain Res "
        "2022;3:946486.", "V-code", "nlmixr2lib Simons_2022_s_ketamine (L, L/min at 70 kg)",
        doi="10.3389/fpain.2022.946486",
        omega=Omega.from_variances({"V1": 0.057, "CL": 0.029, "Q3": 0.026}),
        allometry=Allometry(exponents={"V1": 1.0, "V2": 1.0, "V3": 1.0, "CL": 0.75, "Q2": 0.75, "Q3": 0.75}),
        notes=("Arterial sampling: high early concentrations.  Clearances L/min x 60.",
               "Allometric exponents are nlmixr2lib's standard assumption (not printed in the paper).",
               "Oral-film absorption and metabolite chain not included.")),
    LibraryEntry(
        "esketamine_in_perez_ruixo", "Esketamine nasal spray, Perez-Ruixo 2021 (linear parent model)",
        HepatoPortalNasal(V1=192.0, Q2=84.3, V2=143.0, Q3=37.6, V3=417.0, Qh=151.0, Vh=101.0,
                          kel=1.11, kmet=2.77, ka=2.93, FRn=0.54, device_factor=0.62, ka_sw=1.45,
                          Dsw=0.53, Fgut=0.64),
        Devices(device_mg=28.0, interval_h=5.0 / 60.0),
        "Perez-Ruixo C, Rossenu S, Zannikos P, Nandy P, Singh J, Drevets WC, Perez-Ruixo JJ. "
        "Population pharmacokinetics of esketamine nasal spray and its metabolite noresketamine in "
        "healthy subjects and patients with treatment-resistant depression. Clin Pharmacokinet "
        "2021;60(4):501-516.", "V-code (FRn, CL, Vss: V)",
        "nlmixr2lib PerezRuixo_2020_esketamine (Table 3 transcription)",
        doi="10.1007/s40262-020-00953-4", pmid="33128208",
        omega=Omega.from_variances({"FRn": 0.501, "ka": 0.319, "ka_sw": 1.009, "V1": 0.0730, "V2": 0.218,
                                    "Qh": 0.0524, "Vh": 0.113, "kel": 0.892}, scales={"FRn": "logit"}),
        effects=(LinearEffect(covariate="age_years", parameter="Qh", slope=-2.19, above=60.0, required=False),
                 CategoricalEffect(covariate="asian", parameter="kel", factors={1: 0.36}, required=False),
                 CategoricalEffect(covariate="japanese", parameter="FRn", factors={1: 1.34}, required=False)),
        notes=(RESIDUAL_NOTE + "exponential (log-scale) SD 0.276, phase I/II (Table 3).",
               "One device = 28 mg, devices 5 min apart (the 5-min gap is unverified: docs/parameters.md §5); "
               "a dose of k x 28 mg is k devices.",
               "Every piece is linear and solved exactly: nasal depot (FRn, ka) -> central; swallowed part "
               "(1 - FRn')Fgut zero-order over Dsw into a gut depot -> hepato-portal compartment (first "
               "pass, E = 0.72, CL = Qh E = 109 L/h) <-> central.  The only dose nonlinearity, FRn x 0.62 "
               "for the 2nd and later devices, is a per-device bioavailability: exposure is linear in "
               "amount for a fixed number of devices, so each device count is computed separately.",
               "Absolute F 0.62/0.54/0.51 for 28/56/84 mg (reproduces the abstract's 54/51%).",
               "FRn IIV is additive on the logit scale (SD 0.708); kmet IIV omitted (value blank in the "
               "paper's Table 3); FRn x device_factor x Japanese factor is clipped to [0, 1].",
               "Optional covariates (skipped when absent): age_years (Qh - 2.19 L/h per year above 60), "
               "asian = 1 (kel x 0.36), japanese = 1 (FRn x 1.34).  Noresketamine not modelled.")),
)
#: Nonlinear (ODE) models: solved numerically per dose level by trialsim.pk.ode.
_ODE_ENTRIES = (
    LibraryEntry(
        "s_ketamine_norketamine_otto",
        "S-ketamine -> S-norketamine chain (ODE): Fanta 2015 / Otto 2021 parent, Otto 2021 metabolite",
        ParentMetabolite.ketamine_norketamine(70.0),
        IV_40MIN, "Otto ME, Bergmann KR, Jacobs G, van Esdonk MJ. Eur J Clin Pharmacol "
        "2021;77(8):1181-1192 (S-ketamine parameters of Fanta S et al. Eur J Clin Pharmacol "
        "2015;71(4):441-447).", "V-code", "nlmixr2lib Otto_2021_s_ketamine; "
        "trialsim.pk.ode.ParentMetabolite.ketamine_norketamine",
        doi="10.1007/s00228-021-03104-1",
        omega=Omega.from_variances({"V1": 0.084, "CL": 0.026, "Vm": 0.040, "CLm": 0.103},
                                   {("V1", "CL"): 0.023, ("Vm", "CLm"): 0.044}),
        allometry=Allometry(exponents=dict(_STD)),
        notes=("Parent = s_ketamine_fanta (3-cmt; V1, CL scaled by WT^1, WT^0.75; peripheral terms "
               "unscaled), metabolite = s_norketamine_otto (2-cmt), all S-ketamine CL forming "
               "S-norketamine (fm = 1), mw_ratio 223.70/237.73 (mg of norketamine per mg of ketamine).",
               "Metabolite volumes/clearances are not weight-scaled here (docs/parameters.md gives no "
               "allometry for them; s_norketamine_otto assumes V 1, CL 0.75 instead).",
               "IIV: the two entries' Otto 2021 blocks (V1/CL and Vm/CLm), no parent-metabolite "
               "covariance.  No residual error: it differs by analyte (0.236 parent, 0.143 metabolite).",
               "Choose what the metrics describe with analyte: parent | metabolite.  For a racemic "
               "dose give S-ketamine = 50% of the amount.")),
)
_BY_NAME = {e.name: e for e in _ENTRIES + _ODE_ENTRIES}
_ODE_NAMES = frozenset(e.name for e in _ODE_ENTRIES)


def available() -> list[str]:
    """Names of every library model (linear and ODE), sorted."""
    return sorted(_BY_NAME)


def available_ode() -> list[str]:
    """Names of the library's nonlinear (ODE) models, sorted."""
    return sorted(_ODE_NAMES)


def entry(name: str) -> LibraryEntry:
    """The library entry ``name``; ``KeyError`` naming the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown PK model {name!r}; known models: "
                       f"{', '.join(available())}") from None


def from_library(name: str, **parameters: float) -> PKSpec:
    """The library model ``name`` as a :class:`~trialsim.pk.spec.PKSpec` (its default route,
    variability, allometry and covariate effects), with some typical ``parameters`` replaced.
    For other changes (route, IIV, horizon) use a YAML ``pk:`` mapping."""
    e = entry(name)
    return PKSpec(structure=e.structure.replace(**parameters) if parameters else e.structure,
                  route=e.route, omega=e.omega, allometry=e.allometry, effects=e.effects,
                  name=e.name)


def pd_constant(name: str) -> PDConstant:
    """A named PD constant (``olofsen_2022_ke0`` in 1/h, ``olofsen_2022_c50`` in ng/mL)."""
    try:
        return PD_CONSTANTS[name]
    except KeyError:
        raise KeyError(f"unknown PD constant {name!r}; known: {', '.join(sorted(PD_CONSTANTS))}") from None


def _route_yaml(route: Route) -> str:
    """The route as a study file writes it, e.g. ``{type: infusion, duration_h: 0.6667}``
    (settings at their defaults left out)."""
    import dataclasses

    parts = [f"type: {route_name(route)}"]
    for f in dataclasses.fields(route):
        v = getattr(route, f.name)
        if f.default is not dataclasses.MISSING and v == f.default:
            continue
        parts.append(f"{f.name}: {_fmt(v) if isinstance(v, float) else v}")
    return "{" + ", ".join(parts) + "}"


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def describe(name: str) -> str:
    """A plain-text parameter table (value, unit, meaning, IIV, allometry) and the citation."""
    e = entry(name)
    params = e.structure.parameters()
    cv = e.omega.cv() if e.omega.n else {}
    allo = e.allometry.exponents if e.allometry else {}
    rows = [("parameter", "value", "unit", "IIV", "WT exp.", "meaning")]
    for k, v in params.items():
        iiv = ""
        if k in cv:
            j = e.omega.names.index(k)
            w2 = e.omega.array()[j, j]
            iiv = f"w2={_fmt(w2)}" + (f" CV={cv[k]:.0%}" if e.omega.scale(k) == "log" else " (logit)")
        unit, meaning = PARAMETERS[k].unit, PARAMETERS[k].meaning
        rows.append((k, _fmt(v), unit, iiv, _fmt(allo[k]) if k in allo else "", meaning))
    width = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"{e.name}: {e.title}", ""]
    lines += ["  ".join(r[i].ljust(width[i]) for i in range(5)) + "  " + r[5] for r in rows]
    lines.append("")
    if e.allometry:
        lines.append(f"allometry: (weight_kg / {_fmt(e.allometry.reference_kg)})^exponent")
    for j, a in enumerate(e.omega.names):
        for b in e.omega.names[j + 1:]:
            c = e.omega.array()[j, e.omega.names.index(b)]
            if c:
                lines.append(f"IIV covariance {a}-{b}: {_fmt(c)} (log scale)")
    for ef in e.effects:
        lines.append(f"covariate effect: {type(ef).__name__} {ef}")
    lines.append(f"default route: {_route_yaml(e.route)}")
    lines.append("")
    lines.append(f"citation: {e.citation}")
    ids = [f"DOI {e.doi}" if e.doi else "", f"PMID {e.pmid}" if e.pmid else ""]
    lines.append("ids: " + (", ".join(i for i in ids if i) or "none given in the source"))
    lines.append(f"verification: {e.tag} ({e.source}); tags and sources: docs/parameters.md §1.1, §2")
    lines += [f"note: {n}" for n in e.notes]
    return "\n".join(lines)
