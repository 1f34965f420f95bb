"""Model registries behind one interface; `open_registry` picks the back-end from the config."""

from __future__ import annotations

import importlib
from typing import Any

from mlops_kit.config import LoadedConfig
from mlops_kit.extras import needs
from mlops_kit.registry.base import (
    STATUSES,
    ModelVersion,
    Registry,
    RegistryError,
    Status,
    fetch_production,
    production,
)

__all__ = ["STATUSES", "ModelVersion", "Registry", "RegistryError", "Status", "fetch_production",
           "open_registry", "production"]


def open_registry(loaded: LoadedConfig, **options: Any) -> Registry:
    """The configured registry. Cloud back-ends load lazily, so step code never imports an SDK."""
    backend = loaded.config.registry.backend
    if backend == "local":
        from mlops_kit.registry.local import LocalRegistry

        return LocalRegistry(options.get("root") or loaded.state_dir / "registry")
    module, cls = _BACKENDS[backend]
    with needs(f"the {backend} registry"):
        adapter = importlib.import_module(module)
    registry: Registry = getattr(adapter, cls).from_config(loaded, **options)
    return registry


# Cloud back-end -> (module, class) of its adapter, imported only when chosen.
_BACKENDS = {
    "sagemaker": ("mlops_kit.adapters.aws.registry", "SageMakerRegistry"),
    "azureml": ("mlops_kit.adapters.azure.registry", "AzureMLRegistry"),
    "vertex": ("mlops_kit.adapters.gcp.registry", "VertexRegistry"),
}
