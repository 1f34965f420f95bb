"""Local adapters of the runtime ports: a folder as artifact storage, a JSON file as catalog.

Every write is atomic: files are written to a temp sibling and moved into place with
`Path.replace` (os.replace), folders are staged next to their destination and renamed, so a
crash leaves either the old content or the new one, never half of it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlops_kit.errors import StateFileError
from mlops_kit.fileio import (
    file_lock,
    fsync_dir,
    link_or_copy,
    local_path,
    read_json_state,
    temp_sibling,
    walk_files,
    write_json_atomic,
)
from mlops_kit.runtime.ports import TableSpec


class LocalStorage:
    """Artifact storage in a local folder; URIs are absolute paths under `root`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def uri(self, *parts: str) -> str:
        """The absolute path of `parts` under the root, as a string."""
        path = self.root.joinpath(*parts).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"{'/'.join(parts)!r} leaves the storage root {self.root}")
        return str(path)

    def put_dir(self, local: Path, uri: str) -> None:
        """Replace the folder at `uri` with the files of `local` (staged, then renamed)."""
        src, dest = Path(local).resolve(), local_path(uri).resolve()
        if not src.is_dir():
            raise FileNotFoundError(f"put_dir: {src} is not a folder")
        if dest == src or src in dest.parents:
            raise ValueError(f"put_dir: destination {dest} lies inside the source {src}")
        files = walk_files(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        stage = temp_sibling(dest, "stage")
        try:
            stage.mkdir()
            for rel, path in files.items():
                link_or_copy(path, stage / rel)
            _swap_in(stage, dest)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def get_dir(self, uri: str, local: Path) -> Path:
        """Copy every file under `uri` into `local` (created; copies, never links)."""
        local = Path(local)
        local.mkdir(parents=True, exist_ok=True)
        for rel, path in walk_files(local_path(uri)).items():
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, local / rel)
        return local

    def listing(self, uri: str) -> dict[str, int]:
        """Relative path -> size in bytes of every file under `uri`."""
        return {rel: path.stat().st_size for rel, path in walk_files(local_path(uri)).items()}


def _swap_in(stage: Path, dest: Path) -> None:
    """Put the staged folder at `dest`, removing the old one; restore it if the rename fails."""
    old = temp_sibling(dest, "old")
    had_old = dest.exists()
    if had_old:
        dest.replace(old)
    try:
        stage.replace(dest)
    except BaseException:
        if had_old:
            old.replace(dest)
        raise
    fsync_dir(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


class JsonCatalog:
    """A table catalog kept in one JSON file (atomic writes, locked read-modify-write)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def register(self, table: TableSpec) -> None:
        """Create or update `table`; partitions are merged with the known ones, no duplicates."""
        wanted = [_partition_values(table, p) for p in table.partitions]
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            data = self._read()
            key = f"{table.database}.{table.name}"
            old = data["tables"].get(key, {})
            _check_same_keys(table, old.get("partition_keys"))
            known = old.get("partitions", [])
            merged = list(dict.fromkeys(_partition_values(table, p) for p in known))
            merged += [values for values in dict.fromkeys(wanted) if values not in merged]
            record = asdict(table)
            record["partitions"] = [dict(zip(table.partition_keys, v, strict=True))
                                    for v in merged]
            data["tables"][key] = record
            write_json_atomic(self.path, data)

    def tables(self, database: str) -> list[TableSpec]:
        """Every table of `database` (sorted by name), with its partitions."""
        records = [r for r in self._read()["tables"].values() if r["database"] == database]
        return [_table_from(r) for r in sorted(records, key=lambda r: r["name"])]

    def replace_all(self, tables: list[TableSpec]) -> None:
        """Write a catalog of exactly `tables` (a rebuild), atomically, under the lock."""
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            write_json_atomic(self.path, {"tables": {
                f"{t.database}.{t.name}": asdict(t) for t in tables}})

    def problem(self) -> str | None:
        """What is wrong with the file (None: nothing, or no file yet)."""
        try:
            self._read()
        except StateFileError as exc:
            return exc.problem
        return None

    def _read(self) -> dict[str, Any]:
        """The file's content; StateFileError if it is empty, garbled or of another shape."""
        if not self.path.is_file():
            return {"tables": {}}
        data = read_json_state(self.path, CATALOG_FIX)
        tables = data.get("tables", {}) if isinstance(data, dict) else None
        if not isinstance(tables, dict) or not all(
                isinstance(r, dict) and r.keys() >= TABLE_KEYS for r in tables.values()):
            shape = '{"tables": {"<db>.<table>": {' + ", ".join(sorted(TABLE_KEYS)) + ", ...}}}"
            raise StateFileError(self.path, f"is not a catalog (expected {shape})", CATALOG_FIX)
        return {**data, "tables": tables}


TABLE_KEYS = frozenset({"database", "name", "location", "columns"})
CATALOG_FIX = ("Rebuild it from the lake's partition folders with `mlops-kit lake repair` (or "
               "`mlops-kit run`, which repairs it)")


def _check_same_keys(table: TableSpec, known: dict[str, str] | None) -> None:
    """ValueError if an existing table is re-registered with other partition keys."""
    if known is not None and list(known) != list(table.partition_keys):
        raise ValueError(
            f"table {table.database}.{table.name}: partition keys {list(table.partition_keys)} "
            f"differ from the registered {list(known)}; drop the table to change its layout"
        )


def _partition_values(table: TableSpec, partition: dict[str, str]) -> tuple[str, ...]:
    """A partition's values in the table's partition-key order; ValueError if keys differ."""
    if set(partition) != set(table.partition_keys):
        raise ValueError(
            f"table {table.database}.{table.name}: partition {partition} must give exactly the "
            f"partition keys {list(table.partition_keys)}"
        )
    return tuple(str(partition[k]) for k in table.partition_keys)


def _table_from(record: dict[str, Any]) -> TableSpec:
    """A TableSpec from its JSON record."""
    return TableSpec(
        database=record["database"], name=record["name"], location=record["location"],
        columns=dict(record["columns"]), partition_keys=dict(record.get("partition_keys", {})),
        partitions=tuple(dict(p) for p in record.get("partitions", [])),
        description=record.get("description", ""),
    )
