"""The analysis's input from simulated patients: each patient's endpoint under the
missing-data rule, and the dose-level estimates of every trial (ANCOVA or cell means, logits
for a binary endpoint, or the repeated-measures model) — batched over trials."""
from __future__ import annotations

import numpy as np

from trialsim.analysis.doseresponse.batch import BatchEstimates
from trialsim.analysis.longitudinal import batch_estimates as mmrm_estimates
from trialsim.response.timecourse import classify


def analysis_input(study, traj, base, seen, arm, cov, n_enrolled):
    """The analysis's input from the first ``n_enrolled`` (T,) patients of each trial: ``(y
    (T, N) the endpoint under the missing-data rule (NaN: not analysed, or not enrolled),
    the dose-level estimates, analysed (T, N))``.  ``missing: mmrm`` estimates the arm means
    at the primary visit from every visit up to it
    (:func:`trialsim.analysis.longitudinal.batch_estimates`); ``y`` then holds the observed
    change at the primary visit."""
    T, N = arm.shape
    inside = np.arange(N)[None, :] < n_enrolled[:, None]
    seen = seen & inside[..., None]
    arm0 = np.maximum(arm, 0)
    if study.analysis.missing != "mmrm":
        y = np.where(inside, endpoint_values(study, traj, base, seen), np.nan)
        return y, dose_estimates(study, y, arm0, base, cov), np.isfinite(y)
    v = study.primary
    y = np.where(seen[..., v], traj[..., v] - base, np.nan)
    change = np.where(seen, traj - base[..., None], np.nan)[..., :v + 1]
    names = study.analysis.covariates
    X = np.stack([cov[c] for c in names], axis=-1) if names else None
    est = mmrm_estimates(np.asarray(study.doses, float), change, arm0, v, X)
    return y, est, seen[..., 0]


def endpoint_values(study, traj, base, seen) -> np.ndarray:
    """Each patient's endpoint at the primary visit under the missing-data rule (NaN when not
    analysed): MADRS change from baseline, or 1.0/0.0 for response/remission."""
    v = study.primary
    if study.analysis.missing == "completers":
        score = np.where(seen[..., v], traj[..., v], np.nan)
    else:   # LOCF: the last observed visit up to the primary one; baseline if none
        score = base.copy()
        for j in range(v + 1):
            score = np.where(seen[..., j], traj[..., j], score)
    ep = study.endpoint
    if ep.type == "change":
        return score - base
    out = classify(np.nan_to_num(score), base, ep.type).astype(float)
    return np.where(np.isfinite(score), out, np.nan)


def arm_means(y, arm, D) -> np.ndarray:
    ok = np.isfinite(y)
    out = np.full((y.shape[0], D), np.nan)
    for d in range(D):
        m = (arm == d) & ok
        cnt = m.sum(axis=1)
        s = np.where(m, y, 0.0).sum(axis=1)
        out[:, d] = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
    return out


def dose_estimates(study, y, arm, base, cov) -> BatchEstimates:
    """Dose-level estimates of every trial from the analysed patients."""
    T, N = y.shape
    D = study.n_doses
    doses = np.asarray(study.doses, float)
    ok = np.isfinite(y)
    cell = (np.arange(T)[:, None] * D + arm).ravel()            # (trial, arm) of each patient
    w = ok.ravel().astype(float)

    def arm_sums(v):        # (T, N) -> (T, D): sums over each arm's analysed patients
        return np.bincount(cell, weights=(v.ravel() * w), minlength=T * D).reshape(T, D)

    n = np.bincount(cell, weights=w, minlength=T * D).reshape(T, D)     # (T, D)
    valid = (n >= (1 if study.endpoint.binary else 2)).all(axis=1)
    if study.endpoint.binary:
        events = arm_sums(np.where(ok, y, 0.0))
        pad = (events == 0) | (events == n)      # Haldane–Anscombe for separated arms
        e = np.where(pad, events + 0.5, events)
        nn = np.where(pad, n + 1.0, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = e / nn
            est = np.log(p / (1 - p))
            var = 1.0 / (nn * p * (1 - p))
        est = np.where(valid[:, None], est, 0.0)
        var = np.where(valid[:, None] & np.isfinite(var), var, 1.0)
        cov_m = np.zeros((T, D, D))
        cov_m[:, np.arange(D), np.arange(D)] = var
        return BatchEstimates(doses, est, cov_m, np.full(T, np.inf), "general", valid)
    yv = np.where(ok, y, 0.0)
    nn = np.maximum(n, 1.0)
    ybar = arm_sums(yv) / nn
    resid_y = np.where(ok, yv - np.take_along_axis(ybar, arm, axis=1), 0.0)      # (T, N)
    syy = (resid_y ** 2).sum(axis=1)
    n_cov = len(study.analysis.covariates)
    N_obs = n.sum(axis=1)
    V = np.zeros((T, D, D))
    V[:, np.arange(D), np.arange(D)] = 1.0 / nn
    est = ybar
    rss0 = syy
    if n_cov:
        X = np.stack([np.where(ok, cov[c], 0.0) for c in study.analysis.covariates], axis=-1)
        xbar_all = X.sum(axis=1) / np.maximum(N_obs, 1)[:, None]                 # (T, q)
        xbar = np.stack([arm_sums(X[..., j]) for j in range(n_cov)], axis=-1) / nn[..., None]
        rx = np.where(ok[..., None], X - np.take_along_axis(xbar, arm[..., None], axis=1), 0.0)
        Sxx = np.einsum("tnq,tnr->tqr", rx, rx)                                  # (T, q, q)
        Sxy = np.einsum("tnq,tn->tq", rx, resid_y)
        good = np.linalg.det(Sxx) > 1e-12
        Sxx_safe = np.where(good[:, None, None], Sxx, np.eye(n_cov)[None])
        gamma = np.linalg.solve(Sxx_safe, Sxy[..., None])[..., 0]            # (T, q)
        dx = xbar - xbar_all[:, None, :]                                      # (T, D, q)
        est = ybar - np.einsum("tdq,tq->td", dx, gamma)
        rss0 = syy - np.einsum("tq,tq->t", gamma, Sxy)
        Sinv = np.linalg.inv(Sxx_safe)
        V = V + np.einsum("tdq,tqr,ter->tde", dx, Sinv, dx)
        valid &= good
    df = N_obs - D - n_cov
    valid &= df >= 1
    sigma2 = rss0 / np.maximum(df, 1)
    cov_m = sigma2[:, None, None] * V
    eye = np.eye(D)[None]
    cov_m = np.where(valid[:, None, None], cov_m, eye)
    V = np.where(valid[:, None, None], V, eye)
    return BatchEstimates(doses, np.where(valid[:, None], est, 0.0), cov_m,
                          np.maximum(df, 1).astype(float), "normal", valid, V,
                          np.where(valid, rss0, 1.0), N_obs, n_cov)
