"""Per model: the Vertex AI pipeline compiled from the DAG, stored with its run request in the
pipelines bucket, and a Cloud Scheduler job that submits that request on `training.schedule`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pulumi_gcp import cloudscheduler, storage

import pulumi
from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp import pipeline as render
from mlops_pulumi import defaults
from mlops_pulumi.config import Stack


@dataclass(frozen=True)
class TrainingArgs:
    stack: Stack
    pipelines_bucket: pulumi.Input[str]
    kms_key: str | None
    labels: dict[str, str]
    depends_on: tuple[pulumi.Resource, ...] = ()   # bindings the runs need


def jobs_uri(gcp_project: str, region: str) -> str:
    """The Vertex AI REST collection a run request is POSTed to."""
    return (f"https://{region}-aiplatform.googleapis.com/v1/projects/{gcp_project}/"
            f"locations/{region}/pipelineJobs")


def run_request(stack: Stack, model: str, kms_key: str | None,
                labels: dict[str, str]) -> dict[str, Any]:
    """A PipelineJob body: the compiled spec, the run root, the pipeline's service account.
    It sets no `parameterValues`: scheduled and CI runs take the spec's defaults (the raw
    bucket's `landing/` as `source_uri`, an empty `ingest_date`: the day of the run)."""
    spec = render.pipeline_spec(stack.loaded, stack.pipeline, model)
    body: dict[str, Any] = {
        "displayName": spec["pipelineInfo"]["name"], "pipelineSpec": spec,
        "runtimeConfig": {"gcsOutputDirectory": render.pipeline_root(stack.loaded, model)},
        "serviceAccount": naming.service_account_email(stack.loaded, "pipeline"),
        "labels": {**labels, "model": model.lower()},
    }
    if kms_key:
        body["encryptionSpec"] = {"kmsKeyName": kms_key}
    return body


class Training(pulumi.ComponentResource):
    """Spec objects (pipeline YAML + run request) and schedules, one set per model."""

    def __init__(self, name: str, args: TrainingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Training", name, None, opts)
        self.stack = stack = args.stack
        cfg = stack.loaded.config
        gcp_project, region = naming.gcp_project(stack.loaded), naming.region(stack.loaded)
        self.requests: dict[str, storage.BucketObject] = {}
        self.schedules: dict[str, cloudscheduler.Job] = {}
        for model in (m.name for m in cfg.all_models):
            body = run_request(stack, model, args.kms_key, args.labels)
            self.requests[model] = storage.BucketObject(
                f"{name}-{model}-request", bucket=args.pipelines_bucket,
                name=naming.run_request_object(model), content=json.dumps(body, indent=1),
                content_type="application/json", opts=pulumi.ResourceOptions(parent=self))
            if cfg.training.schedule is None:
                continue
            self.schedules[model] = cloudscheduler.Job(
                f"{name}-{model}-schedule", name=body["displayName"], region=region,
                description=f"retrain {model}", schedule=cfg.training.schedule,
                time_zone=cfg.training.time_zone, attempt_deadline="320s",
                retry_config={"retry_count": 1},
                http_target={
                    "uri": jobs_uri(gcp_project, region), "http_method": "POST",
                    "headers": {"Content-Type": "application/json"},
                    "body": base64.b64encode(json.dumps(body).encode()).decode(),
                    "oauth_token": {"service_account_email": naming.service_account_email(
                        stack.loaded, "scheduler"), "scope": defaults.OAUTH_SCOPE}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
        self.register_outputs({"schedules": [s.name for s in self.schedules.values()]})

