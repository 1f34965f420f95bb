"""Validate: cast to the schema, quarantine each failing row with its reason, profile the rest.

Counts always reconcile: rows in = valid + quarantined. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.config.model import Column, Schema
from mlops_kit.fileio import sha256_file
from mlops_kit.steps import profile
from mlops_kit.steps.base import (
    LINEAGE_FILE,
    Job,
    StepError,
    StepSpec,
    job_main,
    read_json,
    read_parquet_dir,
    write_json,
    write_parquet,
)
from mlops_kit.values import Parsed, domain, parse, required

SPEC = StepSpec("validate", "processing", inputs=("raw",),
                outputs=("curated", "quarantine", "profile"))
META = ("_source_row", "ingest_date")


@dataclass
class Validation:
    """The outcome: typed valid rows, raw bad rows with `_reason`, and the reconciled counts."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        return len(self.valid) + len(self.quarantine)

    @property
    def bad_fraction(self) -> float:
        return len(self.quarantine) / self.rows_in if self.rows_in else 0.0

    def summary(self, limit: float) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "valid": len(self.valid),
                "quarantined": len(self.quarantine), "bad_fraction": round(self.bad_fraction, 6),
                "max_bad_fraction": limit, "passed": self.bad_fraction <= limit,
                "reasons": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1]))}


class _Checks:
    """Collects (mask, message) pairs and turns them into one reason string per bad row."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[np.ndarray, str, pd.Series | None]] = []

    def add(self, mask: Any, message: str, values: pd.Series | None = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.items.append((mask, message, values))

    def bad(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _, _ in self.items:
            out |= mask
        return out

    def reasons(self, bad: np.ndarray) -> tuple[pd.Series, dict[str, int]]:
        idx = np.flatnonzero(bad)
        text = pd.Series([""] * len(idx), index=idx, dtype=object)
        counts: dict[str, int] = {}
        for mask, message, values in self.items:
            hit = mask[idx]
            rows = idx[hit]
            counts[message] = counts.get(message, 0) + int(hit.sum())
            if values is None:
                piece = pd.Series(message, index=rows, dtype=object)
            else:
                shown = values.iloc[rows].astype(str).str.slice(0, 40)
                col, _, rest = message.partition(": ")
                piece = col + "=" + shown.set_axis(rows).astype(object) + ": " + rest
            sep = np.where(text.loc[rows] == "", "", "; ")
            text.loc[rows] = text.loc[rows] + sep + piece
        return text, counts


def validate(raw: pd.DataFrame, schema: Schema) -> Validation:
    """Check every row of `raw` against `schema`; pure, no I/O."""
    _check_columns(raw, schema)
    checks = _Checks(len(raw))
    typed = {c.name: _check_column(raw[c.name], c, checks, c.name == schema.target)
             for c in schema.columns}
    frame = pd.DataFrame(typed, index=raw.index)
    if schema.entity_id and schema.event_time:
        keys = [schema.entity_id, schema.event_time]
        dup = frame.duplicated(keys, keep="first") & frame[keys].notna().all(axis=1)
        checks.add(dup, f"duplicate ({schema.entity_id}, {schema.event_time}): "
                        "an earlier row has it")
    bad = checks.bad()
    reason, counts = checks.reasons(bad)
    meta = [c for c in META if c in raw.columns]
    valid = pd.concat([raw.loc[~bad, meta], frame.loc[~bad]], axis=1).reset_index(drop=True)
    quarantine = raw.loc[bad].copy()
    quarantine["_reason"] = reason.to_numpy()
    return Validation(valid, quarantine.reset_index(drop=True), counts)


def _check_columns(raw: pd.DataFrame, schema: Schema) -> None:
    if raw.empty:
        raise StepError("no rows to validate: the raw data set is empty")
    expected = [c.name for c in schema.columns]
    present = [c for c in raw.columns if c not in META]
    missing = [c for c in expected if c not in present]
    if missing:
        raise StepError(f"columns missing from the data: {missing} (data.schema.columns lists "
                        f"them); the data has {present}")
    extra = [c for c in present if c not in expected]
    if extra and not schema.allow_extra_columns:
        raise StepError(f"unknown columns in the data: {extra}; add them to data.schema.columns "
                        "or set data.schema.allow_extra_columns: true (they stay in the raw zone)")


def _check_column(values: pd.Series, col: Column, checks: _Checks, target: bool) -> pd.Series:
    """The column typed under the value rules (`mlops_kit.values`); each bad row noted. The
    target is always required: a row without one can neither train nor be scored."""
    parsed = parse(values, col.type)
    for mask, message in [*parsed.problems, *domain(parsed, col)]:
        checks.add(mask, f"{col.name}: {message}", values)
    if target:
        checks.add(parsed.missing, f"{col.name}: missing target (a row without one cannot "
                                   "train or be scored)")
    else:
        checks.add(required(parsed, col), f"{col.name}: missing but not nullable")
    return _typed(parsed, col.type, values.index)


def _typed(parsed: Parsed, kind: str, index: pd.Index) -> pd.Series:
    """Parsed values as the curated zone stores them (Int64, float64, boolean, datetime64[us],
    string)."""
    x = parsed.values
    if kind == "int":
        return pd.Series(x, index=index).round().astype("Int64")
    if kind == "bool":
        return pd.Series(x, index=index).astype("boolean")
    if kind == "timestamp":
        return pd.Series(x, index=index, dtype="datetime64[us]")
    if kind == "float":
        return pd.Series(x, index=index, dtype="float64")
    return pd.Series(x, index=index, dtype=object).astype("string")


def run(job: Job) -> dict[str, Any]:
    cfg = job.config.config
    raw_dir = job.input("raw")
    raw = read_parquet_dir(raw_dir)
    dataset = read_json(raw_dir / "_dataset.json")
    result = validate(raw, cfg.table)
    summary = result.summary(cfg.data.max_bad_fraction)
    summary["data_version"] = dataset["data_version"]
    part = f"ingest_date={dataset['ingest_date']}"
    write_parquet(result.quarantine.drop(columns="ingest_date", errors="ignore"),
                  job.output("quarantine") / part / "part-00000.parquet")
    write_json(summary, job.output("profile") / "validation.json")
    if not summary["passed"]:
        raise StepError(
            f"{summary['quarantined']} of {summary['rows_in']} rows failed validation "
            f"({summary['bad_fraction']:.1%} > data.max_bad_fraction "
            f"{cfg.data.max_bad_fraction:.1%}); top reasons: "
            f"{list(summary['reasons'].items())[:3]}; see {job.output('quarantine')}"
        )
    valid = result.valid.drop(columns="ingest_date", errors="ignore")
    curated = write_parquet(valid, job.output("curated") / part / "part-00000.parquet")
    lineage = {"data_version": dataset["data_version"], "curated_version": sha256_file(curated),
               "ingest_date": dataset["ingest_date"]}
    write_json({**dataset, "rows": len(valid), "stage": "curated", **lineage},
               job.output("curated") / "_dataset.json")
    write_json(lineage, job.output("curated") / LINEAGE_FILE)
    profile.write_profile(valid, cfg.table, job.output("profile"))
    return {k: summary[k] for k in ("rows_in", "valid", "quarantined")}


def main(argv: list[str] | None = None) -> int:
    return job_main(SPEC, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
