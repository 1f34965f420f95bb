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
