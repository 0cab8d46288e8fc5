"""Time course of a continuous clinical score: MADRS (0–60) after one dose of ketamine in
treatment-resistant depression (docs/parameters.md §3.4, §6 item 6).

For patient *i* given dose *j* (exposure ``X_ij``), at ``t`` hours after the start of the
infusion::

    score_ij(t) = clip(B_i − P_i(t) − D_ij(t) + σ_res·ε_i(t), 0, 60)
    P_i(t)  = (placebo_plateau + placebo_sd·z_i0) · (1 − 2^(−t / placebo_onset_h))
    D_ij(t) = emax·exp(emax_omega·z_i1) · X_ij^γ / (EC50^γ + X_ij^γ) · g(t)
    g(t)    = (t/t_p)^a · exp((a/b)·(1 − (t/t_p)^b)),   g(t_p) = 1 (peak), g(0) = 0

``B_i`` is the baseline score; ``z_i = z_subject[i]`` (two standard normals: placebo
responsiveness, drug sensitivity) and ``ε_i(t) = z_noise[i, t]`` are drawn once per patient
before any design sees them (DESIGN.md, potential outcomes): with the same noise at every
dose, a patient's score is non-increasing in exposure.  ``g`` is a generalised gamma
profile whose shape ``(a, b)`` is solved so that it reaches half its peak ``onset_h`` after
the start of the infusion, peaks at ``peak_h``, and is back to half ``waning_h`` after the
peak.  Scores are clipped to the scale range [0, 60] after the noise is added.  Residual
noise is independent between visits.

**Default parameters (scenario assumptions, calibrated to published summaries):**

* time profile: onset 0.75 h, peak 24 h, waning 96 h, so g = 0.48 at 40 min, 0.65 at 2 h,
  0.77 at 3 d, 0.31 at 7 d, 0.14 at 10 d, 0.08 at 12 d.  Anchors: superiority from 40 min,
  peak at day 1, lost by days 10–12 (Kishimoto 2016, Psychol Med 46:1459, [V]); benefit
  within hours, peak ~1 day (Andrade 2017 [V]); Daly 2018 Δ vs placebo −6.7 at 2 h vs
  −9.1 at 24 h (28 mg) (ratio 0.74 [V]).
* placebo (saline-like): plateau 5 MADRS points, onset half-time 1 h, between-patient SD
  4 points; Daly 2018 placebo change −5.7 at 24 h and 3 % response (1/33) [V]; saline 1 %
  response at day 1 (Wilkinson 2019 [V]).  For a midazolam control arm alone, plateau 9 and
  SD 7 give ≈ 19 % response and −9 points at 24 h (Wilkinson 2019: 18 %; Murrough 2013:
  −8.8 [V]); the placebo part is shared by every dose, so do not use it for the drug arms.
* drug effect: Emax 13 points, EC50 40 ng/mL, γ = 1 on X = peak racemic ketamine plasma
  concentration (ng/mL, end of a 40-min infusion; ≈ 160 ng/mL for 0.5 mg/kg, docs/parameters.md
  §2.5 S-FANTA), log-normal sensitivity SD 0.4.  **No exposure–response parameters are
  published** (docs/parameters.md §3.4, §6 item 6): EC50 and γ are scenario assumptions chosen for a
  shallow dose–response (relative effect 0.44/0.62/0.80/0.89 at 0.1/0.2/0.5/1.0 mg/kg;
  Fava 2018: 0.1 ≈ 0.2 < 0.5 ≈ 1.0 at day 1; Daly 2018 Δ −9.1/−10.0/−10.7 for 28/56/84 mg);
  Emax was then tuned to the 24-h response rate.
* residual SD 3 points.

**Calibration reached** (tests/response/test_timecourse.py; 40,000 patients, baseline
N(32, 5) truncated to [20, 60], X = 160·exp(0.3·z) ng/mL for 0.5 mg/kg; Monte Carlo SE of a
rate ≈ 0.25 %):

=================================  =============  ============================================
at 24 h                            simulated      published
=================================  =============  ============================================
response, ketamine 0.5 mg/kg       48.5 %         45–46 % (Wilkinson 2019), 52.2 % (Han 2016)
response, placebo (X = 0)          2.4 %          saline 1 % (Wilkinson), placebo 3 % (Daly)
remission, ketamine 0.5 mg/kg      22.9 %         20.6 % (Han 2016)
mean change, ketamine / placebo    −16.0 / −5.0   −16.5 (Murrough 2013) / −5.7 (Daly 2018)
drug − placebo, day 12 / 24 h      8.2 %          lost by days 10–12 (Kishimoto 2016)
=================================  =============  ============================================

Known gap: Han 2016's pooled ketamine response rates stay high (47.9 % at 72 h, 39.8 % at
day 7, "as printed" in docs/parameters.md §3.4); this profile gives ≈ 34 % and ≈ 9 % (mean drug effect
77 % and 31 % of its peak).  Matching them together with the loss of separation by days
10–12 would need a profile with a steeper late fall than three parameters allow.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import Field
from scipy.optimize import brentq

from trialsim.registry import register
from trialsim.response import _timecourse_kernels as K
from trialsim.response.base import OutcomeModel
from trialsim.spec import spec

MADRS_MIN, MADRS_MAX = 0.0, 60.0
CRITERIA = ("response", "remission")
REMISSION_MAX = 10.0     # MADRS <= 10
N_SUBJECT_EFFECTS = 2    # z_subject columns: placebo responsiveness, drug sensitivity


B_MIN, B_MAX = 1e-8, 200.0   # search range of the profile's shape b
#: Longest time (h) of the profile parameters: about 11 years.
MAX_H = 1e5


def _h(b: float, x: float) -> float:
    """``ln x + (1 − x^b)/b``: ``ln g / a`` at ``t/t_peak = x``."""
    lx = np.log(x)
    return lx - np.expm1(b * lx) / b


@lru_cache(maxsize=128)
def profile_shape(onset_h: float, peak_h: float, waning_h: float) -> tuple[float, float]:
    """Shape ``(a, b)`` of the generalised gamma with g(onset_h) = g(peak_h + waning_h) = 1/2.

    A solution exists when the onset is further from the peak than the waning on a log time
    scale: ``peak_h/onset_h > (peak_h + waning_h)/peak_h``.
    """
    xo, xf = onset_h / peak_h, (peak_h + waning_h) / peak_h
    if not (0 < xo < 1 and np.log(1 / xo) > np.log(xf)):
        raise ValueError(f"need onset_h < peak_h and peak_h/onset_h > (peak_h + waning_h)/peak_h "
                         f"for this profile, got onset_h={onset_h}, peak_h={peak_h}, "
                         f"waning_h={waning_h}")
    with np.errstate(over="ignore"):
        f = lambda bb: _h(bb, xo) - _h(bb, xf)  # noqa: E731
        if not f(B_MAX) > 0:
            raise ValueError(f"no onset-peak-waning profile has onset_h={onset_h}, peak_h={peak_h} "
                             f"and waning_h={waning_h}: the fall after the peak is too fast "
                             "compared with the rise; lengthen waning_h or shorten onset_h")
        b = brentq(f, B_MIN, B_MAX, xtol=1e-14)
    return float(np.log(0.5) / _h(b, xo)), float(b)


def time_profile(times_h, onset_h: float = 0.75, peak_h: float = 24.0,
                 waning_h: float = 96.0) -> np.ndarray:
    """Drug-effect time profile g(t) in [0, 1] (peak 1 at ``peak_h``; 0 for t <= 0)."""
    a, b = profile_shape(float(onset_h), float(peak_h), float(waning_h))
    t = np.asarray(times_h, dtype=np.float64)
    x = np.where(t > 0, t, 1.0) / peak_h
    g = np.exp(a * (np.log(x) - np.expm1(b * np.log(x)) / b))
    return np.where(t > 0, g, 0.0)


@register("response", "madrs_timecourse")
@spec
class MadrsTimeCourse(OutcomeModel):
    """MADRS trajectory after one dose (equations and default calibration in the module
    docstring).  Score points are MADRS points; ``ec50`` is in the unit of the exposure the
    caller passes (default: peak racemic ketamine plasma concentration, ng/mL)."""

    exposure: str = Field("cmax", min_length=1, description="exposure metric fed as X")
    emax: float = Field(13.0, ge=0, le=60, description="median maximal drug effect, points")
    ec50: float = Field(40.0, ge=1e-9, le=1e12,
                        description="exposure at half-maximal effect (X units)")
    hill: float = Field(1.0, ge=0.01, le=100, description="Hill exponent γ")
    emax_omega: float = Field(0.4, ge=0, le=5, description="SD of log drug sensitivity")
    onset_h: float = Field(0.75, gt=0, le=MAX_H, description="time to half of the peak effect, h")
    peak_h: float = Field(24.0, gt=0, le=MAX_H, description="time of the peak drug effect, h")
    waning_h: float = Field(96.0, gt=0, le=MAX_H, description="time from peak to half effect, h")
    placebo_plateau: float = Field(5.0, ge=-60, le=60,
                                   description="mean placebo improvement, points")
    placebo_onset_h: float = Field(1.0, gt=0, le=MAX_H,
                                   description="placebo half-time to plateau, h")
    placebo_sd: float = Field(4.0, ge=0, le=60,
                              description="between-patient SD of the plateau, points")
    residual_sd: float = Field(3.0, ge=0, le=60, description="visit-level noise SD, points")
    read_out_h: float = Field(24.0, gt=0, le=MAX_H,
                              description="binary outcome read at this time, h")
    criterion: Literal["response", "remission"] = Field(
        "response", description="binary outcome: response (>= 50% fall) or remission (<= 10)")
    baseline: str = Field("baseline_madrs", min_length=1,
                          description="population covariate holding the baseline score")
    table_exposure: tuple[float, ...] | None = Field(
        None, description="exposures (X units, increasing) of a piecewise-linear relative "
        "effect that replaces the Emax curve (e.g. the studied doses with exposure: dose)")
    table_effect: tuple[float, ...] | None = Field(
        None, description="relative drug effect in [-1, 1] at each table_exposure")

    #: Standard normals per patient: two subject effects and the noise at the read-out visit.
    n_z = N_SUBJECT_EFFECTS + 1

    def __post_init__(self) -> None:
        profile_shape(self.onset_h, self.peak_h, self.waning_h)
        x, e = self.table_exposure, self.table_effect
        if (x is None) != (e is None):
            raise ValueError("table_exposure and table_effect go together")
        if x is not None:
            if len(x) < 2 or len(x) != len(e) or len(x) > 1000:
                raise ValueError(f"table_exposure and table_effect need the same length, 2 to "
                                 f"1000 points, got {len(x)} and {len(e)}")
            if not all(np.isfinite(x)) or x[0] < 0 or any(b <= a for a, b in zip(x, x[1:])):
                raise ValueError(f"table_exposure must increase from a value >= 0, got "
                                 f"{list(x)}")
            if not all(np.isfinite(e)) or any(abs(v) > 1 for v in e):
                raise ValueError(f"table_effect values are relative effects in [-1, 1], got "
                                 f"{list(e)}")

    def required_covariates(self) -> dict[str, tuple[float, float]]:
        """The baseline covariate, a MADRS score in [0, 60]."""
        return {self.baseline: (MADRS_MIN, MADRS_MAX)}

    def outcome(self, x, u, z, covariates) -> np.ndarray:
        """Potential outcomes (T, P, D) for the simulator: response/remission at
        ``read_out_h`` for exposures ``x`` (T, P, D), normals ``z`` (T, P, n_z) and the
        baseline covariate; the uniforms ``u`` are not used."""
        base = covariates[self.baseline]
        return response_at(self, base, x, z[..., :N_SUBJECT_EFFECTS], z[..., N_SUBJECT_EFFECTS],
                           self.read_out_h, self.criterion)

    def profile(self, times_h) -> np.ndarray:
        """g(t) of this model."""
        return time_profile(times_h, self.onset_h, self.peak_h, self.waning_h)

    def exposure_effect(self, exposure) -> np.ndarray:
        """``X^γ/(EC50^γ + X^γ)`` in [0, 1] (0 for X <= 0); with a table, its linear
        interpolation at X (constant beyond its ends)."""
        if self.table_exposure is not None:
            return np.interp(np.maximum(np.asarray(exposure, dtype=np.float64), 0.0),
                             self.table_exposure, self.table_effect)
        x = np.maximum(np.asarray(exposure, dtype=np.float64), 0.0) / self.ec50
        xg = x ** self.hill
        return xg / (1.0 + xg)


def madrs_trajectory(params: MadrsTimeCourse, baseline, exposure, times_h, z_subject,
                     z_noise, extra_improvement=None) -> np.ndarray:
    """Potential MADRS scores, shape (n_patients, n_doses, n_times).

    ``baseline`` (n,) points in [0, 60]; ``exposure`` (n, n_doses) in the unit of ``ec50``;
    ``times_h`` (n_times,) hours after the start of the infusion; ``z_subject`` (n, 2) and
    ``z_noise`` (n, n_times) — or (n, n_doses, n_times) — standard normals.  Any leading
    batch shape may replace ``(n,)``, e.g. (trials, patients): the output is then
    ``batch + (n_doses, n_times)``.  ``extra_improvement`` (broadcastable to the output, MADRS
    points) is subtracted before the scores are kept within [0, 60] — e.g. the response to an
    active placebo in the control arm.
    """
    b = np.asarray(baseline, dtype=np.float64)
    batch = b.shape
    if not np.all(np.isfinite(b)) or np.any((b < MADRS_MIN) | (b > MADRS_MAX)):
        raise ValueError("baseline must hold MADRS scores in [0, 60]")
    x = np.asarray(exposure, dtype=np.float64)
    if x.ndim != b.ndim + 1 or x.shape[:-1] != batch:
        raise ValueError(f"exposure must have shape baseline.shape + (n_doses,) = {batch} + "
                         f"(d,), got {x.shape}")
    t = np.atleast_1d(np.asarray(times_h, dtype=np.float64))
    z = np.asarray(z_subject, dtype=np.float64)
    if z.shape != batch + (N_SUBJECT_EFFECTS,):
        raise ValueError(f"z_subject must have shape baseline.shape + ({N_SUBJECT_EFFECTS},) = "
                         f"{batch + (N_SUBJECT_EFFECTS,)}, got {z.shape}")
    eps = np.asarray(z_noise, dtype=np.float64)
    if eps.shape == batch + (t.size,):
        eps = eps[..., None, :]
    out_shape = x.shape + (t.size,)
    D = x.shape[-1]
    if eps.shape not in (batch + (1, t.size), out_shape):
        try:
            eps = np.broadcast_to(eps, out_shape)
        except ValueError:
            raise ValueError(f"z_noise must have shape {batch + (t.size,)} or {out_shape}, "
                             f"got {np.shape(z_noise)}") from None
    M = int(np.prod(batch, dtype=np.int64))
    if extra_improvement is None:
        extra = np.zeros((1, 1, 1))
    else:
        extra = np.asarray(extra_improvement, dtype=np.float64)
        try:
            extra = np.broadcast_to(extra, out_shape)
        except ValueError:
            raise ValueError(f"extra_improvement must broadcast to {out_shape}, got "
                             f"{extra.shape}") from None
        extra = np.ascontiguousarray(extra).reshape(M, D, t.size)
    plateau = params.placebo_plateau + params.placebo_sd * z[..., 0]
    onset = -np.expm1(-np.log(2.0) * np.maximum(t, 0.0) / params.placebo_onset_h)
    sens = params.emax * np.exp(params.emax_omega * z[..., 1])              # batch
    out = np.empty((M, D, t.size))
    K.scores(b.reshape(M), plateau.reshape(M), sens.reshape(M),      # views where possible
             params.exposure_effect(x).reshape(M, D),
             eps.reshape(M, eps.shape[-2], t.size), extra,
             extra_improvement is not None, onset, params.profile(t), params.residual_sd,
             MADRS_MIN, MADRS_MAX, out)
    return out.reshape(out_shape)


def classify(scores, baseline, criterion: str = "response") -> np.ndarray:
    """``response``: ≥ 50 % reduction from baseline; ``remission``: MADRS ≤ 10 (booleans).

    ``baseline`` has the leading shape of ``scores`` (e.g. (n,) for scores (n, d, t))."""
    s = np.asarray(scores, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    b = b.reshape(b.shape + (1,) * (s.ndim - b.ndim))
    if criterion == "response":
        return s <= 0.5 * b
    if criterion == "remission":
        return s <= REMISSION_MAX
    raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")


def response_at(params: MadrsTimeCourse, baseline, exposure, z_subject, z_noise,
                time_h: float = 24.0, criterion: str = "response") -> np.ndarray:
    """Boolean potential outcomes (n_patients, n_doses) at ``time_h`` (h after the start of
    the infusion).  ``z_noise`` (n,) is the patient's noise draw at that visit (so the result
    equals :func:`classify` of :func:`madrs_trajectory` at that time with that draw).  Leading
    batch shapes as in :func:`madrs_trajectory`."""
    eps = np.asarray(z_noise, dtype=np.float64)[..., None]
    s = madrs_trajectory(params, baseline, exposure, [float(time_h)], z_subject, eps)[..., 0]
    return classify(s, baseline, criterion)


def mean_change_from_baseline(scores, baseline) -> np.ndarray:
    """Mean change from baseline (points, negative = improvement) over all patients (and
    trials): shape (n_doses, n_times) for scores of shape batch + (n_doses, n_times)."""
    s = np.asarray(scores, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    return (s - b[..., None, None]).mean(axis=tuple(range(b.ndim)))


def draw_latents(rng: np.random.Generator, n_patients: int,
                 n_times: int) -> tuple[np.ndarray, np.ndarray]:
    """``(z_subject (n, 2), z_noise (n, n_times))`` standard normals from ``rng``."""
    return (rng.standard_normal((n_patients, N_SUBJECT_EFFECTS)),
            rng.standard_normal((n_patients, n_times)))
