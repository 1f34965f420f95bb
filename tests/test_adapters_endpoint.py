"""The SageMaker endpoint adapter: guardrail request shapes from the config, checked against
botocore's own API model, and the create path and alarms against moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.validate import ParamValidator

from mlops_kit.adapters.aws.endpoint import (
    SageMakerEndpoint,
    data_capture,
    deployment_config,
    rollback_alarms,
)
from mlops_kit.config import load_config
from mlops_kit.config.model import DeploymentConfig, ServingConfig
from tests.conftest import write_config

FAST = Config(retries={"max_attempts": 1}, region_name="eu-west-1")


def valid(client: Any, operation: str, params: dict[str, Any]) -> None:
    """Fail if `params` is not a valid request of `operation` in botocore's API model."""
    shape = client.meta.service_model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()



@pytest.mark.parametrize(("strategy", "key", "value"), [
    ("canary", "CanarySize", 10), ("linear", "LinearStepSize", 25), ("all_at_once", None, None),
])
def test_deployment_config_follows_the_guardrail_shape(strategy: str, key: str | None,
                                                       value: int | None) -> None:
    cfg = DeploymentConfig(strategy=strategy, wait_s=120)  # type: ignore[arg-type]
    out = deployment_config(cfg, ["a1", "a2"])
    routing = out["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == strategy.upper() and routing["WaitIntervalInSeconds"] == 120
    if key:
        assert routing[key] == {"Type": "CAPACITY_PERCENT", "Value": value}
    assert out["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": "a1"},
                                                          {"AlarmName": "a2"}]
    client = boto3.client("sagemaker", config=FAST)
    valid(client, "UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c",
                                     "DeploymentConfig": out})


def test_alarms_and_capture_come_from_the_config() -> None:
    serving = ServingConfig.model_validate({
        "latency_p99_ms": 250, "capture": {"sampling_percent": 30, "inputs": False},
        "deployment": {"max_error_rate": 0.02, "min_invocations": 50}})
    errors, latency = rollback_alarms("churn-model", serving)
    assert errors["Threshold"] == 0.02 and "n >= 50" in errors["Metrics"][-1]["Expression"]
    assert latency["Threshold"] == 250_000.0 and latency["ExtendedStatistic"] == "p99"
    cw = boto3.client("cloudwatch", config=FAST)
    for alarm in (errors, latency):
        valid(cw, "PutMetricAlarm", alarm)
    capture = data_capture(serving, "s3://b/capture")
    assert capture["InitialSamplingPercentage"] == 30
    assert capture["CaptureOptions"] == [{"CaptureMode": "Output"}]  # inputs kept out


def test_first_deploy_creates_then_updates_blue_green(aws: None, tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path))
    sm = boto3.client("sagemaker", config=FAST)
    cw = boto3.client("cloudwatch", config=FAST)
    endpoint = SageMakerEndpoint(sm, cw, loaded, "arn:aws:iam::111111111111:role/sm",
                                 "s3://churn-artifacts/capture")
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn-churn-classifier/1"
    first = endpoint.deploy(arn, 1)
    assert first.created
    assert sm.describe_endpoint(EndpointName="churn-churn-classifier")["EndpointConfigName"] \
        == first.endpoint_config
    valid(sm, "CreateEndpointConfig", first.request)

    sent: dict[str, Any] = {}
    endpoint.sm = _Recorder(sm, sent)  # moto has no UpdateEndpoint: record the request
    second = endpoint.deploy(arn.replace("/1", "/2"), 2, shadow=(arn, 1))
    assert not second.created
    valid(sm, "UpdateEndpoint", sent["update_endpoint"])
    policy = sent["update_endpoint"]["DeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    alarms = cw.describe_alarms()["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} == {"churn-churn-classifier-error-rate",
                                                "churn-churn-classifier-latency-p99"}
    config = sm.describe_endpoint_config(EndpointConfigName=second.endpoint_config)
    assert config["ProductionVariants"][0]["VariantName"] == "AllTraffic"


class _Recorder:
    """The moto client, except `update_endpoint`, whose request is kept for inspection."""

    def __init__(self, client: Any, sent: dict[str, Any]) -> None:
        self.client = client
        self.sent = sent

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        self.sent["update_endpoint"] = request
        return {"EndpointArn": "arn"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
