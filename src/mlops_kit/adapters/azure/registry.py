"""The model registry on an Azure ML registry: one model asset per model, versions 1, 2, ...

Pulumi creates the registry (`naming.registry`: `<project>-<env>-models`); model `m` is the asset
`<project>-<m>` (`naming.model_asset`), the name `azure.deploy_versions` deployments and the
training schedule reference as `azureml://registries/<registry>/models/<asset>/versions/<n>`.
A version's files are uploaded as a `custom_model` folder.

Azure ML has no approval status: it is the tag `mlops.status` (PendingManualApproval, Approved,
Rejected), mirrored in the asset's `stage` (Development, Production, Archived) that Azure ML
Studio shows. The immutable property `mlops.metadata` keeps the full metrics, params, lineage and
description as JSON; tags carry the metrics and a lineage summary for Studio's model list.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.ai.ml.entities import Model
from azure.core.exceptions import AzureError, ResourceNotFoundError

from mlops_kit.adapters.azure import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.fileio import walk_files
from mlops_kit.registry.base import (
    STATUSES,
    ModelVersion,
    RegistryError,
    Status,
    backend_options,
    errors_as_registry_error,
    flatten,
    model_files,
)
from mlops_kit.registry.local import check_status

STATUS_TAG, METADATA_PROPERTY = "mlops.status", "mlops.metadata"
STAGES: dict[str, str] = {"PendingManualApproval": "Development", "Approved": "Production",
                          "Rejected": "Archived"}
MODEL_TYPE = "custom_model"
STAGE_FOLDER = "mlops-model"  # the uploaded folder's name, found again on download
# Lineage entries copied into tags (the full lineage is in the `mlops.metadata` property).
LINEAGE_TAGS = ("data_version", "curated_version", "git.commit", "git.dirty", "config_digest",
                "environment", "pipeline_run", "mlflow_run_id", "model_digest")
MAX_TAG = 256
_OPTIONS = frozenset({"ml_client", "credential"})


def _azure_errors(action: str) -> AbstractContextManager[None]:
    """AzureErrors as RegistryError naming the action."""
    return errors_as_registry_error(action, AzureError)


def tags(status: Status, metrics: dict[str, float], lineage: dict[str, Any]) -> dict[str, str]:
    """The version's tags: approval status, metrics and a lineage summary, values clipped."""
    out: dict[str, str] = {STATUS_TAG: status}
    out.update(flatten("metric", metrics))
    out.update((key, value) for key, value in flatten("lineage", lineage)
               if key.removeprefix("lineage.") in LINEAGE_TAGS)
    return {k: v if len(v) <= MAX_TAG else v[: MAX_TAG - 3] + "..." for k, v in out.items()}


class AzureMLRegistry:
    """The `Registry` protocol on an Azure ML registry's model assets (`azure-ai-ml` MLClient)."""

    def __init__(self, client: Any, registry: str, project: str) -> None:
        self.client = client
        self.registry = registry
        self.project = project

    @classmethod
    def from_config(cls, loaded: LoadedConfig, **options: Any) -> AzureMLRegistry:
        """The environment's registry; options: a ready `ml_client`, or a `credential`."""
        options = backend_options(options, _OPTIONS, "AzureMLRegistry")
        try:
            subscription = naming.azure_subscription(loaded)
        except ValueError as exc:
            raise RegistryError(f"registry.backend azureml: {exc}") from None
        registry = naming.registry(loaded.config.project, str(loaded.env))
        client = options.get("ml_client") or _client(options.get("credential"), subscription,
                                                     registry)
        return cls(client, registry, loaded.config.project)

    def register(self, model: str, model_dir: Path, *, status: Status,
                 metrics: dict[str, float], params: dict[str, Any],
                 lineage: dict[str, Any], description: str = "") -> ModelVersion:
        """Upload `model_dir` as the next version of the model's asset."""
        check_status(status)
        files = model_files(Path(model_dir))
        metrics = {k: float(v) for k, v in metrics.items()}
        document = {"model": model, "metrics": metrics, "params": params,
                    "lineage": lineage, "description": description}
        # A cloud back-end knows no state folder (it may run in a job container): OS temp.
        with _azure_errors(f"register {model}"), tempfile.TemporaryDirectory() as tmp:
            existing = self.versions(model)
            number = existing[-1].version + 1 if existing else 1
            entity = Model(
                name=self.asset(model), version=str(number), type=MODEL_TYPE,
                path=str(_stage(files, Path(tmp) / STAGE_FOLDER)), description=description,
                tags=tags(status, metrics, lineage), stage=STAGES[status],
                properties={METADATA_PROPERTY: json.dumps(document, sort_keys=True,
                                                          default=str)})
            return self._version(model, self.client.models.create_or_update(entity))

    def versions(self, model: str) -> list[ModelVersion]:
        """All versions of `model`, oldest first (empty if the asset does not exist)."""
        with _azure_errors(f"list versions of {model}"):
            try:
                found = list(self.client.models.list(name=self.asset(model)))
            except ResourceNotFoundError:
                return []
        out = [self._version(model, m) for m in found if str(m.version).isdigit()]
        return sorted(out, key=lambda v: v.version)

    def get(self, model: str, version: int) -> ModelVersion:
        """One version; RegistryError if the model or the version does not exist."""
        return self._version(model, self._entity(model, version))

    def set_status(self, model: str, version: int, status: Status) -> ModelVersion:
        """Set the version's `mlops.status` tag and stage (tags stay mutable in a registry)."""
        check_status(status)
        entity = self._entity(model, version)
        entity.tags = {**(entity.tags or {}), STATUS_TAG: status}
        entity.stage = STAGES[status]
        with _azure_errors(f"set status of {model} version {version}"):
            return self._version(model, self.client.models.create_or_update(entity))

    def download(self, model: str, version: int, dest: Path) -> Path:
        """Download the version's files into `dest` (created) and return it."""
        self._entity(model, version)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with _azure_errors(f"download {model} version {version}"), \
                tempfile.TemporaryDirectory() as tmp:  # no state folder known (see register)
            self.client.models.download(name=self.asset(model), version=str(version),
                                        download_path=tmp)
            root = Path(tmp) / self.asset(model)
            root = root / STAGE_FOLDER if (root / STAGE_FOLDER).is_dir() else root
            files = walk_files(root)
            if not files:
                raise RegistryError(f"download {model} version {version}: no files came back")
            for rel, path in files.items():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest / rel)
        return dest

    def asset(self, model: str) -> str:
        """The model's asset name in the registry."""
        return naming.model_asset(self.project, model)

    def uri(self, model: str, version: int) -> str:
        """The version as deployments and pipeline inputs reference it."""
        return naming.model_uri(self.registry, self.project, model, str(version))

    def _entity(self, model: str, version: int) -> Any:
        """The asset version; RegistryError naming the versions there are if it is unknown."""
        with _azure_errors(f"get {model} version {version}"):
            try:
                return self.client.models.get(name=self.asset(model), version=str(version))
            except ResourceNotFoundError:
                pass
        numbers = ", ".join(str(v.version) for v in self.versions(model))
        if not numbers:
            raise RegistryError(f"model {model!r} is not registered (no asset "
                                f"{self.asset(model)!r} in Azure ML registry {self.registry!r})")
        raise RegistryError(f"model {model!r} has no version {version} (versions: {numbers})")

    def _version(self, model: str, entity: Any) -> ModelVersion:
        """A ModelVersion from an asset version: its metadata property, tags and stage."""
        tags_ = dict(entity.tags or {})
        document = json.loads((entity.properties or {}).get(METADATA_PROPERTY) or "{}")
        status = tags_.get(STATUS_TAG)
        created = getattr(entity.creation_context, "created_at", None) or ""
        if isinstance(created, datetime):
            created = created.astimezone(UTC).isoformat()
        return ModelVersion(
            model=model, version=int(entity.version),
            status=status if status in STATUSES else "PendingManualApproval",
            artifact_uri=self.uri(model, int(entity.version)),
            metrics=dict(document.get("metrics", {})), params=dict(document.get("params", {})),
            lineage=dict(document.get("lineage", {})), created=str(created),
            description=document.get("description", entity.description or ""),
        )


def _stage(files: dict[str, Path], folder: Path) -> Path:
    """Copy `files` into `folder`, the upload's root (its name marks it on download)."""
    for rel, path in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, folder / rel)
    return folder


def _client(credential: Any, subscription: str, registry: str) -> Any:
    """An MLClient on `registry` (it discovers the registry's resource group itself)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(credential or DefaultAzureCredential(), subscription_id=subscription,
                    registry_name=registry)
