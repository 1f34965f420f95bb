"""The ADLS Gen2 data lake: a hierarchical-namespace storage account, one container per zone."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_azure_native import storage

import pulumi
from mlops_kit.adapters.azure import naming
from mlops_pulumi import defaults


@dataclass(frozen=True)
class DataLakeArgs:
    project: str
    env: str
    location: str
    resource_group: pulumi.Input[str]
    zones: tuple[str, ...]
    sku: str
    tags: dict[str, str]


class DataLake(pulumi.ComponentResource):
    """Storage account (HNS, TLS 1.2, encrypted, no public blobs) and its zone containers."""

    def __init__(self, name: str, args: DataLakeArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:DataLake", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = storage.StorageAccount(
            f"{name}-account", account_name=naming.compact(args.project, args.env, "lake"),
            resource_group_name=args.resource_group, location=args.location,
            sku={"name": args.sku}, is_hns_enabled=True, tags=args.tags, opts=child,
            **defaults.STORAGE)
        self.containers = {
            zone: storage.BlobContainer(
                f"{name}-{zone}", container_name=zone, account_name=self.account.name,
                resource_group_name=args.resource_group, public_access="None", opts=child)
            for zone in args.zones
        }
        self.register_outputs({"account": self.account.name,
                               "containers": [c.name for c in self.containers.values()]})
