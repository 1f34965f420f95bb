"""Drift monitoring on Vertex AI (`adapters/gcp/monitor.py`) on stand-in clients: requests
logged to BigQuery in Vertex AI's layout, a production version with its baseline in the
stand-in Vertex registry, the stored training run request; the real parsing, drift check,
decision and request building run, and the tests read what reached each service."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery
from google.cloud.aiplatform_v1 import types

from mlops_kit.adapters.gcp import monitor, naming
from mlops_kit.adapters.gcp.cloudmonitoring import CloudMonitoringSink, MetricsError
from mlops_kit.config import load_config
from mlops_kit.cron import last_window
from mlops_kit.datasets import churn
from mlops_kit.monitoring.baseline import write_baseline
from mlops_kit.monitoring.sink import Metric
from mlops_kit.registry import open_registry
from mlops_kit.serving.capture import RowCollector
from mlops_kit.steps.features import FeatureSet
from tests.conftest import ROOT, write_config
from tests.test_registry_vertex import StandInModels, StandInStorage, wire

MODEL, ENV = "churn-classifier", "gcp_dev"
NOW = dt.datetime(2026, 11, 10, 14, 7, tzinfo=dt.UTC)      # hourly schedule: 13:00-14:00
TABLE = "churn-dev-111111.churn_gcp_dev.capture_churn_classifier"
BUCKET = "churn-dev-111111-churn-gcp-dev-pipelines"
LOCATION = "projects/churn-dev-111111/locations/europe-west1"


class StandInBigQuery:
    """`bigquery.Client.query`: checks the parameters' types and filters its rows by them."""

    def __init__(self, rows: list[dict[str, Any]] | None) -> None:
        self.rows, self.queries = rows, []

    def query(self, sql: str, job_config: Any) -> Any:
        assert isinstance(job_config, bigquery.QueryJobConfig)
        params = {p.name: p for p in job_config.query_parameters}
        assert {p.type_ for p in params.values()} == {"TIMESTAMP"}
        self.queries.append((sql, params["start"].value, params["end"].value))
        if self.rows is None:
            raise NotFound(f"Table {TABLE} was not found")
        found = [r for r in self.rows
                 if params["start"].value <= r["logging_time"] < params["end"].value]

        class Job:
            def result(self) -> list[dict[str, Any]]:
                return found

        return Job()


class StandInPipelines:
    """PipelineServiceClient.create_pipeline_job: takes only the request message."""

    def __init__(self) -> None:
        self.requests: list[types.CreatePipelineJobRequest] = []

    def create_pipeline_job(self, request: Any) -> types.PipelineJob:
        req = wire(request, types.CreatePipelineJobRequest)
        self.requests.append(req)
        return types.PipelineJob(name=f"{req.parent}/pipelineJobs/run-{len(self.requests)}")


class StandInSession:
    """An authorized session: records each POST, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.status = status

    def post(self, url: str, json: dict[str, Any], timeout: float) -> Any:
        self.posts.append((url, json))
        status = self.status

        class Answer:
            status_code, text = status, "quota exceeded" if status >= 400 else ""

        return Answer()

    def series(self) -> list[dict[str, Any]]:
        return [s for _, body in self.posts for s in body["timeSeries"]]


def instances(rows: int, shift: float, seed: int = 3) -> list[dict[str, Any]]:
    """Source rows as JSON instances, in the columns a request carries."""
    cfg = load_config(ROOT / "mlops.yaml").config
    inputs = FeatureSet(tuple(cfg.features.declared), cfg.table).inputs
    frame = churn.generate(rows, seed=seed, shift=shift, start="2025-06-01", dirty_fraction=0.0)
    frame = frame[inputs].copy()
    frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def logged(items: list[dict[str, Any]], start: dt.datetime) -> list[dict[str, Any]]:
    """BigQuery rows as Vertex AI logs them: one instance per `request_payload` entry for most
    requests, a whole `{"instances": [...]}` body for every fifth, one minute apart."""
    out = []
    for i in range(0, len(items), 10):
        chunk = items[i:i + 10]
        payload = ([json.dumps({"instances": chunk})] if (i // 10) % 5 == 0
                   else [json.dumps(x) for x in chunk])
        out.append({"logging_time": start + dt.timedelta(minutes=i // 10),
                    "deployed_model_id": "4242", "request_payload": payload})
    return out


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    runs = iter(range(10))

    def make(shift: float, changes: dict[str, Any] | None = None, *, approved: bool = True,
             rows: list[dict[str, Any]] | str | None = "traffic", session: Any = None,
             earlier: float | None = None, previous: str | None = None) -> Any:
        """One monitor run at NOW on fresh services; with `earlier` (the shift of traffic
        logged 12:00-13:00), first the run of the window before (at NOW - 1 h); `previous`:
        the text of that window's summary.json."""
        folder = tmp_path / f"run-{next(runs)}"   # each call: its own config and services
        folder.mkdir()
        config = write_config(folder, changes)
        loaded = load_config(config, env=ENV, sets=["registry.backend=vertex"])
        storage, models = StandInStorage(folder / "gcs"), StandInModels()
        if approved:
            register_with_baseline(loaded, storage, models, folder)
        store_run_request(loaded, storage)
        if previous is not None:
            storage.bucket(BUCKET).blob(f"monitoring/{MODEL}/20261110T1300Z/summary.json"
                                        ).upload_from_string(previous)
        if rows == "traffic":
            traffic = logged(instances(400, shift), NOW.replace(hour=13, minute=5))
            traffic += logged(instances(20, 3.0, seed=9), NOW.replace(hour=14, minute=2))
            traffic.append({"logging_time": NOW.replace(hour=13, minute=50),
                            "deployed_model_id": "4242",
                            "request_payload": ['{"tenure_months": 3,', "[1, 2"]})
            traffic.append({"logging_time": NOW.replace(hour=13, minute=51),
                            "deployed_model_id": "4242", "request_payload": []})
            if earlier is not None:
                traffic += logged(instances(400, earlier, seed=5), NOW.replace(hour=12, minute=5))
            rows = traffic
        clients = monitor.Clients(StandInBigQuery(rows), storage, models, StandInPipelines(),
                                  session or StandInSession())
        argv = ["--config", str(config), "--env", ENV, "--model", MODEL]
        if earlier is not None:
            assert monitor.main(argv, clients=clients, now=NOW - dt.timedelta(hours=1)) == 0
        code = monitor.main(argv, clients=clients, now=NOW)
        return code, clients
    return make


def register_with_baseline(loaded: Any, storage: StandInStorage, models: StandInModels,
                           tmp_path: Path) -> None:
    """An approved version whose files carry the training baseline (as the train step packs)."""
    cfg = loaded.config
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.ubj").write_bytes(b"booster")
    inputs = FeatureSet(tuple(cfg.features.declared), cfg.table).inputs
    source = churn.generate(2000, seed=7, dirty_fraction=0.0)[inputs]
    write_baseline(source, cfg.table, folder / "baseline")
    registry = open_registry(loaded, model_client=models, storage_client=storage)
    registry.register(MODEL, folder, status="Approved", metrics={"roc_auc": 0.8}, params={},
                      lineage={})


def store_run_request(loaded: Any, storage: StandInStorage) -> dict[str, Any]:
    """The run request Pulumi stores (the training schedule's body), built by the real code."""
    from mlops_pulumi.config import load_stack
    from mlops_pulumi.gcp.training import run_request

    stack = load_stack(ENV, loaded.path)
    body = run_request(stack, MODEL, None, stack.tags())
    storage.bucket(BUCKET).blob(naming.run_request_object(MODEL)).upload_from_string(
        json.dumps(body))
    return body


def results(clients: Any, end: str = "20261110T1400Z") -> tuple[dict[str, Any], dict[str, Any]]:
    prefix = f"monitoring/{MODEL}/{end}/"
    read = [json.loads(clients.storage.bucket(BUCKET).blob(prefix + name).download_as_bytes())
            for name in ("drift.json", "summary.json")]
    return read[0], read[1]


def test_drift_publishes_metrics_and_submits_the_training_run(setup: Any) -> None:
    code, clients = setup(2.0)
    assert code == 0
    sql, start, end = clients.bigquery.queries[0]
    assert f"FROM `{TABLE}`" in sql and (start, end) == (NOW.replace(hour=13, minute=0),
                                                        NOW.replace(hour=14, minute=0))
    drift, summary = results(clients)
    assert summary["verdict"] == drift["verdict"] == "drift" and drift["rows"] == 400
    assert summary["skipped"] == 3                  # two malformed entries, one empty request
    reasons = summary["skip_reasons"]
    assert sum(reasons.values()) == 3 and reasons["no request payload logged"] == 1
    assert all(r.startswith("malformed JSON") for r in reasons
               if r != "no request payload logged")
    url = clients.metrics.posts[0][0]
    assert url == "https://monitoring.googleapis.com/v3/projects/churn-dev-111111/timeSeries"
    series = {(s["metric"]["type"], s["metric"]["labels"].get("feature")): s
              for s in clients.metrics.series()}
    drifted = series[("custom.googleapis.com/churn/DriftedFeatures", None)]
    assert drifted["metric"]["labels"] == {"model": MODEL}
    assert drifted["resource"] == {"type": "global", "labels": {"project_id": "churn-dev-111111"}}
    assert (drifted["metricKind"], drifted["valueType"]) == ("GAUGE", "DOUBLE")
    point = drifted["points"][0]
    assert point["value"]["doubleValue"] == len(drift["drifted_features"]) >= 1
    assert point["interval"]["endTime"].endswith("Z")
    assert ("custom.googleapis.com/churn/FeaturePSI", "tenure_months") in series
    [request] = clients.pipelines.requests
    assert request.parent == LOCATION
    job = request.pipeline_job
    assert job.labels["trigger"] == "drift" and job.labels["model"] == MODEL
    assert job.service_account == "churn-pipeline@churn-dev-111111.iam.gserviceaccount.com"
    assert job.runtime_config.gcs_output_directory == f"gs://{BUCKET}/runs/{MODEL}"
    assert set(job.pipeline_spec["root"]["dag"]["tasks"]) >= {"ingest", "train", "register"}
    assert summary["pipeline_job"] == f"{LOCATION}/pipelineJobs/run-1"
    assert summary["previous_drift"] is False     # no summary of 12:00-13:00: not drifting
    assert summary["retrain"] is True and summary["drift"] == \
        f"gs://{BUCKET}/monitoring/{MODEL}/20261110T1400Z/drift.json"


def test_no_drift_publishes_but_does_not_retrain(setup: Any) -> None:
    code, clients = setup(0.0)
    assert code == 0
    drift, summary = results(clients)
    assert (drift["verdict"], summary["retrain"], summary["reason"]) == ("ok", False, "no drift")
    assert clients.pipelines.requests == []
    series = clients.metrics.series()
    assert [s["points"][0]["value"]["doubleValue"] for s in series
            if s["metric"]["type"].endswith("/DriftedFeatures")] == [0.0]


def test_no_traffic_in_the_window_writes_a_no_traffic_result(setup: Any,
                                                             capsys: Any) -> None:
    outside = logged(instances(50, 2.0), NOW.replace(hour=12, minute=0))  # 12:00-12:04
    code, clients = setup(2.0, approved=False, rows=outside)
    assert code == 0
    drift, summary = results(clients)
    assert drift == {"model": MODEL, "verdict": "no traffic", "rows": 0, "skipped": 0,
                     "skip_reasons": {}}
    assert summary["verdict"] == "no traffic" and summary["retrain"] is False
    assert clients.metrics.posts == [] and clients.pipelines.requests == []
    assert json.loads(capsys.readouterr().out)["verdict"] == "no traffic"
    code, clients = setup(2.0, approved=False, rows=None)   # Vertex has not made the table yet
    assert code == 0 and results(clients)[0]["verdict"] == "no traffic"


def test_retrain_on_drift_false_reports_drift_without_a_run(setup: Any) -> None:
    code, clients = setup(2.0, {"training": {"retrain_on_drift": False}})
    assert code == 0
    _, summary = results(clients)
    assert summary["verdict"] == "drift" and summary["retrain"] is False
    assert "retrain_on_drift is false" in summary["reason"]
    assert clients.pipelines.requests == [] and clients.metrics.posts


def test_drift_after_drift_retrains_once_per_episode(setup: Any) -> None:
    code, clients = setup(2.0, earlier=2.0)
    assert code == 0
    assert len(clients.pipelines.requests) == 1                 # the 12:00-13:00 window's
    first, then = results(clients, "20261110T1300Z")[1], results(clients)[1]
    assert (first["verdict"], first["retrain"]) == ("drift", True)
    assert first["pipeline_job"] == f"{LOCATION}/pipelineJobs/run-1"
    assert (then["verdict"], then["previous_drift"], then["retrain"]) == ("drift", True, False)
    assert "continues from the previous window" in then["reason"]
    assert "pipeline_job" not in then and len(clients.metrics.posts) == 2   # still published


def test_drift_after_a_window_without_drift_retrains(setup: Any) -> None:
    code, clients = setup(2.0, earlier=0.0)
    assert code == 0
    first, then = results(clients, "20261110T1300Z")[1], results(clients)[1]
    assert (first["verdict"], first["retrain"]) == ("ok", False)
    assert (then["verdict"], then["previous_drift"], then["retrain"]) == ("drift", False, True)
    assert len(clients.pipelines.requests) == 1


@pytest.mark.parametrize(("previous", "submitted"), [
    ('{"verdict": "dri', 1),                      # unreadable: as if the run had failed
    ('{"verdict": "no traffic"}', 1),
    ('{"verdict": "drift"}', 0)])
def test_the_previous_summary_decides_the_retrain(setup: Any, previous: str,
                                                  submitted: int) -> None:
    code, clients = setup(2.0, previous=previous)
    assert code == 0 and len(clients.pipelines.requests) == submitted
    assert results(clients)[1]["retrain"] is bool(submitted)


def test_a_window_of_unusable_requests_fails_naming_the_skip_reasons(setup: Any,
                                                                    capsys: Any) -> None:
    broken = [{"logging_time": NOW.replace(hour=13, minute=m), "deployed_model_id": "4242",
               "request_payload": ["<xml/>"]} for m in range(5)]
    code, clients = setup(2.0, rows=broken)
    assert code == 1
    err = capsys.readouterr().err
    assert "5 logged requests, none usable" in err and "malformed JSON" in err
    drift, summary = results(clients)
    assert drift["verdict"] == summary["verdict"] == "no usable traffic"
    assert (summary["rows"], summary["skipped"], summary["retrain"]) == (0, 5, False)
    assert clients.metrics.posts == [] and clients.pipelines.requests == []


def test_refused_metrics_still_retrain_write_the_summary_and_fail(setup: Any,
                                                                  capsys: Any) -> None:
    code, clients = setup(2.0, session=StandInSession(503))
    assert code == 1
    assert "drift metrics not published" in capsys.readouterr().err
    assert len(clients.pipelines.requests) == 1
    _, summary = results(clients)
    assert summary["retrain"] is True and summary["pipeline_job"].endswith("/run-1")
    assert "503" in summary["metrics_error"] and "metrics_published" not in summary


def test_traffic_without_an_approved_version_fails(setup: Any, capsys: Any) -> None:
    code, clients = setup(2.0, approved=False)
    assert code == 1 and "no approved version" in capsys.readouterr().err
    assert clients.pipelines.requests == []


def test_rows_from_logged_payloads_count_every_skip(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path)).config
    collector = RowCollector(FeatureSet(tuple(cfg.features.declared), cfg.table))
    one = {"tenure_months": 3, "monthly_charges": 20.5, "contract": "one-year"}
    assert collector.add(json.dumps(one), "application/json", "t1", "7") == 1
    assert collector.add(json.dumps({"instances": [one, one]}), "application/json", "t2",
                         "7") == 2
    assert collector.add('{"instances": [1, "a"]', "application/json", "t3", "7") == 0
    assert collector.add('{"instances": [{"age": 40}, 5]}', "application/json", "t4", "7") == 0
    assert collector.add(None, "application/json", "t5", "7") == 0
    frame = collector.frame()
    assert len(frame) == 3 and frame.attrs["skipped"] == 3
    assert list(frame["tenure_months"]) == [3, 3, 3]
    assert pd.isna(frame["age"]).all() and list(frame["_inference_time"]) == ["t1", "t2", "t2"]
    reasons = frame.attrs["skip_reasons"]
    assert any(r.startswith("malformed JSON") for r in reasons)
    assert "row 2 is not a list of values or an object" in reasons
    assert "the record has no request body or content type" in reasons


def test_the_window_is_the_schedules_latest_period() -> None:
    assert last_window("0 * * * *", NOW) == (NOW.replace(hour=13, minute=0),
                                             NOW.replace(hour=14, minute=0))
    start, end = last_window("0 9,17 * * *", NOW)           # Tuesday 14:07
    assert (start, end) == (dt.datetime(2026, 11, 9, 17, 0, tzinfo=dt.UTC),
                            dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC))
    start, end = last_window("30 2 * * 1", NOW)
    assert end - start == dt.timedelta(days=7) and end.weekday() == 0
    assert last_window("0 9 * * *", NOW, "Europe/Paris")[1] == dt.datetime(
        2026, 11, 10, 8, 0, tzinfo=dt.UTC)


def test_cloud_monitoring_sink_batches_and_reports_refusals() -> None:
    session = StandInSession()
    sink = CloudMonitoringSink(session, "p-1", "my-project")
    metrics = [Metric("FeaturePSI", 0.1 * i, {"Model": "m", "Feature": f"f{i}"})
               for i in range(250)] + [Metric("FeatureKS", float("nan"), {"Model": "m"})]
    assert sink.publish(metrics) == 250 and sink.calls == 2
    assert [len(body["timeSeries"]) for _, body in session.posts] == [200, 50]
    assert session.series()[0]["metric"] == {
        "type": "custom.googleapis.com/my_project/FeaturePSI",
        "labels": {"model": "m", "feature": "f0"}}
    refused = CloudMonitoringSink(StandInSession(429), "p-1", "churn")
    with pytest.raises(MetricsError, match="429: quota exceeded"):
        refused.publish(metrics[:1])
