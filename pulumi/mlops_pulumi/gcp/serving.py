"""Per model: a Vertex AI endpoint and the deployment resource pool its versions are deployed
to, with the machine, replica bounds and utilization target from the config, and the
endpoint's request-response logging to a BigQuery table declared here (the drift monitor's
input), partitioned by day and kept `serving.capture.retention_days`. Models themselves are
uploaded and deployed by the pipeline (there is no Pulumi resource for either)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pulumi_gcp import bigquery, vertex

import pulumi
from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp.autoscale import scaling
from mlops_kit.adapters.rules import requests_logged
from mlops_kit.config.instances import gcp_machine_type
from mlops_pulumi.config import Stack

# The columns Vertex AI's request-response logging writes (schema v1), in its order.
CAPTURE_SCHEMA = (
    {"name": "endpoint", "type": "STRING", "mode": "NULLABLE"},
    {"name": "deployed_model_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "logging_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "request_id", "type": "NUMERIC", "mode": "NULLABLE"},
    {"name": "request_payload", "type": "STRING", "mode": "REPEATED"},
    {"name": "response_payload", "type": "STRING", "mode": "REPEATED"},
)
PARTITION_FIELD = "logging_time"   # the monitor's window filter prunes partitions on it
DAY_MS = 86_400_000


@dataclass(frozen=True)
class ServingArgs:
    stack: Stack
    region: str
    kms_key: str | None
    labels: dict[str, str]
    dataset: pulumi.Input[str]                     # the dataset the request logs go to
    depends_on: tuple[pulumi.Resource, ...] = ()   # its component (the warehouse)


def capture_partitioning(retention_days: int) -> dict[str, Any]:
    """Daily partitions on `logging_time`, each deleted `retention_days` after its day."""
    return {"type": "DAY", "field": PARTITION_FIELD,
            "expiration_ms": str(retention_days * DAY_MS)}


def request_logging(stack: Stack, model: str) -> dict[str, Any]:
    """The endpoint's request-response logging to `capture_<model>` in the environment's
    dataset (declared by `Serving`), from `serving.capture`; off when capture is off,
    samples nothing, or must keep request bodies out (`inputs: false`)."""
    capture = stack.loaded.config.serving.capture
    if not requests_logged(stack.loaded.config):
        return {"enabled": False}
    return {"enabled": True, "sampling_rate": capture.sampling_percent / 100.0,
            "bigquery_destination": {"output_uri": naming.capture_uri(stack.loaded, model)}}


@dataclass
class ModelServing:
    endpoint: vertex.AiEndpoint
    pool: vertex.AiDeploymentResourcePool
    endpoint_id: str
    capture: bigquery.Table | None   # None when requests are not logged


class Serving(pulumi.ComponentResource):
    """An endpoint, its capture table and an autoscaled resource pool for each model."""

    def __init__(self, name: str, args: ServingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Serving", name, None, opts)
        self._args = args
        cfg = args.stack.loaded.config
        self.models = {m.name: self._model(name, m.name) for m in cfg.all_models}
        self.register_outputs({"endpoints": {m: s.endpoint.name for m, s in self.models.items()}})

    def _model(self, name: str, model: str) -> ModelServing:
        args, cfg, env = self._args, self._args.stack.loaded.config, self._args.stack.env_name
        child = pulumi.ResourceOptions(parent=self)
        capture = self._capture(name, model) if requests_logged(cfg) else None
        after = pulumi.ResourceOptions(parent=self, depends_on=[
            *args.depends_on, *([capture] if capture else [])])
        encryption = {"encryption_spec": {"kms_key_name": args.kms_key}} if args.kms_key else {}
        endpoint_id = naming.endpoint_id(cfg.project, env, model)
        endpoint = vertex.AiEndpoint(
            f"{name}-{model}-endpoint", name=endpoint_id, location=args.region,
            region=args.region, display_name=f"{naming.prefix(cfg.project, env)}-{model}",
            description=f"{model}: /invocations of the project image on port {cfg.serving.port}",
            labels={**args.labels, "model": model.lower()}, opts=after,
            predict_request_response_logging_config=request_logging(args.stack, model),
            **encryption)
        plan = scaling(cfg.serving, cfg.gcp)
        pool = vertex.AiDeploymentResourcePool(
            f"{name}-{model}-pool", name=naming.resource_pool(cfg.project, env, model),
            region=args.region, opts=child,
            dedicated_resources={
                "machine_spec": {"machine_type": gcp_machine_type(cfg)},
                "min_replica_count": plan.min_replicas, "max_replica_count": plan.max_replicas,
                "autoscaling_metric_specs": [{"metric_name": plan.metric,
                                              "target": plan.target}]})
        return ModelServing(endpoint, pool, endpoint_id, capture)

    def _capture(self, name: str, model: str) -> bigquery.Table:
        """The table the endpoint logs to, with Vertex AI's schema and expiring partitions
        (no partition filter required: ad-hoc queries keep working)."""
        args = self._args
        kms = {"kms_key_name": args.kms_key} if args.kms_key else None
        return bigquery.Table(
            f"{name}-{model}-capture", dataset_id=args.dataset,
            table_id=naming.capture_table(model), labels={**args.labels, "model": model.lower()},
            description=f"{model}: requests and responses logged by its Vertex AI endpoint",
            schema=json.dumps(CAPTURE_SCHEMA), deletion_protection=False,
            time_partitioning=capture_partitioning(
                args.stack.loaded.config.serving.capture.retention_days),
            require_partition_filter=False, encryption_configuration=kms,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
