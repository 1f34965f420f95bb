"""Validate: rows in = valid + quarantined, a reason on every bad row, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import Schema
from mlops_kit.datasets.churn import generate
from mlops_kit.steps import validate as v
from mlops_kit.steps.base import Job, StepError, write_parquet


def schema_of(loaded: LoadedConfig) -> Schema:
    return loaded.config.table


def text_rows(rows: list[dict[str, str | None]]) -> pd.DataFrame:
    base = {"customer_id": "C1", "event_time": "2025-03-01T10:00:00", "tenure_months": "12",
            "monthly_charges": "50.5", "total_charges": "600", "contract": "one-year",
            "payment_method": "credit_card", "internet_service": "dsl", "support_calls": "1",
            "age": "40", "churned": "0"}
    frame = pd.DataFrame([{**base, "customer_id": f"C{i}", **r} for i, r in enumerate(rows)])
    frame.insert(0, "_source_row", range(len(frame)))
    return frame


def test_counts_reconcile_on_generated_data(loaded: LoadedConfig) -> None:
    raw = generate(5000, seed=3, dirty_fraction=0.02)
    result = v.validate(raw, schema_of(loaded))
    assert len(result.valid) + len(result.quarantine) == len(raw) == result.rows_in
    assert len(result.quarantine) == 100
    assert result.quarantine["_reason"].str.len().gt(0).all()
    assert set(result.valid.columns) >= {c.name for c in schema_of(loaded).columns}
    assert result.valid["tenure_months"].dtype == "Int64"


def test_each_check_gives_its_reason(loaded: LoadedConfig) -> None:
    raw = text_rows([
        {},                                   # valid
        {"tenure_months": "abc"},             # wrong type
        {"tenure_months": "3.5"},             # not whole
        {"monthly_charges": "-1"},            # below min
        {"contract": "lifetime"},             # unknown category
        {"customer_id": None},                # null not allowed
        {"event_time": "yesterday"},          # bad timestamp
        {"monthly_charges": "inf"},           # not finite
        {"age": "", "total_charges": None},   # nullable: fine
        {"support_calls": "x", "age": "300"},  # two faults, both reported
    ])
    result = v.validate(raw, schema_of(loaded))
    reasons = dict(zip(result.quarantine["_source_row"], result.quarantine["_reason"],
                       strict=True))
    assert sorted(result.valid["_source_row"]) == [0, 8]
    assert "tenure_months=abc: not a number" in reasons[1]
    assert "tenure_months=3.5: not a whole number" in reasons[2]
    assert "monthly_charges=-1: below min 0" in reasons[3]
    assert "contract=lifetime: not one of" in reasons[4]
    assert "customer_id: missing but not nullable" in reasons[5]
    assert "event_time=yesterday: not an ISO 8601 timestamp" in reasons[6]
    assert "monthly_charges=inf: not a finite number" in reasons[7]
    assert "support_calls=x: not a number" in reasons[9] and "age=300: above max 110" in reasons[9]
    assert result.reasons["customer_id: missing but not nullable"] == 1


def test_duplicate_entity_and_time_quarantined(loaded: LoadedConfig) -> None:
    raw = text_rows([{}, {}])
    raw["customer_id"] = "C7"
    result = v.validate(raw, schema_of(loaded))
    assert len(result.valid) == 1
    assert "duplicate (customer_id, event_time)" in result.quarantine["_reason"].iloc[0]


def test_unknown_and_missing_columns(loaded: LoadedConfig) -> None:
    raw = text_rows([{}])
    with pytest.raises(StepError, match=r"unknown columns in the data: \['extra'\]"):
        v.validate(raw.assign(extra=1), schema_of(loaded))
    with pytest.raises(StepError, match=r"columns missing from the data: \['age'\]"):
        v.validate(raw.drop(columns="age"), schema_of(loaded))
    with pytest.raises(StepError, match="empty"):
        v.validate(raw.iloc[:0], schema_of(loaded))


def _job(loaded: LoadedConfig, tmp_path: Path, raw: pd.DataFrame) -> Job:
    raw_dir = tmp_path / "raw"
    write_parquet(raw, raw_dir / "ingest_date=2026-01-01" / "part-00000.parquet")
    (raw_dir / "_dataset.json").write_text(json.dumps(
        {"data_version": "abc", "ingest_date": "2026-01-01"}))
    outs = {c: tmp_path / c for c in ("curated", "quarantine", "profile")}
    return Job(loaded, {"raw": raw_dir}, outs)


def test_all_rows_bad_fails_but_keeps_the_quarantine(loaded: LoadedConfig, tmp_path: Path) -> None:
    raw = text_rows([{"tenure_months": "x"}, {"tenure_months": "y"}])
    with pytest.raises(StepError, match=r"2 of 2 rows failed validation \(100\.0% > "):
        v.run(_job(loaded, tmp_path, raw))
    quarantined = pd.read_parquet(tmp_path / "quarantine")
    assert len(quarantined) == 2
    assert not list((tmp_path / "curated").rglob("*.parquet"))


def test_run_writes_curated_quarantine_and_profile(loaded: LoadedConfig, tmp_path: Path) -> None:
    raw = generate(3000, seed=1, dirty_fraction=0.01)
    raw.insert(0, "_source_row", range(len(raw)))
    summary = v.run(_job(loaded, tmp_path, raw))
    assert summary == {"rows_in": 3000, "valid": 2970, "quarantined": 30}
    profile = json.loads((tmp_path / "profile" / "profile.json").read_text())
    assert profile["rows"] == 2970
    charges = profile["columns"]["monthly_charges"]
    assert charges["min"] >= 0 and sum(charges["histogram"]["counts"]) == 2970
    assert (tmp_path / "profile" / "plots" / "contract.png").stat().st_size > 1000
