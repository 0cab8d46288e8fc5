"""matplotlib figures of a report, returned as inline SVG text."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "figure.dpi": 100, "font.size": 9})


def _svg(fig) -> str:
    buf = io.StringIO()
    # no metadata block: its creator URL, licence links and date are not the report's
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def truth_curves(summary: pd.DataFrame, labels: list[str], unit: str) -> str:
    """True DLT (and response) probability per dose, one line per distinct scenario."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    dose_rows = summary[summary["dose"].astype(str) != "none"]
    curves: dict = {}          # (kind, values) -> (doses, groups sharing the curve)
    for key, g in dose_rows.groupby("group", sort=True):
        for col in ("true_tox", "true_eff"):
            if col in g and not g[col].isna().all():
                values = tuple(np.round(g[col].to_numpy(float), 6))
                curves.setdefault((col, values), (g["dose"].astype(str), []))[1].append(key)
    for (col, values), (doses, groups) in curves.items():
        what = "DLT" if col == "true_tox" else "response"
        who = labels[groups[0]] if len(groups) == 1 else f"{len(groups)} groups incl. " \
            f"{labels[groups[0]]}"
        ax.plot(doses, values, "-o" if col == "true_tox" else "--s", label=f"{what}: {who}")
    ax.set_xlabel(f"dose ({unit})" if unit else "dose")
    ax.set_ylabel("true probability")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", frameon=False, bbox_to_anchor=(1.02, 1))
    ax.set_title("True dose-toxicity and dose-response curves")
    return _svg(fig)


def bars(summary: pd.DataFrame, labels: list[str], column: str, title: str,
         ylabel: str) -> str:
    """Grouped bars of ``column`` per dose (and "none" where present), one group per cell."""
    cells = sorted(summary["group"].unique())
    doses = list(dict.fromkeys(summary["dose"].astype(str)))
    if column not in ("selected_pct", "forward_pct"):
        doses = [d for d in doses if d != "none"]
    fig, ax = plt.subplots(figsize=(min(9.0, max(5.5, 0.3 * len(doses) * len(cells))), 3.2))
    width = 0.8 / len(cells)
    x = np.arange(len(doses))
    for i, c in enumerate(cells):
        g = summary[summary["group"] == c]
        g = g.set_index(g["dose"].astype(str))
        y = [float(g.loc[d, column]) if d in g.index else 0.0 for d in doses]
        ax.bar(x + (i - (len(cells) - 1) / 2) * width, y, width, label=labels[c])
    ax.set_xticks(x, doses)
    ax.set_xlabel("dose")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
    return _svg(fig)


def by_group(metric_rows: pd.DataFrame, labels: list[str], column: str, title: str,
             ylabel: str) -> str:
    """One metric per group with its 95% Monte Carlo interval."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    g = metric_rows.sort_values("group")
    x = np.arange(len(g))
    ax.errorbar(x, g["value"], yerr=1.96 * g["se"].fillna(0), fmt="o", capsize=3)
    ax.set_xticks(x, [labels[i] for i in g["group"]], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _svg(fig)


def fitted_curves(summary: pd.DataFrame, labels: list[str], unit: str) -> str:
    """Mean fitted effect over placebo per dose (band: +-1.96 SE of the mean) against the true
    effect, one colour per group."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    rows = summary[pd.to_numeric(summary["dose"], errors="coerce").notna()]
    for i, (key, g) in enumerate(rows.groupby("group", sort=True)):
        d = g["dose"].astype(float)
        colour = f"C{i % 10}"
        ax.plot(d, g["true_effect"], "--", color=colour, label=f"truth: {labels[key]}")
        m, se = g["fitted_effect_mean"], g["fitted_effect_se"].fillna(0)
        ax.plot(d, m, "-o", color=colour, label=f"fitted: {labels[key]}")
        ax.fill_between(d, m - 1.96 * se, m + 1.96 * se, color=colour, alpha=0.2)
    ax.set_xlabel(f"dose ({unit})" if unit else "dose")
    ax.set_ylabel("effect over placebo")
    ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.set_title("Fitted dose-response (mean of trials) and the truth")
    return _svg(fig)


def durations(weeks: dict[str, np.ndarray]) -> str:
    """Distribution of trial durations (weeks, first patient dosed to the last primary visit),
    one step histogram per label."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    allw = np.concatenate(list(weeks.values()))
    bins = np.linspace(allw.min(), allw.max(), 40) if allw.max() > allw.min() else 10
    for label, w in weeks.items():
        ax.hist(w, bins=bins, histtype="step", density=True,
                label=f"{label} (median {np.median(w):.1f})")
    ax.set_xlabel("trial duration (weeks)")
    ax.set_ylabel("density")
    ax.set_title("Trial duration")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
    return _svg(fig)


def pk_bands(times, q, doses, unit: str) -> str:
    """Median plasma concentration over time per dose level, with the 5-95 % band (log
    scale: a placebo arm, dose 0, has no concentration to draw and no entry)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for j, d in enumerate(doses):
        if not (q[1, :, j] > 0).any():
            continue
        colour = f"C{j % 10}"
        ax.plot(times, q[1, :, j], color=colour, label=f"{d:g} {unit}".strip())
        ax.fill_between(times, q[0, :, j], q[2, :, j], color=colour, alpha=0.15)
    ax.set_xlabel("time after the dose (h)")
    ax.set_ylabel("plasma concentration (ng/mL)")
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(q[0][q[0] > 0].min(), q[1].max() * 1e-3))
    ax.set_title("PK: median and 5-95% of virtual patients")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
    return _svg(fig)
