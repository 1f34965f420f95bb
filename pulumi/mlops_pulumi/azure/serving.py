"""Per model: a managed online endpoint, its deployment of the pinned registry version, and
Azure Monitor autoscale from `serving.scaling` (the serving image's contract: /ping,
/invocations on `serving.port`). With `serving.capture` the deployment's data collector logs the
`request` and `response` payloads to the workspace's default blob datastore (the drift
monitor's input), each collection through a data asset, as azure-ai-ml registers them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulumi_azure_native import authorization, monitor
from pulumi_azure_native import machinelearningservices as ml

import pulumi
from mlops_kit.adapters import rules
from mlops_kit.adapters.azure import autoscale, naming
from mlops_kit.config.instances import azure_instance_type
from mlops_pulumi.azure.identity import BLOB_DATA_CONTRIBUTOR, role_id
from mlops_pulumi.config import Stack


@dataclass(frozen=True)
class ServingArgs:
    stack: Stack
    location: str
    resource_group: pulumi.Input[str]
    workspace: pulumi.Input[str]
    image: str
    registry: str
    tags: dict[str, str]
    workspace_storage_id: pulumi.Input[str] = ""   # where the data collector writes


def capture_on(stack: Stack) -> bool:
    """Request payloads are logged: capture on, with inputs, at a sampling rate above 0."""
    return rules.requests_logged(stack.loaded.config)


@dataclass
class ModelServing:
    """What one model's serving owns; the deployment and autoscale exist once it is pinned."""

    endpoint: ml.OnlineEndpoint
    deployment: ml.OnlineDeployment | None = None
    autoscale: monitor.AutoscaleSetting | None = None
    deployment_name: str = field(default="")
    capture: dict[str, ml.DataVersion] = field(default_factory=dict)  # collection -> asset


class Serving(pulumi.ComponentResource):
    """The serving environment plus, per model, endpoint, deployment and autoscale setting."""

    def __init__(self, name: str, args: ServingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:Serving", name, None, opts)
        self._args = args
        cfg = args.stack.loaded.config
        port = cfg.serving.port
        self.scope = {"resource_group_name": args.resource_group,
                      "workspace_name": args.workspace}
        route = {"port": port}
        self.environment = ml.EnvironmentVersion(
            f"{name}-env", name=f"{cfg.project}-serving", version=cfg.image.tag,
            opts=pulumi.ResourceOptions(parent=self), **self.scope,
            properties={"image": args.image, "os_type": "Linux", "tags": args.tags,
                        "inference_config": {
                            "liveness_route": {**route, "path": "/ping"},
                            "readiness_route": {**route, "path": "/ping"},
                            "scoring_route": {**route, "path": "/invocations"}}})
        self.models = {m.name: self._model(name, m.name) for m in cfg.all_models}
        self.register_outputs({"endpoints": {k: v.endpoint.name for k, v in self.models.items()}})

    def _model(self, name: str, model: str) -> ModelServing:
        args, cfg = self._args, self._args.stack.loaded.config
        child = pulumi.ResourceOptions(parent=self)
        endpoint = ml.OnlineEndpoint(
            f"{name}-{model}-endpoint", location=args.location, tags=args.tags, opts=child,
            endpoint_name=naming.endpoint(cfg.project, args.stack.env_name, model),
            identity={"type": "SystemAssigned"}, **self.scope,
            properties={"auth_mode": "Key", "public_network_access":
                        "Enabled" if cfg.azure.endpoint_public_access else "Disabled"})
        version = cfg.azure.deploy_versions.get(model)
        served = ModelServing(endpoint)
        if version is None:
            return served
        served.deployment_name = naming.deployment(version)
        collector = self._collector(name, model, served) if capture_on(args.stack) else None
        served.deployment = ml.OnlineDeployment(
            f"{name}-{model}-deployment", deployment_name=served.deployment_name,
            endpoint_name=endpoint.name, location=args.location, tags=args.tags,
            sku={"name": "Default", "capacity": int(autoscale.capacity(cfg.serving)["default"])},
            opts=child, **self.scope,
            # A union-typed property: the Args class (not a dict) gets its keys translated.
            properties=ml.ManagedOnlineDeploymentArgs(
                endpoint_compute_type="Managed",
                instance_type=azure_instance_type(cfg),
                model=naming.model_uri(args.registry, cfg.project, model, version),
                environment_id=self.environment.id,
                app_insights_enabled=True,
                egress_public_network_access="Disabled",
                scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
                environment_variables={"MLOPS_MODEL": model, "MLOPS_ENV": args.stack.env_name},
                data_collector=collector,
            ))
        served.autoscale = monitor.AutoscaleSetting(
            f"{name}-{model}-autoscale", resource_group_name=args.resource_group,
            autoscale_setting_name=f"{naming.prefix(cfg.project, args.stack.env_name)}-{model}",
            location=args.location, enabled=True, tags=args.tags, opts=child,
            target_resource_uri=served.deployment.id,
            profiles=autoscale.profiles(cfg.serving, autoscale.rules(
                cfg.serving.scaling, endpoint.id, served.deployment.id, served.deployment_name)))
        return served

    def _collector(self, name: str, model: str, served: ModelServing) -> ml.DataCollectorArgs:
        """Payload logging of `request` and `response` at `sampling_percent`, hourly folders;
        the endpoint's identity writes them (blob data on the workspace storage)."""
        args, cfg = self._args, self._args.stack.loaded.config
        child = pulumi.ResourceOptions(parent=self)
        endpoint = naming.endpoint(cfg.project, args.stack.env_name, model)
        for collection in (naming.REQUEST, naming.RESPONSE):
            served.capture[collection] = ml.DataVersion(
                f"{name}-{model}-{collection}", opts=child, **self.scope,
                name=f"{endpoint}-{served.deployment_name}-{collection}", version="1",
                properties=ml.UriFolderDataVersionArgs(
                    data_type="uri_folder", tags=args.tags,
                    data_uri=naming.capture_uri(endpoint, served.deployment_name, collection)))
        authorization.RoleAssignment(
            f"{name}-{model}-capture-writer", scope=args.workspace_storage_id,
            principal_id=served.endpoint.identity.apply(lambda i: i.principal_id if i else ""),
            principal_type="ServicePrincipal", description=f"{endpoint}: data collector",
            role_definition_id=role_id(args.stack.environment.subscription or "",
                                       BLOB_DATA_CONTRIBUTOR), opts=child)
        rate = cfg.serving.capture.sampling_percent / 100.0
        return ml.DataCollectorArgs(rolling_rate="Hour", collections={
            collection: ml.CollectionArgs(data_collection_mode="Enabled", sampling_rate=rate,
                                          data_id=asset.id)
            for collection, asset in served.capture.items()})
