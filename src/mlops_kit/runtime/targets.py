"""Targets: the set of adapters a run uses. `local` is files + SQLite; `moto` is the AWS
adapters (S3 lake, Glue catalog, SageMaker Model Registry) against moto, in process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_kit.config import LoadedConfig
from mlops_kit.extras import needs, require
from mlops_kit.registry import Registry, open_registry
from mlops_kit.runtime.files import JsonCatalog, LocalStorage
from mlops_kit.runtime.online_store import SqliteOnlineStore
from mlops_kit.runtime.ports import Catalog, Storage

TARGETS = ("local", "moto")
MOTO = "the moto target (--target moto)"


@dataclass
class Target:
    """Where artifacts, lake tables, models and online features go during a run."""

    name: str
    artifacts: Storage
    lake: Storage
    catalog: Catalog
    registry: Registry
    online: SqliteOnlineStore
    database: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.artifacts, LocalStorage)


def database_name(project: str) -> str:
    """The catalog database of a project (Glue and Athena dislike hyphens)."""
    return project.replace("-", "_")


@contextlib.contextmanager
def open_target(loaded: LoadedConfig, name: str = "local") -> Iterator[Target]:
    """The adapters of target `name`, open for the length of the `with` block."""
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
    state = loaded.state_dir
    online = SqliteOnlineStore(state / "online_store.sqlite")
    db = database_name(loaded.config.project)
    if name == "local":
        yield Target(name, LocalStorage(state / "artifacts"), LocalStorage(state / "lake"),
                     JsonCatalog(state / "catalog.json"), open_registry(loaded), online, db)
        return
    with _moto(loaded) as session:
        with needs(MOTO, "local-aws"):
            target = _aws_target(loaded, session, online, state)
        yield target


def _aws_target(loaded: LoadedConfig, session: Any, online: SqliteOnlineStore,
                state: Path) -> Target:
    from mlops_kit.adapters.aws import naming
    from mlops_kit.adapters.aws.catalog import GlueCatalog
    from mlops_kit.adapters.aws.registry import SageMakerRegistry
    from mlops_kit.adapters.aws.storage import LakeS3Storage, S3Storage, ensure_bucket

    account, region = naming.aws_target(loaded)
    s3 = session.client("s3")
    project = loaded.config.project
    zones = {z: naming.zone_bucket(project, z, account, region) for z in naming.LAKE_ZONES}
    artifacts_bucket = naming.artifacts_bucket(project, account, region)
    for bucket in (*zones.values(), artifacts_bucket):
        ensure_bucket(s3, bucket, region)
    registry = SageMakerRegistry.from_config(loaded, session=session)
    return Target("moto", S3Storage(s3, artifacts_bucket, "pipeline"), LakeS3Storage(s3, zones),
                  GlueCatalog(session.client("glue")), registry, online,
                  naming.glue_database(project))


@contextlib.contextmanager
def _moto(loaded: LoadedConfig) -> Iterator[Any]:
    """moto's AWS in this process, with fake credentials that can never reach a real account."""
    from mlops_kit.adapters.aws import naming

    boto3 = require("boto3", MOTO, "local-aws")
    mock_aws = require("moto", MOTO).mock_aws

    _, region = naming.aws_target(loaded)
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": region}
    saved = {k: os.environ.get(k) for k in fake}
    os.environ.update(fake)
    try:
        with mock_aws():
            yield boto3.Session(region_name=region)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
