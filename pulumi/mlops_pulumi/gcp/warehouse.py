"""BigQuery over the lake (the Athena counterpart): a dataset, an external table per published
zone, and the feature registry's view of the features table."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_gcp import bigquery

import pulumi

# Zones whose steps write `ingest_date=<day>/` folders (runtime.lake publishes the same layout).
HIVE_PARTITIONED = ("raw", "curated", "quarantine")
ENTITY, TIME = "entity_id", "event_time"   # the features table's keys (steps/features.py)
FEATURE_TIMESTAMP = "feature_timestamp"    # the column Vertex's feature registry reads


@dataclass(frozen=True)
class WarehouseArgs:
    gcp_project: str
    location: str
    dataset: str
    tables: dict[str, tuple[str, str]]  # zone -> (bucket, table folder)
    features_table: str                 # features.group
    kms_key: str | None
    labels: dict[str, str]


class Warehouse(pulumi.ComponentResource):
    """Dataset (optional CMEK), Parquet external tables, and the feature group's source view."""

    def __init__(self, name: str, args: WarehouseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Warehouse", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cmek = {"kms_key_name": args.kms_key} if args.kms_key else None
        self.dataset = bigquery.Dataset(
            f"{name}-dataset", dataset_id=args.dataset, location=args.location,
            labels=args.labels, default_encryption_configuration=cmek, opts=child,
            description="Tables over the lake's zones (external Parquet)")
        self.tables = {zone: self._external(name, zone, bucket, table, args)
                       for zone, (bucket, table) in args.tables.items()}
        source = f"`{args.gcp_project}.{args.dataset}.{args.features_table}`"
        self.feature_source = bigquery.Table(
            f"{name}-feature-source", dataset_id=self.dataset.dataset_id,
            table_id=f"{args.features_table}_registry", labels=args.labels,
            deletion_protection=False,
            view={"use_legacy_sql": False,
                  "query": f"SELECT *, {TIME} AS {FEATURE_TIMESTAMP} FROM {source}"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.tables.values())))
        self.register_outputs({"dataset": self.dataset.dataset_id,
                               "tables": [t.table_id for t in self.tables.values()]})

    def _external(self, name: str, zone: str, bucket: str, table: str,
                  args: WarehouseArgs) -> bigquery.Table:
        prefix = f"gs://{bucket}/{table}/"
        config: dict[str, object] = {"source_format": "PARQUET", "autodetect": True,
                                     "source_uris": [f"{prefix}*.parquet"]}
        if zone in HIVE_PARTITIONED:
            config["hive_partitioning_options"] = {"mode": "AUTO",
                                                   "source_uri_prefix": prefix}
        return bigquery.Table(
            f"{name}-{zone}", dataset_id=self.dataset.dataset_id, table_id=table,
            labels=args.labels, deletion_protection=False, external_data_configuration=config,
            encryption_configuration={"kms_key_name": args.kms_key} if args.kms_key else None,
            opts=pulumi.ResourceOptions(parent=self))
