"""The model registry on the Vertex AI Model Registry: one Vertex model per model, a version per
registration (`google.cloud.aiplatform_v1`: every request is a proto message).

Model `m` is the Vertex model `<project>-<m>` (`naming.vertex_model_id`) of the environment's
project and region. A version's files go to `gs://<pipelines bucket>/models/<id>/<stamp>/model/`
(its `artifact_uri`, served by the project image); beside it, `metadata.json` keeps the full
metrics, params, lineage and description. Vertex has no approval status: it is the version label
`mlops-status` (`pending`, `approved`, `rejected`), and the version alias `production` follows the
newest approved version (the one `release deploy` puts on the endpoint). Labels also carry the
metrics (Vertex label values allow only `[a-z0-9_-]`: `0.81` is written `0_81`) and the run.
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.api_core.exceptions import GoogleAPIError, NotFound
from google.cloud.aiplatform_v1 import types
from google.protobuf import field_mask_pb2

from mlops_kit.adapters.gcp import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.registry.base import (
    ModelVersion,
    RegistryError,
    Status,
    backend_options,
    errors_as_registry_error,
    flatten,
    model_files,
)
from mlops_kit.registry.local import check_status

STATUS_LABEL, PRODUCTION_ALIAS = "mlops-status", "production"
LABELS: dict[str, str] = {"PendingManualApproval": "pending", "Approved": "approved",
                          "Rejected": "rejected"}
STATUS_OF: dict[str, Status] = {"pending": "PendingManualApproval", "approved": "Approved",
                                 "rejected": "Rejected"}
MAX_LABELS, MAX_LABEL = 64, 63
LINEAGE_LABELS = ("pipeline_run", "model_digest", "git.commit")
UPLOAD_TIMEOUT_S = 1800
SERVE_COMMAND = ["python", "-m", "mlops_kit.adapters.gcp.serve"]
_OPTIONS = frozenset({"model_client", "storage_client", "credentials"})


def _gcp_errors(action: str) -> AbstractContextManager[None]:
    """GoogleAPIErrors as RegistryError naming the action."""
    return errors_as_registry_error(action, GoogleAPIError)


def label(text: str, key: bool = False) -> str:
    """`text` as a Vertex label key or value: lower case, `[a-z0-9_-]`, at most 63."""
    out = re.sub(r"[^a-z0-9_-]", "_", text.lower())[:MAX_LABEL]
    return out if not key or out[:1].isalpha() else f"k{out}"[:MAX_LABEL]


def labels(status: Status, metrics: dict[str, float], lineage: dict[str, Any]) -> dict[str, str]:
    """Version labels: status, then lineage summary and metrics, at most 64."""
    out = {STATUS_LABEL: LABELS[status]}
    pairs = [(k, v) for k, v in flatten("lineage", lineage)
             if k.removeprefix("lineage.") in LINEAGE_LABELS]
    for key, value in [*pairs, *flatten("metric", metrics)]:
        if len(out) < MAX_LABELS:
            out.setdefault(label(key.replace(".", "-"), key=True), label(value))
    return out


class VertexRegistry:
    """The `Registry` protocol on Vertex AI model versions, artifacts in Cloud Storage."""

    def __init__(self, models: Any, storage: Any, loaded: LoadedConfig) -> None:
        self.models = models
        self.storage = storage
        self.project = loaded.config.project
        self.location = naming.location(loaded)
        self.bucket = naming.bucket(loaded, "pipelines")
        self.image = naming.image(loaded)
        self.port = loaded.config.serving.port
        self.kms_key = loaded.config.gcp.kms_key

    @classmethod
    def from_config(cls, loaded: LoadedConfig, **options: Any) -> VertexRegistry:
        """The environment's registry; options: ready `model_client` / `storage_client`, or
        `credentials` for new ones."""
        options = backend_options(options, _OPTIONS, "VertexRegistry")
        try:
            naming.gcp_project(loaded)
        except ValueError as exc:
            raise RegistryError(f"registry.backend vertex: {exc}") from None
        models = options.get("model_client") or model_client(loaded, options.get("credentials"))
        storage = options.get("storage_client") or _storage(loaded, options.get("credentials"))
        return cls(models, storage, loaded)

    def register(self, model: str, model_dir: Path, *, status: Status,
                 metrics: dict[str, float], params: dict[str, Any],
                 lineage: dict[str, Any], description: str = "") -> ModelVersion:
        """Upload the files and metadata.json, then a new version of the model's Vertex model."""
        check_status(status)
        files = model_files(Path(model_dir))
        metrics = {k: float(v) for k, v in metrics.items()}
        document = {"model": model, "metrics": metrics, "params": params, "lineage": lineage,
                    "description": description}
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        prefix = f"models/{self.model_id(model)}/{stamp}"
        with _gcp_errors(f"register {model}"):
            first = not self._raw_versions(model)
            self._put(prefix, files, document)
            try:
                version = self._upload(model, prefix, first, description)
            except BaseException:
                self._forget(prefix)
                raise
            self._set_labels(model, version, labels(status, metrics, lineage))
            self._sync_production(model)
        return self.get(model, version)

    def versions(self, model: str) -> list[ModelVersion]:
        """All versions of `model`, oldest first (empty if the Vertex model does not exist)."""
        with _gcp_errors(f"list versions of {model}"):
            return [self._version(model, raw) for raw in self._raw_versions(model)]

    def get(self, model: str, version: int) -> ModelVersion:
        """One version; RegistryError if the model or the version does not exist."""
        return self._version(model, self._raw(model, version))

    def set_status(self, model: str, version: int, status: Status) -> ModelVersion:
        """Set the version's `mlops-status` label and move the `production` alias."""
        check_status(status)
        raw = self._raw(model, version)
        with _gcp_errors(f"set status of {model} version {version}"):
            self._set_labels(model, version, {**raw.labels, STATUS_LABEL: LABELS[status]})
            self._sync_production(model)
        return self.get(model, version)

    def download(self, model: str, version: int, dest: Path) -> Path:
        """Download the version's files (its `artifact_uri` folder) into `dest` (created)."""
        uri = self._raw(model, version).artifact_uri
        bucket, _, key = uri.removeprefix("gs://").partition("/")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with _gcp_errors(f"download {model} version {version}"):
            blobs = list(self.storage.list_blobs(bucket, prefix=key.rstrip("/") + "/"))
            if not blobs:
                raise RegistryError(f"download {model} version {version}: nothing at {uri}")
            for blob in blobs:
                rel = blob.name[len(key.rstrip("/")) + 1:]
                if not rel or rel.endswith("/"):
                    continue
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                blob.download_to_filename(str(dest / rel))
        return dest

    def model_id(self, model: str) -> str:
        return naming.vertex_model_id(self.project, model)

    def resource(self, model: str) -> str:
        """The Vertex model's resource name (append `@<version>` for one version)."""
        return f"{self.location}/models/{self.model_id(model)}"

    def _raw_versions(self, model: str) -> list[Any]:
        request = types.ListModelVersionsRequest(name=self.resource(model))
        try:
            found = list(self.models.list_model_versions(request=request))
        except NotFound:
            return []
        return sorted((m for m in found if m.version_id.isdigit()), key=lambda m: int(m.version_id))

    def _raw(self, model: str, version: int) -> Any:
        """One version's Model; RegistryError naming the versions there are if it is unknown."""
        request = types.GetModelRequest(name=f"{self.resource(model)}@{version}")
        with _gcp_errors(f"get {model} version {version}"):
            try:
                return self.models.get_model(request=request)
            except NotFound:
                numbers = ", ".join(m.version_id for m in self._raw_versions(model))
        if not numbers:
            raise RegistryError(f"model {model!r} is not registered (no Vertex model "
                                f"{self.resource(model)!r})")
        raise RegistryError(f"model {model!r} has no version {version} (versions: {numbers})")

    def _put(self, prefix: str, files: dict[str, Path], document: dict[str, Any]) -> None:
        """Upload the model files under `<prefix>/model/` and `<prefix>/metadata.json`."""
        bucket = self.storage.bucket(self.bucket)
        for rel, path in files.items():
            bucket.blob(f"{prefix}/model/{rel}").upload_from_filename(str(path))
        body = json.dumps(document, indent=2, sort_keys=True, default=str)
        bucket.blob(f"{prefix}/metadata.json").upload_from_string(
            body, content_type="application/json")

    def _forget(self, prefix: str) -> None:
        """Best-effort removal of a failed registration's objects."""
        with suppress(GoogleAPIError):
            for blob in list(self.storage.list_blobs(self.bucket, prefix=f"{prefix}/")):
                blob.delete()

    def _upload(self, model: str, prefix: str, first: bool, description: str) -> int:
        """UploadModel: a new Vertex model (first version) or a new version of it."""
        spec = types.Model(
            display_name=self.model_id(model), description=f"{self.project}: model {model}",
            version_description=description[:1000],
            artifact_uri=f"gs://{self.bucket}/{prefix}/model/",
            container_spec=types.ModelContainerSpec(
                image_uri=self.image, command=SERVE_COMMAND, predict_route="/invocations",
                health_route="/ping", ports=[types.Port(container_port=self.port)],
                env=[types.EnvVar(name="MLOPS_MODEL_NAME", value=model)]),
            labels={"mlops-model": label(model)})
        if self.kms_key:
            spec.encryption_spec = types.EncryptionSpec(kms_key_name=self.kms_key)
        request = types.UploadModelRequest(parent=self.location, model=spec)
        if first:
            request.model_id = self.model_id(model)
        else:
            request.parent_model = self.resource(model)
        response = self.models.upload_model(request=request).result(timeout=UPLOAD_TIMEOUT_S)
        return int(response.model_version_id)

    def _set_labels(self, model: str, version: int, values: dict[str, str]) -> None:
        """UpdateModel on `<model>@<version>`: version labels, not the model's."""
        self.models.update_model(request=types.UpdateModelRequest(
            model=types.Model(name=f"{self.resource(model)}@{version}", labels=values),
            update_mask=field_mask_pb2.FieldMask(paths=["labels"])))

    def _sync_production(self, model: str) -> None:
        """Put the `production` alias on the newest approved version (and nowhere else)."""
        raws = self._raw_versions(model)
        approved = [m for m in raws if m.labels.get(STATUS_LABEL) == LABELS["Approved"]]
        target = approved[-1].version_id if approved else None
        for raw in raws:  # off the others first: an alias names one version at a time
            if PRODUCTION_ALIAS in raw.version_aliases and raw.version_id != target:
                self._merge_alias(model, raw.version_id, f"-{PRODUCTION_ALIAS}")
        held = [PRODUCTION_ALIAS in m.version_aliases for m in raws if m.version_id == target]
        if target is not None and not held[0]:
            self._merge_alias(model, target, PRODUCTION_ALIAS)

    def _merge_alias(self, model: str, version: str, alias: str) -> None:
        self.models.merge_version_aliases(request=types.MergeVersionAliasesRequest(
            name=f"{self.resource(model)}@{version}", version_aliases=[alias]))

    def _version(self, model: str, raw: Any) -> ModelVersion:
        """A ModelVersion from a Vertex model version plus its metadata.json."""
        document = self._metadata(raw.artifact_uri) or {}
        created = raw.version_create_time
        return ModelVersion(
            model=model, version=int(raw.version_id),
            status=STATUS_OF.get(raw.labels.get(STATUS_LABEL, ""), "PendingManualApproval"),
            artifact_uri=raw.artifact_uri, metrics=dict(document.get("metrics", {})),
            params=dict(document.get("params", {})), lineage=dict(document.get("lineage", {})),
            created=created.astimezone(UTC).isoformat() if created else "",
            description=document.get("description", raw.version_description),
        )

    def _metadata(self, artifact_uri: str) -> dict[str, Any] | None:
        """metadata.json beside the version's `model/` folder, or None if it is gone."""
        bucket, _, key = artifact_uri.removeprefix("gs://").rstrip("/").partition("/")
        try:
            body = self.storage.bucket(bucket).blob(
                f"{key.rsplit('/', 1)[0]}/metadata.json").download_as_bytes()
        except NotFound:
            return None
        document: dict[str, Any] = json.loads(body)
        return document


def model_client(loaded: LoadedConfig, credentials: Any = None) -> Any:
    """A ModelServiceClient on the environment's regional Vertex AI endpoint."""
    from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient

    return ModelServiceClient(credentials=credentials, client_options={
        "api_endpoint": f"{naming.region(loaded)}-aiplatform.googleapis.com"})


def _storage(loaded: LoadedConfig, credentials: Any = None) -> Any:
    from google.cloud import storage

    return storage.Client(project=naming.gcp_project(loaded), credentials=credentials)
