"""The training pipeline: a cluster that scales to zero, lake datastores, the job image, and per
model the step components and a schedule submitting the pipeline rendered from the DAG (its
source folder input included; the empty ingest date is left out, so each run ingests its day)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pulumi_azure_native import machinelearningservices as ml

import pulumi
from mlops_kit.adapters.azure import naming, rules
from mlops_kit.adapters.azure import pipeline as render
from mlops_pulumi.config import Stack, refuse

# The pipeline job's data inputs (`render.rest_inputs`) as the provider's typed inputs.
JOB_INPUTS = {"uri_folder": ml.UriFolderJobInputArgs, "custom_model": ml.CustomModelJobInputArgs}


@dataclass(frozen=True)
class TrainingArgs:
    stack: Stack
    location: str
    resource_group: pulumi.Input[str]
    workspace: pulumi.Input[str]
    lake_account: pulumi.Input[str]
    zones: tuple[str, ...]
    registry: str
    tags: dict[str, str]
    identity_id: pulumi.Input[str] | None = None   # the jobs' user-assigned identity


def schedule_time_zone(stack: Stack) -> str:
    """`training.time_zone` as the Windows name Azure ML schedules take; StackError unless
    `naming.windows_time_zone` maps it (`rules.schedule_time_zone`)."""
    refuse(rules.schedule_time_zone(stack.loaded))
    return naming.windows_time_zone(stack.loaded.config.training.time_zone)


class Training(pulumi.ComponentResource):
    """Compute, datastores, environment, and for each model its components and schedule."""

    def __init__(self, name: str, args: TrainingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        schedule_time_zone(args.stack)   # StackError before anything is built
        super().__init__("mlops:azure:Training", name, None, opts)
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.stack.loaded.config
        self.scope = {"resource_group_name": args.resource_group,
                      "workspace_name": args.workspace}
        self.cluster = ml.Compute(
            f"{name}-cluster", compute_name=naming.CLUSTER, location=args.location,
            tags=args.tags, opts=child, **self.scope,
            identity=None if args.identity_id is None else {
                "type": "UserAssigned", "user_assigned_identities": [args.identity_id]},
            properties={"compute_type": "AmlCompute", "disable_local_auth": True, "properties": {
                "vm_size": cfg.azure.training_vm_size, "enable_node_public_ip": False,
                "remote_login_port_public_access": "Disabled",
                "scale_settings": {
                    "min_node_count": 0, "max_node_count": cfg.azure.training_max_nodes,
                    "node_idle_time_before_scale_down": f"PT{cfg.azure.idle_before_scale_down_s}S",
                }}})
        self.datastores = {zone: ml.Datastore(
            f"{name}-ds-{zone}", name=naming.datastore(zone), opts=child, **self.scope,
            properties={"datastore_type": "AzureDataLakeGen2", "account_name": args.lake_account,
                        "filesystem": zone, "credentials": {"credentials_type": "None"},
                        "service_data_access_auth_identity": "WorkspaceSystemAssignedIdentity",
                        "tags": args.tags}) for zone in args.zones}
        self.image = naming.image(args.stack.loaded)
        self.environment = ml.EnvironmentVersion(
            f"{name}-env", name=f"{cfg.project}-runtime", version=cfg.image.tag,
            opts=child, **self.scope,
            properties={"image": self.image, "os_type": "Linux", "tags": args.tags})
        self.components: dict[str, dict[str, ml.ComponentVersion]] = {}
        self.schedules: dict[str, ml.Schedule] = {}
        for model in cfg.all_models:
            self.components[model.name] = self._components(name, model.name)
            self.schedules[model.name] = self._schedule(name, model.name)
        self.register_outputs({"cluster": self.cluster.name,
                               "schedules": [s.name for s in self.schedules.values()]})

    def _components(self, name: str, model: str) -> dict[str, ml.ComponentVersion]:
        stack = self._args.stack
        env_ref = (f"azureml:{stack.project}-runtime:"
                   f"{stack.loaded.config.image.tag}")
        out = {}
        for step in stack.pipeline.steps:
            spec = render.component(step, stack.loaded, model, env_ref)
            out[step.name] = ml.ComponentVersion(
                f"{name}-{model}-{step.name}", name=spec["name"], version=_digest(spec),
                properties={"component_spec": spec, "tags": self._args.tags},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.environment]),
                **self.scope)
        return out

    def _schedule(self, name: str, model: str) -> ml.Schedule:
        stack, cfg = self._args.stack, self._args.stack.loaded.config
        version = cfg.azure.deploy_versions.get(model)
        ids = {step: c.id for step, c in self.components[model].items()}
        job: dict[str, object] = {
            "job_type": "Pipeline", "display_name": f"{stack.pipeline.name}-{model}",
            "experiment_name": f"{cfg.project}-{model}", "tags": self._args.tags,
            "settings": {"default_compute": self.cluster.id, "continue_on_step_failure": False},
            "jobs": render.rest_jobs(stack.loaded, stack.pipeline, ids, version is not None),
        }
        uri = None if version is None else naming.model_uri(self._args.registry, cfg.project,
                                                            model, version)
        inputs = render.rest_inputs(stack.loaded, stack.pipeline, uri)
        if inputs:
            job["inputs"] = {name: JOB_INPUTS[spec["job_input_type"]](**spec)
                             for name, spec in inputs.items()}
        return ml.Schedule(
            f"{name}-{model}-schedule", name=f"{stack.pipeline.name}-{model}", **self.scope,
            opts=pulumi.ResourceOptions(parent=self),
            properties={
                "display_name": f"{stack.pipeline.name} {model}", "is_enabled": True,
                "tags": self._args.tags,
                "trigger": {"trigger_type": "Cron", "expression": cfg.training.schedule,
                            "time_zone": schedule_time_zone(stack)},
                "action": {"action_type": "CreateJob", "job_definition": job},
            })


def _digest(spec: dict[str, object]) -> str:
    """Component versions are immutable: the version is the spec's content hash."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
