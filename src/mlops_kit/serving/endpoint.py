"""A local endpoint's state: production variants with traffic weights, an optional shadow
variant, and the history of deployments, in one JSON file every process reads.

This is SageMaker's endpoint model (endpoint config = variants + weights; a blue/green update
adds a variant and shifts weight) kept on disk, so `serve`, `deploy` and `rollback` running
as separate processes all see the same state. Writes are atomic and serialised by a lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


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
    serial: int = 0

    @property
    def live(self) -> Variant | None:
        """The variant with the most traffic (the production version)."""
        return max(self.variants, key=lambda v: v.weight) if self.variants else None

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EndpointState:
        shadow = doc.get("shadow")
        return cls(name=doc["name"], variants=[Variant(**v) for v in doc.get("variants", [])],
                   shadow=Variant(**shadow) if shadow else None,
                   shadow_started=float(doc.get("shadow_started", 0.0)),
                   deployments=list(doc.get("deployments", [])), serial=int(doc.get("serial", 0)))


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

    def read(self) -> EndpointState:
        if not self.path.is_file():
            return EndpointState(self.name)
        return EndpointState.from_dict(json.loads(self.path.read_text()))

    def version(self) -> tuple[int, int, int]:
        """Changes with every write (each write replaces the file: a new inode), even within
        one tick of the file system's clock."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def write(self, state: EndpointState) -> None:
        state.serial += 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(state.to_dict(), fh, indent=2)
        Path(tmp).replace(self.path)

    @contextlib.contextmanager
    def update(self) -> Iterator[EndpointState]:
        """Read, let the caller change, write: one writer at a time."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / f".{self.path.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            yield state
            self.write(state)
