"""The GCS data lake: one bucket per zone plus the pipelines bucket (run artifacts, specs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi_gcp import storage

import pulumi
from mlops_kit.config.model import LakeConfig
from mlops_pulumi import defaults


@dataclass(frozen=True)
class DataLakeArgs:
    location: str
    buckets: dict[str, str]     # zone (or "pipelines") -> bucket name
    lake: LakeConfig
    kms_key: str | None
    labels: dict[str, str]


def lifecycle(zone: str, lake: LakeConfig) -> list[dict[str, Any]]:
    """Retention from `lake`: raw ages to colder classes, quarantine expires, old versions go."""
    rules: list[dict[str, Any]] = [{
        "action": {"type": "Delete"},
        "condition": {"days_since_noncurrent_time": lake.noncurrent_expire_days,
                      "with_state": "ARCHIVED"}}]
    if zone == "raw":
        rules += [{"action": {"type": "SetStorageClass", "storage_class": cls},
                   "condition": {"age": days, "with_state": "LIVE"}}
                  for cls, days in (("NEARLINE", lake.raw_infrequent_access_days),
                                    ("ARCHIVE", lake.raw_archive_days))]
    if zone == "quarantine":
        rules.append({"action": {"type": "Delete"},
                      "condition": {"age": lake.quarantine_expire_days, "with_state": "LIVE"}})
    return rules


class DataLake(pulumi.ComponentResource):
    """Buckets with uniform access, public access prevention, versioning and optional CMEK."""

    def __init__(self, name: str, args: DataLakeArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:DataLake", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        encryption = {"encryption": {"default_kms_key_name": args.kms_key}} if args.kms_key \
            else {}
        self.buckets = {
            zone: storage.Bucket(
                f"{name}-{zone}", name=bucket, location=args.location, labels=args.labels,
                lifecycle_rules=lifecycle(zone, args.lake), opts=child,
                **defaults.GCS_BUCKET, **encryption)
            for zone, bucket in args.buckets.items()
        }
        self.register_outputs({"buckets": {z: b.name for z, b in self.buckets.items()}})
