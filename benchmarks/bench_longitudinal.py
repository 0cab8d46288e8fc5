"""Benchmark of the batched longitudinal model (MMRM) (a script, not a test):
``python benchmarks/bench_longitudinal.py [--trials 20000] [--baseline 20]``.

1. Simulated trials with 5 arms x 40 patients, MADRS change from baseline at 4 visits
   (unstructured covariance, an Emax dose-response growing over the visits), baseline MADRS
   as a covariate, monotone dropout of about 20 % by the last (primary) visit: the batched
   closed form (:func:`trialsim.analysis.longitudinal.mmrm_batch`, REML), in trials per second.
2. Baseline in the same process: the single-trial direct REML fit
   (:func:`trialsim.analysis.longitudinal.mmrm`) on the first trials of the same batch; the
   per-trial ratio and the largest difference between the two fits' estimates (the same model,
   so it should be at the level of the direct fit's convergence).
Goal: at least 500 trials per second for the batched fit.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from trialsim.analysis.longitudinal import mmrm, mmrm_batch

DOSES = np.array([0.0, 0.1, 0.2, 0.5, 1.0])          # mg
PER_ARM = 40
VISITS = 4
SD = np.array([5.0, 6.0, 7.0, 8.0])                    # MADRS points at each visit
CORR = 0.6 ** np.abs(np.subtract.outer(np.arange(VISITS), np.arange(VISITS)))
HAZARD = 0.072                                         # dropout per visit after the first


def simulate(n_trials: int, seed: int):
    """``(y (T, N, V) MADRS change, NaN after dropout; arm (T, N); baseline (T, N) MADRS)``."""
    rng = np.random.default_rng(seed)
    D = DOSES.size
    N = D * PER_ARM
    arm = np.tile(np.repeat(np.arange(D), PER_ARM), (n_trials, 1))
    base = rng.normal(33.0, 5.0, (n_trials, N))
    effect = -5.0 * DOSES / (0.2 + DOSES)                          # at the last visit
    mean = -4.0 * np.linspace(0.4, 1.0, VISITS) + np.outer(effect, np.linspace(0.3, 1.0, VISITS))
    chol = np.linalg.cholesky(CORR * np.outer(SD, SD))
    y = mean[arm] - 0.3 * (base - 33.0)[..., None] \
        + rng.normal(size=(n_trials, N, VISITS)) @ chol.T
    leave = rng.random((n_trials, N, VISITS)) < HAZARD            # before each visit
    leave[..., 0] = False
    gone = np.cumsum(leave, axis=-1) > 0
    y[gone] = np.nan
    return y, arm, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20_000)
    ap.add_argument("--baseline", type=int, default=20, help="trials fitted one by one")
    args = ap.parse_args()
    D, visit = DOSES.size, VISITS - 1
    y, arm, base = simulate(args.trials, seed=1)
    mmrm_batch(y[:8], arm[:8], D, visit, base[:8])                   # compile / warm up
    mmrm(y[0], arm[0], D, visit, base[0])
    t0 = time.perf_counter()
    est, cov, df, valid = mmrm_batch(y, arm, D, visit, base)
    t_batch = (time.perf_counter() - t0) / args.trials
    t1 = time.perf_counter()
    fits = [mmrm(y[i], arm[i], D, visit, base[i]) for i in range(args.baseline)]
    t_single = (time.perf_counter() - t1) / args.baseline
    diff = max(np.abs(f.estimates - est[i]).max() for i, f in enumerate(fits))
    print(f"{D} arms x {PER_ARM} patients, {VISITS} visits, 1 covariate, "
          f"{100 * np.isnan(y[..., visit]).mean():.1f} % dropout by the primary visit: "
          f"{args.trials:,} trials in {t_batch * args.trials:.2f} s = {1 / t_batch:,.0f} "
          f"trials/s (goal >= 500); {valid.mean() * 100:.1f} % valid")
    print(f"   batched {1e3 * t_batch:.3f} ms/trial vs the single-trial direct REML fit "
          f"{1e3 * t_single:.1f} ms/trial: {t_single / t_batch:,.0f}x; largest difference "
          f"of the estimates {diff:.1e} MADRS points")


if __name__ == "__main__":
    main()
