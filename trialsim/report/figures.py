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
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def truth_curves(summary: pd.DataFrame, labels: list[str], unit: str) -> str:
    """True DLT (and response) probability per dose, one line per distinct scenario."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    dose_rows = summary[summary["dose"].astype(str) != "none"]
    seen = set()
    for key, g in dose_rows.groupby("cell", sort=True):
        for col, style in (("true_tox", "-o"), ("true_eff", "--s")):
            if col not in g or g[col].isna().all():
                continue
            values = tuple(np.round(g[col].to_numpy(float), 6))
            if (col, values) in seen:
                continue
            seen.add((col, values))
            what = "DLT" if col == "true_tox" else "response"
            ax.plot(g["dose"].astype(str), g[col], style, label=f"{what}: {labels[key]}")
    ax.set_xlabel(f"dose ({unit})" if unit else "dose")
    ax.set_ylabel("true probability")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    ax.set_title("True dose-toxicity and dose-response curves")
    return _svg(fig)


def bars(summary: pd.DataFrame, labels: list[str], column: str, title: str,
         ylabel: str) -> str:
    """Grouped bars of ``column`` per dose (and "none" where present), one group per cell."""
    cells = sorted(summary["cell"].unique())
    doses = list(dict.fromkeys(summary["dose"].astype(str)))
    if column != "selected_pct":
        doses = [d for d in doses if d != "none"]
    fig, ax = plt.subplots(figsize=(max(5.5, 0.35 * len(doses) * len(cells)), 3.2))
    width = 0.8 / len(cells)
    x = np.arange(len(doses))
    for i, c in enumerate(cells):
        g = summary[summary["cell"] == c]
        g = g.set_index(g["dose"].astype(str))
        y = [float(g.loc[d, column]) if d in g.index else 0.0 for d in doses]
        ax.bar(x + (i - (len(cells) - 1) / 2) * width, y, width, label=labels[c])
    ax.set_xticks(x, doses)
    ax.set_xlabel("dose")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False, ncol=2 if len(cells) > 4 else 1)
    return _svg(fig)
