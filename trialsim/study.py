"""``Study``: a frozen bundle of doses, scenario (the truth) and design.

A scenario turns virtual patients into potential outcomes: for every patient and every dose,
whether they would have a toxicity and whether they would respond.  It states its truth either
directly (:class:`DirectTruth`, probabilities per dose, as published operating-characteristic
tables do) or mechanistically (:class:`Mechanistic`: population → PK exposure → response).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from trialsim.conduct import Conduct
from trialsim.designs.base import Design
from trialsim.pk import PKSpec, check_metrics, pk_exposures
from trialsim.population import Population, VirtualPatients
from trialsim.response import OutcomeModel
from trialsim.rng import study_stream

#: Virtual patients used to estimate the population-average truth of a mechanistic scenario.
N_TRUTH_PATIENTS = 100_000


@dataclass(frozen=True)
class PotentialOutcomes:
    """Outcomes of every patient at every dose: ``tox`` and ``eff`` bool arrays (T, P, D)."""

    tox: np.ndarray
    eff: np.ndarray | None
    patients: VirtualPatients


@dataclass(frozen=True)
class Truth:
    """Population-average probabilities per dose (``eff`` None when the study has no efficacy);
    ``*_se`` their Monte Carlo standard errors (zero when stated directly); ``eff_tox`` the
    probability of both a toxicity and a response (None without efficacy)."""

    tox: np.ndarray
    eff: np.ndarray | None
    tox_se: np.ndarray
    eff_se: np.ndarray | None
    eff_tox: np.ndarray | None = None


class Scenario:
    """Base class of the two ways to state the truth."""

    population: Population

    @property
    def has_efficacy(self) -> bool:  # pragma: no cover - abstract
        """Whether patients have an efficacy outcome."""
        raise NotImplementedError

    def n_z(self) -> int:
        return 0

    def outcomes(self, patients: VirtualPatients, doses: np.ndarray, dose_unit: str) -> PotentialOutcomes:
        raise NotImplementedError  # pragma: no cover

    def n_eta(self) -> int:
        return 0

    def draw(self, seed: int, scenario: int, trials: np.ndarray, n_patients: int,
             doses: np.ndarray, dose_unit: str) -> PotentialOutcomes:
        patients = self.population.draw(seed, scenario, trials, n_patients, self.n_z(), self.n_eta())
        return self.outcomes(patients, doses, dose_unit)

    def truth(self, seed: int, scenario: int, doses: np.ndarray, dose_unit: str) -> Truth:
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True)
class DirectTruth(Scenario):
    """True probability of toxicity (and optionally efficacy) at each dose, the same for every
    patient.  Patient ``i`` is toxic at dose ``d`` when ``u_tox[i] < tox[d]``: outcomes are
    monotone in dose when ``tox`` increases.  Toxicity and efficacy are independent given dose."""

    tox: tuple[float, ...]
    eff: tuple[float, ...] | None = None
    population: Population = field(default_factory=Population)

    @property
    def has_efficacy(self) -> bool:
        return self.eff is not None

    def outcomes(self, patients, doses, dose_unit):
        tox = patients.u[..., 0:1] < np.asarray(self.tox)
        eff = None if self.eff is None else patients.u[..., 1:2] < np.asarray(self.eff)
        return PotentialOutcomes(tox, eff, patients)

    def truth(self, seed, scenario, doses, dose_unit):
        t = np.asarray(self.tox, float)
        e = None if self.eff is None else np.asarray(self.eff, float)
        return Truth(t, e, np.zeros_like(t), None if e is None else np.zeros_like(e),
                     None if e is None else t * e)


def patient_exposures(pk: PKSpec | None, names, patients: VirtualPatients, doses,
                      dose_unit: str) -> dict[str, np.ndarray]:
    """The exposure metrics ``names`` (and ``"dose"``) of every patient at every dose, each
    (T, P, D): the patients' covariates and PK random effects through :func:`pk_exposures`;
    ``ValueError`` if any is not a finite number."""
    T, P = patients.shape
    D = len(doses)
    out = {"dose": np.broadcast_to(np.asarray(doses, float), (T, P, D))}
    names = tuple(n for n in names if n != "dose")
    if names:
        if pk is None:
            raise ValueError(f"exposures {list(names)} need a pk section")
        cov = {k: v.reshape(-1) for k, v in patients.covariates.items()}
        eta = None
        if patients.eta_z is not None:
            eta = patients.eta_z.reshape(T * P, -1) @ pk.omega.cholesky().T
        ex = pk_exposures(pk, cov, eta, np.asarray(doses, float), names, dose_unit)
        for k, v in ex.items():
            bad = np.isinf(v) if k in ("tmax", "ce_tmax") else ~np.isfinite(v)
            if bad.any():
                raise ValueError(f"exposure {k!r} is not a finite number for some patients: "
                                 "check the PK parameters, doses and covariates")
            out[k] = np.asarray(v).reshape(T, P, D)
    return out


@dataclass(frozen=True)
class Mechanistic(Scenario):
    """Population → PK exposure → response.

    ``toxicity`` and ``efficacy`` are outcome models (:class:`~trialsim.response.OutcomeModel`:
    ``exposure`` names a PK metric or ``"dose"``, ``outcome(x, u, z, covariates)`` gives the
    potential outcomes, ``n_z`` the normals per patient it needs, ``probability(x)`` the
    individual risk or None).  ``pk`` is a resolved PK specification (or None when every
    response is driven by dose).
    """

    population: Population
    toxicity: OutcomeModel
    efficacy: OutcomeModel | None = None
    pk: PKSpec | None = None

    @property
    def has_efficacy(self) -> bool:
        return self.efficacy is not None

    def __post_init__(self) -> None:
        for role, m in (("toxicity", self.toxicity), ("efficacy", self.efficacy)):
            if m is not None and not isinstance(m, OutcomeModel):
                raise TypeError(f"{role} must be an outcome model (trialsim.response."
                                f"OutcomeModel), got {type(m).__name__}")
        names = self.metrics()
        if names and self.pk is None:
            raise ValueError(f"response models use PK metrics {list(names)} but the study has "
                             "no pk section (or use exposure: dose)")
        if names:
            check_metrics(self.pk, names)

    def _models(self):
        return [m for m in (self.toxicity, self.efficacy) if m is not None]

    def n_z(self) -> int:
        return sum(m.n_z for m in self._models())

    def n_eta(self) -> int:
        return 0 if self.pk is None else self.pk.omega.n

    def metrics(self) -> tuple[str, ...]:
        return tuple(sorted({m.exposure for m in self._models() if m.exposure != "dose"}))

    def exposures(self, patients: VirtualPatients, doses: np.ndarray, dose_unit: str) -> dict[str, np.ndarray]:
        """Exposure metrics of every patient at every dose, each (T, P, D)."""
        return patient_exposures(self.pk, self.metrics(), patients, doses, dose_unit)

    def outcomes_from(self, ex: dict, patients: VirtualPatients) -> list[np.ndarray | None]:
        """Outcomes (T, P, D) of toxicity and efficacy.  Toxicity reads uniform column 0 and
        the first ``toxicity.n_z`` normals; efficacy uniform column 1 and the next normals."""
        out, z0 = [], 0
        for col, m in enumerate((self.toxicity, self.efficacy)):
            if m is None:
                out.append(None)
                continue
            nz = m.n_z
            out.append(m.outcome(ex[m.exposure], patients.u[..., col], patients.z[..., z0:z0 + nz],
                                 patients.covariates))
            z0 += nz
        return out

    def outcomes(self, patients, doses, dose_unit):
        tox, eff = self.outcomes_from(self.exposures(patients, doses, dose_unit), patients)
        return PotentialOutcomes(tox, eff, patients)

    def truth(self, seed, scenario, doses, dose_unit, n: int = N_TRUTH_PATIENTS):
        """Population-average probabilities, estimated from ``n`` virtual patients drawn from a
        study-level stream (the same for every design and every run with this seed): the mean
        of each patient's probability where the model has one, else of their outcomes."""
        pts = self.population.draw_from(study_stream(seed, scenario), n, self.n_z(), self.n_eta())
        ex = self.exposures(pts, doses, dose_unit)
        outcomes = self.outcomes_from(ex, pts)
        est, per_patient = [], []
        for m, o in zip((self.toxicity, self.efficacy), outcomes):
            if m is None:
                est += [None, None]
                continue
            p = m.probability(ex[m.exposure])
            p = o[0].astype(float) if p is None else p[0]
            per_patient.append(p)
            est += [p.mean(axis=0), p.std(axis=0, ddof=1) / np.sqrt(n)]
        tox, tox_se, eff, eff_se = est
        # toxicity and efficacy are independent given the patient (separate uniforms)
        both = None if eff is None else (per_patient[0] * per_patient[1]).mean(axis=0)
        return Truth(tox, eff, tox_se, eff_se, both)


@dataclass(frozen=True)
class Study:
    """Everything needed to simulate: doses (in ``dose_unit``), the scenario, the design, the
    target toxicity rate that defines the true MTD, and the resolved configuration."""

    name: str
    doses: tuple[float, ...]
    dose_unit: str
    scenario: Scenario
    design: Design
    target: float
    config: dict = field(default_factory=dict, compare=False, hash=False)
    source: str | None = None
    conduct: Conduct | None = None   # run in calendar time (None: the untimed path)

    def __post_init__(self) -> None:
        if not isinstance(self.design, Design):
            raise TypeError(f"design must be a trialsim Design, got {type(self.design).__name__}")
        if not isinstance(self.scenario, Scenario):
            raise TypeError(f"scenario must be DirectTruth or Mechanistic, got "
                            f"{type(self.scenario).__name__}")
        if self.design.n_doses != len(self.doses):
            raise ValueError(f"the design has {self.design.n_doses} doses but the study has "
                             f"{len(self.doses)}")
        if self.design.follow_up and self.conduct is None:
            raise ValueError(f"{type(self.design).__name__} decides with partial follow-up, on "
                             "a calendar: the study needs a conduct (sites, window_h)")
        if self.design.backfills and self.conduct is None:
            raise ValueError("backfill enrols the patients who arrive during a cohort's window: "
                             "the study needs a conduct (sites, window_h)")
        if self.design.follow_up and self.design.needs_efficacy:
            raise ValueError(f"{type(self.design).__name__}: deciding with partial follow-up "
                             "on efficacy is not supported (efficacy has no onset times)")

    @property
    def n_doses(self) -> int:
        return len(self.doses)

    @property
    def calendar_conduct(self) -> Conduct | None:
        """The conduct the calendars run: an arrival passes screening with probability
        ``(1 - screen_fail) * p_eligible``, the population's eligibility criteria included;
        for designs that decide on efficacy too, the window lasts until the primary read-out
        if that comes later (the response must be known before the next decision)."""
        c = self.conduct
        if c is None:
            return None
        c = c.screening(self.scenario.population.p_eligible)
        if self.design.needs_efficacy and c.read_out > c.window_h:
            c = dataclasses.replace(c, window_h=c.read_out)
        return c

    def truth(self, seed: int, scenario: int = 0) -> Truth:
        return self.scenario.truth(seed, scenario, np.asarray(self.doses, float), self.dose_unit)
