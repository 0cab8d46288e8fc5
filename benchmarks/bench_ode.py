"""Time the numba ODE path against scipy.integrate.solve_ivp, in the same process.

    python benchmarks/bench_ode.py [--n 10000] [--sample 20]

Two workloads with 30 % log-normal IIV: a Michaelis–Menten 1-cmt model with a 40-min
infusion, and the S-ketamine → S-norketamine chain (3-cmt + 2-cmt) with the same infusion;
outputs hourly over 0–24 h.  The numba solver runs every patient (after a warm-up call, so
compilation is excluded), both as full curves and as the streaming Cmax/Tmax/AUC summary;
solve_ivp runs a sample of patients through the SciPy twins (piecewise between dose events)
at the same tolerances (RK45, the same Dormand–Prince pair) and at the reference settings
of the tests (Radau, rtol 1e-10).  Prints the time per patient and the ratio.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from trialsim.pk.ode import MichaelisMenten1Cmt, ParentMetabolite
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/reference: the slow twins
from tests.reference.pk_ode import reference_solve
from trialsim.pk.regimen import Regimen


def _iiv(model, names, n, rng, cv=0.3):
    base = model.system()
    vals = dict(zip(base.param_names, base.param_values))
    return {k: vals[k] * np.exp(cv * rng.standard_normal(n)) for k in names}


def _time(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(label, model, names, n, sample, rng):
    reg = Regimen.single(35.0, 40 / 60)
    times = np.arange(0.0, 24.5, 1.0)
    params = _iiv(model, names, n, rng)
    model.simulate(reg, times, {k: v[:1] for k, v in params.items()})      # warm-up/compile
    model.summary(reg, 24.0, {k: v[:1] for k, v in params.items()})
    t_curves = _time(lambda: model.simulate(reg, times, params))
    t_summary = _time(lambda: model.summary(reg, 24.0, params))
    system = model.system()
    rows = [{k: float(v[i]) for k, v in params.items()} for i in range(sample)]
    t_rk45 = _time(lambda: [reference_solve(system, reg, times, r, method="RK45", rtol=1e-8,
                                            atol=1e-10) for r in rows], repeat=1)
    t_radau = _time(lambda: [reference_solve(system, reg, times, r) for r in rows], repeat=1)
    per = {"numba curves": t_curves / n, "numba summary": t_summary / n,
           "solve_ivp RK45 1e-8": t_rk45 / sample, "solve_ivp Radau 1e-10": t_radau / sample}
    print(f"\n{label}: {n} patients with numba, {sample} with solve_ivp")
    for k, v in per.items():
        print(f"  {k:<24s} {v * 1e6:10.1f} µs/patient")
    print(f"  numba total for {n} patients: curves {t_curves:.3f} s, summary {t_summary:.3f} s")
    for ref in ("solve_ivp RK45 1e-8", "solve_ivp Radau 1e-10"):
        print(f"  per-patient ratio {ref} / numba curves: {per[ref] / per['numba curves']:8.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    bench("Michaelis–Menten 1-cmt, 40-min infusion",
          MichaelisMenten1Cmt(V1=252.0, Vmax=60.0, Km=0.3), ("V1", "Vmax", "Km"), a.n, a.sample,
          rng)
    bench("S-ketamine -> S-norketamine (3-cmt + 2-cmt), 40-min infusion",
          ParentMetabolite.ketamine_norketamine(), ("CL", "V1", "CLm", "Vm"), a.n, a.sample, rng)


if __name__ == "__main__":
    main()
