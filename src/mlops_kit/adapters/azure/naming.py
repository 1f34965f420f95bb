"""Names of the Azure resources, derived from the project and environment (Pulumi uses them)."""

from __future__ import annotations

import re

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import ProjectConfig

CLUSTER = "train-cluster"  # the AmlCompute cluster the pipeline and monitor jobs run on
# Azure ML's data collector: the workspace's default blob datastore, the folder azure-ai-ml
# registers collections under (constants._deployment.DEFAULT_MDC_PATH), the payload collections.
CAPTURE_DATASTORE = "workspaceblobstore"
CAPTURE_ROOT = "modelDataCollector"
REQUEST, RESPONSE = "request", "response"
MONITORING_PREFIX = "monitoring/"  # drift results, in the same datastore
# Azure ML schedules take a Windows time zone name; the IANA zones we map, after CLDR's
# windowsZones.xml (territory 001). Others are refused rather than guessed.
WINDOWS_TIME_ZONES = {
    "UTC": "UTC", "Etc/UTC": "UTC",
    "Europe/London": "GMT Standard Time",
    "Europe/Paris": "Romance Standard Time",
    "Europe/Berlin": "W. Europe Standard Time",
    "Europe/Amsterdam": "W. Europe Standard Time",
    "America/New_York": "Eastern Standard Time",
    "America/Chicago": "Central Standard Time",
    "America/Denver": "Mountain Standard Time",
    "America/Los_Angeles": "Pacific Standard Time",
    "Asia/Tokyo": "Tokyo Standard Time",
    "Asia/Singapore": "Singapore Standard Time",
    "Australia/Sydney": "AUS Eastern Standard Time",
}


def prefix(project: str, env: str) -> str:
    """`<project>-<env>` with '_' as '-': the stem of every resource name."""
    return f"{project}-{env}".replace("_", "-")


def resource_group(project: str, env: str) -> str:
    """The environment's resource group."""
    return f"{prefix(project, env)}-rg"


def workspace(project: str, env: str) -> str:
    """The environment's Azure ML workspace."""
    return f"{prefix(project, env)}-ws"


def compact(project: str, env: str, suffix: str, limit: int = 24) -> str:
    """Lower-case letters and digits only (storage accounts, registries), at most `limit`."""
    stem = re.sub(r"[^a-z0-9]", "", f"{project}{env}")
    return stem[: limit - len(suffix)] + suffix


def windows_time_zone(iana: str, field: str = "training.time_zone") -> str:
    """The Windows name of IANA zone `iana` (the config's `field`) for Azure ML schedules and
    autoscale recurrences; ValueError naming the field and the zones it accepts unless it is
    in the table."""
    try:
        return WINDOWS_TIME_ZONES[iana]
    except KeyError:
        raise ValueError(
            f"{field} {iana!r}: Azure takes a Windows time zone and "
            f"this zone has no mapping here; use UTC or one of: "
            f"{', '.join(sorted(set(WINDOWS_TIME_ZONES) - {'UTC', 'Etc/UTC'}))}") from None


def datastore(zone: str) -> str:
    """The Azure ML datastore of a lake zone (a container of the data lake)."""
    return f"lake_{zone}"


def lake_table(config: ProjectConfig, zone: str) -> str:
    """The table folder of a zone; the same rule as `runtime.lake.table_name`."""
    return config.features.group if zone == "features" else f"{zone}_{config.table.table}"


def model_asset(project: str, model: str) -> str:
    """The model's name in the Azure ML registry."""
    return f"{project}-{model}"


def endpoint(project: str, env: str, model: str) -> str:
    """The managed online endpoint of a model: 3-32 characters, letters, digits and '-'."""
    name = f"{project}-{model}"[:24].rstrip("-")
    return f"{name}-{env.replace('_', '')}"[:32].rstrip("-")


def deployment(version: str) -> str:
    """The online deployment serving registry version `version` (`v3`)."""
    return f"v{version}".replace(".", "-").replace("_", "-").lower()


def workspace_blob_container(workspace_id: str) -> str:
    """The blob container behind a workspace's `workspaceblobstore` datastore: Azure ML names
    it after the workspace's immutable id (a GUID)."""
    return f"azureml-blobstore-{workspace_id}"


def capture_folder(endpoint_name: str, deployment_name: str, collection: str) -> str:
    """A collection's folder in the capture datastore; Azure ML adds `YYYY/MM/DD/HH/`."""
    return f"{CAPTURE_ROOT}/{endpoint_name}/{deployment_name}/{collection}"


def capture_uri(endpoint_name: str, deployment_name: str, collection: str) -> str:
    """The collection's folder as the data asset the deployment logs to points at it."""
    return (f"azureml://datastores/{CAPTURE_DATASTORE}/paths/"
            f"{capture_folder(endpoint_name, deployment_name, collection)}")


def registry_server(project: str, env: str) -> str:
    """The Container Registry's login server (`<name>.azurecr.io`; the name is ours)."""
    return f"{compact(project, env, 'acr', 50)}.azurecr.io"


def image(loaded: LoadedConfig) -> str:
    """The project image in the environment's Container Registry."""
    img = loaded.config.image
    return f"{registry_server(loaded.config.project, str(loaded.env))}/{img.repository}:{img.tag}"


def model_uri(registry: str, project: str, model: str, version: str) -> str:
    """A model version in the Azure ML registry, as a job input or deployment model."""
    asset = model_asset(project, model)
    return f"azureml://registries/{registry}/models/{asset}/versions/{version}"


def registry(project: str, env: str) -> str:
    """The Azure ML registry the models are registered in and promoted from."""
    return f"{prefix(project, env)}-models"


def azure_subscription(loaded: LoadedConfig) -> str:
    """The selected environment's subscription; ValueError unless it is an Azure environment."""
    env = loaded.environment
    if env is None or env.cloud != "azure" or not env.subscription:
        raise ValueError(f"environment {loaded.env!r} is not an azure environment "
                         "(pass --env with one whose cloud is azure)")
    return env.subscription
