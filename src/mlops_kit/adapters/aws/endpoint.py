"""Deploy a registered model package to a SageMaker real-time endpoint, with the same
semantics as the local endpoint: blue/green traffic shifting with auto-rollback alarms,
data capture, and an optional shadow variant.

The request shapes (`deployment_config`, `rollback_alarms`, `data_capture`) are plain
functions of the config, so the CDK app builds the very same guardrails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import DeploymentConfig, ServingConfig
from mlops_kit.serving.endpoint import endpoint_name

VARIANT = "AllTraffic"
SHADOW = "Shadow"


def deployment_config(cfg: DeploymentConfig, alarms: list[str]) -> dict[str, Any]:
    """`UpdateEndpoint`'s DeploymentConfig: blue/green routing and auto-rollback alarms."""
    routing: dict[str, Any] = {"Type": cfg.strategy.upper(), "WaitIntervalInSeconds": int(
        cfg.wait_s)}
    if cfg.strategy == "canary":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": int(cfg.canary_percent)}
    elif cfg.strategy == "linear":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT",
                                     "Value": int(cfg.linear_step_percent)}
    steps = {"all_at_once": 1, "canary": 2}.get(cfg.strategy) or int(
        -(-100 // cfg.linear_step_percent))
    timeout = int(steps * cfg.wait_s + cfg.termination_wait_s + 600)
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": int(cfg.termination_wait_s),
            "MaximumExecutionTimeoutInSeconds": max(600, min(28_800, timeout)),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
    }


def rollback_alarms(endpoint: str, serving: ServingConfig) -> list[dict[str, Any]]:
    """`PutMetricAlarm` requests: the error-rate and p99-latency guardrails of the endpoint."""
    cfg = serving.deployment
    # SageMaker publishes invocation metrics once a minute: a shorter period is mostly empty
    # (and empty counts as OK), so the cloud alarms use whole minutes
    period = 60 * max(1, round(cfg.alarm_period_s / 60))
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT}]

    def metric(name: str, stat: str) -> dict[str, Any]:
        return {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dims},
                "Period": period, "Stat": stat}

    failed = "e4 + e5" if cfg.alarm_on_4xx else "e5"
    errors = {
        "AlarmName": f"{endpoint}-error-rate", "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": cfg.max_error_rate, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
        "TreatMissingData": "notBreaching",
        "AlarmDescription": "Share of invocations failing with "
                            f"{'4xx or 5xx' if cfg.alarm_on_4xx else '5xx'}: rolls a "
                            "deployment back",
        "Metrics": [
            {"Id": "e4", "MetricStat": metric("Invocation4XXErrors", "Sum"), "ReturnData": False},
            {"Id": "e5", "MetricStat": metric("Invocation5XXErrors", "Sum"), "ReturnData": False},
            {"Id": "n", "MetricStat": metric("Invocations", "Sum"), "ReturnData": False},
            {"Id": "rate", "Expression": f"IF(n >= {cfg.min_invocations}, ({failed}) / n, 0)",
             "Label": "ErrorRate", "ReturnData": True},
        ],
    }
    latency = {
        "AlarmName": f"{endpoint}-latency-p99", "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": serving.latency_p99_ms * 1000.0,  # ModelLatency is in microseconds
        "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "TreatMissingData": "notBreaching",
        "AlarmDescription": "p99 model latency over the objective: rolls a deployment back",
        "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Dimensions": dims,
        "ExtendedStatistic": "p99", "Period": period,
    }
    return [errors, latency]


def data_capture(serving: ServingConfig, s3_uri: str) -> dict[str, Any]:
    """The endpoint config's DataCaptureConfig (inputs left out when capture.inputs is false)."""
    capture = serving.capture
    options = [{"CaptureMode": "Output"}]
    if capture.inputs:
        options.insert(0, {"CaptureMode": "Input"})
    return {"EnableCapture": capture.enabled,
            "InitialSamplingPercentage": round(capture.sampling_percent),
            "DestinationS3Uri": s3_uri, "CaptureOptions": options,
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                         "JsonContentTypes": ["application/json"]}}


@dataclass
class Rollout:
    endpoint: str
    endpoint_config: str
    created: bool  # a new endpoint (no traffic shifting) rather than a blue/green update
    request: dict[str, Any]


class SageMakerEndpoint:
    """One project's endpoint on SageMaker, driven through boto3."""

    def __init__(self, sagemaker: Any, cloudwatch: Any, loaded: LoadedConfig, role_arn: str,
                 capture_uri: str) -> None:
        self.sm = sagemaker
        self.cw = cloudwatch
        self.serving = loaded.config.serving
        self.name = endpoint_name(loaded.config.project, loaded.config.model.name)
        self.role_arn = role_arn
        self.capture_uri = capture_uri

    def ensure_alarms(self) -> list[str]:
        """Create or update the guardrail alarms; their names."""
        names = []
        for request in rollback_alarms(self.name, self.serving):
            self.cw.put_metric_alarm(**request)
            names.append(request["AlarmName"])
        return names

    def deploy(self, package_arn: str, version: int, shadow: tuple[str, int] | None = None
               ) -> Rollout:
        """Point the endpoint at `package_arn`: create it, or update it blue/green."""
        stamp = time.strftime("%Y%m%d%H%M%S")
        model = self._model(package_arn, version, stamp)
        config = f"{self.name}-v{version}-{stamp}"[:63]
        variants = [self._variant(VARIANT, model)]
        request: dict[str, Any] = {
            "EndpointConfigName": config, "ProductionVariants": variants,
            "DataCaptureConfig": data_capture(self.serving, self.capture_uri)}
        if shadow is not None:
            shadow_model = self._model(shadow[0], shadow[1], stamp)
            request["ShadowProductionVariants"] = [self._variant(SHADOW, shadow_model)]
        self.sm.create_endpoint_config(**request)
        if not self._exists():
            self.sm.create_endpoint(EndpointName=self.name, EndpointConfigName=config)
            return Rollout(self.name, config, True, request)
        alarms = self.ensure_alarms()
        update = {"EndpointName": self.name, "EndpointConfigName": config,
                  "DeploymentConfig": deployment_config(self.serving.deployment, alarms)}
        self.sm.update_endpoint(**update)
        return Rollout(self.name, config, False, update)

    def _model(self, package_arn: str, version: int, stamp: str) -> str:
        name = f"{self.name}-v{version}-{stamp}"[:63]
        self.sm.create_model(ModelName=name, ExecutionRoleArn=self.role_arn,
                             Containers=[{"ModelPackageName": package_arn}])
        return name

    def _variant(self, name: str, model: str) -> dict[str, Any]:
        return {"VariantName": name, "ModelName": model,
                "InstanceType": self.serving.instance_type,
                "InitialInstanceCount": max(1, self.serving.min_instances),
                "InitialVariantWeight": 1.0}

    def _exists(self) -> bool:
        try:
            self.sm.describe_endpoint(EndpointName=self.name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
                return False
            raise
        return True
