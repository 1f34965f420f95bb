"""Drift metrics to Application Insights as custom metrics (the `customMetrics` table).

Azure Monitor has no plain "put a metric point" API for our own names; Application Insights'
ingestion endpoint (`<IngestionEndpoint>/v2.1/track`, the one azure-monitor-opentelemetry's
exporter posts to) takes `MetricData` telemetry items. Each metric becomes one item: its name,
the project as metric namespace (`ns`) and its dimensions (`Model`, `Feature`, `Metric`) as
`customDimensions`. The connection string (instrumentation key and ingestion endpoint) comes
from `APPLICATIONINSIGHTS_CONNECTION_STRING`, which the Pulumi schedule sets on the job. The
session retries 500, 502, 503 and 504 and the timeout and throttling answers 408, 429 and 439
with backoff (`adapters/http.py`); other statuses (501, a partial 206) are not retried.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from typing import Any

from mlops_kit.adapters.http import RETRY_STATUSES, retrying
from mlops_kit.config import LoadedConfig
from mlops_kit.monitoring.sink import Metric

CONNECTION_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
DEFAULT_INGESTION = "https://dc.services.visualstudio.com"
ENVELOPE_NAME = "Microsoft.ApplicationInsights.Metric"
MAX_ITEMS_PER_CALL = 500
TIMEOUT_S = 60
# Application Insights' ingestion also answers 408 (timeout) and 439 (throttled) to retry.
RETRYABLE = RETRY_STATUSES | {408, 439}


class MetricsError(Exception):
    """Application Insights refused the metrics (or there is nowhere to send them)."""


def parse_connection_string(text: str) -> tuple[str, str]:
    """(instrumentation key, ingestion endpoint) of an Application Insights connection string."""
    parts = dict(p.split("=", 1) for p in text.strip().split(";") if "=" in p)
    key = parts.get("InstrumentationKey", "").strip()
    if not key:
        raise MetricsError("the Application Insights connection string has no InstrumentationKey")
    return key, parts.get("IngestionEndpoint", DEFAULT_INGESTION).strip().rstrip("/")


class AppInsightsSink:
    """Publishes metrics as custom metrics of one Application Insights resource."""

    def __init__(self, session: Any, connection_string: str, namespace: str) -> None:
        self.session = session
        self.key, self.endpoint = parse_connection_string(connection_string)
        self.namespace = namespace
        self.calls = 0

    @classmethod
    def from_config(cls, loaded: LoadedConfig, **options: Any) -> AppInsightsSink:
        """Options: `session` (anything with `post`; default a requests Session) and
        `connection_string` (default: the `APPLICATIONINSIGHTS_CONNECTION_STRING` variable)."""
        text = options.get("connection_string") or os.environ.get(CONNECTION_ENV)
        if not text:
            raise MetricsError(f"no Application Insights connection string: set {CONNECTION_ENV}")
        return cls(options.get("session") or _session(), text, loaded.config.project)

    @property
    def url(self) -> str:
        return f"{self.endpoint}/v2.1/track"

    def publish(self, metrics: Sequence[Metric]) -> int:
        """Send the finite-valued metrics, 500 items a call; MetricsError unless all accepted."""
        items = [self.item(m) for m in metrics if math.isfinite(m.value)]
        for i in range(0, len(items), MAX_ITEMS_PER_CALL):
            batch = items[i:i + MAX_ITEMS_PER_CALL]
            try:
                answer = self.session.post(self.url, json=batch, timeout=TIMEOUT_S)
            except OSError as exc:  # requests' errors: connection refused, retries exhausted
                raise MetricsError(f"Application Insights unreachable: {exc}") from exc
            self.calls += 1
            if answer.status_code != 200:  # 206: some items refused, named in `errors`
                raise MetricsError(f"Application Insights answered {answer.status_code}: "
                                   f"{answer.text[:500]}")
        return len(items)

    def item(self, metric: Metric) -> dict[str, Any]:
        """One telemetry item in the ingestion schema (`TelemetryItem` with `MetricData`)."""
        when = metric.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"ver": 1, "name": ENVELOPE_NAME, "time": when, "iKey": self.key,
                "tags": {"ai.cloud.role": self.namespace},
                "data": {"baseType": "MetricData", "baseData": {
                    "ver": 2, "properties": dict(metric.dimensions),
                    "metrics": [{"name": metric.name, "ns": self.namespace,
                                 "value": float(metric.value), "count": 1}]}}}


def _session() -> Any:
    """A requests session that retries throttling and server errors."""
    import requests

    return retrying(requests.Session(), RETRYABLE)
