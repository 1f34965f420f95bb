"""Drift metrics to Google Cloud Monitoring as custom metrics (`projects.timeSeries.create`).

Each metric is a GAUGE DOUBLE point of `custom.googleapis.com/<project>/<name>` on the `global`
resource, its dimensions as lower-case labels (`model`, `feature`, `metric`). The request goes
to the REST API through an authorized `requests` session (google-auth), so the project image
needs no Cloud Monitoring SDK; at most 200 time series per call, as the API allows. The session
retries 429 and 5xx answers with backoff (`adapters/http.py`; AuthorizedSession itself only
refreshes the token on 401).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.http import retrying
from mlops_kit.config import LoadedConfig
from mlops_kit.monitoring.sink import Metric

API = "https://monitoring.googleapis.com/v3"
SCOPE = "https://www.googleapis.com/auth/monitoring.write"
MAX_SERIES_PER_CALL = 200
TIMEOUT_S = 60


class MetricsError(Exception):
    """Cloud Monitoring refused the metrics; the message carries its answer."""


class CloudMonitoringSink:
    """Publishes metrics as custom time series of one Google Cloud project."""

    def __init__(self, session: Any, gcp_project: str, namespace: str) -> None:
        self.session = session
        self.gcp_project = gcp_project
        self.namespace = namespace
        self.calls = 0

    @classmethod
    def from_config(cls, loaded: LoadedConfig, **options: Any) -> CloudMonitoringSink:
        """The environment's project; options: a ready `session` (anything with `post`), or
        `credentials` for a new authorized session."""
        session = options.get("session") or _session(options.get("credentials"))
        return cls(session, naming.gcp_project(loaded), loaded.config.project)

    def publish(self, metrics: Sequence[Metric]) -> int:
        """Send the finite-valued metrics, 200 time series a call."""
        series = [self.time_series(m) for m in metrics if math.isfinite(m.value)]
        url = f"{API}/projects/{self.gcp_project}/timeSeries"
        for i in range(0, len(series), MAX_SERIES_PER_CALL):
            body = {"timeSeries": series[i:i + MAX_SERIES_PER_CALL]}
            try:
                answer = self.session.post(url, json=body, timeout=TIMEOUT_S)
            except OSError as exc:  # requests' errors: connection refused, retries exhausted
                raise MetricsError(f"Cloud Monitoring unreachable: {exc}") from exc
            self.calls += 1
            if answer.status_code >= 400:
                raise MetricsError(f"Cloud Monitoring answered {answer.status_code}: "
                                   f"{answer.text[:500]}")
        return len(series)

    def time_series(self, metric: Metric) -> dict[str, Any]:
        """One point in `TimeSeries`' JSON shape."""
        return {
            "metric": {"type": naming.metric_type(self.namespace, metric.name),
                       "labels": {k.lower(): v for k, v in metric.dimensions.items()}},
            "resource": {"type": "global", "labels": {"project_id": self.gcp_project}},
            "metricKind": "GAUGE", "valueType": "DOUBLE",
            "points": [{"interval": {"endTime": metric.timestamp.astimezone(dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")}, "value": {"doubleValue": float(metric.value)}}],
        }


def _session(credentials: Any = None) -> Any:
    """An authorized, retrying session on the application default credentials (or
    `credentials`)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    if credentials is None:
        credentials, _ = google.auth.default(scopes=[SCOPE])
    return retrying(AuthorizedSession(credentials))
