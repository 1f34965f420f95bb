"""The program: the environment's cloud picks the platform; nothing else branches."""

from __future__ import annotations

from typing import Any

import pulumi
from mlops_kit.extras import MissingExtra, needs
from mlops_pulumi.config import Stack, StackError

CLOUDS = ("azure", "gcp")


def deploy(stack: Stack) -> Any:
    """Build the stack's platform and export its main names; a missing cloud SDK ends the
    program with the one line naming its extra (pulumi prints a RunError without a traceback)."""
    cloud = stack.environment.cloud
    try:
        with needs(f"the Pulumi program for {cloud}", cloud if cloud in CLOUDS else None):
            return _deploy(stack, cloud)
    except MissingExtra as exc:
        raise pulumi.RunError(f"{exc.kind}: {exc}") from None


def _deploy(stack: Stack, cloud: str) -> Any:
    if cloud == "azure":
        from mlops_pulumi.azure.platform import build

        platform = build(stack)
        pulumi.export("resource_group", platform.foundation.resource_group.name)
        pulumi.export("workspace", platform.workspace.workspace.name)
        pulumi.export("endpoints", {m: s.endpoint.name
                                    for m, s in platform.serving.models.items()})
        return platform
    if cloud == "gcp":
        from mlops_pulumi.gcp.platform import build as build_gcp

        gcp_platform = build_gcp(stack)
        pulumi.export("buckets", {z: b.name for z, b in gcp_platform.lake.buckets.items()})
        pulumi.export("dataset", gcp_platform.warehouse.dataset.dataset_id)
        pulumi.export("endpoints", {m: s.endpoint.name
                                    for m, s in gcp_platform.serving.models.items()})
        return gcp_platform
    raise StackError(f"no platform for cloud {cloud!r}")
