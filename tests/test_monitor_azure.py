"""Drift monitoring on Azure ML (`adapters/azure/monitor.py`) on stand-in clients: request
records in the data collector's blob layout, a production version with its baseline in the
stand-in Azure ML registry, a workspace that takes pipeline jobs and an Application Insights
ingestion endpoint. The real parsing, drift check, decision, job rendering (through azure-ai-ml's
own loader) and telemetry items run; the tests read what reached each service."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.adapters.azure import monitor, naming
from mlops_kit.adapters.azure.appinsights import (
    AppInsightsSink,
    MetricsError,
    parse_connection_string,
)
from mlops_kit.config import load_config
from mlops_kit.datasets import churn
from mlops_kit.monitoring.baseline import write_baseline
from mlops_kit.monitoring.sink import Metric
from mlops_kit.registry import open_registry
from mlops_kit.serving.capture import RowCollector
from mlops_kit.steps.features import FeatureSet
from tests.conftest import ROOT, write_config
from tests.test_registry_azure import StandInClient

pytestmark = pytest.mark.filterwarnings(  # azure-ai-ml's own marshmallow 4 notices
    "ignore::marshmallow.warnings.Marshmallow4Warning")
MODEL, ENV = "churn-classifier", "azure_dev"
NOW = dt.datetime(2026, 11, 10, 14, 7, tzinfo=dt.UTC)      # hourly schedule: 13:00-14:00
ENDPOINT = "churn-churn-classifier-azuredev"
INGESTION = "https://westeurope-5.in.applicationinsights.azure.com/"
CONNECTION = f"InstrumentationKey=ikey-1;IngestionEndpoint={INGESTION};LiveEndpoint=https://x/"


class Item:
    def __init__(self, name: str) -> None:
        self.name = name


class StandInBlobs:
    """A ContainerClient: walk_blobs (one level, with prefixes), list_blobs, download, upload."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.listed: list[str] = []

    def walk_blobs(self, name_starts_with: str, delimiter: str) -> list[Item]:
        below = {n.removeprefix(name_starts_with) for n in self.blobs
                 if n.startswith(name_starts_with)}
        level = {n.split(delimiter)[0] + delimiter if delimiter in n else n for n in below}
        return [Item(name_starts_with + n) for n in sorted(level)]

    def list_blobs(self, name_starts_with: str) -> list[Item]:
        self.listed.append(name_starts_with)
        return [Item(n) for n in sorted(self.blobs) if n.startswith(name_starts_with)]

    def download_blob(self, name: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        if name not in self.blobs:
            raise ResourceNotFoundError(f"The specified blob does not exist: {name}")
        data = self.blobs[name]

        class Downloader:
            def readall(self) -> bytes:
                return data

        return Downloader()

    def upload_blob(self, name: str, data: str, overwrite: bool, content_settings: Any) -> None:
        assert overwrite and content_settings.content_type == "application/json"
        self.blobs[name] = data.encode()

    def document(self, name: str) -> Any:
        return json.loads(self.blobs[name])


class StandInJobs:
    """`MLClient.jobs.create_or_update`: takes the SDK's PipelineJob, names the run."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def create_or_update(self, job: Any) -> Any:
        from azure.ai.ml.entities import PipelineJob

        assert isinstance(job, PipelineJob)
        job._to_rest_object()                   # the REST form the service would receive
        self.submitted.append(job)
        return Item(f"drift-run-{len(self.submitted)}")


class StandInWorkspace:
    def __init__(self) -> None:
        self.jobs = StandInJobs()


class StandInSession:
    """An HTTP session: records each POST, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[str, list[dict[str, Any]]]] = []
        self.status = status

    def post(self, url: str, json: list[dict[str, Any]], timeout: float) -> Any:
        self.posts.append((url, json))
        status = self.status

        class Answer:
            status_code = status
            text = '{"itemsReceived": 1, "itemsAccepted": 0}' if status != 200 else ""

        return Answer()

    def items(self) -> list[dict[str, Any]]:
        return [item for _, batch in self.posts for item in batch]


def instances(rows: int, shift: float, seed: int = 3) -> list[dict[str, Any]]:
    """Source rows as JSON instances, in the columns a request carries."""
    cfg = load_config(ROOT / "mlops.yaml").config
    inputs = FeatureSet(tuple(cfg.features.declared), cfg.table).inputs
    frame = churn.generate(rows, seed=seed, shift=shift, start="2025-06-01", dirty_fraction=0.0)
    frame = frame[inputs].copy()
    frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def record(body: Any, when: dt.datetime, deployment: str = "v1",
           content_type: str = "application/json") -> dict[str, Any]:
    """One payload-logging record as the data collector writes it (a CloudEvents line)."""
    return {"specversion": "1.0", "id": f"id-{when:%H%M%S}", "type": "azureml.inference.request",
            "source": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft."
                      f"MachineLearningServices/workspaces/ws/onlineEndpoints/{ENDPOINT}/"
                      f"deployments/{deployment}",
            "datacontenttype": content_type, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": body, "path": "/invocations", "method": "POST"}


def put(blobs: StandInBlobs, deployment: str, hour: dt.datetime, lines: list[str]) -> None:
    folder = naming.capture_folder(ENDPOINT, deployment, naming.REQUEST)
    name = f"{folder}/{hour:%Y/%m/%d/%H}/instance-{len(blobs.blobs)}.jsonl"
    blobs.blobs[name] = ("\n".join(lines) + "\n").encode()


def traffic(blobs: StandInBlobs, shift: float) -> None:
    """400 rows in 13:00-14:00 over two deployments (10 a request, as `{"instances": [...]}`,
    a bare list, or CSV text), late and early records, and three unusable records."""
    thirteen = NOW.replace(hour=13, minute=0)
    rows = instances(400, shift)
    lines: dict[str, list[str]] = {"v1": [], "v2": []}
    for i in range(0, len(rows), 10):
        chunk, when = rows[i:i + 10], thirteen + dt.timedelta(minutes=i // 10)
        body: Any = {"instances": chunk} if (i // 10) % 2 else chunk
        lines["v1" if i < 300 else "v2"].append(json.dumps(record(body, when, "v1" if i < 300
                                                                  else "v2")))
    lines["v1"] += ["{not json", json.dumps({**record(None, thirteen), "data": None,
                                              "dataref": "big/payload.json"}),
                    json.dumps({k: v for k, v in record([], thirteen).items() if k != "time"})]
    lines["v1"].append(json.dumps(record(instances(5, 3.0, seed=9), thirteen.replace(
        hour=12, minute=59))))                                    # before the window: ignored
    put(blobs, "v1", thirteen, lines["v1"])
    put(blobs, "v2", thirteen, lines["v2"])
    put(blobs, "v1", NOW.replace(minute=0), [json.dumps(record(  # after: another hour's folder
        instances(20, 3.0, seed=9), NOW.replace(minute=2)))])


def earlier_traffic(blobs: StandInBlobs, shift: float) -> None:
    """400 rows in 12:00-13:00, the window before NOW's."""
    twelve = NOW.replace(hour=12, minute=0)
    rows = instances(400, shift, seed=5)
    put(blobs, "v1", twelve, [json.dumps(record(rows[i:i + 10], twelve + dt.timedelta(
        minutes=i // 10))) for i in range(0, len(rows), 10)])


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", CONNECTION)
    runs = iter(range(10))

    def make(shift: float | None, changes: dict[str, Any] | None = None, *,
             approved: bool = True, session: Any = None, earlier: float | None = None,
             lines: list[str] | None = None,
             previous: str | None = None,
             newer_shift: float | None = None) -> tuple[int, monitor.Clients]:
        """One monitor run at NOW on fresh services; with `earlier` (the shift of traffic
        collected 12:00-13:00), first the run of the window before (at NOW - 1 h); `lines`:
        records collected in 13:00-14:00 instead of `traffic`; `previous`: the text of the
        12:00-13:00 window's summary.json; `newer_shift`: the baseline shift of an approved
        version 2, newer than the pinned (served) version 1."""
        folder = tmp_path / f"run-{next(runs)}"   # each call: its own config and services
        folder.mkdir()
        pinned = {"azure": {"deploy_versions": {MODEL: "1"}}}
        config = write_config(folder, {**pinned, **(changes or {})})
        clients = monitor.Clients(StandInWorkspace(), StandInBlobs(),
                                  StandInClient(folder / "registry"), session or StandInSession())
        if approved:
            register_with_baseline(config, clients.registry, folder)
        if newer_shift is not None:
            register_with_baseline(config, clients.registry, folder, newer_shift)
        if shift is not None:
            traffic(clients.blobs, shift)
        if lines is not None:
            put(clients.blobs, "v1", NOW.replace(hour=13, minute=0), lines)
        if earlier is not None:
            earlier_traffic(clients.blobs, earlier)
        if previous is not None:
            key = f"monitoring/{MODEL}/20261110T1300Z/summary.json"
            clients.blobs.blobs[key] = previous.encode()
        argv = ["--config", str(config), "--env", ENV, "--model", MODEL]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # azure-ai-ml's experimental-class notices
            if earlier is not None:
                assert monitor.main(argv, clients=clients, now=NOW - dt.timedelta(hours=1)) == 0
            code = monitor.main(argv, clients=clients, now=NOW)
        return code, clients
    return make


def register_with_baseline(config: Path, client: StandInClient, folder: Path,
                           shift: float = 0.0) -> None:
    """An approved version whose files carry the training baseline (as the train step packs),
    trained on data shifted by `shift`."""
    loaded = load_config(config, env=ENV, sets=["registry.backend=azureml"])
    cfg = loaded.config
    model_dir = folder / f"model-{len(list(folder.glob('model-*')))}"
    model_dir.mkdir()
    (model_dir / "model.ubj").write_bytes(b"booster")
    inputs = FeatureSet(tuple(cfg.features.declared), cfg.table).inputs
    write_baseline(churn.generate(2000, seed=7, shift=shift, dirty_fraction=0.0)[inputs],
                   cfg.table, model_dir / "baseline")
    open_registry(loaded, ml_client=client).register(
        MODEL, model_dir, status="Approved", metrics={"roc_auc": 0.8}, params={}, lineage={})


def results(clients: monitor.Clients,
            end: str = "20261110T1400Z") -> tuple[dict[str, Any], dict[str, Any]]:
    prefix = f"monitoring/{MODEL}/{end}/"
    blobs = clients.blobs
    return blobs.document(prefix + "drift.json"), blobs.document(prefix + "summary.json")


def test_drift_publishes_metrics_and_submits_the_training_pipeline(setup: Any) -> None:
    code, clients = setup(2.0)
    assert code == 0
    folders = {p.rsplit("/", 5)[0] for p in clients.blobs.listed}
    assert folders == {f"modelDataCollector/{ENDPOINT}/v1/request",
                       f"modelDataCollector/{ENDPOINT}/v2/request"}
    assert {p.rsplit("/", 5)[4] for p in clients.blobs.listed} == {"13", "14"}  # + the next
    drift, summary = results(clients)
    assert summary["verdict"] == drift["verdict"] == "drift" and drift["rows"] == 400
    assert summary["skipped"] == 3
    assert summary["skip_reasons"] == {"malformed collector record: JSONDecodeError": 1,
                                       "payload stored apart (dataref), not read": 1,
                                       "malformed collector record: KeyError": 1}
    [(url, _)] = clients.metrics.posts
    assert url == "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track"
    items = {(i["data"]["baseData"]["metrics"][0]["name"],
              i["data"]["baseData"]["properties"].get("Feature")): i
             for i in clients.metrics.items()}
    drifted = items[("DriftedFeatures", None)]
    assert (drifted["name"], drifted["iKey"]) == ("Microsoft.ApplicationInsights.Metric",
                                                  "ikey-1")
    assert drifted["data"]["baseType"] == "MetricData"
    assert drifted["data"]["baseData"]["properties"] == {"Model": MODEL}
    point = drifted["data"]["baseData"]["metrics"][0]
    assert point["ns"] == "churn" and point["value"] == len(drift["drifted_features"]) >= 1
    assert ("FeaturePSI", "tenure_months") in items
    [job] = clients.workspace.jobs.submitted
    assert job.tags["trigger"] == "drift" and job.tags["model"] == MODEL
    assert list(job.jobs) == ["ingest", "validate", "features", "train", "evaluate", "register"]
    rest = job._to_rest_object().as_dict()["properties"]
    assert rest["settings"]["default_compute"] == naming.CLUSTER
    assert rest["inputs"]["production_model"]["uri"] == (
        "azureml://registries/churn-azure-dev-models/models/churn-churn-classifier/versions/1")
    train = job.jobs["train"].component
    assert train.environment.image == "churnazuredevacr.azurecr.io/mlops-kit:latest"
    assert train.command.startswith("python -m mlops_kit.runtime.job train --config "
                                    "/opt/mlops/mlops.yaml --env azure_dev --model "
                                    "churn-classifier --set registry.backend=azureml")
    assert summary["pipeline_job"] == "drift-run-1" and summary["retrain"] is True
    assert summary["previous_drift"] is False     # no summary of 12:00-13:00: not drifting
    assert summary["drift"] == ("azureml://datastores/workspaceblobstore/paths/monitoring/"
                                f"{MODEL}/20261110T1400Z/drift.json")


def test_no_drift_publishes_but_does_not_retrain(setup: Any) -> None:
    code, clients = setup(0.0)
    assert code == 0
    drift, summary = results(clients)
    assert (drift["verdict"], summary["retrain"], summary["reason"]) == ("ok", False, "no drift")
    assert clients.workspace.jobs.submitted == []
    assert [i["data"]["baseData"]["metrics"][0]["value"] for i in clients.metrics.items()
            if i["data"]["baseData"]["metrics"][0]["name"] == "DriftedFeatures"] == [0.0]


def test_no_traffic_in_the_window_writes_a_no_traffic_result(setup: Any, capsys: Any) -> None:
    code, clients = setup(None, approved=False)
    assert code == 0
    drift, summary = results(clients)
    assert drift == {"model": MODEL, "verdict": "no traffic", "rows": 0, "skipped": 0,
                     "skip_reasons": {}}
    assert summary["verdict"] == "no traffic" and summary["retrain"] is False
    assert clients.metrics.posts == [] and clients.workspace.jobs.submitted == []
    assert json.loads(capsys.readouterr().out)["verdict"] == "no traffic"


def test_retrain_on_drift_false_reports_drift_without_a_job(setup: Any) -> None:
    code, clients = setup(2.0, {"training": {"retrain_on_drift": False}})
    assert code == 0
    _, summary = results(clients)
    assert summary["verdict"] == "drift" and summary["retrain"] is False
    assert "retrain_on_drift is false" in summary["reason"]
    assert clients.workspace.jobs.submitted == [] and clients.metrics.posts


def test_drift_after_drift_retrains_once_per_episode(setup: Any) -> None:
    code, clients = setup(2.0, earlier=2.0)
    assert code == 0
    assert len(clients.workspace.jobs.submitted) == 1           # the 12:00-13:00 window's
    first, then = results(clients, "20261110T1300Z")[1], results(clients)[1]
    assert (first["verdict"], first["retrain"], first["pipeline_job"]) == (
        "drift", True, "drift-run-1")
    assert (then["verdict"], then["previous_drift"], then["retrain"]) == ("drift", True, False)
    assert "continues from the previous window" in then["reason"]
    assert "pipeline_job" not in then and len(clients.metrics.posts) == 2   # still published


def test_drift_after_a_window_without_drift_retrains(setup: Any) -> None:
    code, clients = setup(2.0, earlier=0.0)
    assert code == 0
    first, then = results(clients, "20261110T1300Z")[1], results(clients)[1]
    assert (first["verdict"], first["retrain"]) == ("ok", False)
    assert (then["verdict"], then["previous_drift"], then["retrain"]) == ("drift", False, True)
    assert len(clients.workspace.jobs.submitted) == 1


@pytest.mark.parametrize(("previous", "submitted"), [
    ('{"verdict": "dri', 1),                      # unreadable: as if the run had failed
    ('{"verdict": "no traffic"}', 1),
    ('{"verdict": "drift"}', 0)])
def test_the_previous_summary_decides_the_retrain(setup: Any, previous: str,
                                                  submitted: int) -> None:
    code, clients = setup(2.0, previous=previous)
    assert code == 0 and len(clients.workspace.jobs.submitted) == submitted
    assert results(clients)[1]["retrain"] is bool(submitted)


def test_a_window_of_unusable_requests_fails_naming_the_skip_reasons(setup: Any,
                                                                    capsys: Any) -> None:
    at = NOW.replace(hour=13, minute=10)
    lines = [json.dumps(record("<xml/>", at))] * 3 + ["{not json"]   # a payload change
    code, clients = setup(None, lines=lines)
    assert code == 1
    err = capsys.readouterr().err
    assert "4 logged requests, none usable" in err and "malformed JSON" in err
    assert "malformed collector record" in err
    drift, summary = results(clients)
    assert drift["verdict"] == summary["verdict"] == "no usable traffic"
    assert (summary["rows"], summary["skipped"], summary["retrain"]) == (0, 4, False)
    assert clients.metrics.posts == [] and clients.workspace.jobs.submitted == []


def test_refused_metrics_still_retrain_write_the_summary_and_fail(setup: Any,
                                                                  capsys: Any) -> None:
    code, clients = setup(2.0, session=StandInSession(503))
    assert code == 1
    assert "drift metrics not published" in capsys.readouterr().err
    assert len(clients.workspace.jobs.submitted) == 1
    _, summary = results(clients)
    assert summary["retrain"] is True and summary["pipeline_job"] == "drift-run-1"
    assert "503" in summary["metrics_error"] and "metrics_published" not in summary


def test_traffic_without_the_served_version_in_the_registry_fails(setup: Any,
                                                                  capsys: Any) -> None:
    code, clients = setup(2.0, approved=False)
    assert code == 1
    assert "served version 1 (azure.deploy_versions) has no readable baseline" in \
        capsys.readouterr().err
    assert clients.workspace.jobs.submitted == []


def test_traffic_without_a_pinned_version_fails(setup: Any, capsys: Any) -> None:
    code, clients = setup(2.0, {"azure": {"deploy_versions": {}}})
    assert code == 1 and "no version pinned in azure.deploy_versions" in capsys.readouterr().err
    assert clients.workspace.jobs.submitted == []


def test_the_baseline_is_the_served_versions_not_the_newest_approved(setup: Any) -> None:
    """Version 2 is approved but not deployed; traffic like version 1's data is no drift."""
    code, clients = setup(0.0, newer_shift=3.0)
    assert code == 0
    assert [v.version for v in monitor.open_registry(
        load_config(ROOT / "mlops.yaml", env=ENV, sets=["registry.backend=azureml"]),
        ml_client=clients.registry).versions(MODEL)] == [1, 2]
    drift, summary = results(clients)
    assert (drift["verdict"], summary["retrain"]) == ("ok", False)
    assert clients.workspace.jobs.submitted == []


def test_collector_records_become_rows_and_bad_ones_are_counted(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path)).config
    collector = RowCollector(FeatureSet(tuple(cfg.features.declared), cfg.table))
    window = (NOW.replace(hour=13, minute=0), NOW.replace(minute=0))
    at = NOW.replace(hour=13, minute=30)
    one = {"tenure_months": 3, "monthly_charges": 20.5, "contract": "one-year"}
    for line in [json.dumps(record({"instances": [one, one]}, at)),
                 json.dumps(record("2025-06-01T00:00:00,3\n", at, "v2", "text/csv")),
                 json.dumps(record({"instances": [one, 5]}, at)),   # rows: lists or objects
                 json.dumps({**record(None, at), "data": None}),   # nothing logged
                 "[1, 2]"]:                                          # not a record
        monitor.add_record(collector, line, "v1", window)
    frame = collector.frame()
    assert len(frame) == 3 and list(frame["tenure_months"])[:2] == [3, 3]
    assert frame["event_time"].iloc[2] == "2025-06-01T00:00:00"      # CSV: by position
    assert list(frame["_model_version"]) == ["v1", "v1", "v1"]
    assert frame.attrs["skipped"] == 3
    assert frame.attrs["skip_reasons"] == {"row 2 is not a list of values or an object": 1,
                                           "no request data in the record": 1,
                                           "malformed collector record: TypeError": 1}


def test_app_insights_sink_batches_and_reports_refusals() -> None:
    assert parse_connection_string("InstrumentationKey=k") == (
        "k", "https://dc.services.visualstudio.com")
    with pytest.raises(MetricsError, match="no InstrumentationKey"):
        parse_connection_string("IngestionEndpoint=https://x/")
    session = StandInSession()
    sink = AppInsightsSink(session, CONNECTION, "my-project")
    metrics = [Metric("FeaturePSI", 0.1 * i, {"Model": "m", "Feature": f"f{i}"})
               for i in range(600)] + [Metric("FeatureKS", float("nan"), {"Model": "m"})]
    assert sink.publish(metrics) == 600 and sink.calls == 2
    assert [len(batch) for _, batch in session.posts] == [500, 100]
    first = session.items()[0]
    assert first["time"].endswith("Z") and first["data"]["baseData"]["ver"] == 2
    assert first["data"]["baseData"]["metrics"] == [
        {"name": "FeaturePSI", "ns": "my-project", "value": 0.0, "count": 1}]
    partial = AppInsightsSink(StandInSession(206), CONNECTION, "churn")
    with pytest.raises(MetricsError, match="206"):
        partial.publish(metrics[:1])


def _written_late(blobs: StandInBlobs, stamped: dt.datetime, rows: int) -> None:
    """A record stamped `stamped` that the collector wrote a second later, in the next hour's
    folder, and one stamped at that next hour (outside the window ending there)."""
    folder = stamped + dt.timedelta(seconds=1)
    put(blobs, "v1", folder, [json.dumps(record(instances(rows, 0.0), stamped)),
                              json.dumps(record(instances(7, 0.0), folder))])


@pytest.mark.parametrize("end", [NOW.replace(minute=0),                      # 13:00-14:00
                                 dt.datetime(2026, 11, 11, 0, 0, tzinfo=dt.UTC)])  # midnight
def test_a_record_written_after_the_window_end_is_read(tmp_path: Path,
                                                       end: dt.datetime) -> None:
    loaded = load_config(write_config(tmp_path), env=ENV)
    blobs = StandInBlobs()
    _written_late(blobs, end - dt.timedelta(seconds=1), 4)
    frame = monitor.collected_rows(blobs, loaded, MODEL, (end - dt.timedelta(hours=1), end))
    assert len(frame) == 4 and frame.attrs["skipped"] == 0       # the 7 after `end`: dropped
    folders = [p.rsplit("/", 5)[1:5] for p in blobs.listed]
    before = end - dt.timedelta(hours=1)
    assert folders == [[f"{before:%Y}", f"{before:%m}", f"{before:%d}", f"{before:%H}"],
                       [f"{end:%Y}", f"{end:%m}", f"{end:%d}", f"{end:%H}"]]


def test_the_docs_state_the_retried_statuses_roles_and_time_zones() -> None:
    """docs/azure.md says what the code does: the exact retried statuses, AcrPull, the mapped
    time zones, and the limits of the jobs identity."""
    from mlops_kit.adapters.azure.appinsights import RETRYABLE

    text = " ".join((ROOT / "docs" / "azure.md").read_text().split())
    assert sorted(RETRYABLE) == [408, 429, 439, 500, 502, 503, 504]
    assert "answers 500, 502, 503 and 504, and 408, 429 and 439" in text
    assert "AcrPull on the Container Registry" in text
    assert all(zone in text for zone in naming.WINDOWS_TIME_ZONES if "/" in zone
               and not zone.startswith("Etc/"))
    assert "every job there (the training pipeline's steps too) inherits its roles" in text
    assert "whole workspace storage account, not only the capture container" in text
    assert "scoped to the resource" not in text
