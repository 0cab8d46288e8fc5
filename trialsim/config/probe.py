"""The dry run every study gets when it is loaded, so that ``trialsim validate`` reports what
``trialsim run`` would reject, with the YAML path of the section at fault.

On a few virtual patients of two trials (a fixed, study-level seed, so the probe never
touches the random streams of real runs), in order: draw the population, compute the PK
exposures at every dose, compute the potential outcomes and individual probabilities of the
response models, estimate the truth from a few hundred patients, and run two complete trials
of the design (on a stand-in truth, so that large trials stay cheap).  Any failure becomes a
:class:`~trialsim.errors.ConfigError` naming the section; so do exposures that are 0 at
every positive dose (a regimen that gives the patients nothing).
"""
from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trialsim.errors import ConfigError
from trialsim.conduct.arrays import calendars
from trialsim.conduct.backfill import run_trials as run_backfill_trials
from trialsim.conduct.followup import follow_up_clock
from trialsim.simulate import run_batch
from trialsim.study import DirectTruth, Mechanistic, Study

PROBE_SEED = 0
PROBE_PATIENTS = 48
#: trialsim's own source folder: errors raised there (and any ValueError) are messages to the
#: user.
PACKAGE = Path(__file__).resolve().parents[1]
PROBE_TRUTH_PATIENTS = 256


@contextlib.contextmanager
def stage(path: tuple) -> Iterator[None]:
    """Turn any failure inside the block into a ConfigError at ``path``."""
    try:
        yield
    except ConfigError:
        raise
    except MemoryError:
        raise ConfigError("needs more memory than this machine has", path) from None
    except Exception as e:  # noqa: BLE001 - reported to the user with the section at fault
        at = traceback.extract_tb(e.__traceback__)[-1]
        if isinstance(e, ValueError) or Path(at.filename).resolve().is_relative_to(PACKAGE):
            raise ConfigError(str(e) or type(e).__name__, path) from None
        # not a message about the input, raised outside trialsim (a bug in a plugin's design
        # or model, or in a library it calls): say what and where; its origin keeps the
        # traceback (TRIALSIM_DEBUG=1 prints it)
        err = ConfigError(f"{type(e).__name__}: {e} (raised at {Path(at.filename).name}:"
                          f"{at.lineno}, in {at.name}; TRIALSIM_DEBUG=1 shows the traceback)",
                          path)
        err.origin = e
        raise err from e


def probe(study: Study) -> None:
    """Run the study on a few patients; ConfigError (with the section's path) on failure."""
    doses = np.asarray(study.doses, float)
    sc = study.scenario
    trials = np.arange(2)
    if isinstance(sc, Mechanistic):
        P = min(int(study.design.max_patients), PROBE_PATIENTS)
        with stage(("population",)):
            pts = sc.population.draw(PROBE_SEED, 0, trials, P, sc.n_z(), sc.n_eta())
            for name, x in pts.covariates.items():
                if not np.all(np.isfinite(x)):
                    raise ConfigError("draws values that are not finite numbers",
                                      ("population", name))
        with stage(("pk",)):
            ex = sc.exposures(pts, doses, study.dose_unit)
        _check_exposures(ex, doses)
        for col, (role, model) in enumerate((("toxicity", sc.toxicity),
                                             ("efficacy", sc.efficacy))):
            if model is None:
                continue
            with stage(("response", role)):
                p = model.probability(ex[model.exposure])
                if p is not None and not np.all((p >= 0) & (p <= 1)):
                    raise ValueError("gives probabilities outside [0, 1] (or not numbers)")
        with stage(("response",)):
            sc.outcomes_from(ex, pts)
            sc.truth(PROBE_SEED, 0, doses, study.dose_unit, n=PROBE_TRUTH_PATIENTS)
    with stage(("design",)):
        stand_in = DirectTruth(tuple(np.linspace(0.05, 0.6, study.n_doses)),
                               tuple(np.linspace(0.1, 0.5, study.n_doses)))
        trial = Study(study.name, study.doses, study.dose_unit, stand_in, study.design,
                      study.target, conduct=study.calendar_conduct)
        if study.design.backfills:
            run_backfill_trials(trial, trials, PROBE_SEED, 0)
            return
        clock = (follow_up_clock(trial, trials, PROBE_SEED, 0) if study.design.follow_up
                 else None)
        arrays = run_batch(trial, trials, PROBE_SEED, 0, clock)
    if clock is None and trial.calendar_conduct is not None:
        with stage(("conduct",)):       # the trials on their calendars, as run's timed path
            calendars(arrays, trial.calendar_conduct, PROBE_SEED, 0)


def probe_phase2(study) -> None:
    """Run a phase II study on two small trials and a small truth estimate; ConfigError with
    the section at fault on failure."""
    from trialsim.phase2.simulate import potential_scores, run_batch
    from trialsim.phase2.truth import phase2_truth

    trials = np.arange(2)
    with stage(("population",)):
        study.population.draw(PROBE_SEED, 0, trials, 4, study.n_z,
                              0 if study.pk is None else study.pk.omega.n)
    with stage(("pk",)):
        scores, base, _, _ = potential_scores(study, PROBE_SEED, 0, trials,
                                           min(study.design.n_total, PROBE_PATIENTS))
        if not np.all(np.isfinite(scores)):
            raise ValueError("the MADRS time course gives scores that are not numbers")
    with stage(("analysis",)):
        run_batch(study, trials, PROBE_SEED)
        phase2_truth(study, PROBE_SEED, 0, n=PROBE_TRUTH_PATIENTS, n_grid_patients=64)


def _check_exposures(ex: dict[str, np.ndarray], doses: np.ndarray) -> None:
    positive = doses > 0
    for name, x in ex.items():
        if name == "dose" or not positive.any() or name.endswith("tmax"):
            continue
        if not np.any(x[..., positive] > 0):
            raise ConfigError(f"exposure {name!r} is 0 for every patient at every dose above 0: "
                              "the regimen gives no drug within horizon_h (check the route, its "
                              "fractions and times, and horizon_h)", ("pk",))
