"""Validate: cast to the schema, quarantine each failing row with its reason, profile the rest.

Counts always reconcile: rows in = valid + quarantined. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.config.model import Column, Schema
from mlops_kit.config.names import RESERVED
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
META = RESERVED  # the kit's own columns in the raw zone


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


SHOWN = 3  # bad values shown per column and problem by `check_data`


@dataclass
class DataCheck:
    """What `mlops-kit validate` finds in a source file: errors (the run would fail or
    train on the wrong thing) and notes (rows the validate step will quarantine)."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_data(raw: pd.DataFrame, schema: Schema, task: str, limit: float) -> DataCheck:
    """The config against a source's rows, before any run: columns, values, the task."""
    out = DataCheck()
    present = [c for c in raw.columns if c not in META]
    missing = [c.header for c in schema.columns if c.name not in present]  # as the file has it
    extra = [c for c in present if c not in {c.name for c in schema.columns}]
    if missing:
        out.errors.append(f"columns missing from the data: {missing} (data.schema.columns "
                          f"lists them); the data has {present}")
    if extra and not schema.allow_extra_columns:
        out.errors.append(f"columns not in data.schema.columns: {extra}; add them or set "
                          "data.schema.allow_extra_columns: true")
    if missing or (extra and not schema.allow_extra_columns) or raw.empty:
        if raw.empty:
            out.errors.append("the data has no rows")
        return out
    lines = [line for c in schema.columns for line in _bad_values(raw[c.name], c, schema)]
    result = validate(raw, schema)
    if result.bad_fraction > limit:
        out.errors += [f"{len(result.quarantine):,} of {result.rows_in:,} rows "
                       f"({result.bad_fraction:.1%}) fail the schema, above "
                       f"data.max_bad_fraction {limit:.1%}: the run would stop at validate",
                       *lines]
    else:
        out.notes += lines
    out.errors += _task_fit(result.valid, schema, task)
    return out


def _bad_values(values: pd.Series, col: Column, schema: Schema) -> list[str]:
    """One line per problem of a column: how many rows, and the first few, with row numbers
    (1 is the first data row)."""
    parsed = parse(values, col.type)
    found = [*parsed.problems, *domain(parsed, col)]
    if col.name == schema.target:
        found.append((parsed.missing, "missing target"))
    else:
        found.append((required(parsed, col), "missing but not nullable"))
    out = []
    for mask, message in found:
        rows = np.flatnonzero(mask)
        if len(rows):
            shown = ", ".join(f"row {i + 1} {_short(values.iloc[i])}" for i in rows[:SHOWN])
            more = f" (and {len(rows) - SHOWN:,} more)" if len(rows) > SHOWN else ""
            noun = "value" if len(rows) == 1 else "values"
            out.append(f"{col.name} ({col.type}): {len(rows):,} {noun} {message}: "
                       f"{shown}{more}")
    return out


def _short(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _task_fit(valid: pd.DataFrame, schema: Schema, task: str) -> list[str]:
    """model.task against the target's values in the rows that pass validation."""
    target = valid[schema.target].dropna() if schema.target in valid else pd.Series([])
    distinct = sorted(map(str, target.unique()))
    head = f"model.task {task}: the target {schema.target!r}"
    if not len(target):
        return [f"{head} has no valid values: nothing to train on"]
    if task == "binary" and len(distinct) != 2:
        return [f"{head} has {len(distinct)} distinct values {_few(distinct)}; binary needs "
                "exactly 2 (use multiclass, or fix the data)"]
    if task == "multiclass" and len(distinct) < 2:
        return [f"{head} has one value only {_few(distinct)}; a classifier needs 2 or more"]
    if task == "multiclass" and len(distinct) > max(50, len(target) // 2):
        return [f"{head} has {len(distinct):,} distinct values in {len(target):,} rows "
                f"{_few(distinct)}: is this a regression target?"]
    return []


def _few(values: list[str]) -> str:
    return str(values if len(values) <= 5 else [*values[:5], "..."])


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
