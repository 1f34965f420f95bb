"""A local endpoint's state: production variants with traffic weights, an optional shadow
variant, and the history of deployments, in one JSON file every process reads.

This is SageMaker's endpoint model (endpoint config = variants + weights; a blue/green update
adds a variant and shifts weight) kept on disk, so `serve`, `deploy` and `rollback` running
as separate processes all see the same state. Writes are atomic (temp file, fsync, rename)
and serialised by a lock. Each change to what is served bumps `generation`; each server
worker acknowledges the generation it serves in its own file under `workers/` (see `acks`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_kit.errors import StateFileError
from mlops_kit.fileio import read_json_state, write_json_atomic

RESET_FIX = ("Run `mlops-kit endpoint reset` to rebuild it from the registry's production "
             "version (the bad file is kept beside it as a backup)")


@dataclass
class Variant:
    """One model version behind the endpoint and its share of traffic (0-1)."""

    name: str
    version: int
    model_dir: str
    weight: float = 1.0


@dataclass
class EndpointState:
    name: str
    variants: list[Variant] = field(default_factory=list)
    shadow: Variant | None = None  # weight = share of requests mirrored to it
    shadow_started: float = 0.0  # epoch seconds: the shadow report compares from here
    deployments: list[dict[str, Any]] = field(default_factory=list)
    serial: int = 0  # every write
    generation: int = 0  # every change of what is served (variants, weights, shadow)

    @property
    def live(self) -> Variant | None:
        """The variant with the most traffic (the production version)."""
        return max(self.variants, key=lambda v: v.weight) if self.variants else None

    @property
    def current(self) -> dict[str, Any] | None:
        """The last deployment's record, if any."""
        return self.deployments[-1] if self.deployments else None

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def served(self) -> str:
        """What the workers serve, as one comparable string."""
        return json.dumps([[asdict(v) for v in self.variants],
                           asdict(self.shadow) if self.shadow else None], sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Any) -> EndpointState:
        """The state in `doc`; ValueError naming the field when its shape is wrong."""
        if not isinstance(doc, dict):
            raise ValueError(f"the top level is a JSON {type(doc).__name__}, not an object")
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("field 'name' is missing or not text")
        variants = doc.get("variants", [])
        if not isinstance(variants, list):
            raise ValueError("field 'variants' is not a list")
        deployments = doc.get("deployments", [])
        if not isinstance(deployments, list) or not all(
                isinstance(d, dict) and {"id", "version", "status", "strategy"} <= d.keys()
                for d in deployments):
            raise ValueError("field 'deployments' is not a list of deployment records "
                             "(each with id, version, status and strategy)")
        shadow = doc.get("shadow")
        return cls(name=name,
                   variants=[_variant(v, f"variants[{i}]") for i, v in enumerate(variants)],
                   shadow=_variant(shadow, "shadow") if shadow is not None else None,
                   shadow_started=_number(doc, "shadow_started", float),
                   deployments=list(deployments), serial=_number(doc, "serial", int),
                   generation=_number(doc, "generation", int))


def _variant(doc: Any, where: str) -> Variant:
    if not isinstance(doc, dict):
        raise ValueError(f"field '{where}' is not an object")
    try:
        variant = Variant(**doc)
    except TypeError as exc:
        raise ValueError(f"field '{where}' needs name, version, model_dir and weight "
                         f"({exc})") from None
    if (not isinstance(variant.name, str) or isinstance(variant.version, bool)
            or not isinstance(variant.version, int) or not isinstance(variant.model_dir, str)
            or isinstance(variant.weight, bool) or not isinstance(variant.weight, int | float)
            or not 0 <= variant.weight <= 1):
        raise ValueError(f"field '{where}' has a wrong type or a weight outside 0-1")
    return variant


def _number(doc: dict[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value = doc.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"field '{key}' is not a number")
    return kind(value)


def endpoint_name(project: str, model: str) -> str:
    """`<project>-<model>` (at most 63 characters): the local and the SageMaker endpoint."""
    return f"{project}-{model}"[:63]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EndpointStore:
    """The state file of one endpoint, with atomic writes and an exclusive-update lock."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name

    @property
    def folder(self) -> Path:
        return self.path.parent

    def read(self) -> EndpointState:
        """The state (empty if there is no file); StateFileError if the file is unusable."""
        if not self.path.exists():
            return EndpointState(self.name)
        doc = read_json_state(self.path, RESET_FIX)
        try:
            return EndpointState.from_dict(doc)
        except ValueError as exc:
            raise StateFileError(self.path, f"is not an endpoint state: {exc}",
                                 RESET_FIX) from None

    def version(self) -> tuple[int, int, int]:
        """Changes with every write (each write replaces the file: a new inode), even within
        one tick of the file system's clock."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def write(self, state: EndpointState) -> None:
        """Replace the file atomically: temp file, fsync, rename, fsync of the folder."""
        state.serial += 1
        write_json_atomic(self.path, state.to_dict())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The writers' lock (`.state.json.lock`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f".{self.path.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextlib.contextmanager
    def update(self) -> Iterator[EndpointState]:
        """Read, let the caller change, write (only if changed): one writer at a time. A
        change of what is served bumps the generation."""
        with self.lock():
            state = self.read()
            before, served = json.dumps(state.to_dict(), sort_keys=True), state.served()
            yield state
            if state.served() != served:
                state.generation += 1
            if json.dumps(state.to_dict(), sort_keys=True) != before:
                self.write(state)
