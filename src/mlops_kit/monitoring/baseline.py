"""Baseline statistics and constraints of source rows, in SageMaker Model Monitor's layout.

`statistics.json` and `constraints.json` follow the files Model Monitor writes, so a baseline
made here and one made in the cloud are read the same way. Numbers carry 10 equal-frequency
buckets (the PSI bins) and a quantile sketch of at most 1,000 equally weighted items (one
KLL level): all the values when there are at most 1,000, else the mid-quantiles. The sketch
lets a Kolmogorov-Smirnov test run against the baseline without the training data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.config.model import Column, Schema
from mlops_kit.fileio import write_json_atomic
from mlops_kit.monitoring.columns import Numbers, Texts, numbers, texts

STATISTICS, CONSTRAINTS = "statistics.json", "constraints.json"
PSI_BUCKETS = 10
SKETCH_ITEMS = 1000
KLL_PARAMETERS = {"c": 0.64, "k": 2048}
TOP_VALUES = 50  # categorical buckets kept for a string column
DOMAIN_MAX = 20  # a string column with at most this many values gets a domain constraint
INFERRED = {"int": "Integral", "float": "Fractional", "timestamp": "Fractional"}
SOURCE_OF = {"Integral": "int", "Fractional": "float", "String": "string"}
MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                 "comparison_method": "Robust"},
}


class BaselineError(ValueError):
    """A baseline folder that is missing or not in the expected layout."""


@dataclass(frozen=True)
class Baseline:
    """The two documents of a baseline, with lookups by feature name."""

    statistics: dict[str, Any]
    constraints: dict[str, Any]

    @property
    def item_count(self) -> int:
        return int(self.statistics["dataset"]["item_count"])

    @property
    def columns(self) -> list[str]:
        return [f["name"] for f in self.statistics["features"]]

    def feature(self, name: str) -> dict[str, Any]:
        return next(f for f in self.statistics["features"] if f["name"] == name)

    def constraint(self, name: str) -> dict[str, Any]:
        found = (f for f in self.constraints.get("features", []) if f["name"] == name)
        return next(found, {})

    def source_type(self, name: str) -> str:
        """The schema type of a feature (a cloud baseline only knows Integral/Fractional/String)."""
        stats = self.feature(name)
        return str(stats.get("source_type") or SOURCE_OF.get(stats["inferred_type"], "string"))


def compute_baseline(frame: pd.DataFrame, schema: Schema) -> Baseline:
    """Statistics and constraints of every schema column present in `frame`."""
    stats, cons = [], []
    for col in (c for c in schema.columns if c.name in frame.columns):
        if col.type in INFERRED:
            s, c = _numeric(col, numbers(frame[col.name], col.type))
        else:
            s, c = _text(col, texts(frame[col.name], col.type))
        stats.append(s)
        cons.append(c)
    return Baseline(
        {"version": 0, "dataset": {"item_count": len(frame)}, "features": stats},
        {"version": 0, "features": cons, "monitoring_config": MONITORING_CONFIG},
    )


def write_baseline(frame: pd.DataFrame, schema: Schema, folder: Path) -> Baseline:
    """Compute the baseline of `frame` and write `statistics.json` and `constraints.json`."""
    baseline = compute_baseline(frame, schema)
    write_json_atomic(Path(folder) / STATISTICS, baseline.statistics)
    write_json_atomic(Path(folder) / CONSTRAINTS, baseline.constraints)
    return baseline


def read_baseline(folder: Path) -> Baseline:
    """The baseline in `folder`; BaselineError if a file is missing or malformed."""
    docs = []
    for name in (STATISTICS, CONSTRAINTS):
        path = Path(folder) / name
        if not path.is_file():
            raise BaselineError(f"{path}: baseline file missing")
        try:
            docs.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise BaselineError(f"{path}: not valid JSON ({exc})") from exc
    stats, cons = docs
    if not isinstance(stats.get("features"), list) or "item_count" not in stats.get("dataset", {}):
        raise BaselineError(f"{folder}/{STATISTICS}: needs 'dataset.item_count' and 'features'")
    return Baseline(stats, cons)


def _common(col: Numbers | Texts) -> dict[str, int]:
    return {"num_present": len(col.values), "num_missing": col.missing}


def _completeness(col: Numbers | Texts) -> float:
    """The share of rows with a value (ill-typed values count as present, as in a CSV)."""
    return 1.0 - col.missing / col.rows if col.rows else 1.0


def _numeric(col: Column, data: Numbers) -> tuple[dict[str, Any], dict[str, Any]]:
    x = np.sort(data.values)
    n = len(x)
    sketch = x if n <= SKETCH_ITEMS else x[
        ((np.arange(SKETCH_ITEMS) + 0.5) * n / SKETCH_ITEMS).astype(np.int64)]
    empty = n == 0
    stats = {
        "common": _common(data),
        "mean": None if empty else float(x.mean()),
        "sum": float(x.sum()),
        "std_dev": None if empty else float(x.std()),
        "min": None if empty else float(x[0]),
        "max": None if empty else float(x[-1]),
        "distribution": {"kll": {"buckets": _buckets(x, sketch),
                                 "sketch": {"parameters": KLL_PARAMETERS,
                                            "data": [sketch.tolist()]}}},
    }
    kind = INFERRED[col.type]
    return (
        {"name": col.name, "inferred_type": kind, "source_type": col.type,
         "numerical_statistics": stats},
        {"name": col.name, "inferred_type": kind, "completeness": _completeness(data),
         "num_constraints": {"is_non_negative": bool(empty or x[0] >= 0)}},
    )


def _buckets(x: np.ndarray, sketch: np.ndarray) -> list[dict[str, float]]:
    """Equal-frequency buckets: bounds at the sketch's deciles, counts of `x` in each."""
    if len(x) == 0:
        return []
    m = len(sketch)
    inner = sketch[[k * m // PSI_BUCKETS for k in range(1, PSI_BUCKETS)]]
    bounds = [float(x[0]), *inner.tolist(), float(x[-1])]
    below = np.searchsorted(x, inner, side="left")
    counts = np.diff(np.concatenate([[0], below, [len(x)]]))
    return [{"lower_bound": bounds[i], "upper_bound": bounds[i + 1], "count": int(counts[i])}
            for i in range(PSI_BUCKETS)]


def _text(col: Column, data: Texts) -> tuple[dict[str, Any], dict[str, Any]]:
    counts = data.values.value_counts()
    observed = [str(v) for v in counts.index]
    domain: list[str] | None
    if col.type == "category":
        declared = list(col.categories or [])
        domain = declared
        keep = declared + [v for v in observed if v not in set(declared)][:TOP_VALUES]
    elif col.type == "bool":
        domain = keep = ["false", "true"]
    else:
        domain = sorted(observed) if len(observed) <= DOMAIN_MAX else None
        keep = observed[:TOP_VALUES]
    by_value = {str(k): int(v) for k, v in counts.items()}
    stats = {"common": _common(data), "distinct_count": len(observed),
             "distribution": {"categorical": {"buckets": [
                 {"value": v, "count": by_value.get(v, 0)} for v in keep]}}}
    constraint: dict[str, Any] = {"name": col.name, "inferred_type": "String",
                                  "completeness": _completeness(data)}
    if domain is not None:
        constraint["string_constraints"] = {"domains": domain}
    return ({"name": col.name, "inferred_type": "String", "source_type": col.type,
             "string_statistics": stats}, constraint)
