"""A stand-in for the `MLClient` of an Azure ML registry (`client.models`), for the real
`AzureMLRegistry` adapter: every Model it receives is checked with azure-ai-ml's own schema and
REST model, stored as the service would (versions immutable, files under a storage folder) and
served back through the SDK's own deserializer (`Model._from_rest_object`).

With a `state` file the registry outlives the process (the pipeline harness's jobs each open
it anew, `install` puts it into a job's registry adapter); without one it lives in memory
(tests/test_registry_azure.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

EXAMPLE_REGISTRY = "churn-azure-dev-models"  # the example project's azure_dev registry


def version_folder(storage: Path, asset: str, version: str) -> Path:
    """The files of a registered version (the folder uploaded, as a custom_model input
    mounts them); FileNotFoundError if there is no such version."""
    folders = sorted(p for p in (storage / asset / version).glob("*") if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"no registered files of {asset} version {version} in {storage}")
    return folders[0]


class StandInModels:
    """`MLClient.models` of a registry: create_or_update / list / get / download."""

    def __init__(self, storage: Path, registry: str = EXAMPLE_REGISTRY,
                 state: Path | None = None) -> None:
        self.storage = storage
        self.registry = registry
        self.state = state
        self.wire: dict[tuple[str, str], dict[str, Any]] = {}
        if state is not None and state.is_file():
            for key, body in json.loads(state.read_text()).items():
                name, _, version = key.partition("\n")
                self.wire[(name, version)] = body
        self.received: list[Any] = []

    def create_or_update(self, model: Any) -> Any:
        from azure.ai.ml.entities import Model
        from azure.core.exceptions import ResourceExistsError

        self.received.append(model)
        again = Model._load(data=model._to_dict())  # the SDK's schema: a wrong field fails here
        assert (again.name, again.version, again.type) == (model.name, model.version, model.type)
        body = model._to_rest_object().as_dict()
        key = (model.name, str(model.version))
        local = Path(model.path) if Path(str(model.path)).is_dir() else None
        if local is not None:
            if key in self.wire:  # registry versions are immutable: no second upload
                raise ResourceExistsError(f"{key} already exists")
            shutil.copytree(local, self.storage / model.name / key[1] / local.name)
            uri = f"https://regstore.blob.core.windows.net/{model.name}/{key[1]}/{local.name}"
            created = "2026-11-0%sT10:00:00Z" % (len(self.wire) % 9 + 1)
        else:
            assert key in self.wire, "a remote path must name an existing version"
            uri = self.wire[key]["properties"]["modelUri"]
            created = self.wire[key]["systemData"]["createdAt"]
        body["properties"].update(modelUri=uri, flavors={})
        self.wire[key] = {**body, "name": key[1], "systemData": {"createdAt": created},
                          "id": f"azureml://registries/{self.registry}/models/{key[0]}"
                                f"/versions/{key[1]}"}
        self._save()
        return self._entity(key)

    def list(self, name: str) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        keys = [k for k in self.wire if k[0] == name]
        if not keys:
            raise ResourceNotFoundError(f"model container {name} not found")
        return [self._entity(k) for k in reversed(keys)]  # the service's order is not ours

    def get(self, name: str, version: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        if (name, version) not in self.wire:
            raise ResourceNotFoundError(f"{name}:{version} not found")
        return self._entity((name, version))

    def download(self, name: str, version: str, download_path: str) -> None:
        """As the SDK lays it out: `<download_path>/<name>/<uploaded folder name>/...`."""
        folder = version_folder(self.storage, name, version)
        shutil.copytree(folder, Path(download_path) / name / folder.name)

    def _entity(self, key: tuple[str, str]) -> Any:
        from azure.ai.ml._restclient.arm_ml_service.models import ModelVersion
        from azure.ai.ml.entities import Model

        return Model._from_rest_object(ModelVersion(json.loads(json.dumps(self.wire[key]))))

    def _save(self) -> None:
        if self.state is not None:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            self.state.write_text(json.dumps({"\n".join(k): v for k, v in self.wire.items()}))


class StandInClient:
    """An `MLClient` on a registry: only `models`, what the registry adapter uses."""

    def __init__(self, storage: Path, registry: str = EXAMPLE_REGISTRY,
                 state: Path | None = None) -> None:
        self.models = StandInModels(storage, registry, state)


def open_registry(registries: Path, name: str) -> StandInClient:
    """The client of registry `name` kept under `registries/<name>/` (files and state)."""
    folder = registries / name
    return StandInClient(folder / "storage", name, folder / "state.json")


def install(registry: ModuleType, registries: str) -> None:
    """Make `registry` (`mlops_kit.adapters.azure.registry`) open these stand-ins instead of
    an `MLClient` (`_client`): each registry under the folder `registries`."""

    def client(credential: Any, subscription: str, name: str) -> StandInClient:
        return open_registry(Path(registries), name)

    vars(registry)["_client"] = client
