"""The lake: zones of Parquet tables, registered in a catalog, queried with DuckDB.

Publishing adds or replaces partitions (a re-run of the same ingestion date replaces that
date only), except in the raw zone, which is append-only: a partition gains the files it does
not hold yet (ingest names each batch's file by its content, so a same-day re-ingest of other
data adds a batch and one of the same data changes nothing). Every published table is
(re)registered with its columns and partitions; the catalog can be rebuilt from the folders.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import FileSource, ProjectConfig
from mlops_kit.runtime.ports import Storage, TableSpec

if TYPE_CHECKING:
    from mlops_kit.runtime.targets import Target

ZONES = ("raw", "curated", "quarantine", "features")
APPEND_ONLY = frozenset({"raw"})


def table_name(loaded: LoadedConfig, zone: str) -> str:
    """`features` holds the feature group; other zones hold `<zone>_<table>`."""
    cfg = loaded.config
    return cfg.features.group if zone == "features" else f"{zone}_{cfg.table.table}"


def glue_type(dtype: pa.DataType) -> str:
    """The Hive/Glue type of an Arrow type."""
    if pa.types.is_dictionary(dtype):
        return glue_type(dtype.value_type)
    checks = [
        (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "tinyint"),
        (pa.types.is_int16, "smallint"), (pa.types.is_int32, "int"),
        (pa.types.is_integer, "bigint"), (pa.types.is_float32, "float"),
        (pa.types.is_floating, "double"), (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_date, "date"), (pa.types.is_decimal, "decimal(38,9)"),
    ]
    return next((name for check, name in checks if check(dtype)), "string")


def publish(target: Target, loaded: LoadedConfig, zone: str, local: Path) -> TableSpec:
    """Copy a step output into the lake zone and register the table and its partitions."""
    if zone not in ZONES:
        raise ValueError(f"unknown lake zone {zone!r}; zones are {ZONES}")
    name = table_name(loaded, zone)
    location = target.lake.uri(zone, name)
    parts = partition_dirs(local)
    if parts and zone in APPEND_ONLY:
        for part in parts:
            _append(target, loaded, part, f"{location}/{part.name}")
    elif parts:
        for part in parts:
            target.lake.put_dir(part, f"{location}/{part.name}")
    else:
        target.lake.put_dir(local, location)
    spec = table_spec(target.database, name, location, local, f"{zone} zone of "
                      f"{loaded.config.project}")
    target.catalog.register(spec)
    return spec


def partition_dirs(folder: Path) -> list[Path]:
    """The Hive partition folders (`key=value`) directly under `folder`."""
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and "=" in p.name and not p.name.startswith("."))


def table_spec(database: str, name: str, location: str, folder: Path,
               description: str) -> TableSpec:
    """A table's catalog entry from a folder of its data (columns from a Parquet schema)."""
    parts = partition_dirs(folder)
    files = sorted(f for f in folder.rglob("*.parquet")
                   if not any(n.startswith(".") for n in f.relative_to(folder).parts))
    schema = pq.read_schema(files[0]) if files else pa.schema([])
    keys = {p.name.split("=", 1)[0]: "string" for p in parts}
    columns = {f.name: glue_type(f.type) for f in schema if f.name not in keys}
    return TableSpec(
        database=database, name=name, location=location, columns=columns,
        partition_keys=keys,
        partitions=tuple({k: v for k, v in [p.name.split("=", 1)]} for p in parts),
        description=description,
    )


def _append(target: Target, loaded: LoadedConfig, part: Path, dest: str) -> None:
    from mlops_kit.fileio import work_dir

    with work_dir(loaded.state_dir, "append") as scratch:
        append_dir(target.lake, part, dest, scratch)


def append_dir(storage: Storage, part: Path, dest: str, scratch: Path) -> bool:
    """Add the files of `part` the folder at `dest` lacks, never dropping or overwriting one
    (`scratch`: an empty work folder); False if it held them all already."""
    from mlops_kit.fileio import link_or_copy, walk_files

    held = storage.listing(dest)
    new = {rel: path for rel, path in walk_files(part).items() if rel not in held}
    if not new:
        return False
    merged = storage.get_dir(dest, scratch / part.name) if held else scratch / part.name
    for rel, path in new.items():
        link_or_copy(path, merged / rel)
    storage.put_dir(merged, dest)
    return True


def rebuild_catalog(loaded: LoadedConfig) -> list[TableSpec]:
    """Rewrite the local catalog from the lake's table folders (`lake/<zone>/<table>`); a
    catalog that cannot be read is kept beside it as `catalog.json.corrupt-<time>`."""
    import datetime as dt

    from mlops_kit.runtime.files import JsonCatalog
    from mlops_kit.runtime.targets import database_name

    catalog = JsonCatalog(loaded.state_dir / "catalog.json")
    if catalog.problem() is not None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        catalog.path.replace(catalog.path.with_name(f"{catalog.path.name}.corrupt-{stamp}"))
    db, lake = database_name(loaded.config.project), loaded.state_dir / "lake"
    specs = [table_spec(db, folder.name, str(folder.resolve()), folder,
                        f"{zone} zone of {loaded.config.project}")
             for zone in ZONES if (lake / zone).is_dir()
             for folder in sorted((lake / zone).iterdir())
             if folder.is_dir() and not folder.name.startswith(".")]
    catalog.replace_all(specs)
    return specs


GLUE_TYPES = {"int": "bigint", "float": "double", "string": "string", "category": "string",
              "bool": "boolean", "timestamp": "timestamp"}


@dataclass(frozen=True)
class LakeTable:
    """A table the pipeline publishes, known from the config before any data exists."""

    zone: str
    name: str
    columns: dict[str, str]  # name -> Glue type
    partition_keys: dict[str, str]


def lake_tables(config: ProjectConfig) -> list[LakeTable]:
    """The tables of each zone as the steps write them (what the cloud catalogs declare)."""
    from mlops_kit.steps.features import ENTITY, TIME, FeatureSet

    typed = {c.name: GLUE_TYPES[c.type] for c in config.table.columns}
    raw = dict.fromkeys(typed, "string") if isinstance(config.data.source, FileSource) and \
        config.data.source.kind == "csv" else typed
    by_date = {"ingest_date": "string"}
    features = FeatureSet(tuple(config.features.declared), config.table).columns
    table = config.table.table
    return [
        LakeTable("raw", f"raw_{table}", {"_source_row": "bigint", **raw}, by_date),
        LakeTable("curated", f"curated_{table}", {"_source_row": "bigint", **typed}, by_date),
        LakeTable("quarantine", f"quarantine_{table}",
                  {"_source_row": "bigint", **raw, "_reason": "string"}, by_date),
        LakeTable("features", config.features.group,
                  {ENTITY: "string", TIME: "timestamp", **dict.fromkeys(features, "double")}, {}),
    ]


def source_digest(loaded: LoadedConfig) -> str | None:
    """Content hash of a file source (None for the generator, whose config is its content)."""
    source = loaded.config.data.source
    if not isinstance(source, FileSource):
        return None
    path = loaded.resolve(source.path)
    files = [path] if path.is_file() else sorted(path.rglob(f"*.{source.kind}"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest() if files else None


def query(loaded: LoadedConfig, sql: str, dialect: str = "athena") -> Any:
    """Run SQL (Athena/Trino or DuckDB dialect) over the local lake's catalogued tables."""
    import duckdb
    import sqlglot

    from mlops_kit.runtime.files import JsonCatalog
    from mlops_kit.runtime.targets import database_name

    db = database_name(loaded.config.project)
    tables = JsonCatalog(loaded.state_dir / "catalog.json").tables(db)
    if not tables:
        raise LookupError(f"no tables in the local catalog for {db}: run `mlops-kit run` first")
    try:
        text = sql if dialect == "duckdb" else sqlglot.transpile(sql, read=dialect,
                                                                 write="duckdb")[0]
    except sqlglot.errors.ParseError as exc:
        raise ValueError(f"cannot parse the SQL as {dialect}: {exc}") from exc
    con = duckdb.connect()
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{db}"')
    for t in tables:
        hive = "true" if t.partition_keys else "false"
        glob = f"{t.location}/**/*.parquet"
        for schema in (db, "main"):
            con.execute(f'CREATE VIEW "{schema}"."{t.name}" AS SELECT * FROM read_parquet('
                        f"'{glob}', hive_partitioning={hive}, union_by_name=true)")
    return con.execute(text).df()
