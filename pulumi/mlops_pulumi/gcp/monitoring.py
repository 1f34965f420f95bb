"""Drift monitoring: the drift metrics' descriptors, and per model a Cloud Scheduler job that
starts the drift monitor as a Vertex AI CustomJob on `monitoring.schedule` (the project image,
`python -m mlops_kit.adapters.gcp.monitor`, as the `monitor` service account) and an alert
policy on `DriftedFeatures` to the notification channels. The monitor itself submits the
training run on drift (`training.retrain_on_drift`); the alert tells people."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from pulumi_gcp import cloudscheduler, monitoring

import pulumi
from mlops_kit.adapters import rules
from mlops_kit.adapters.gcp import naming
from mlops_pulumi import defaults
from mlops_pulumi.config import Stack, monitor_schedule

MONITOR_COMMAND = ["python", "-m", "mlops_kit.adapters.gcp.monitor"]
# The drift metrics (monitoring/sink.py `drift_metrics`) and their labels.
METRICS = {"DriftedFeatures": ("model",), "FeaturePSI": ("model", "feature"),
           "FeatureKS": ("model", "feature"), "ModelQuality": ("model", "metric")}


@dataclass(frozen=True)
class DriftMonitoringArgs:
    stack: Stack
    channels: list[pulumi.Input[str]]     # notification channel ids
    kms_key: str | None
    labels: dict[str, str]
    depends_on: tuple[pulumi.Resource, ...] = ()   # the bindings the jobs need


def jobs_uri(gcp_project: str, region: str) -> str:
    """The Vertex AI REST collection a CustomJob is POSTed to."""
    return (f"https://{region}-aiplatform.googleapis.com/v1/projects/{gcp_project}/"
            f"locations/{region}/customJobs")


def monitor_job(stack: Stack, model: str, kms_key: str | None,
                labels: dict[str, str]) -> dict[str, Any]:
    """A CustomJob body: one replica of the project image running the monitor for `model`."""
    loaded, cfg = stack.loaded, stack.loaded.config
    body: dict[str, Any] = {
        "displayName": job_name(model),
        "jobSpec": {
            "workerPoolSpecs": [{
                "machineSpec": {"machineType": cfg.gcp.monitoring_machine_type},
                "replicaCount": "1",
                "containerSpec": {"imageUri": naming.image(loaded), "command": MONITOR_COMMAND,
                                  "args": [f"--config={cfg.image.config_path}",
                                           f"--env={stack.env_name}", f"--model={model}"]}}],
            "serviceAccount": naming.service_account_email(loaded, "monitor")},
        "labels": {**labels, "model": model.lower()},
    }
    if kms_key:
        body["encryptionSpec"] = {"kmsKeyName": kms_key}
    return body


def requests_logged(stack: Stack) -> bool:
    """Endpoints log requests (capture on, with inputs, sampled): the monitor has input."""
    return rules.requests_logged(stack.loaded.config)


def job_name(model: str) -> str:
    """The scheduler job's and the CustomJob's name."""
    return re.sub(r"[^a-z0-9-]", "-", f"monitor-{model}".lower())


class DriftMonitoring(pulumi.ComponentResource):
    """Metric descriptors, one monitor schedule and one drift alert per model."""

    def __init__(self, name: str, args: DriftMonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        cfg = args.stack.loaded.config
        logged = requests_logged(args.stack)
        if logged:
            monitor_schedule(args.stack)   # StackError before anything is built
        super().__init__("mlops:gcp:DriftMonitoring", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        self.descriptors = {metric: monitoring.MetricDescriptor(
            f"{name}-{metric}", type=naming.metric_type(cfg.project, metric),
            metric_kind="GAUGE", value_type="DOUBLE", display_name=f"{cfg.project} {metric}",
            description=f"Drift monitor: {metric} per {', '.join(keys)}",
            labels=[{"key": k, "value_type": "STRING"} for k in keys], opts=child)
            for metric, keys in METRICS.items()}
        self.schedules: dict[str, cloudscheduler.Job] = {}
        self.alerts: dict[str, monitoring.AlertPolicy] = {}
        for model in (m.name for m in cfg.all_models):
            if logged:
                self.schedules[model] = self._schedule(name, model)
            self.alerts[model] = self._alert(name, model)
        self.register_outputs({"schedules": [s.name for s in self.schedules.values()]})

    def _schedule(self, name: str, model: str) -> cloudscheduler.Job:
        args, loaded = self._args, self._args.stack.loaded
        cfg = loaded.config
        body = monitor_job(args.stack, model, args.kms_key, args.labels)
        return cloudscheduler.Job(
            f"{name}-{model}-schedule", name=job_name(model),
            region=naming.region(loaded), description=f"drift check of {model}",
            schedule=monitor_schedule(args.stack), time_zone=cfg.training.time_zone,
            attempt_deadline="320s", retry_config={"retry_count": 1},
            http_target={
                "uri": jobs_uri(naming.gcp_project(loaded), naming.region(loaded)),
                "http_method": "POST", "headers": {"Content-Type": "application/json"},
                "body": base64.b64encode(json.dumps(body).encode()).decode(),
                "oauth_token": {"service_account_email": naming.service_account_email(
                    loaded, "scheduler"), "scope": defaults.OAUTH_SCOPE}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))

    def _alert(self, name: str, model: str) -> monitoring.AlertPolicy:
        args, cfg = self._args, self._args.stack.loaded.config
        stem = naming.prefix(cfg.project, args.stack.env_name)
        where = (f'metric.type = "{naming.metric_type(cfg.project, "DriftedFeatures")}" AND '
                 f'resource.type = "global" AND metric.labels.model = "{model}"')
        retrain = ("the monitor starts the training pipeline once per drift episode (see "
                   "retrain in the window's summary.json)"
                   if cfg.training.retrain_on_drift else "retrain_on_drift is off: retrain by hand")
        return monitoring.AlertPolicy(
            f"{name}-{model}-drift", display_name=f"{stem}-{model}-drift", combiner="OR",
            severity="WARNING", enabled=True, user_labels=args.labels,
            notification_channels=args.channels,
            documentation={"mime_type": "text/markdown", "content": (
                f"{model}: features drifted from the training baseline; {retrain}. Results: "
                f"gs://{naming.bucket(args.stack.loaded, 'pipelines')}/"
                f"{naming.MONITORING_PREFIX}{model}/")},
            alert_strategy={"auto_close": "86400s"},
            conditions=[{"display_name": f"{model} drifted features", "condition_threshold": {
                "filter": where, "comparison": "COMPARISON_GT", "threshold_value": 0,
                "duration": "0s", "trigger": {"count": 1},
                "aggregations": [{"alignment_period": "300s",
                                  "per_series_aligner": "ALIGN_MAX"}]}}],
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[self.descriptors["DriftedFeatures"]]))
