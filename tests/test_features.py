"""Features: transforms, point-in-time correctness, splits, and the online store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import Feature, FeaturesConfig
from mlops_kit.datasets.churn import generate
from mlops_kit.runtime.online_store import SqliteOnlineStore
from mlops_kit.steps import features as f
from mlops_kit.steps import validate
from mlops_kit.steps.base import Job, StepError, write_parquet


def test_transforms_by_hand(loaded: LoadedConfig) -> None:
    schema = loaded.config.table
    rows = pd.DataFrame({
        "tenure_months": [0, 10], "total_charges": [np.nan, 99.0], "contract": ["two-year", "x"],
        "age": [19.0, np.nan], "event_time": pd.to_datetime(["2025-02-03", "2025-07-01"]),
        "support_calls": [3, 25],
    })
    fs = f.FeatureSet((
        Feature(name="r", transform="ratio", inputs=["total_charges", "tenure_months"]),
        Feature(name="lt", transform="log1p", inputs=["total_charges"]),
        Feature(name="c", transform="one_hot", inputs=["contract"]),
        Feature(name="b", transform="bucketize", inputs=["age"], boundaries=[25, 50]),
        Feature(name="m", transform="month", inputs=["event_time"]),
        Feature(name="n", transform="is_null", inputs=["age"]),
        Feature(name="s", transform="clip", inputs=["support_calls"], upper=10),
    ), schema)
    out = fs.transform(rows)
    assert fs.columns == ["r", "lt", "c__month_to_month", "c__one_year", "c__two_year", "b", "m",
                          "n", "s"]
    assert np.isnan(out["r"][0]) and out["r"][1] == pytest.approx(9.9)
    assert out["lt"][1] == pytest.approx(np.log1p(99))
    assert out[["c__month_to_month", "c__one_year", "c__two_year"]].values.tolist() == [
        [0, 0, 1], [0, 0, 0]]
    assert out["b"][0] == 0 and np.isnan(out["b"][1])
    assert out["m"].tolist() == [2, 7] and out["n"].tolist() == [0, 1]
    assert out["s"].tolist() == [3, 10]
    again = f.FeatureSet.from_spec(fs.to_spec()).transform(rows)
    pd.testing.assert_frame_equal(out, again)


def test_point_in_time_join_never_uses_future_features() -> None:
    t = pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"]).astype("datetime64[us]")
    features = pd.DataFrame({f.ENTITY: ["a", "a", "a"], f.TIME: t, "x": [1.0, 2.0, 3.0]})
    labels = pd.DataFrame({f.ENTITY: ["a", "a", "b"],
                           f.TIME: pd.to_datetime(["2025-02-15", "2024-12-01", "2025-05-01"])
                           .astype("datetime64[us]"), f.LABEL: [1, 0, 1]})
    joined = f.point_in_time_join(labels, features).set_index(f.TIME)
    assert joined.loc["2025-02-15", "x"] == 2.0      # newest at or before, not March
    assert np.isnan(joined.loc["2024-12-01", "x"])   # nothing known yet
    assert np.isnan(joined.loc["2025-05-01", "x"])   # unknown entity


def test_time_split_holds_out_the_newest_rows() -> None:
    frame = pd.DataFrame({f.TIME: pd.date_range("2025-01-01", periods=100, freq="D")[::-1]})
    parts = f.split(frame, FeaturesConfig(declared=[Feature(name="a", inputs=["a"])],
                                          test_fraction=0.2, validation_fraction=0.25), 1)
    assert [len(parts[k]) for k in f.SPLITS] == [60, 20, 20]
    assert parts["train"][f.TIME].max() < parts["validation"][f.TIME].min()
    assert parts["validation"][f.TIME].max() < parts["test"][f.TIME].min()
    with pytest.raises(StepError, match="too few rows"):
        f.split(frame.head(2), FeaturesConfig(declared=[Feature(name="a", inputs=["a"])]), 1)


def test_run_writes_stores_and_consistent_training_set(loaded: LoadedConfig,
                                                       tmp_path: Path) -> None:
    raw = generate(3000, seed=2, dirty_fraction=0.0)
    raw.insert(0, "_source_row", range(len(raw)))
    valid = validate.validate(raw, loaded.config.table).valid
    write_parquet(valid, tmp_path / "curated" / "ingest_date=2026-01-01" / "p.parquet")
    outs = {c: tmp_path / c for c in ("offline", "online", "training_set")}
    summary = f.run(Job(loaded, {"curated": tmp_path / "curated"}, outs))
    ts = tmp_path / "training_set"
    sizes = [len(pd.read_parquet(ts / f"{k}.parquet")) for k in f.SPLITS]
    assert sum(sizes) == 3000 == summary["train"] + summary["validation"] + summary["test"]
    test = pd.read_parquet(ts / "test.parquet")
    source = pd.read_parquet(ts / "test_source.parquet")
    fs = f.FeatureSet(tuple(loaded.config.features.declared), loaded.config.table)
    np.testing.assert_allclose(test[fs.columns].to_numpy(), fs.transform(source).to_numpy())
    assert (test[f.LABEL].to_numpy() == source["churned"].to_numpy()).all()
    latest = pd.read_parquet(tmp_path / "online" / "latest.parquet")
    assert latest[f.ENTITY].is_unique and len(latest) == summary["entities"]
    store = SqliteOnlineStore(tmp_path / "online.sqlite")
    assert store.put("g", latest) == len(latest)
    one = latest.sort_values(f.TIME).iloc[-1]
    got = store.get("g", [one[f.ENTITY]])
    assert got["tenure_months"].iloc[0] == one["tenure_months"]
    older = latest.assign(**{f.TIME: latest[f.TIME] - pd.Timedelta(days=400), "tenure_months": -1})
    store.put("g", older)
    assert store.get("g", [one[f.ENTITY]])["tenure_months"].iloc[0] == one["tenure_months"]
