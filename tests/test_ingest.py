"""Ingest: every source kind into the raw zone, and every bad source refused clearly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.fileio import sha256_file
from mlops_kit.steps import ingest
from mlops_kit.steps.base import Job, StepError
from tests.conftest import write_config

DATE = "2026-01-15"


def run_ingest(loaded: LoadedConfig, out: Path) -> dict[str, object]:
    return ingest.run(Job(loaded, {}, {"raw": out}, {"ingest_date": DATE}))


def csv_config(tmp_path: Path, path: str) -> LoadedConfig:
    return load_config(write_config(tmp_path, {"data": {"source": {"kind": "csv", "path": path}}}))


def test_generator_to_hive_partition(loaded: LoadedConfig, tmp_path: Path) -> None:
    summary = run_ingest(loaded, tmp_path / "raw")
    [part] = (tmp_path / "raw" / f"ingest_date={DATE}").iterdir()
    assert part.name == ingest.batch_file(sha256_file(part))  # named by its content
    table = pq.read_table(part)
    assert summary["rows"] == table.num_rows == 2000
    assert table.column("_source_row").to_pylist()[:3] == [0, 1, 2]
    meta = (tmp_path / "raw" / "_dataset.json").read_text()
    assert sha256_file(part) in meta


def test_csv_values_stay_text_in_the_raw_zone(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("customer_id,tenure_months\nC1,12\nC2,abc\n")
    loaded = csv_config(tmp_path, "in.csv")
    frame = ingest.read_source(loaded.config.data.source, tmp_path)
    assert frame["tenure_months"].tolist() == ["12", "abc"]


def test_folder_of_parquet_files(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for i in range(2):
        pd.DataFrame({"a": [i, i + 10]}).to_parquet(tmp_path / "src" / f"p{i}.parquet")
    loaded = load_config(write_config(tmp_path, {"data": {"source": {"kind": "parquet",
                                                                       "path": "src"}}}))
    frame = ingest.read_source(loaded.config.data.source, tmp_path)
    assert sorted(frame["a"]) == [0, 1, 10, 11]


def test_missing_source_file(tmp_path: Path) -> None:
    loaded = csv_config(tmp_path, "nope.csv")
    with pytest.raises(StepError, match=r"source not found: .*nope\.csv .*data\.source\.path"):
        run_ingest(loaded, tmp_path / "raw")


def test_empty_source_is_refused_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("customer_id,tenure_months\n")
    loaded = csv_config(tmp_path, "empty.csv")
    with pytest.raises(StepError, match="no rows"):
        run_ingest(loaded, tmp_path / "raw")
    assert not list((tmp_path).rglob("*.parquet"))


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_text("this is not parquet")
    loaded = load_config(write_config(tmp_path, {"data": {"source": {"kind": "parquet",
                                                                       "path": "bad.parquet"}}}))
    with pytest.raises(StepError, match="not a readable Parquet file"):
        run_ingest(loaded, tmp_path / "raw")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(StepError, match="not a readable CSV"):
        run_ingest(csv_config(tmp_path, "ragged.csv"), tmp_path / "raw")


def test_reserved_column_name() -> None:
    with pytest.raises(StepError, match="_source_row"):
        ingest.ingest(pd.DataFrame({"_source_row": [1]}), dt.date(2026, 1, 1))
