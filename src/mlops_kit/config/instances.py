"""`serving.instance_type` (a SageMaker type) mapped to the nearest Azure and Vertex machines.

The table pairs vCPU and memory; an environment can name its own machine instead
(`azure.instance_type`, `gcp.machine_type`), which always wins.
"""

from __future__ import annotations

from mlops_kit.config.model import ProjectConfig

# SageMaker type -> (Azure ML managed online SKU, Vertex AI machine type): same vCPUs, ~memory.
INSTANCES: dict[str, tuple[str, str]] = {
    "ml.t2.medium": ("Standard_DS1_v2", "e2-standard-2"),
    "ml.m5.large": ("Standard_DS2_v2", "n1-standard-2"),
    "ml.m5.xlarge": ("Standard_DS3_v2", "n1-standard-4"),
    "ml.m5.2xlarge": ("Standard_DS4_v2", "n1-standard-8"),
    "ml.m5.4xlarge": ("Standard_DS5_v2", "n1-standard-16"),
    "ml.c5.large": ("Standard_F2s_v2", "n1-highcpu-2"),
    "ml.c5.xlarge": ("Standard_F4s_v2", "n1-highcpu-4"),
    "ml.c5.2xlarge": ("Standard_F8s_v2", "n1-highcpu-8"),
    "ml.c5.4xlarge": ("Standard_F16s_v2", "n1-highcpu-16"),
    "ml.r5.large": ("Standard_E2s_v3", "n1-highmem-2"),
    "ml.r5.xlarge": ("Standard_E4s_v3", "n1-highmem-4"),
    "ml.g4dn.xlarge": ("Standard_NC4as_T4_v3", "n1-standard-4"),
}


def azure_instance_type(config: ProjectConfig) -> str:
    """The online deployment's SKU: `azure.instance_type`, else the mapped serving type."""
    return config.azure.instance_type or _mapped(config, 0, "azure.instance_type")


def gcp_machine_type(config: ProjectConfig) -> str:
    """The Vertex serving machine: `gcp.machine_type`, else the mapped serving type."""
    return config.gcp.machine_type or _mapped(config, 1, "gcp.machine_type")


def _mapped(config: ProjectConfig, column: int, field: str) -> str:
    kind = config.serving.instance_type
    if kind not in INSTANCES:
        raise ValueError(f"serving.instance_type {kind!r} has no mapping; set {field} "
                         f"(mapped types: {', '.join(INSTANCES)})")
    return INSTANCES[kind][column]
