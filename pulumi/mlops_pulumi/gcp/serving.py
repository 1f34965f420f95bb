"""Per model: a Vertex AI endpoint and the deployment resource pool its versions are deployed
to, with the machine, replica bounds and utilization target from the config, and the
endpoint's request-response logging to BigQuery (the drift monitor's input). Models themselves
are uploaded and deployed by the pipeline (there is no Pulumi resource for either)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi_gcp import vertex

import pulumi
from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp.autoscale import scaling
from mlops_kit.adapters.rules import requests_logged
from mlops_kit.config.instances import gcp_machine_type
from mlops_pulumi.config import Stack


@dataclass(frozen=True)
class ServingArgs:
    stack: Stack
    region: str
    kms_key: str | None
    labels: dict[str, str]
    depends_on: tuple[pulumi.Resource, ...] = ()   # the dataset the request logs go to


def request_logging(stack: Stack, model: str) -> dict[str, Any]:
    """The endpoint's request-response logging to `capture_<model>` in the environment's
    dataset (Vertex AI creates the table), from `serving.capture`; off when capture is off,
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


class Serving(pulumi.ComponentResource):
    """An endpoint and an autoscaled resource pool for each model."""

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
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
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
        return ModelServing(endpoint, pool, endpoint_id)
