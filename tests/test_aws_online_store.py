"""The Feature Store online-store adapter, on a real boto3 client whose calls botocore's Stubber
answers (every request is validated against the service model; nothing leaves the process)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from mlops_kit.adapters.aws import online_store
from mlops_kit.adapters.aws.online_store import SageMakerOnlineStore, event_times
from mlops_kit.runtime.ports import OnlineStoreError

GROUP = "churn-dev-customer-features"


def featurestore(sent: list[dict[str, Any]]) -> Any:
    """A real client (no retries) that records every PutRecord request it is asked to send."""
    client = online_store.featurestore_client("eu-west-1", Config(retries={"max_attempts": 1}))
    client.meta.events.register(
        "provide-client-params.sagemaker-featurestore-runtime.PutRecord",
        lambda params, **_: sent.append(params))
    return client


def latest(rows: int = 2) -> pd.DataFrame:
    """`latest.parquet` as the features step writes it: naive UTC times, float features."""
    frame = pd.DataFrame({
        "entity_id": pd.array(["c1", "c2"], dtype="string"),
        "event_time": np.array(["2025-05-23T23:34:24.123456", "2025-01-01"],
                               dtype="datetime64[us]"),
        "tenure": [0.5, np.nan],
        "charges": [1e-5, 3.0],
    })
    frame = pd.concat([frame] * (rows // 2), ignore_index=True)
    frame["entity_id"] = pd.array([f"c{i + 1}" for i in range(rows)], dtype="string")
    return frame


def test_each_row_becomes_one_record_with_its_event_time_and_no_missing_features() -> None:
    sent: list[dict[str, Any]] = []
    client = featurestore(sent)
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response("put_record", {})
        assert SageMakerOnlineStore(client, workers=4).put(GROUP, latest()) == 2
        stub.assert_no_pending_responses()
    by_entity = {r["Record"][0]["ValueAsString"]: r for r in sent}
    assert by_entity["c1"]["Record"] == [
        {"FeatureName": "entity_id", "ValueAsString": "c1"},
        {"FeatureName": "event_time", "ValueAsString": "2025-05-23T23:34:24.123Z"},
        {"FeatureName": "tenure", "ValueAsString": "0.5"},
        {"FeatureName": "charges", "ValueAsString": "1e-05"}]
    assert by_entity["c2"]["Record"] == [  # tenure is NaN: left out of the record
        {"FeatureName": "entity_id", "ValueAsString": "c2"},
        {"FeatureName": "event_time", "ValueAsString": "2025-01-01T00:00:00.000Z"},
        {"FeatureName": "charges", "ValueAsString": "3.0"}]
    assert {r["FeatureGroupName"] for r in sent} == {GROUP}
    assert all(r["TargetStores"] == ["OnlineStore"] for r in sent)


def test_event_times_are_utc_with_milliseconds() -> None:
    times = pd.Series(pd.to_datetime(["2025-05-23T23:34:24.9999+02:00"]))
    assert event_times(times).tolist() == ["2025-05-23T21:34:24.999Z"]


def test_records_that_still_fail_raise_one_error_with_the_counts() -> None:
    sent: list[dict[str, Any]] = []
    client = featurestore(sent)
    with Stubber(client) as stub:
        stub.add_response("put_record", {})
        stub.add_client_error("put_record", "ServiceUnavailable", "try later",
                              http_status_code=503)
        stub.add_response("put_record", {})
        stub.add_response("put_record", {})
        with pytest.raises(OnlineStoreError) as error:
            SageMakerOnlineStore(client, workers=1).put(GROUP, latest(4))
        stub.assert_no_pending_responses()
    message = str(error.value)
    assert f"feature group {GROUP}: 3 of 4 records written, 1 failed;" in message
    assert "first error: entity_id c2: " in message and "ServiceUnavailable" in message
    assert "run the features job again" in message
    assert len(sent) == 4  # a failure does not stop the others


def test_a_batch_that_fails_entirely_stops_the_put(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(online_store, "BATCH", 2)
    sent: list[dict[str, Any]] = []
    client = featurestore(sent)
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_client_error("put_record", "AccessForbidden", "no", http_status_code=403)
        with pytest.raises(OnlineStoreError, match="0 of 6 records written, 2 failed, 4 not "
                                                   "tried"):
            SageMakerOnlineStore(client, workers=2).put(GROUP, latest(6))
        stub.assert_no_pending_responses()
    assert len(sent) == 2


def test_rows_without_an_entity_or_event_time_are_refused_before_any_call() -> None:
    sent: list[dict[str, Any]] = []
    frame = latest()
    frame.loc[1, "event_time"] = pd.NaT
    with pytest.raises(OnlineStoreError, match="nothing written"):
        SageMakerOnlineStore(featurestore(sent)).put(GROUP, frame)
    assert sent == []


def test_the_client_retries_in_standard_mode() -> None:
    client = online_store.featurestore_client("eu-west-1")
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}
