"""`mlops-kit monitor`: drift of given source rows against a registered version's baseline.

Reads the rows (CSV, Parquet file or folder), takes the baseline the version carries,
computes drift (and quality when the rows hold the target), writes `drift.json` and one plot
per feature, and publishes the figures as metrics.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit.config import LoadedConfig
from mlops_kit.config.names import HeaderClash, map_headers
from mlops_kit.fileio import work_dir, write_json_atomic
from mlops_kit.monitoring.baseline import BaselineError, read_baseline
from mlops_kit.monitoring.drift import (
    DriftInputError,
    DriftReport,
    QualityResult,
    compute_drift,
    compute_quality,
    label_check,
)
from mlops_kit.monitoring.plots import plot_drift
from mlops_kit.monitoring.sink import MetricsSink, drift_metrics, open_sink
from mlops_kit.registry import ModelVersion, Registry, open_registry, production
from mlops_kit.registry.base import download_verified

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)


class MonitorInputError(ValueError):
    """Input that cannot be monitored: the message says what to fix."""


class MonitorError(RuntimeError):
    """The check ran but its results could not all be delivered."""


@dataclass
class MonitorResult:
    """What a monitor run produced."""

    report: DriftReport
    model: str
    version: int
    output: Path
    plots: list[Path]
    published: int

    def to_dict(self) -> dict[str, Any]:
        """The drift report plus which model, where it was written: plain JSON types."""
        return {"model": self.model, "version": self.version, "output": str(self.output),
                "plots": [str(p) for p in self.plots], "published": self.published,
                **self.report.to_dict()}


def read_rows(path: Path) -> pd.DataFrame:
    """Source rows from a CSV file, a Parquet file or a folder of Parquet parts."""
    path = Path(path)
    if not path.exists():
        raise MonitorInputError(f"{path}: no such file or folder")
    parquet = path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES
    if not parquet and path.suffix.lower() not in CSV_SUFFIXES:
        raise MonitorInputError(f"{path}: give a .csv or .parquet file, or a folder of Parquet")
    try:
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except Exception as exc:  # pandas and pyarrow raise many types for an unreadable file
        kind = "Parquet" if parquet else "CSV"
        raise MonitorInputError(f"{path}: cannot be read as {kind}: {exc}") from exc
    if frame.empty:
        raise MonitorInputError(f"{path}: holds no rows")
    return frame


def named(rows: pd.DataFrame, aliases: Mapping[str, str], path: Path) -> pd.DataFrame:
    """`rows` with each column's header replaced by its name (`aliases`: header -> name)."""
    headers = [str(h) for h in rows.columns]
    try:
        return rows.set_axis(map_headers(headers, aliases), axis=1)
    except HeaderClash as exc:
        raise MonitorInputError(f"{path}: {exc}") from exc


def resolve_version(registry: Registry, model: str, version: int | None) -> ModelVersion:
    """The requested version, or production when none is given."""
    if version is not None:
        return registry.get(model, version)
    current = production(registry, model)
    if current is None:
        raise MonitorInputError(f"model {model!r} has no version in production: approve one "
                                "or pass --version N")
    return current


def default_output(loaded: LoadedConfig) -> Path:
    """`<state>/monitoring/<UTC timestamp>-<suffix>`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return loaded.state_dir / "monitoring" / f"{stamp}-{uuid.uuid4().hex[:6]}"


def monitor(loaded: LoadedConfig, input_path: Path, version: int | None = None,
            output: Path | None = None, sink: MetricsSink | None = None) -> MonitorResult:
    """Run the whole check; MonitorInputError for input that cannot be compared."""
    cfg = loaded.config
    rows = named(read_rows(input_path), cfg.table.aliases, input_path)
    registry = open_registry(loaded)
    chosen = resolve_version(registry, cfg.model.name, version)
    out = Path(output) if output else default_output(loaded)
    with work_dir(loaded.state_dir, "monitor") as tmp:
        folder = download_verified(registry, chosen, tmp / "model")
        try:
            baseline = read_baseline(folder / "baseline")
            report = compute_drift(rows, baseline, cfg.monitoring, cfg.table)
        except BaselineError as exc:
            raise MonitorInputError(f"version {chosen.version} of {cfg.model.name} has no "
                                    f"usable baseline ({exc}); retrain to make one") from exc
        except DriftInputError as exc:
            raise MonitorInputError(f"{input_path}: {exc}") from exc
        report.quality = _quality(loaded, folder, rows, chosen, report)
    write_json_atomic(out / "drift.json", {
        "model": cfg.model.name, "version": chosen.version, "input": str(input_path),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **report.to_dict()})
    plots = plot_drift(report, rows, baseline, out / "plots")
    try:
        published = (sink or open_sink(loaded)).publish(drift_metrics(report, cfg.model.name))
    except Exception as exc:  # any SDK or file error: say what was already written
        raise MonitorError(f"drift written to {out}, but publishing metrics failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    return MonitorResult(report, cfg.model.name, chosen.version, out, plots, published)


def _quality(loaded: LoadedConfig, folder: Path, rows: pd.DataFrame,
             version: ModelVersion, report: DriftReport) -> QualityResult | None:
    """Quality on the rows that carry a label the model knows, against the version's
    registered metric; labels it does not know become the target's row of `report`."""
    from mlops_kit.models import load_model
    from mlops_kit.steps.base import StepError
    from mlops_kit.steps.train import encode_labels

    cfg = loaded.config
    target, metric = cfg.table.target, cfg.quality_gate.metric
    if target not in rows.columns or metric not in version.metrics:
        return None
    labelled = rows[rows[target].notna()]
    if labelled.empty:
        return None
    model = load_model(folder)
    if model.meta.classes:
        report.features.append(label_check(labelled[target], model.meta.classes,
                                           cfg.monitoring))
        labelled = labelled[labelled[target].isin(model.meta.classes)]
        if labelled.empty:
            return None
    try:
        y, _ = encode_labels(labelled[target], model.meta.task, model.meta.classes or None)
        pred = model.predict_source(labelled)
    except StepError as exc:
        raise MonitorInputError(f"labels or rows unusable for quality: {exc}") from exc
    return compute_quality(y, pred, model.meta.task, version.metrics[metric],
                           cfg.monitoring.quality_drop, metric)
