"""The online store on AWS: the latest features per entity, put into a SageMaker Feature Group.

`PutRecord` takes one record per call, so a small thread pool sends them, batch by batch;
botocore retries throttling and transient errors (standard mode). A record that still fails is
never dropped silently: `put` raises `OnlineStoreError` with the counts and the first error.
Upserts are idempotent (the newer event time wins), so running the job again is the recovery.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import pandas as pd
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlops_kit.runtime.ports import OnlineStoreError
from mlops_kit.steps.features import ENTITY, TIME

RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5})  # 1 call + 4 retries
WORKERS = 8
BATCH = 1000  # records in flight at most; a batch that fails entirely stops the put

Record = list[dict[str, str]]


def featurestore_client(region: str | None, config: Config = RETRIES) -> Any:
    """A `sagemaker-featurestore-runtime` client in `region` (None: boto3's default), retrying
    in standard mode."""
    return boto3.client("sagemaker-featurestore-runtime", region_name=region, config=config)


@dataclass
class _Tally:
    """What a put has done so far, and the first error it met."""

    total: int
    written: int = 0
    failed: int = 0
    first: str = ""

    def report(self, group: str) -> str:
        untried = self.total - self.written - self.failed
        stopped = f", {untried} not tried (a whole batch failed)" if untried else ""
        return (f"feature group {group}: {self.written} of {self.total} records written, "
                f"{self.failed} failed{stopped}; first error: {self.first}. PutRecord is an "
                "idempotent upsert (the newer event time wins): run the features job again "
                "(retry the pipeline execution) to write the rest.")


class SageMakerOnlineStore:
    """The `OnlineStore` port on a Feature Group's online store, one PutRecord per entity."""

    def __init__(self, client: Any, workers: int = WORKERS) -> None:
        self.client, self.workers = client, workers

    @classmethod
    def in_region(cls, region: str | None) -> SageMakerOnlineStore:
        return cls(featurestore_client(region))

    def put(self, group: str, latest: pd.DataFrame) -> int:
        """Put one record per row of `latest`; the records written, or OnlineStoreError."""
        if (latest[ENTITY].isna() | latest[TIME].isna()).any():
            raise OnlineStoreError(f"feature group {group}: rows without {ENTITY} or {TIME} "
                                   "cannot be put; nothing written")
        tally = _Tally(len(latest))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for start in range(0, len(latest), BATCH):
                batch = records(latest.iloc[start:start + BATCH])
                errors = list(pool.map(lambda r: self._put_one(group, r), batch))
                self._count(tally, batch, errors)
                if all(e is not None for e in errors):
                    break
        if tally.failed:
            raise OnlineStoreError(tally.report(group))
        return tally.written

    def _put_one(self, group: str, record: Record) -> str | None:
        """None once the record is in the online store, else the error (after retries)."""
        try:
            self.client.put_record(FeatureGroupName=group, Record=record,
                                   TargetStores=["OnlineStore"])
        except (ClientError, BotoCoreError) as exc:
            return str(exc)
        return None

    @staticmethod
    def _count(tally: _Tally, batch: list[Record], errors: list[str | None]) -> None:
        for record, error in zip(batch, errors, strict=True):
            if error is None:
                tally.written += 1
                continue
            tally.failed += 1
            if not tally.first:
                tally.first = f"{ENTITY} {record[0]['ValueAsString']}: {error}"


def records(latest: pd.DataFrame) -> list[Record]:
    """PutRecord's `Record` of each row: the entity, the event time, and every feature whose
    value is a finite number (a missing value is left out: the feature is optional)."""
    features = [c for c in latest.columns if c not in (ENTITY, TIME)]
    rows = zip(latest[ENTITY].astype(str), event_times(latest[TIME]),
               latest[features].itertuples(index=False, name=None), strict=True)
    return [[_value(ENTITY, entity), _value(TIME, time),
             *(_value(f, repr(float(v))) for f, v in zip(features, values, strict=True)
               if math.isfinite(v))]
            for entity, time, values in rows]


def event_times(times: pd.Series) -> pd.Series:
    """Feature Store's String event time, `yyyy-MM-dd'T'HH:mm:ss.SSSZ` in UTC (the features
    step writes naive UTC times)."""
    utc = pd.to_datetime(times, utc=True)
    return utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"


def _value(name: str, value: str) -> dict[str, str]:
    return {"FeatureName": name, "ValueAsString": value}
