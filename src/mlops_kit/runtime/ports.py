"""The ports the runner drives: where artifacts live, where lake tables are catalogued and
where the latest features go.

Local adapters (files, a JSON catalog) are the default; the AWS adapters (S3, Glue) implement
the same protocols and are exercised against moto by `mlops-kit run --target moto`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TableSpec:
    """A lake table: name, columns (name -> Hive/Glue type), location and partitions."""

    database: str
    name: str
    location: str
    columns: dict[str, str]
    partition_keys: dict[str, str] = field(default_factory=dict)
    partitions: tuple[dict[str, str], ...] = ()
    description: str = ""


class Storage(Protocol):
    """Artifact storage addressed by URIs (`file://...` or a plain path locally, `s3://...`)."""

    def uri(self, *parts: str) -> str:
        """The URI of a location under the storage root."""
        ...

    def put_dir(self, local: Path, uri: str) -> None:
        """Copy every file under `local` to `uri`, replacing what was there."""
        ...

    def get_dir(self, uri: str, local: Path) -> Path:
        """Copy every file under `uri` into `local` (created) and return it."""
        ...

    def listing(self, uri: str) -> dict[str, int]:
        """Relative path -> size in bytes of every file under `uri` (empty if none)."""
        ...


class Catalog(Protocol):
    """A table catalog (a JSON file locally, the Glue Data Catalog on AWS)."""

    def register(self, table: TableSpec) -> None:
        """Create or update the table and add its partitions (idempotent)."""
        ...

    def tables(self, database: str) -> list[TableSpec]:
        """Every table of `database`, with its partitions."""
        ...


class OnlineStore(Protocol):
    """The latest feature values per entity (SQLite locally, Feature Store on AWS)."""

    def put(self, group: str, latest: pd.DataFrame) -> int:
        """Upsert one record per row of `latest` (a newer event time wins); the number of
        records the store accepted (one it keeps an older event time over may count)."""
        ...


class OnlineStoreError(RuntimeError):
    """Records an online store did not take, after retries."""
