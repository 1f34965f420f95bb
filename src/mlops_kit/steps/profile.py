"""Data profile: per-column statistics and standard plots, stored with each dataset version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.config.model import Schema
from mlops_kit.figures import pyplot, save
from mlops_kit.steps.base import write_json

BINS = 20


def column_stats(values: pd.Series, kind: str) -> dict[str, Any]:
    """Count, missing share and either numeric moments + histogram or category frequencies."""
    n = len(values)
    missing = int(values.isna().sum())
    out: dict[str, Any] = {"type": kind, "count": n, "missing": missing,
                           "missing_fraction": missing / n if n else 0.0}
    present = values.dropna()
    if kind in ("int", "float") and len(present):
        x = present.to_numpy(dtype="float64")
        q = np.quantile(x, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
        counts, edges = np.histogram(x, bins=BINS)
        out.update(mean=float(x.mean()), std=float(x.std()), min=float(x.min()),
                   max=float(x.max()), quantiles=dict(zip(
                       ["p01", "p05", "p25", "p50", "p75", "p95", "p99"], map(float, q),
                       strict=True)),
                   histogram={"edges": edges.tolist(), "counts": counts.tolist()})
    elif kind == "timestamp" and len(present):
        out.update(min=str(present.min()), max=str(present.max()))
    elif len(present):
        freq = present.astype(str).value_counts()
        out.update(distinct=int(freq.size),
                   top={str(k): int(v) for k, v in freq.head(20).items()})
    return out


def profile(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """Statistics of every schema column of `frame`."""
    return {"rows": len(frame),
            "columns": {c.name: column_stats(frame[c.name], c.type) for c in schema.columns}}


def write_profile(frame: pd.DataFrame, schema: Schema, out: Path) -> dict[str, Any]:
    """`profile.json` plus one PNG per column under `plots/`."""
    prof = profile(frame, schema)
    write_json(prof, out / "profile.json")
    plot_profile(prof, out / "plots")
    return prof


def plot_profile(prof: dict[str, Any], folder: Path) -> list[Path]:
    """A histogram for numeric columns, a bar chart for categorical ones."""
    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, stats in prof["columns"].items():
        if "histogram" in stats:
            edges, counts = stats["histogram"]["edges"], stats["histogram"]["counts"]
            fig, ax = plt.subplots(figsize=(4, 2.6))
            ax.stairs(counts, edges, fill=True, alpha=0.8)
        elif "top" in stats and stats["distinct"] <= 50:
            fig, ax = plt.subplots(figsize=(4, 2.6))
            ax.barh(list(stats["top"])[::-1], list(stats["top"].values())[::-1])
        else:
            continue
        ax.set_title(f"{name} (missing {stats['missing_fraction']:.1%})", fontsize=9)
        ax.tick_params(labelsize=7)
        paths.append(save(fig, folder / f"{name}.png"))
    return paths
