"""The Azure ML workspace (its own storage account) and the registry models are promoted in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import storage

import pulumi
from mlops_kit.adapters.azure import naming
from mlops_pulumi import defaults


@dataclass(frozen=True)
class WorkspaceArgs:
    project: str
    env: str
    location: str
    resource_group: pulumi.Input[str]
    key_vault_id: pulumi.Input[str]
    insights_id: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    storage_sku: str
    capture_retention_days: int   # serving.capture.retention_days
    tags: dict[str, str]


def capture_retention(container: str, days: int) -> dict[str, Any]:
    """The storage management policy that deletes captured payloads (the data collector's
    blobs under `<container>/modelDataCollector/`) `days` after they were written."""
    return {"rules": [{
        "name": "capture-retention", "enabled": True, "type": "Lifecycle",
        "definition": {
            "filters": {"blob_types": ["blockBlob", "appendBlob"],
                        "prefix_match": [f"{container}/{naming.CAPTURE_ROOT}/"]},
            "actions": {"base_blob": {"delete": {
                "days_after_modification_greater_than": days}}}}}]}


class MlWorkspace(pulumi.ComponentResource):
    """Workspace (system identity, identity-based datastores) plus an Azure ML registry."""

    def __init__(self, name: str, args: WorkspaceArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:MlWorkspace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Azure ML refuses a hierarchical-namespace account as its default store.
        self.storage = storage.StorageAccount(
            f"{name}-storage", account_name=naming.compact(args.project, args.env, "ws"),
            resource_group_name=args.resource_group, location=args.location,
            sku={"name": args.storage_sku}, is_hns_enabled=False, tags=args.tags, opts=child,
            **defaults.STORAGE)
        self.workspace = ml.Workspace(
            f"{name}-ws", workspace_name=naming.workspace(args.project, args.env),
            resource_group_name=args.resource_group,
            location=args.location, kind="Default", identity=defaults.IDENTITY,
            storage_account=self.storage.id, key_vault=args.key_vault_id,
            application_insights=args.insights_id, container_registry=args.registry_id,
            system_datastores_auth_mode="identity", tags=args.tags, opts=child)
        # the datastore `workspaceblobstore` is the container Azure ML names after the workspace
        self.capture_retention = storage.ManagementPolicy(
            f"{name}-capture-retention", account_name=self.storage.name,
            resource_group_name=args.resource_group, management_policy_name="default",
            policy=self.workspace.workspace_id.apply(lambda ws: capture_retention(
                naming.workspace_blob_container(ws), args.capture_retention_days)),
            opts=child)
        self.registry = ml.Registry(
            f"{name}-registry", registry_name=naming.registry(args.project, args.env),
            resource_group_name=args.resource_group, location=args.location,
            identity=defaults.IDENTITY, tags=args.tags, opts=child,
            region_details=[{
                "location": args.location,
                "acr_details": [{"system_created_acr_account": {
                    "acr_account_sku": defaults.ACR_SKU}}],
                "storage_account_details": [{"system_created_storage_account": {
                    "storage_account_type": args.storage_sku, "allow_blob_public_access": False,
                    "storage_account_hns_enabled": False}}],
            }])
        self.register_outputs({"workspace": self.workspace.name,
                               "registry": self.registry.name})
