"""Names of the Azure resources, derived from the project and environment (Pulumi uses them)."""

from __future__ import annotations

import re

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import ProjectConfig


def prefix(project: str, env: str) -> str:
    """`<project>-<env>` with '_' as '-': the stem of every resource name."""
    return f"{project}-{env}".replace("_", "-")


def compact(project: str, env: str, suffix: str, limit: int = 24) -> str:
    """Lower-case letters and digits only (storage accounts, registries), at most `limit`."""
    stem = re.sub(r"[^a-z0-9]", "", f"{project}{env}")
    return stem[: limit - len(suffix)] + suffix


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


def registry_server(project: str, env: str) -> str:
    """The Container Registry's login server (`<name>.azurecr.io`; the name is ours)."""
    return f"{compact(project, env, 'acr', 50)}.azurecr.io"


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
