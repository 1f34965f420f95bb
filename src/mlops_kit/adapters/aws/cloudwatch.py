"""Drift metrics to Amazon CloudWatch (`PutMetricData`), batched at the API's limits."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import boto3

from mlops_kit.adapters.aws import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.monitoring.sink import Metric

MAX_METRICS_PER_CALL = 1000
MAX_BYTES_PER_CALL = 1_000_000  # the API allows 1 MB; this leaves room for the request's own fields
_PREFIX = "MetricData.member.1000."  # the longest member prefix a call can have


class CloudWatchSink:
    """Publishes metrics into one CloudWatch namespace."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.calls = 0

    @classmethod
    def from_config(cls, loaded: LoadedConfig, **options: Any) -> CloudWatchSink:
        """A sink in the config's AWS region; options: `client`, `session`, `client_config`."""
        client = options.get("client")
        if client is None:
            _account, region = naming.aws_target(loaded)
            session = options.get("session") or boto3.Session(region_name=region)
            client = session.client("cloudwatch", region_name=region,
                                    config=options.get("client_config"))
        return cls(client, loaded.config.project)

    def publish(self, metrics: Sequence[Metric]) -> int:
        """Send the finite-valued metrics in as few calls as the limits allow."""
        data = [datum(m) for m in metrics if math.isfinite(m.value)]
        for batch in batches(data):
            self.client.put_metric_data(Namespace=self.namespace, MetricData=batch)
            self.calls += 1
        return len(data)


def datum(metric: Metric) -> dict[str, Any]:
    """A metric in `PutMetricData`'s shape."""
    return {"MetricName": metric.name, "Value": metric.value, "Unit": metric.unit,
            "Timestamp": metric.timestamp,
            "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions.items()]}


def encoded_size(item: dict[str, Any]) -> int:
    """Bytes one datum takes in a query-protocol request (the wordiest wire format)."""
    pairs = [(_PREFIX + "MetricName", item["MetricName"]),
             (_PREFIX + "Value", repr(item["Value"])), (_PREFIX + "Unit", item["Unit"]),
             (_PREFIX + "Timestamp", item["Timestamp"].isoformat())]
    for i, dim in enumerate(item["Dimensions"], 1):
        pairs += [(f"{_PREFIX}Dimensions.member.{i}.Name", dim["Name"]),
                  (f"{_PREFIX}Dimensions.member.{i}.Value", dim["Value"])]
    return len(urlencode(pairs)) + 1


def batches(data: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive runs of at most 1,000 data and at most MAX_BYTES_PER_CALL bytes."""
    batch: list[dict[str, Any]] = []
    size = 0
    for item in data:
        item_size = encoded_size(item)
        if batch and (len(batch) == MAX_METRICS_PER_CALL or size + item_size > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch
