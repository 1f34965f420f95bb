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

Status = Literal["PendingManualApproval", "Approved", "Rejected"]
STATUSES: tuple[Status, ...] = ("PendingManualApproval", "Approved", "Rejected")


class RegistryError(Exception):
    """A registry operation that cannot be done; the message says why."""


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "status": self.status,
            "artifact_uri": self.artifact_uri, "metrics": self.metrics, "params": self.params,
            "lineage": self.lineage, "created": self.created, "description": self.description,
        }


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
    """Download the production version into `dest` with `registry_version.json`; None if none."""
    import json

    current = production(registry, model)
    if current is None:
        return None
    registry.download(model, current.version, dest)
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
