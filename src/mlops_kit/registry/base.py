"""The model registry interface; local, SageMaker, Azure ML and Vertex AI back-ends implement it.

Semantics follow SageMaker Model Registry: a model package group per model name, versions
numbered from 1, approval status per version, and "production" = the newest Approved version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from mlops_kit.errors import MlopsKitError
from mlops_kit.fileio import digest_dir

Status = Literal["PendingManualApproval", "Approved", "Rejected"]
STATUSES: tuple[Status, ...] = ("PendingManualApproval", "Approved", "Rejected")

# A model folder's timings and run ids (fit seconds, MLflow run): kept with the model, never
# digested, so the same data, config and seed give the same `model_digest`.
RUN_FILE = "_run.json"
# Files a model digest leaves out: the run file and what the registry and its caches add.
UNDIGESTED = frozenset({RUN_FILE, "version.json", "registry_version.json", ".complete"})


class RegistryError(MlopsKitError):
    """A registry operation that cannot be done; the message says why."""

    kind = "registry error"


class CorruptVersionError(RegistryError):
    """A version whose stored files no longer match its digest: it cannot be loaded."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: where its artifacts are and everything known about it."""

    model: str
    version: int
    status: Status
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    description: str = ""
    digest: str = ""  # model_digest of the stored files ("" where a back-end keeps none)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # rel -> sha256, bytes

    @property
    def expected_digest(self) -> str:
        """The digest its files must have: its own, else the lineage's (older versions)."""
        return self.digest or str(self.lineage.get("model_digest") or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "status": self.status,
            "artifact_uri": self.artifact_uri, "metrics": self.metrics, "params": self.params,
            "lineage": self.lineage, "created": self.created, "description": self.description,
            "digest": self.digest, "files": self.files,
        }


def model_digest(folder: Path) -> dict[str, Any]:
    """A model folder's content hash (`digest`) and per-file sha256 and bytes (`files`),
    without the files in UNDIGESTED: one rule for register, the registry and every load."""
    return digest_dir(folder, exclude=UNDIGESTED)


@dataclass(frozen=True)
class Mismatch:
    """How a copy of a version differs from its digest: which file (None: the whole folder),
    the short reason ("digest mismatch", "folder missing") and the detail."""

    file: str | None
    reason: str
    detail: str = ""

    @property
    def what(self) -> str:
        return f"{self.detail} ({self.reason})" if self.detail else self.reason

    def where(self, folder: Path | str) -> str:
        """The file (or folder) to name in a message."""
        return f"{str(folder).rstrip('/')}/{self.file}" if self.file else str(folder)


def digest_mismatch(folder: Path, version: ModelVersion) -> Mismatch | None:
    """How `folder` differs from `version`'s digest; None if it matches or none is known."""
    expected = version.expected_digest
    if not expected:
        return None
    if not folder.is_dir():
        return Mismatch(None, "folder missing")
    got = model_digest(folder)
    if got["digest"] == expected:
        return None
    have: dict[str, dict[str, Any]] = got["files"]
    for rel, want in version.files.items():
        if rel not in have:
            return Mismatch(rel, "digest mismatch", "missing")
        if have[rel]["sha256"] != want.get("sha256"):
            return Mismatch(rel, "digest mismatch",
                            f"{have[rel]['bytes']} bytes, expected {want.get('bytes')}")
    extra = sorted(set(have) - set(version.files)) if version.files else []
    if extra:
        return Mismatch(extra[0], "digest mismatch", "not part of the version")
    return Mismatch(None, "digest mismatch", f"the files do not match model_digest "
                                             f"{expected[:12]} (they give {got['digest'][:12]})")


def corrupt_version(version: ModelVersion, mismatch: Mismatch) -> CorruptVersionError:
    """The error for a version whose registry copy is bad, naming the file and the fixes."""
    where = mismatch.where(version.artifact_uri.removeprefix("file://"))
    return CorruptVersionError(
        f"{where}: {mismatch.what}: {version.model} version {version.version} is corrupt in "
        f"the registry. Restore that file from a backup, or reject the version "
        f"(mlops-kit registry reject {version.version}) and deploy another")


def download_verified(registry: Registry, version: ModelVersion, dest: Path) -> Path:
    """Download `version` into `dest` and check its digest; CorruptVersionError if the
    registry's copy does not match (the bad download is removed)."""
    import shutil

    registry.download(version.model, version.version, dest)
    mismatch = digest_mismatch(dest, version)
    if mismatch is not None:
        shutil.rmtree(dest, ignore_errors=True)
        raise corrupt_version(version, mismatch)
    return dest


class Registry(Protocol):
    """What the steps and the CLI need of a registry, whatever stores it."""

    def register(self, model: str, model_dir: Path, *, status: Status,
                 metrics: dict[str, float], params: dict[str, Any],
                 lineage: dict[str, Any], description: str = "") -> ModelVersion:
        """Store `model_dir`'s files as a new version of `model` and return it."""
        ...

    def versions(self, model: str) -> list[ModelVersion]:
        """All versions of `model`, oldest first (empty if the model is unknown)."""
        ...

    def get(self, model: str, version: int) -> ModelVersion:
        """One version; RegistryError if it does not exist."""
        ...

    def set_status(self, model: str, version: int, status: Status) -> ModelVersion:
        """Approve or reject a version."""
        ...

    def download(self, model: str, version: int, dest: Path) -> Path:
        """Put the version's model files into `dest` (created) and return it."""
        ...


def production(registry: Registry, model: str) -> ModelVersion | None:
    """The version in production: the newest Approved one, or None."""
    approved = [v for v in registry.versions(model) if v.status == "Approved"]
    return approved[-1] if approved else None


def fetch_production(registry: Registry, model: str, dest: Path) -> ModelVersion | None:
    """Download the production version into `dest` with `registry_version.json`, its digest
    checked; None if there is none."""
    import json

    current = production(registry, model)
    if current is None:
        return None
    download_verified(registry, current, dest)
    (dest / "registry_version.json").write_text(json.dumps(current.to_dict(), default=str))
    return current


@contextmanager
def errors_as_registry_error(action: str, *kinds: type[Exception]) -> Iterator[None]:
    """Turn a cloud SDK's errors (`kinds`) into RegistryError naming the action."""
    try:
        yield
    except kinds as exc:
        raise RegistryError(f"{action}: {exc}") from exc


def backend_options(options: dict[str, Any], allowed: frozenset[str],
                    kind: str) -> dict[str, Any]:
    """A cloud registry's `from_config` options: TypeError on unknown ones; the local
    registry's `root` is dropped (open_registry passes options through to any back-end)."""
    options = {k: v for k, v in options.items() if k != "root"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"unknown {kind} options: {unknown}")
    return options


def model_files(model_dir: Path) -> dict[str, Path]:
    """The files of `model_dir` to register; RegistryError if it is missing or empty."""
    from mlops_kit.fileio import walk_files

    if not model_dir.is_dir():
        raise RegistryError(f"model folder {model_dir} does not exist or is not a folder")
    files = walk_files(model_dir)
    if not files:
        raise RegistryError(f"model folder {model_dir} holds no files")
    return files


def flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """(dotted key, text) pairs of a nested value; lists become space-separated text."""
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in flatten(f"{prefix}.{key}", item)]
    if isinstance(value, list | tuple):
        return [(prefix, " ".join(str(v) for v in value))]
    return [(prefix, str(value))]
