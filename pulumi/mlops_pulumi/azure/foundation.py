"""Resource group, Log Analytics + Application Insights, Key Vault and Container Registry."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_azure_native import (
    applicationinsights,
    authorization,
    containerregistry,
    keyvault,
    operationalinsights,
    resources,
)

import pulumi
from mlops_kit.adapters.azure import naming
from mlops_pulumi import defaults


@dataclass(frozen=True)
class FoundationArgs:
    project: str
    env: str
    location: str
    log_retention_days: int
    tags: dict[str, str]


class Foundation(pulumi.ComponentResource):
    """The shared services every other Azure component lives in or reports to."""

    def __init__(self, name: str, args: FoundationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:Foundation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stem = naming.prefix(args.project, args.env)
        common = {"location": args.location, "tags": args.tags}
        self.resource_group = resources.ResourceGroup(
            f"{name}-rg", resource_group_name=naming.resource_group(args.project, args.env),
            opts=child, **common)
        rg = self.resource_group.name
        self.logs = operationalinsights.Workspace(
            f"{name}-logs", workspace_name=f"{stem}-logs", resource_group_name=rg,
            retention_in_days=args.log_retention_days, sku={"name": "PerGB2018"},
            opts=child, **common)
        self.insights = applicationinsights.Component(
            f"{name}-insights", resource_name_=f"{stem}-insights", resource_group_name=rg,
            kind="web", application_type="web", ingestion_mode="LogAnalytics",
            workspace_resource_id=self.logs.id, opts=child, **common)
        tenant = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)).tenant_id
        self.key_vault = keyvault.Vault(
            f"{name}-kv", vault_name=naming.compact(args.project, args.env, "kv"),
            resource_group_name=rg, properties={**defaults.KEY_VAULT, "tenant_id": tenant},
            opts=child, **common)
        self.container_registry = containerregistry.Registry(
            f"{name}-acr", registry_name=naming.compact(args.project, args.env, "acr", 50),
            resource_group_name=rg, sku={"name": defaults.ACR_SKU}, admin_user_enabled=False,
            anonymous_pull_enabled=False, opts=child, **common)
        self.register_outputs({
            "resource_group": rg, "key_vault_id": self.key_vault.id,
            "registry_login_server": self.container_registry.login_server,
            "insights_id": self.insights.id,
        })
