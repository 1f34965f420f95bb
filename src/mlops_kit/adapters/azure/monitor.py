"""Drift monitoring on Azure ML, the counterpart of the Vertex AI and SageMaker jobs:

    python -m mlops_kit.adapters.azure.monitor --config /opt/mlops/mlops.yaml --env azure_prod \
        --model churn-classifier [--window-minutes N]

An Azure ML Schedule runs it as a command job on `monitoring.schedule`. For one model it reads
the request payloads Azure ML's data collector logged (JSON Lines under
`modelDataCollector/<endpoint>/<deployment>/request/YYYY/MM/DD/HH/` in the workspace's default
blob datastore) during the period that ended at the schedule's latest firing, turns each
record's `data` into source rows with the parsing of the other clouds (`RowCollector`), takes
the baseline of the served version (`azure.deploy_versions[model]` in the Azure ML registry,
`registry.backend: azureml`; not the newest Approved one, which may not be deployed yet), and
runs the shared check (`monitoring.check`). It writes `drift.json` to
`monitoring/<model>/<window end>/` in the same datastore; on the change into drift (the
previous window's `summary.json` does not say drift) with `training.retrain_on_drift` it
submits the model's training pipeline job, rendered as the training schedule's is; then it
publishes the drift metrics to Application Insights (the drift alert queries them) and writes
`summary.json`. No traffic in the window: a no-traffic result and exit 0. Requests logged but
none usable, or metrics not published: results written, exit 1.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mlops_kit.adapters.azure import naming
from mlops_kit.adapters.azure import pipeline as render
from mlops_kit.config import LoadedConfig
from mlops_kit.fileio import work_dir
from mlops_kit.monitoring import scheduled
from mlops_kit.monitoring.baseline import Baseline, BaselineError, read_baseline
from mlops_kit.monitoring.check import DriftCheck
from mlops_kit.monitoring.scheduled import Window
from mlops_kit.pipeline import load_pipeline
from mlops_kit.registry import RegistryError, open_registry
from mlops_kit.serving.capture import RowCollector
from mlops_kit.serving.codec import JSON, media_type
from mlops_kit.steps.features import FeatureSet


class MonitorError(Exception):
    """The check cannot run; the message says what is missing."""


@dataclass
class Clients:
    """The Azure clients the job uses (tests pass stand-ins)."""

    workspace: Any   # azure.ai.ml.MLClient on the workspace (submits the training job)
    blobs: Any       # azure.storage.blob.ContainerClient of the capture datastore
    registry: Any    # azure.ai.ml.MLClient on the Azure ML registry
    metrics: Any = None  # a session for Application Insights (None: a new one)


def hours(window: Window) -> Iterator[dt.datetime]:
    """The starts of the UTC hours that overlap `window`, plus the hour after its end: the
    collector files a record by its write time, so one stamped 13:59:59 may sit in `14/`
    (`add_record` drops the records outside the window)."""
    at = window[0].astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    while at < window[1] + dt.timedelta(hours=1):
        yield at
        at += dt.timedelta(hours=1)


def capture_files(blobs: Any, endpoint_name: str, window: Window) -> Iterator[tuple[str, str]]:
    """(deployment, blob name) of every request file of the endpoint's deployments in `window`."""
    root = f"{naming.CAPTURE_ROOT}/{endpoint_name}/"
    deployments = {item.name.removeprefix(root).rstrip("/") for item in
                   blobs.walk_blobs(name_starts_with=root, delimiter="/")
                   if item.name.endswith("/")}
    for deployment in sorted(deployments):
        folder = naming.capture_folder(endpoint_name, deployment, naming.REQUEST)
        for hour in hours(window):
            for blob in blobs.list_blobs(name_starts_with=f"{folder}/{hour:%Y/%m/%d/%H}/"):
                if blob.name.endswith(".jsonl"):
                    yield deployment, blob.name


def add_record(collector: RowCollector, line: str, deployment: str, window: Window) -> None:
    """Rows of one collected record (skipped with a reason when unusable; ignored outside
    `window`). The request body is the record's `data`: parsed JSON, or text of another type."""
    try:
        record = json.loads(line)
        when = dt.datetime.fromisoformat(str(record["time"]))
    except (ValueError, KeyError, TypeError) as exc:
        collector.skip(f"malformed collector record: {type(exc).__name__}")
        return
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if not window[0] <= when < window[1]:
        return
    data = record.get("data")
    if data is None:
        collector.skip("payload stored apart (dataref), not read" if "dataref" in record
                       else "no request data in the record")
        return
    content_type = media_type(record.get("datacontenttype"), JSON)
    body = data if isinstance(data, str) else json.dumps(data)
    collector.add(body, content_type, when.isoformat(), deployment)


def collected_rows(blobs: Any, loaded: LoadedConfig, model: str, window: Window) -> pd.DataFrame:
    """Source rows of the requests the model's endpoint logged in `window`."""
    cfg = loaded.config
    collector = RowCollector(FeatureSet(tuple(cfg.features.declared), cfg.table))
    endpoint_name = naming.endpoint(cfg.project, str(loaded.env), model)
    for deployment, name in capture_files(blobs, endpoint_name, window):
        text = blobs.download_blob(name).readall().decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip():
                add_record(collector, line, deployment, window)
    return collector.frame()


def served_baseline(loaded: LoadedConfig, clients: Clients, model: str) -> Baseline:
    """The training baseline the served version carries (files beside the model): the one
    `azure.deploy_versions` pins, as the endpoint's deployment and the retrain job use."""
    pinned = loaded.config.azure.deploy_versions.get(model)
    if pinned is None:
        raise MonitorError(f"{model}: no version pinned in azure.deploy_versions, so no "
                           "served version and no baseline")
    registry = open_registry(loaded, ml_client=clients.registry)
    try:
        with work_dir(loaded.state_dir, "baseline") as tmp:
            registry.download(model, int(pinned), tmp)
            return read_baseline(Path(tmp) / "baseline")
    except (RegistryError, BaselineError, ValueError) as exc:
        raise MonitorError(f"{model}: the served version {pinned} (azure.deploy_versions) "
                           f"has no readable baseline in the registry: {exc}") from None


def training_job(loaded: LoadedConfig, model: str) -> Any:
    """The model's training pipeline job as azure-ai-ml loads it: the DAG rendered as for the
    training schedule and CI, with the served version as `production_model`, tagged drift."""
    from azure.ai.ml import load_job

    cfg = loaded.config
    version = cfg.azure.deploy_versions.get(model)
    uri = None if version is None else naming.model_uri(
        naming.registry(cfg.project, str(loaded.env)), cfg.project, model, version)
    spec = render.pipeline_job(loaded, load_pipeline(loaded), model, naming.CLUSTER,
                               naming.image(loaded), production=uri)
    with work_dir(loaded.state_dir, "pipeline-job") as tmp:
        path = tmp / "pipeline-job.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        job = load_job(source=path)
    job.tags = {**(job.tags or {}), "trigger": "drift", "model": model}
    return job


def submit_retraining(loaded: LoadedConfig, clients: Clients, model: str) -> str:
    """Submit the model's training pipeline job to the workspace; the job's name."""
    created = clients.workspace.jobs.create_or_update(training_job(loaded, model))
    return str(created.name)


def write_json(blobs: Any, key: str, document: Any) -> str:
    """Upload `document` to the capture datastore; its azureml:// URI."""
    from azure.storage.blob import ContentSettings

    blobs.upload_blob(key, json.dumps(document, indent=2, default=str), overwrite=True,
                      content_settings=ContentSettings(content_type="application/json"))
    return f"azureml://datastores/{naming.CAPTURE_DATASTORE}/paths/{key}"


def read_json(blobs: Any, key: str) -> Any:
    """A JSON document of the capture datastore; None if missing or unreadable."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return json.loads(blobs.download_blob(key).readall())
    except (ResourceNotFoundError, ValueError):
        return None


def monitor_of(loaded: LoadedConfig, clients: Clients) -> scheduled.Monitor:
    """Collected request records in the capture datastore, the served version's baseline,
    results beside the capture, the training pipeline job, Application Insights."""
    from mlops_kit.adapters.azure.appinsights import MetricsError

    model = loaded.config.model.name
    return scheduled.Monitor(
        rows=lambda window: collected_rows(clients.blobs, loaded, model, window),
        baseline=lambda: served_baseline(loaded, clients, model),
        read_json=lambda key: read_json(clients.blobs, key),
        write_json=lambda key, document: write_json(clients.blobs, key, document),
        retrain=lambda: submit_retraining(loaded, clients, model),
        results=naming.MONITORING_PREFIX, sink="app_insights",
        sink_errors=(MetricsError,), session=clients.metrics)


def run(loaded: LoadedConfig, clients: Clients, window: Window) -> DriftCheck:
    """The whole check of `loaded.config.model` over `window` (see `scheduled.run`)."""
    return scheduled.run(loaded, monitor_of(loaded, clients), window)


def default_clients(loaded: LoadedConfig) -> Clients:
    """Clients on the environment's workspace, its default blob datastore and its registry,
    as the job's managed identity (`AZURE_CLIENT_ID`, set by the schedule)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    project, env = loaded.config.project, str(loaded.env)
    credential, subscription = DefaultAzureCredential(), naming.azure_subscription(loaded)
    workspace = MLClient(credential, subscription, naming.resource_group(project, env),
                         naming.workspace(project, env))
    store = workspace.datastores.get(naming.CAPTURE_DATASTORE)
    account = BlobServiceClient(f"https://{store.account_name}.blob.{store.endpoint}",
                                credential=credential)
    registry = MLClient(credential, subscription, registry_name=naming.registry(project, env))
    return Clients(workspace, account.get_container_client(store.container_name), registry)


def main(argv: list[str] | None = None, clients: Clients | None = None,
         now: dt.datetime | None = None) -> int:
    from azure.core.exceptions import AzureError

    from mlops_kit.adapters.azure.appinsights import MetricsError

    def with_clients(loaded: LoadedConfig, window: Window) -> DriftCheck:
        return run(loaded, clients or default_clients(loaded), window)

    return scheduled.main("python -m mlops_kit.adapters.azure.monitor", "azureml", argv,
                          with_clients, (MonitorError, MetricsError, AzureError), now)


if __name__ == "__main__":
    sys.exit(main())
