"""Drift monitoring on Vertex AI, the counterpart of Model Monitor's job on AWS:

    python -m mlops_kit.adapters.gcp.monitor --config /opt/mlops/mlops.yaml --env gcp_prod \
        --model churn-classifier [--window-minutes N]

A Cloud Scheduler job starts it as a Vertex AI CustomJob on `monitoring.schedule`. For one
model it reads the requests Vertex AI logged to BigQuery (`capture_<model>` in the environment's
dataset) during the period that ended at the schedule's latest firing, turns the JSON request
payloads into source rows with the parsing of the local and AWS paths (`RowCollector`), takes
the baseline of the production version (the `production` alias of the Vertex registry), and runs
the shared check (`monitoring.check`). It writes `drift.json` to
`gs://<pipelines bucket>/monitoring/<model>/<window end>/`; on the change into drift (the
previous window's `summary.json` does not say drift) with `training.retrain_on_drift` it
submits the model's stored training run request, the body the training schedule posts; then it
publishes the drift metrics to Cloud Monitoring (the drift alert policy watches
`DriftedFeatures`) and writes `summary.json`. No traffic in the window: a no-traffic result and
exit 0. Requests logged but none usable, or metrics not published: results written, exit 1.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit.adapters.gcp import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.monitoring import scheduled
from mlops_kit.monitoring.baseline import Baseline, read_baseline
from mlops_kit.monitoring.check import DriftCheck
from mlops_kit.monitoring.scheduled import Window
from mlops_kit.registry import open_registry, production
from mlops_kit.serving.capture import RowCollector
from mlops_kit.serving.codec import JSON
from mlops_kit.steps.features import FeatureSet

QUERY = ("SELECT logging_time, deployed_model_id, request_payload FROM `{table}` "
         "WHERE logging_time >= @start AND logging_time < @end ORDER BY logging_time")


class MonitorError(Exception):
    """The check cannot run; the message says what is missing."""


@dataclass
class Clients:
    """The Google Cloud clients the job uses (tests pass stand-ins)."""

    bigquery: Any    # google.cloud.bigquery.Client
    storage: Any     # google.cloud.storage.Client
    models: Any      # aiplatform_v1 ModelServiceClient (the registry)
    pipelines: Any   # aiplatform_v1 PipelineServiceClient
    metrics: Any = None  # an authorized session for Cloud Monitoring (None: a default one)


def logged_rows(bigquery: Any, loaded: LoadedConfig, model: str,
                window: Window) -> pd.DataFrame:
    """Source rows of the requests logged in `window` (empty if the table is not there yet)."""
    from google.api_core.exceptions import NotFound
    from google.cloud.bigquery import QueryJobConfig, ScalarQueryParameter

    table = naming.capture_uri(loaded, model).removeprefix("bq://")
    config = QueryJobConfig(query_parameters=[
        ScalarQueryParameter("start", "TIMESTAMP", window[0]),
        ScalarQueryParameter("end", "TIMESTAMP", window[1])])
    collector = RowCollector(FeatureSet(tuple(loaded.config.features.declared),
                                        loaded.config.table))
    try:
        found = list(bigquery.query(QUERY.format(table=table), job_config=config).result())
    except NotFound:  # Vertex AI creates the table with the first logged request
        return collector.frame()
    for row in found:
        when, deployed = row["logging_time"], row["deployed_model_id"]
        payloads = row["request_payload"] or []
        if not payloads:
            collector.skip("no request payload logged")
        for payload in payloads:
            collector.add(payload, JSON, when.isoformat(), deployed)
    return collector.frame()


def production_baseline(loaded: LoadedConfig, clients: Clients, model: str) -> Baseline:
    """The training baseline the production version carries (files beside the model)."""
    registry = open_registry(loaded, model_client=clients.models, storage_client=clients.storage)
    current = production(registry, model)
    if current is None:
        raise MonitorError(f"{model}: no approved version in the registry, so no baseline")
    with tempfile.TemporaryDirectory() as tmp:
        registry.download(model, current.version, Path(tmp))
        return read_baseline(Path(tmp) / "baseline")


def submit_retraining(loaded: LoadedConfig, clients: Clients, model: str) -> str:
    """POST the model's stored run request (as the training schedule does); the run's name."""
    from google.cloud.aiplatform_v1 import types

    blob = clients.storage.bucket(naming.bucket(loaded, "pipelines")).blob(
        naming.run_request_object(model))
    job = types.PipelineJob.from_json(blob.download_as_bytes().decode())
    job.labels["trigger"] = "drift"
    created = clients.pipelines.create_pipeline_job(request=types.CreatePipelineJobRequest(
        parent=naming.location(loaded), pipeline_job=job))
    return str(created.name)


def write_json(clients: Clients, loaded: LoadedConfig, key: str, document: Any) -> str:
    """Upload `document` to the pipelines bucket; its gs:// URI."""
    bucket = naming.bucket(loaded, "pipelines")
    clients.storage.bucket(bucket).blob(key).upload_from_string(
        json.dumps(document, indent=2, default=str), content_type="application/json")
    return f"gs://{bucket}/{key}"


def read_json(clients: Clients, loaded: LoadedConfig, key: str) -> Any:
    """A JSON document of the pipelines bucket; None if missing or unreadable."""
    from google.api_core.exceptions import NotFound

    try:
        blob = clients.storage.bucket(naming.bucket(loaded, "pipelines")).blob(key)
        return json.loads(blob.download_as_bytes())
    except (NotFound, ValueError):
        return None


def monitor_of(loaded: LoadedConfig, clients: Clients) -> scheduled.Monitor:
    """Vertex request logs in BigQuery, the production version's baseline, results in the
    pipelines bucket, the stored run request, Cloud Monitoring."""
    from mlops_kit.adapters.gcp.cloudmonitoring import MetricsError

    model = loaded.config.model.name
    return scheduled.Monitor(
        rows=lambda window: logged_rows(clients.bigquery, loaded, model, window),
        baseline=lambda: production_baseline(loaded, clients, model),
        read_json=lambda key: read_json(clients, loaded, key),
        write_json=lambda key, document: write_json(clients, loaded, key, document),
        retrain=lambda: submit_retraining(loaded, clients, model),
        results=naming.MONITORING_PREFIX, sink="cloud_monitoring",
        sink_errors=(MetricsError,), session=clients.metrics)


def run(loaded: LoadedConfig, clients: Clients, window: Window) -> DriftCheck:
    """The whole check of `loaded.config.model` over `window` (see `scheduled.run`)."""
    return scheduled.run(loaded, monitor_of(loaded, clients), window)


def default_clients(loaded: LoadedConfig) -> Clients:
    """Clients on the environment's project and regional Vertex AI endpoint."""
    from google.cloud import bigquery, storage
    from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient

    from mlops_kit.adapters.gcp.registry import model_client

    project = naming.gcp_project(loaded)
    api = {"api_endpoint": f"{naming.region(loaded)}-aiplatform.googleapis.com"}
    return Clients(bigquery.Client(project=project, location=naming.region(loaded)),
                   storage.Client(project=project), model_client(loaded),
                   PipelineServiceClient(client_options=api))


def main(argv: list[str] | None = None, clients: Clients | None = None,
         now: dt.datetime | None = None) -> int:
    from google.api_core.exceptions import GoogleAPIError

    from mlops_kit.adapters.gcp.cloudmonitoring import MetricsError

    def with_clients(loaded: LoadedConfig, window: Window) -> DriftCheck:
        return run(loaded, clients or default_clients(loaded), window)

    return scheduled.main("python -m mlops_kit.adapters.gcp.monitor", "vertex", argv,
                          with_clients, (MonitorError, MetricsError, GoogleAPIError), now)


if __name__ == "__main__":
    sys.exit(main())
