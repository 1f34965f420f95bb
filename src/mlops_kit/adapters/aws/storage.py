"""Artifact storage in S3 (the `Storage` port) and the bucket it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

_DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an `s3://bucket/key` URI, the key without a trailing '/'."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI without a bucket: {uri!r}")
    return bucket, key.strip("/")


def ensure_bucket(client: Any, bucket: str, region: str, kms_key_id: str | None = None) -> None:
    """Create `bucket` if missing; enforce versioning, default encryption, no public access."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        _create_bucket(client, bucket, region)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    sse: dict[str, str] = {"SSEAlgorithm": "AES256"}
    if kms_key_id:
        sse = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id}
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": sse, "BucketKeyEnabled": True}]
        },
    )
    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )


def _create_bucket(client: Any, bucket: str, region: str) -> None:
    """CreateBucket, with a LocationConstraint everywhere but us-east-1."""
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


class S3Storage:
    """Artifact storage under `s3://<bucket>/<prefix>/` through a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def uri(self, *parts: str) -> str:
        """`s3://<bucket>/<prefix>/<parts...>`."""
        key = "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))
        return f"s3://{self.bucket}/{key}"

    def put_dir(self, local: Path, uri: str) -> None:
        """Make `uri` hold exactly the files of `local`: drop stale objects, upload the rest."""
        bucket, prefix = split_uri(uri)
        if not prefix:
            raise ValueError(f"put_dir: refusing to replace the whole bucket {bucket!r}")
        local = Path(local)
        if not local.is_dir():
            raise FileNotFoundError(f"put_dir: {local} is not a folder")
        files = {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*"))
                 if p.is_file()}
        stale = [f"{prefix}/{rel}" for rel in self._objects(bucket, prefix) if rel not in files]
        self._delete(bucket, stale)
        for rel, path in files.items():
            self.client.upload_file(str(path), bucket, f"{prefix}/{rel}")

    def get_dir(self, uri: str, local: Path) -> Path:
        """Download every object under `uri` into `local` (created), keeping relative paths."""
        bucket, prefix = split_uri(uri)
        local = Path(local)
        local.mkdir(parents=True, exist_ok=True)
        root = local.resolve()
        for rel in self._objects(bucket, prefix):
            target = (local / rel).resolve()
            if root not in target.parents:
                raise ValueError(f"get_dir: object key {rel!r} would leave {local}")
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(bucket, _join(prefix, rel), str(target))
        return local

    def listing(self, uri: str) -> dict[str, int]:
        """Relative path -> size in bytes of every object under `uri`."""
        bucket, prefix = split_uri(uri)
        return self._objects(bucket, prefix)

    def _objects(self, bucket: str, prefix: str) -> dict[str, int]:
        """Relative key -> size of the objects under `prefix/` (folder markers skipped)."""
        start = f"{prefix}/" if prefix else ""
        out: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=start
        ):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(start):]
                if rel and not rel.endswith("/"):
                    out[rel] = int(obj["Size"])
        return dict(sorted(out.items()))

    def _delete(self, bucket: str, keys: list[str]) -> None:
        """Delete `keys` in batches; raise if S3 reports any key it could not delete."""
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": k} for k in keys[i:i + _DELETE_BATCH]]
            result = self.client.delete_objects(
                Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if result.get("Errors"):
                first = result["Errors"][0]
                raise RuntimeError(
                    f"could not delete {len(result['Errors'])} object(s) from s3://{bucket}, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )


class LakeS3Storage(S3Storage):
    """The lake: `uri(zone, table, ...)` is `s3://<the zone's bucket>/<table>/...`."""

    def __init__(self, client: Any, buckets: dict[str, str]) -> None:
        super().__init__(client, "")
        self.buckets = buckets

    def uri(self, *parts: str) -> str:
        zone, *rest = parts
        if zone not in self.buckets:
            raise ValueError(f"unknown lake zone {zone!r}; zones are {sorted(self.buckets)}")
        return f"s3://{self.buckets[zone]}/" + "/".join(p.strip("/") for p in rest if p)


def _join(prefix: str, rel: str) -> str:
    """`prefix/rel`, or `rel` at the bucket root."""
    return f"{prefix}/{rel}" if prefix else rel
