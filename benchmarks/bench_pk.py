"""Benchmark of the linear PK engine (a script, not a test): ``python benchmarks/bench_pk.py``.

1. Concentrations of 100,000 patients × 200 time points (2- and 3-compartment 40-min infusion
   with IIV) by the numba closed forms, JIT warmed first; concentrations per second.
2. The same model by ``scipy.integrate.solve_ivp`` on a sample of patients (per-patient
   speed ratio, at a loose and at a tight tolerance).
3. Exposure metrics of 1,000,000 patients × 5 doses through ``pk_exposures`` without storing
   curves: time and peak memory (tracemalloc for NumPy allocations, ru_maxrss for the process).

Options: ``--patients N`` (default 100000), ``--big N`` (default 1000000), ``--ivp N`` (20).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

from trialsim.config.pk import from_config
from trialsim.pk import draw_eta, individual_parameters, pk_exposures
from trialsim.pk.linear import engine as X
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/reference: the slow twins
from tests.reference.pk_linear import ode_matrix

MODELS = {
    "2-cmt (ketamine_clements)": {"model": "ketamine_clements", "iiv": {"CL": 0.25, "V1": 0.3}},
    "3-cmt (s_ketamine_fanta)": {"model": "s_ketamine_fanta"},
}
TIMES = np.linspace(0.0, 24.0, 200)


def _population(spec, n, seed=1):
    rng = np.random.default_rng(seed)
    cov = {"weight_kg": rng.lognormal(np.log(75), 0.2, n)}
    return cov, draw_eta(spec, rng, n)


def _ivp_patient(s, p, amount, dur, times, rtol, atol):
    """One patient by solve_ivp (LSODA): the infusion piece, then the washout."""
    A = ode_matrix(s, p)
    ic = s.site.shape[0]                       # central amount in the state vector
    rate = np.zeros(A.shape[0])
    rate[ic] = amount / dur
    kw = dict(method="LSODA", rtol=rtol, atol=atol, jac=lambda t, y: A)
    first = times[times < dur]
    s1 = solve_ivp(lambda t, y: A @ y + rate, (0.0, dur), np.zeros(A.shape[0]), t_eval=np.append(first, dur), **kw)
    s2 = solve_ivp(lambda t, y: A @ y, (dur, times[-1]), s1.y[:, -1], t_eval=times[times >= dur], **kw)
    return np.concatenate([s1.y[ic, :-1], s2.y[ic]]) / s.V1[p]


def bench_profiles(n, n_ivp):
    print(f"\n== 1-2. concentrations: {n:,} patients x {TIMES.size} times, 0.5 mg/kg over 40 min ==")
    for label, cfg in MODELS.items():
        spec = from_config(cfg)
        cov, eta = _population(spec, n)
        v = individual_parameters(spec, cov, eta)
        reg = spec.route.regimen(35.0)
        X.concentrations(spec.structure, reg, TIMES, {k: x[:10] for k, x in v.items()})   # JIT warm-up
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            c = X.concentrations(spec.structure, reg, TIMES, v)
            runs.append(time.perf_counter() - t0)
        dt = min(runs)
        rate = c.size / dt
        print(f"{label}: best of 3 {dt:.3f} s (first {runs[0]:.3f} s, incl. page faults of the "
              f"{c.nbytes / 2 ** 20:.0f} MiB result), {rate:.3g} concentrations/s "
              f"({rate / 2e7:.0%} of the 2e7/s target, one thread), {dt / n * 1e6:.2f} µs/patient")
        s = spec.structure.system(v, n)
        dur = spec.route.duration_h
        for rtol, atol in ((1e-6, 1e-9), (1e-10, 1e-14)):
            t0 = time.perf_counter()
            err = 0.0
            for p in range(n_ivp):
                ci = _ivp_patient(s, p, 35.0, dur, TIMES, rtol, atol)
                err = max(err, np.max(np.abs(ci - c[p])) / c[p].max())
            per = (time.perf_counter() - t0) / n_ivp
            print(f"   solve_ivp LSODA rtol={rtol:g}: {per * 1e3:.2f} ms/patient -> closed form is "
                  f"{per / (dt / n):,.0f}x faster per patient (max rel. diff {err:.1e})")


def bench_metrics(n_big):
    print(f"\n== 3. exposure metrics, {n_big:,} patients x 5 doses, no curves kept ==")
    spec = from_config({"model": "s_ketamine_fanta", "ke0": "olofsen_2022_ke0"})
    metrics = ("cmax", "tmax", "auc", "auc_inf", "ce_max", "time_above:100")
    doses = np.array([0.1, 0.2, 0.5, 0.75, 1.0])
    cov, eta = _population(spec, 1000)
    pk_exposures(spec, cov, eta, doses, metrics, "mg/kg")          # warm-up
    cov, eta = _population(spec, n_big, seed=2)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    out = pk_exposures(spec, cov, eta, doses, metrics, "mg/kg")
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out_mb = sum(v.nbytes for v in out.values()) / 2 ** 20
    curve_mb = n_big * doses.size * 289 * 8 / 2 ** 20
    print(f"{dt:.2f} s ({dt / n_big * 1e6:.2f} µs/patient for all 5 doses and {len(metrics)} metrics)")
    print(f"peak traced NumPy memory {peak / 2 ** 20:.0f} MiB (of which the outputs {out_mb:.0f} MiB); "
          f"process max RSS {rss / 1024:.0f} MiB (grew by {(rss - base_rss) / 1024:.0f} MiB); "
          f"curves on the 5-min grid would need {curve_mb:,.0f} MiB")
    print(f"S-ketamine 0.5 mg/kg: median Cmax {np.median(out['cmax'][:, 2]):.1f} ng/mL, "
          f"P(Ce,max > 121 ng/mL = Olofsen C50) {np.mean(out['ce_max'][:, 2] > 121):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--ivp", type=int, default=20)
    a = ap.parse_args()
    bench_profiles(a.patients, a.ivp)
    bench_metrics(a.big)


if __name__ == "__main__":
    main()
