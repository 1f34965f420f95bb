"""The data lake: a bucket per zone plus artifacts, the Glue catalog, an Athena workgroup."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_cdk import defaults
from mlops_cdk.settings import EnvSettings
from mlops_kit.runtime.lake import LakeTable, lake_tables

CAPTURE_PREFIX = "capture"  # the endpoints' data capture, `capture/<model>/` (endpoint.py)
PARQUET = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}


class DataLake(Construct):
    """Buckets (raw, curated, quarantine, features, artifacts, access logs), tables, Athena."""

    def __init__(self, scope: Construct, id_: str, *, settings: EnvSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id_)
        lake = settings.config.lake
        self.logs = defaults.logs_bucket(self, "AccessLogs", settings.logs_bucket,
                                         lake.logs_expire_days)
        keep = s3.LifecycleRule(id="old-versions", noncurrent_version_expiration=Duration.days(
            lake.noncurrent_expire_days), abort_incomplete_multipart_upload_after=Duration.days(7))
        raw_tiers = s3.LifecycleRule(id="tiers", transitions=[
            s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                          transition_after=Duration.days(lake.raw_infrequent_access_days)),
            s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                          transition_after=Duration.days(lake.raw_archive_days))])
        expire = s3.LifecycleRule(id="expire", expiration=Duration.days(
            lake.quarantine_expire_days))
        rules = {"raw": [keep, raw_tiers], "quarantine": [keep, expire]}
        self.zones: dict[str, s3.Bucket] = {
            zone: defaults.secure_bucket(self, zone.capitalize(), name=settings.zone_bucket(zone),
                                         key=key, logs=self.logs,
                                         lifecycle_rules=rules.get(zone, [keep]))
            for zone in ("raw", "curated", "quarantine", "features")
        }
        # endpoints capture to `capture/<model>/`: kept `serving.capture.retention_days`
        capture = s3.LifecycleRule(id="capture-retention", prefix=f"{CAPTURE_PREFIX}/",
                                   expiration=Duration.days(
                                       settings.config.serving.capture.retention_days))
        self.artifacts = defaults.secure_bucket(self, "Artifacts", name=settings.artifacts_bucket,
                                                key=key, logs=self.logs,
                                                lifecycle_rules=[keep, capture])
        self.tables = lake_tables(settings.config)
        self.database = glue.CfnDatabase(self, "Database", catalog_id=settings.account,
                                         database_input={"name": settings.database,
                                                         "description": f"{settings.project} lake"})
        for table in self.tables:
            self._table(settings, table)
        self.workgroup = self._workgroup(settings, key)
        self._named_queries(settings)

    def table_uri(self, zone: str) -> str:
        """`s3://<zone bucket>/<table>`: where the pipeline writes the zone's table."""
        table = next(t for t in self.tables if t.zone == zone)
        return f"s3://{self.zones[zone].bucket_name}/{table.name}"

    def _table(self, settings: EnvSettings, table: LakeTable) -> None:
        location = self.table_uri(table.zone)
        params = {"classification": "parquet", "EXTERNAL": "TRUE"}
        if "ingest_date" in table.partition_keys:  # partitions found by projection, not crawlers
            params.update({
                "projection.enabled": "true", "projection.ingest_date.type": "date",
                "projection.ingest_date.format": "yyyy-MM-dd",
                "projection.ingest_date.range": "2000-01-01,NOW",
                "projection.ingest_date.interval": "1",
                "projection.ingest_date.interval.unit": "DAYS",
                "storage.location.template": f"{location}/ingest_date=${{ingest_date}}",
            })
        glue.CfnTable(self, f"Table{table.zone.capitalize()}", catalog_id=settings.account,
                      database_name=settings.database, table_input={
                          "name": table.name, "tableType": "EXTERNAL_TABLE",
                          "description": f"{table.zone} zone of {settings.project}",
                          "parameters": params,
                          "partitionKeys": [{"name": k, "type": v}
                                            for k, v in table.partition_keys.items()],
                          "storageDescriptor": {
                              "location": location + "/",
                              "columns": [{"name": k.lower(), "type": v}
                                          for k, v in table.columns.items()],
                              "inputFormat": PARQUET["input_format"],
                              "outputFormat": PARQUET["output_format"],
                              "serdeInfo": {"serializationLibrary": PARQUET["serde"]}}},
                      ).node.add_dependency(self.database)

    def _workgroup(self, settings: EnvSettings, key: kms.IKey) -> athena.CfnWorkGroup:
        limit = int(settings.config.lake.athena_scan_limit_gb * 1024**3)
        return athena.CfnWorkGroup(
            self, "Athena", name=settings.prefix("athena"), state="ENABLED",
            description=f"{settings.project} {settings.name}: results encrypted, scans capped",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=max(limit, 10 * 1024**2),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.artifacts.bucket_name}/athena/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn))))

    def _named_queries(self, settings: EnvSettings) -> None:
        table = settings.config.table.table
        queries = {
            "rows-per-day": ("Rows accepted and quarantined per ingestion date",
                             f"SELECT c.ingest_date, c.rows AS valid, coalesce(q.rows, 0) AS "
                             f"quarantined FROM (SELECT ingest_date, count(*) AS rows FROM "
                             f"curated_{table} GROUP BY 1) c LEFT JOIN (SELECT ingest_date, "
                             f"count(*) AS rows FROM quarantine_{table} GROUP BY 1) q "
                             f"ON c.ingest_date = q.ingest_date ORDER BY 1 DESC"),
            "quarantine-reasons": ("Why rows were quarantined, most frequent first",
                                   f"SELECT _reason, count(*) AS rows FROM quarantine_{table} "
                                   f"GROUP BY 1 ORDER BY 2 DESC"),
        }
        for name, (description, sql) in queries.items():
            athena.CfnNamedQuery(self, f"Query-{name}", name=settings.prefix(name),
                                 description=description, database=settings.database,
                                 query_string=sql, work_group=self.workgroup.ref)
