"""One PNG per feature: bucket shares of baseline and current rows, and for numbers the two CDFs."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_kit.figures import pyplot, save
from mlops_kit.monitoring.baseline import Baseline
from mlops_kit.monitoring.columns import numbers

if TYPE_CHECKING:
    from mlops_kit.monitoring.drift import DriftReport, FeatureDrift

CDF_POINTS = 2000  # current values drawn on the CDF panel


def plot_drift(report: DriftReport, frame: pd.DataFrame, baseline: Baseline,
               folder: Path) -> list[Path]:
    """Write `<feature>.png` for every feature with a distribution; return the paths."""
    plt = pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in report.features:
        if not row.bins:
            continue
        numeric = row.kind == "numeric"
        fig, axes = plt.subplots(1, 2 if numeric else 1, figsize=(9 if numeric else 5, 3.2),
                                 squeeze=False)
        _shares(axes[0][0], row)
        if numeric:
            _cdfs(axes[0][1], row, frame[row.name], baseline)
        state = f"DRIFT ({', '.join(row.reasons)})" if row.drifted else "no drift"
        fig.suptitle(f"{row.name}: {state}", fontsize=10)
        paths.append(save(fig, folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', row.name)}.png"))
    return paths


def _shares(ax: Any, row: FeatureDrift) -> None:
    """Side-by-side bars of each bucket's share, baseline and current."""
    labels = row.bins.get("labels") or _bucket_labels(row.bins["edges"])
    at = np.arange(len(labels))
    ax.bar(at - 0.2, row.bins["baseline"], width=0.4, label="baseline")
    ax.bar(at + 0.2, row.bins["current"], width=0.4, label="current")
    ax.set_xticks(at, labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.set_title(f"PSI {row.psi:.3f}" if row.psi is not None else "PSI n/a", fontsize=9)
    ax.legend(fontsize=7)


def _bucket_labels(edges: list[float]) -> list[str]:
    bounds = [f"{e:.3g}" for e in edges]
    inner = [f"{a}-{b}" for a, b in itertools.pairwise(bounds)]
    return [f"<{bounds[0]}", *inner, f">={bounds[-1]}"]


def _cdfs(ax: Any, row: FeatureDrift, series: pd.Series, baseline: Baseline) -> None:
    """The baseline sketch's CDF against the current values' empirical CDF."""
    kll = baseline.feature(row.name)["numerical_statistics"]["distribution"]["kll"]
    ref = np.sort(np.concatenate([np.asarray(v, dtype="float64")
                                  for v in kll["sketch"]["data"]]))
    cur = np.sort(numbers(series, baseline.source_type(row.name)).values)
    if len(cur) > CDF_POINTS:
        cur = cur[np.linspace(0, len(cur) - 1, CDF_POINTS).astype(np.int64)]
    ax.step(ref, np.linspace(0, 1, len(ref)), where="post", label="baseline")
    ax.step(cur, np.linspace(0, 1, len(cur)), where="post", label="current")
    ks = f"KS {row.ks_statistic:.3f} (p={row.ks_pvalue:.2g})" if row.ks_statistic is not None \
        else "KS n/a"
    ax.set_title(ks, fontsize=9)
    ax.set_ylabel("cumulative share")
    ax.legend(fontsize=7)
