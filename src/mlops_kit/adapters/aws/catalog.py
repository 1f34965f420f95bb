"""Lake tables in the Glue Data Catalog (the `Catalog` port): Parquet external tables."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops_kit.runtime.ports import TableSpec

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
_PARTITION_BATCH = 100  # the most partitions one BatchCreatePartition call takes


def _code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


class GlueCatalog:
    """Create, update and read Parquet tables and their partitions through a boto3 Glue client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def register(self, table: TableSpec) -> None:
        """Create or update the table and add the partitions Glue does not know yet."""
        wanted = list(dict.fromkeys(_values(table, p) for p in table.partitions))
        self._ensure_database(table.database)
        table_input = _table_input(table)
        existing = self._get_table(table.database, table.name)
        if existing is None:
            self._create_table(table.database, table_input)
        else:
            _check_same_keys(table, existing)
            if _view(existing) != _view(table_input):
                self.client.update_table(DatabaseName=table.database, TableInput=table_input)
        known = {tuple(p["Values"]) for p in self._partitions(table.database, table.name)}
        missing = [v for v in wanted if v not in known]
        for i in range(0, len(missing), _PARTITION_BATCH):
            self._add_partitions(table, missing[i:i + _PARTITION_BATCH])

    def tables(self, database: str) -> list[TableSpec]:
        """Every table of `database` (sorted by name) with its partitions; empty if none."""
        try:
            pages = list(self.client.get_paginator("get_tables").paginate(DatabaseName=database))
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                return []
            raise
        found = [t for page in pages for t in page.get("TableList", [])]
        return [self._spec(database, t) for t in sorted(found, key=lambda t: t["Name"])]

    def _ensure_database(self, database: str) -> None:
        try:
            self.client.create_database(DatabaseInput={"Name": database})
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise

    def _get_table(self, database: str, name: str) -> dict[str, Any] | None:
        try:
            table: dict[str, Any] = self.client.get_table(DatabaseName=database, Name=name)["Table"]
            return table
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                return None
            raise

    def _create_table(self, database: str, table_input: dict[str, Any]) -> None:
        try:
            self.client.create_table(DatabaseName=database, TableInput=table_input)
        except ClientError as exc:  # another writer created it meanwhile
            if _code(exc) != "AlreadyExistsException":
                raise
            self.client.update_table(DatabaseName=database, TableInput=table_input)

    def _partitions(self, database: str, name: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("get_partitions").paginate(
            DatabaseName=database, TableName=name
        )
        return [p for page in pages for p in page.get("Partitions", [])]

    def _add_partitions(self, table: TableSpec, batch: list[tuple[str, ...]]) -> None:
        base = _storage_descriptor(table)
        inputs = [
            {"Values": list(values),
             "StorageDescriptor": {**base, "Location": _partition_location(table, values)}}
            for values in batch
        ]
        result = self.client.batch_create_partition(
            DatabaseName=table.database, TableName=table.name, PartitionInputList=inputs
        )
        errors = [e for e in result.get("Errors", [])
                  if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
        if errors:
            detail = errors[0].get("ErrorDetail", {})
            raise RuntimeError(
                f"Glue refused {len(errors)} partition(s) of {table.database}.{table.name}, "
                f"e.g. {errors[0].get('PartitionValues')}: {detail.get('ErrorCode')} "
                f"{detail.get('ErrorMessage')}"
            )

    def _spec(self, database: str, raw: dict[str, Any]) -> TableSpec:
        keys = {k["Name"]: k["Type"] for k in raw.get("PartitionKeys", [])}
        parts = sorted(tuple(p["Values"]) for p in self._partitions(database, raw["Name"]))
        sd = raw.get("StorageDescriptor", {})
        return TableSpec(
            database=database, name=raw["Name"], location=sd.get("Location", ""),
            columns={c["Name"]: c["Type"] for c in sd.get("Columns", [])},
            partition_keys=keys,
            partitions=tuple(dict(zip(keys, v, strict=True)) for v in parts),
            description=raw.get("Description", "") or "",
        )


def _values(table: TableSpec, partition: dict[str, str]) -> tuple[str, ...]:
    """A partition's values in partition-key order; ValueError if its keys differ."""
    if set(partition) != set(table.partition_keys):
        raise ValueError(
            f"table {table.database}.{table.name}: partition {partition} must give exactly the "
            f"partition keys {list(table.partition_keys)}"
        )
    return tuple(str(partition[k]) for k in table.partition_keys)


def _check_same_keys(table: TableSpec, existing: dict[str, Any]) -> None:
    """ValueError if the table exists with other partition keys (its partitions would break)."""
    known = [k["Name"] for k in existing.get("PartitionKeys", [])]
    if [k.lower() for k in known] != [k.lower() for k in table.partition_keys]:
        raise ValueError(
            f"table {table.database}.{table.name}: partition keys {list(table.partition_keys)} "
            f"differ from the catalogued {known}; drop the table to change its layout"
        )


def _storage_descriptor(table: TableSpec) -> dict[str, Any]:
    """The Parquet StorageDescriptor of the table."""
    return {
        "Columns": [{"Name": n, "Type": t} for n, t in table.columns.items()],
        "Location": table.location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE,
                      "Parameters": {"serialization.format": "1"}},
    }


def _table_input(table: TableSpec) -> dict[str, Any]:
    """The Glue TableInput of an external Parquet table."""
    return {
        "Name": table.name,
        "Description": table.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "StorageDescriptor": _storage_descriptor(table),
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in table.partition_keys.items()],
    }


def _partition_location(table: TableSpec, values: tuple[str, ...]) -> str:
    """`<table location>/k1=v1/k2=v2`."""
    path = "/".join(f"{k}={v}" for k, v in zip(table.partition_keys, values, strict=True))
    return f"{table.location.rstrip('/')}/{path}"


def _view(table: dict[str, Any]) -> tuple[Any, ...]:
    """The parts of a table definition `register` manages, to skip no-op updates."""
    sd = table.get("StorageDescriptor", {})
    return (
        table.get("Description", "") or "", table.get("TableType"),
        (table.get("Parameters") or {}).get("classification"),
        [(c["Name"].lower(), c["Type"].lower()) for c in sd.get("Columns", [])],
        sd.get("Location"), sd.get("InputFormat"), sd.get("OutputFormat"),
        (sd.get("SerdeInfo") or {}).get("SerializationLibrary"),
        [(k["Name"].lower(), k["Type"].lower()) for k in table.get("PartitionKeys", [])],
    )
