"""A file-backed model registry with SageMaker Model Registry semantics.

Layout under `root`::

    <model>/registry.json        the index (source of truth), replaced atomically
    <model>/.lock                fcntl lock serialising writers of that model
    <model>/<version>/           the model files plus version.json

A version is committed when the index names it. Its folder is staged as `.tmp-*` and renamed
before the index is written; anything a crashed writer left behind (a `.tmp-*` folder, or a
version folder the index does not name) is removed by the next writer, under the lock.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from mlops_kit.fileio import file_lock, fsync_dir, walk_files, write_json_atomic
from mlops_kit.registry.base import STATUSES, ModelVersion, RegistryError, Status

INDEX = "registry.json"
VERSION_FILE = "version.json"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_status(status: str) -> Status:
    """`status` if it is a registry status; RegistryError listing the allowed ones otherwise."""
    if status not in STATUSES:
        raise RegistryError(f"invalid status {status!r}; allowed: {', '.join(STATUSES)}")
    return cast(Status, status)


def utc_now() -> str:
    """The current time as an ISO 8601 UTC timestamp."""
    return datetime.now(UTC).isoformat()


class LocalRegistry:
    """Model versions in folders under `root`; safe for concurrent writers on one host."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def register(self, model: str, model_dir: Path, *, status: Status,
                 metrics: dict[str, float], params: dict[str, Any],
                 lineage: dict[str, Any], description: str = "") -> ModelVersion:
        """Copy `model_dir`'s files into a new version of `model` and return it."""
        check_status(status)
        files = _model_files(Path(model_dir))
        folder = self._folder(model)
        with file_lock(folder / ".lock"):
            index = self._read_index(model)
            _sweep(folder, {v["version"] for v in index})
            number = max((v["version"] for v in index), default=0) + 1
            version = ModelVersion(
                model=model, version=number, status=status,
                artifact_uri=(folder / str(number)).as_uri(),
                metrics={k: float(v) for k, v in metrics.items()}, params=dict(params),
                lineage=dict(lineage), created=utc_now(), description=description,
            )
            record = json.loads(json.dumps(version.to_dict(), default=str))
            _stage_version(folder, number, files, record)
            try:
                write_json_atomic(folder / INDEX, {"model": model, "versions": [*index, record]})
            except BaseException:
                shutil.rmtree(folder / str(number), ignore_errors=True)
                raise
        return _from_record(record)

    def versions(self, model: str) -> list[ModelVersion]:
        """All versions of `model`, oldest first (empty if the model is unknown)."""
        return [_from_record(r) for r in self._read_index(model)]

    def get(self, model: str, version: int) -> ModelVersion:
        """One version; RegistryError if the model or the version does not exist."""
        return _from_record(self._record(self._read_index(model), model, version))

    def set_status(self, model: str, version: int, status: Status) -> ModelVersion:
        """Set a version's approval status (index and version.json) and return it."""
        check_status(status)
        folder = self._folder(model)
        with file_lock(folder / ".lock"):
            index = self._read_index(model)
            record = self._record(index, model, version)
            record["status"] = status
            write_json_atomic(folder / str(version) / VERSION_FILE, record)
            write_json_atomic(folder / INDEX, {"model": model, "versions": index})
        return _from_record(record)

    def download(self, model: str, version: int, dest: Path) -> Path:
        """Copy the version's model files into `dest` (created) and return it."""
        self.get(model, version)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for rel, path in walk_files(self._folder(model) / str(version)).items():
            if rel == VERSION_FILE:
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
        return dest

    def _folder(self, model: str) -> Path:
        if not _MODEL_NAME.match(model):
            raise RegistryError(
                f"invalid model name {model!r}: use letters, digits, '.', '_' and '-' "
                "(at most 128 characters, starting with a letter or digit)"
            )
        return self.root / model

    def _read_index(self, model: str) -> list[dict[str, Any]]:
        path = self._folder(model) / INDEX
        if not path.is_file():
            return []
        return list(json.loads(path.read_text(encoding="utf-8"))["versions"])

    def _record(self, index: list[dict[str, Any]], model: str, version: int) -> dict[str, Any]:
        if not index:
            known = sorted(p.parent.name for p in self.root.glob(f"*/{INDEX}"))
            raise RegistryError(
                f"model {model!r} is not registered in {self.root} "
                f"(registered models: {', '.join(known) or 'none'})"
            )
        for record in index:
            if record["version"] == version:
                return record
        numbers = ", ".join(str(r["version"]) for r in index)
        raise RegistryError(f"model {model!r} has no version {version} (versions: {numbers})")


def _model_files(model_dir: Path) -> dict[str, Path]:
    """The files to register; RegistryError if there are none or one clashes with version.json."""
    if not model_dir.is_dir():
        raise RegistryError(f"model folder {model_dir} does not exist or is not a folder")
    files = walk_files(model_dir)
    if not files:
        raise RegistryError(f"model folder {model_dir} holds no files")
    if VERSION_FILE in files:
        raise RegistryError(f"{model_dir}/{VERSION_FILE}: that name is reserved by the registry")
    return files


def _stage_version(folder: Path, number: int, files: dict[str, Path],
                   record: dict[str, Any]) -> None:
    """Write the version folder under a temp name, then rename it to `<folder>/<number>`."""
    stage = folder / f".tmp-{uuid.uuid4().hex}"
    try:
        stage.mkdir(parents=True)
        for rel, path in files.items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, stage / rel)
        write_json_atomic(stage / VERSION_FILE, record)
        stage.rename(folder / str(number))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    fsync_dir(folder)


def _sweep(folder: Path, committed: set[int]) -> None:
    """Remove what crashed writers left: temp folders and version folders the index lacks."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        orphan = child.name.isdigit() and int(child.name) not in committed
        if child.is_dir() and (child.name.startswith(".tmp-") or orphan):
            shutil.rmtree(child, ignore_errors=True)


def _from_record(record: dict[str, Any]) -> ModelVersion:
    """A ModelVersion from its JSON record."""
    return ModelVersion(
        model=record["model"], version=int(record["version"]), status=record["status"],
        artifact_uri=record["artifact_uri"], metrics=dict(record.get("metrics", {})),
        params=dict(record.get("params", {})), lineage=dict(record.get("lineage", {})),
        created=record.get("created", ""), description=record.get("description", ""),
    )
