"""Stand-ins of the Google Cloud clients the Vertex registry uses: `ModelServiceClient`
(versions, labels, aliases) and `google.cloud.storage.Client` on a folder (a bucket is a
folder). Shared by the registry tests and the Vertex pipeline harness.

The ModelService stand-in accepts only `google.cloud.aiplatform_v1` request messages (whose
constructors refuse unknown fields and wrong types), round-trips each through its wire form,
and applies Vertex's documented rules (model ids, version-only label updates, alias syntax and
uniqueness). `FileModels` keeps its state in a JSON file, so the jobs of a pipeline run (one
process each) share one registry; `install` puts both into `mlops_kit.adapters.gcp.registry`
of a job process (the harness's `sitecustomize` calls it when that module is imported).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from google.api_core.exceptions import FailedPrecondition, InvalidArgument, NotFound
from google.cloud.aiplatform_v1 import types

ALIAS = re.compile(r"^-?[a-z][a-zA-Z0-9-]{0,126}[a-z-0-9]$")


def wire(request: Any, kind: type) -> Any:
    """The request as the service gets it: the right message type, through its bytes."""
    assert isinstance(request, kind), f"expected {kind.__name__}, got {type(request).__name__}"
    return kind.deserialize(kind.serialize(request))


class Done:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self, timeout: float | None = None) -> Any:
        return self.value


class StandInModels:
    """ModelServiceClient: upload / list versions / get / update labels / merge aliases."""

    def __init__(self) -> None:
        self.models: dict[str, list[types.Model]] = {}
        self.requests: list[Any] = []

    def upload_model(self, request: Any) -> Done:
        req = wire(request, types.UploadModelRequest)
        self.requests.append(req)
        assert re.fullmatch(r"projects/[a-z0-9-]+/locations/[a-z0-9-]+", req.parent)
        assert req.model.artifact_uri.startswith("gs://")
        if req.parent_model:
            assert not req.model_id, "model_id and parent_model are exclusive"
            if req.parent_model not in self.models:
                raise NotFound(f"{req.parent_model}")
            name = req.parent_model
        else:
            if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,62}", req.model_id):
                raise InvalidArgument(f"bad model id {req.model_id}")
            name = f"{req.parent}/models/{req.model_id}"
            if name in self.models:
                raise FailedPrecondition(f"{name} exists")
            self.models[name] = []
        versions = self.models[name]
        model = types.Model(req.model)
        model.name, model.version_id = name, str(len(versions) + 1)
        model.version_create_time = f"2026-11-0{len(versions) + 1}T10:00:00Z"
        model.version_aliases = [] if versions else ["default"]
        versions.append(model)
        return Done(types.UploadModelResponse(model=name, model_version_id=model.version_id))

    def list_model_versions(self, request: Any) -> list[types.Model]:
        req = wire(request, types.ListModelVersionsRequest)
        if req.name not in self.models:
            raise NotFound(req.name)
        return [types.Model(m) for m in reversed(self.models[req.name])]

    def get_model(self, request: Any) -> types.Model:
        return types.Model(self._find(wire(request, types.GetModelRequest).name))

    def update_model(self, request: Any) -> types.Model:
        req = wire(request, types.UpdateModelRequest)
        self.requests.append(req)
        assert "@" in req.model.name, "a version update names <model>@<version>"
        assert list(req.update_mask.paths) == ["labels"]
        found = self._find(req.model.name)
        found.labels = dict(req.model.labels)
        return types.Model(found)

    def merge_version_aliases(self, request: Any) -> types.Model:
        req = wire(request, types.MergeVersionAliasesRequest)
        self.requests.append(req)
        found = self._find(req.name)
        for alias in req.version_aliases:
            if not ALIAS.match(alias):
                raise InvalidArgument(f"bad alias {alias}")
            if alias.startswith("-"):
                found.version_aliases = [a for a in found.version_aliases if a != alias[1:]]
                continue
            others = [m for m in self.models[found.name] if m.version_id != found.version_id]
            if any(alias in m.version_aliases for m in others):
                raise FailedPrecondition(f"alias {alias} is used by another version")
            found.version_aliases = [*found.version_aliases, alias]
        return types.Model(found)

    def _find(self, name: str) -> types.Model:
        model, _, version = name.partition("@")
        for found in self.models.get(model, []):
            if found.version_id == version:
                return found
        raise NotFound(name)


class Blob:
    def __init__(self, root: Path, bucket: str, name: str) -> None:
        self.path, self.name = root / bucket / name, name

    def upload_from_filename(self, filename: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(Path(filename).read_bytes())

    def upload_from_string(self, data: str, content_type: str = "") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(data)

    def download_as_bytes(self) -> bytes:
        if not self.path.is_file():
            raise NotFound(self.name)
        return self.path.read_bytes()

    def download_to_filename(self, filename: str) -> None:
        Path(filename).write_bytes(self.download_as_bytes())

    def delete(self) -> None:
        self.path.unlink()


class StandInStorage:
    """`google.cloud.storage.Client`: bucket().blob(), list_blobs(bucket, prefix)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def bucket(self, name: str) -> Any:
        root = self.root

        class Bucket:
            def blob(self, key: str) -> Blob:
                return Blob(root, name, key)

        return Bucket()

    def list_blobs(self, bucket: str, prefix: str = "") -> list[Blob]:
        base = self.root / bucket
        found = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        names = [p.relative_to(base).as_posix() for p in found]
        return [Blob(self.root, bucket, n) for n in names if n.startswith(prefix)]


class FileModels(StandInModels):
    """The ModelService stand-in with its models in `state` (JSON), read before each call and
    written after: every job process of a run sees the versions the others registered."""

    def __init__(self, state: Path) -> None:
        super().__init__()
        self.state = state

    @contextmanager
    def _persisted(self) -> Iterator[None]:
        raw = json.loads(self.state.read_text()) if self.state.is_file() else {}
        self.models = {name: [types.Model.from_json(m) for m in versions]
                       for name, versions in raw.items()}
        yield
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.state.write_text(json.dumps({name: [types.Model.to_json(m) for m in versions]
                                          for name, versions in self.models.items()}))

    def upload_model(self, request: Any) -> Done:
        with self._persisted():
            return super().upload_model(request)

    def list_model_versions(self, request: Any) -> list[types.Model]:
        with self._persisted():
            return super().list_model_versions(request)

    def get_model(self, request: Any) -> types.Model:
        with self._persisted():
            return super().get_model(request)

    def update_model(self, request: Any) -> types.Model:
        with self._persisted():
            return super().update_model(request)

    def merge_version_aliases(self, request: Any) -> types.Model:
        with self._persisted():
            return super().merge_version_aliases(request)


def install(registry: ModuleType, state: str, gcs: str) -> None:
    """Make `registry` (`mlops_kit.adapters.gcp.registry`) open these stand-ins: models in
    the JSON file `state`, Cloud Storage under the folder `gcs` (a folder per bucket)."""

    def models(loaded: Any, credentials: Any = None) -> FileModels:
        return FileModels(Path(state))

    def storage(loaded: Any, credentials: Any = None) -> StandInStorage:
        return StandInStorage(Path(gcs))

    vars(registry).update(model_client=models, _storage=storage)
