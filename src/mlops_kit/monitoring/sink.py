"""Where drift results go as metrics: a port with a local JSON-lines sink, CloudWatch, Google
Cloud Monitoring and Azure Application Insights.

Metric names: FeaturePSI and FeatureKS (dimensions Model, Feature), DriftedFeatures (Model)
and ModelQuality (Model, Metric). The namespace is the project's name.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlops_kit.config import LoadedConfig
from mlops_kit.extras import needs
from mlops_kit.fileio import file_lock
from mlops_kit.monitoring.drift import DriftReport


@dataclass(frozen=True)
class Metric:
    """One data point."""

    name: str
    value: float
    dimensions: dict[str, str]
    unit: str = "None"
    timestamp: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class MetricsSink(Protocol):
    """Anything that takes metrics: a file, CloudWatch."""

    namespace: str

    def publish(self, metrics: Sequence[Metric]) -> int:
        """Send `metrics`; return how many were sent."""
        ...


class LocalMetricsSink:
    """Appends one JSON object per metric to `<folder>/<namespace>.jsonl`."""

    def __init__(self, folder: Path, namespace: str) -> None:
        self.path = Path(folder) / f"{namespace}.jsonl"
        self.namespace = namespace

    def publish(self, metrics: Sequence[Metric]) -> int:
        lines = [json.dumps({"namespace": self.namespace, "name": m.name, "value": m.value,
                             "unit": m.unit, "dimensions": m.dimensions,
                             "timestamp": m.timestamp.isoformat()}) for m in metrics]
        with file_lock(self.path.with_suffix(".lock")), self.path.open("a") as fh:
            fh.writelines(line + "\n" for line in lines)
        return len(lines)


def drift_metrics(report: DriftReport, model: str) -> list[Metric]:
    """The report as metrics (features without a PSI or KS figure are left out)."""
    now = dt.datetime.now(dt.UTC)
    out = [Metric("DriftedFeatures", float(len(report.drifted_features)), {"Model": model},
                  "Count", now)]
    for row in report.features:
        dims = {"Model": model, "Feature": row.name}
        for name, value in (("FeaturePSI", row.psi), ("FeatureKS", row.ks_statistic)):
            if value is not None and math.isfinite(value):
                out.append(Metric(name, float(value), dims, "None", now))
    q = report.quality
    if q is not None and math.isfinite(q.value):
        out.append(Metric("ModelQuality", q.value, {"Model": model, "Metric": q.metric},
                          "None", now))
    return out


# The cloud sinks, loaded by name so this module needs no cloud SDK.
CLOUD_SINKS = {"cloudwatch": ("mlops_kit.adapters.aws.cloudwatch", "CloudWatchSink"),
               "cloud_monitoring": ("mlops_kit.adapters.gcp.cloudmonitoring",
                                    "CloudMonitoringSink"),
               "app_insights": ("mlops_kit.adapters.azure.appinsights", "AppInsightsSink")}


def open_sink(loaded: LoadedConfig, **options: Any) -> MetricsSink:
    """The configured sink: local files, CloudWatch, Google Cloud Monitoring or Application
    Insights."""
    namespace = loaded.config.project
    kind = loaded.config.monitoring.metrics_sink
    if kind == "local":
        return LocalMetricsSink(loaded.state_dir / "metrics", namespace)
    module_name, class_name = CLOUD_SINKS[kind]
    with needs(f"the {kind} metrics sink"):
        module = importlib.import_module(module_name)
    sink: MetricsSink = getattr(module, class_name).from_config(loaded, **options)
    return sink
