"""The delivery pipeline's AWS calls: newest approved package per model, and the smoke test
(against moto, and against the real inference server through a SageMaker-runtime stand-in)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml

from mlops_kit.adapters.aws import release
from mlops_kit.config import load_config
from mlops_kit.runtime.serving import fetch_version, serve_settings
from mlops_kit.serving.app import BackgroundServer
from tests.conftest import ROOT

GROUP = "churn-churn-classifier"


def package(sm: Any, status: str) -> str:
    return sm.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "111111111111.dkr.ecr.eu-west-1."
                                                         "amazonaws.com/churn:1"}],
                                "SupportedContentTypes": ["text/csv"],
                                "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def test_releases_name_the_newest_approved_package(aws: None, tmp_path: Path) -> None:
    sm = boto3.client("sagemaker", region_name="eu-west-1")
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    loaded = load_config(ROOT / "mlops.yaml", env="staging")
    with pytest.raises(release.ReleaseError, match=f"no Approved package in {GROUP}"):
        release.releases(loaded, sm, require=True)
    assert release.releases(loaded, sm, require=False) == {"staging": {}}
    package(sm, "Approved")
    newest = package(sm, "Approved")
    package(sm, "PendingManualApproval")
    assert release.releases(loaded, sm, require=True) == {
        "staging": {"churn-classifier": {"package_arn": newest}}}
    out = tmp_path / "releases.json"
    session = boto3.Session(region_name="eu-west-1")
    assert release.main(["approved", "--config", str(ROOT / "mlops.yaml"), "--env", "staging",
                         "--out", str(out)], session=session) == 0
    assert json.loads(out.read_text())["staging"]["churn-classifier"]["package_arn"] == newest


def test_sample_rows_fit_the_schema() -> None:
    config = load_config(ROOT / "mlops.yaml").config
    rows = release.sample_rows(config)
    columns = {c.name: c for c in config.table.columns}
    assert len(rows) == 3
    for row in rows:
        assert config.table.target not in row
        for name, value in row.items():
            col = columns[name]
            if col.categories:
                assert value in col.categories
            if col.min is not None:
                assert col.min <= value <= (col.max if col.max is not None else value)


class LocalRuntime:
    """`sagemaker-runtime` invoke_endpoint, answered by a server on localhost."""

    def __init__(self, port: int) -> None:
        self.port = port

    def invoke_endpoint(self, **kw: Any) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("POST", "/invocations", body=kw["Body"],
                     headers={"Content-Type": kw["ContentType"], "Accept": kw["Accept"]})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body[:200]!r}")

        class Stream:
            def read(self) -> bytes:
                return body

        return {"Body": Stream()}


def test_smoke_test_against_the_real_server(trained: Any, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(trained.state))
    loaded = load_config(trained.config)
    folder, version = fetch_version(loaded)
    settings = serve_settings(loaded, folder, str(version.version), workers=1, capture=False)
    with BackgroundServer(settings) as server:
        result = release.smoke_test(LocalRuntime(server.port), "churn-churn-classifier",
                                    loaded.config)
    assert result["rows"] == 3
    assert all(0.0 <= p["score"] <= 1.0 and p["predicted_label"] in (0, 1)
               for p in result["predictions"])


def test_smoke_test_fails_on_a_bad_answer(aws: None) -> None:
    runtime = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    config = load_config(ROOT / "mlops.yaml").config
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                  json={"results": [{"Body": "<html>busy</html>"}], "region": "eu-west-1"},
                  timeout=5)
    with pytest.raises(release.ReleaseError, match="not a predictions document"):
        release.smoke_test(runtime, "churn-churn-classifier", config)


def test_smoke_test_fails_when_rows_go_missing() -> None:
    class OnePrediction:
        def invoke_endpoint(self, **kw: Any) -> dict[str, Any]:
            class Stream:
                def read(self) -> bytes:
                    return json.dumps({"predictions": [{"score": 0.5}]}).encode()

            return {"Body": Stream()}

    config = load_config(ROOT / "mlops.yaml").config
    with pytest.raises(release.ReleaseError, match="3 rows sent, 1 predictions back"):
        release.smoke_test(OnePrediction(), "churn-churn-classifier", config)


def pipelines(sm: Any, names: list[str]) -> None:
    for name in names:
        sm.create_pipeline(PipelineName=name, RoleArn="arn:aws:iam::123456789012:role/x",
                           PipelineDefinition=json.dumps({"Version": "2020-12-01",
                                                          "Steps": []}))


def test_train_starts_every_models_pipeline_and_waits(aws: None, tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    first = raw.pop("model")
    raw["models"] = [first, {**first, "name": "churn-b"}]
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(raw))
    sm = boto3.client("sagemaker", region_name="eu-west-1")
    loaded = load_config(path, env="dev")
    with pytest.raises(release.ReleaseError, match=r"cannot start pipeline churn-churn-classifier"
                                                   r".*npx cdk deploy -c env=dev 'churn-dev/\*'"):
        release.train(sm, loaded, wait=False)
    pipelines(sm, ["churn-churn-classifier", "churn-churn-b"])
    assert release.train(sm, loaded, wait=True, poll_s=0) == {
        "churn-churn-classifier": "Succeeded", "churn-churn-b": "Succeeded"}


def test_train_reports_failed_runs() -> None:
    class Failing:
        def start_pipeline_execution(self, **kw: Any) -> dict[str, str]:
            return {"PipelineExecutionArn": f"arn:{kw['PipelineName']}"}

        def describe_pipeline_execution(self, **kw: Any) -> dict[str, str]:
            return {"PipelineExecutionStatus": "Failed"}

    loaded = load_config(ROOT / "mlops.yaml", env="dev")
    with pytest.raises(release.ReleaseError, match=r"did not succeed.*Failed"):
        release.train(Failing(), loaded, wait=True, poll_s=0)


def test_smoke_assumes_the_environments_role(aws: None) -> None:
    session = boto3.Session(region_name="eu-west-1")
    assumed = release.assume(session, "arn:aws:iam::222222222222:role/churn-staging-smoke-test",
                             "eu-west-1")
    assert assumed.client("sts").get_caller_identity()["Arn"].endswith("mlops-kit-smoke-test")


def test_releases_carry_the_baseline_model_monitor_reads(aws: None, trained: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_kit.adapters.aws.registry import SageMakerRegistry

    monkeypatch.setenv("MLOPS_STATE_DIR", str(trained.state))
    folder, _ = fetch_version(load_config(trained.config))
    loaded = load_config(trained.config, env="dev")
    session = boto3.Session(region_name="eu-west-1")
    registry = SageMakerRegistry.from_config(loaded, session=session)
    version = registry.register("churn-classifier", folder, status="Approved",
                                metrics={"roc_auc": 0.8}, params={}, lineage={})
    out = release.releases(loaded, session.client("sagemaker"), require=True,
                           s3=session.client("s3"))["dev"]["churn-classifier"]
    assert out["package_arn"].endswith(f"/{version.version}")
    assert out["model_data_url"] == version.artifact_uri  # how later accounts serve it
    uri = out["baseline_uri"]
    assert uri.endswith(f"/models/churn-churn-classifier/{version.version}/baseline/")
    bucket, key = uri[len("s3://"):].split("/", 1)
    names = {o["Key"].rsplit("/", 1)[1] for o in session.client("s3").list_objects_v2(
        Bucket=bucket, Prefix=key)["Contents"]}
    assert names == {"statistics.json", "constraints.json"}
