"""The jobs' identity: a user-assigned managed identity on the training cluster that the drift
monitor runs as and the cluster pulls images with. It sits on the shared cluster, so every job
there inherits it (`DefaultAzureCredential` finds it), and its blob role covers the whole
workspace storage account, not only the capture container."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_azure_native import authorization, managedidentity

import pulumi
from mlops_kit.adapters.azure import naming

# Built-in role definition ids (the same in every tenant).
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # capture read, results write
ML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"     # submit jobs, read datastores
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"                 # read datastores only
REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"          # AzureML Registry User
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"               # pull the job image


def role_id(subscription: str, role: str) -> str:
    """A built-in role definition's resource id in `subscription`."""
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"


@dataclass(frozen=True)
class JobIdentityArgs:
    project: str
    env: str
    subscription: str
    location: str
    resource_group: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    workspace_storage_id: pulumi.Input[str]   # the default blob datastore's account
    registry_id: pulumi.Input[str]             # the Azure ML registry models are promoted in
    container_registry_id: pulumi.Input[str]   # the ACR the cluster pulls the job image from
    retrain_on_drift: bool
    tags: dict[str, str]


class JobIdentity(pulumi.ComponentResource):
    """The identity and its role assignments: blob data on the workspace storage account,
    AzureML Registry User on the model registry, AcrPull on the container registry (the cluster
    pulls the job image as this identity; the admin user is disabled), and on the workspace
    AzureML Data Scientist when drift retrains (it submits jobs), else Reader."""

    def __init__(self, name: str, args: JobIdentityArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:JobIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-jobs", resource_name_=f"{naming.prefix(args.project, args.env)}-jobs",
            resource_group_name=args.resource_group, location=args.location, tags=args.tags,
            opts=child)
        grants = {"capture": (args.workspace_storage_id, BLOB_DATA_CONTRIBUTOR),
                  "registry": (args.registry_id, REGISTRY_USER),
                  "acr-pull": (args.container_registry_id, ACR_PULL),
                  "workspace": (args.workspace_id,
                                ML_DATA_SCIENTIST if args.retrain_on_drift else READER)}
        self.roles = {label: authorization.RoleAssignment(
            f"{name}-{label}", scope=scope, principal_id=self.identity.principal_id,
            principal_type="ServicePrincipal", role_definition_id=role_id(args.subscription, role),
            description=f"mlops jobs: {label}", opts=child)
            for label, (scope, role) in grants.items()}
        self.register_outputs({"client_id": self.identity.client_id})
