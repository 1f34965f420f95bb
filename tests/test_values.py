"""One set of value rules: the same raw text means the same on the four paths that read it.

Each case puts one tricky value in one column of a row whose other values are plain, and reads
it as each path does: validate (the CSV through ingest's reader, then `validate`), serve (a CSV
request body through the codec), batch (a CSV file through the batch reader) and monitor (a
captured request body through the monitoring column reader). Each path's verdict is the value,
"missing" or "bad"; all four must agree with the table.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_kit.config.model import Column, FileSource, Schema
from mlops_kit.monitoring.columns import numbers, texts
from mlops_kit.serving import batch, codec
from mlops_kit.serving.capture import request_rows
from mlops_kit.steps import ingest, validate
from mlops_kit.steps.features import Feature, FeatureSet
from mlops_kit.values import (
    NOT_BOOL,
    NOT_FINITE,
    NOT_NUMBER,
    NOT_TEXT,
    NOT_TIME,
    NOT_UNICODE,
    NOT_WHOLE,
    OUT_OF_YEARS,
)

SCHEMA = Schema(columns=[
    Column(name="n", type="int"), Column(name="x", type="float"),
    Column(name="flag", type="bool"), Column(name="when", type="timestamp"),
    Column(name="plan", type="category", categories=["gold", "silver"]),
    Column(name="label", type="int")], target="label")
FEATURES = FeatureSet((Feature(name="n", inputs=["n"]), Feature(name="x", inputs=["x"]),
                       Feature(name="flag", inputs=["flag"]),
                       Feature(name="dow", transform="day_of_week", inputs=["when"]),
                       Feature(name="plan", transform="one_hot", inputs=["plan"])), SCHEMA)
PLAIN = {"n": "1", "x": "1.5", "flag": "true", "when": "2026-01-01", "plan": "gold"}
NAMES = FEATURES.inputs  # n, x, flag, when, plan
TYPE_ERRORS = (NOT_NUMBER, NOT_FINITE, NOT_WHOLE, NOT_BOOL, NOT_TIME, OUT_OF_YEARS, NOT_TEXT,
               NOT_UNICODE)
BAD, MISSING = "bad", "missing"


def ts(text: str) -> np.datetime64:
    return np.datetime64(text, "us")


CASES: list[tuple[str, str, Any]] = [
    ("n", "1", 1.0), ("n", " 3 ", 3.0), ("n", "1.0", 1.0), ("n", "+5", 5.0), ("n", "-0", 0.0),
    ("n", "1.5", BAD), ("n", "1e400", BAD), ("n", "inf", BAD), ("n", "abc", BAD),
    ("n", "1_000", BAD), ("n", "0x10", BAD), ("n", "\u0663", BAD), ("n", "NaN", MISSING),
    ("n", "NA", MISSING), ("n", "", MISSING), ("n", "   ", MISSING),
    ("x", ".5", 0.5), ("x", "-1.5e3", -1500.0), ("x", "-inf", BAD), ("x", "Infinity", BAD),
    ("x", "null", MISSING),
    ("flag", "yes", 1.0), ("flag", "t", 1.0), ("flag", "1", 1.0), ("flag", "TRUE", 1.0),
    ("flag", " no ", 0.0), ("flag", "f", 0.0), ("flag", "0", 0.0), ("flag", "1.0", BAD),
    ("flag", "maybe", BAD), ("flag", "", MISSING),
    ("when", "2026-02-03", ts("2026-02-03")),
    ("when", "2026-02-03T04:05:06Z", ts("2026-02-03T04:05:06")),
    ("when", "2026-02-03T04:05:06+02:00", ts("2026-02-03T02:05:06")),
    ("when", "2026-02-03 04:05", ts("2026-02-03T04:05")),
    ("when", "2026-02-30", BAD), ("when", "now", BAD), ("when", "0999-12-31", BAD),
    ("when", "99999-01-01", BAD), ("when", "", MISSING),
    ("plan", "gold", "gold"), ("plan", "platinum", "platinum"), ("plan", " gold", " gold"),
    ("plan", "NA", "NA"), ("plan", "none", "none"), ("plan", "", MISSING),
    ("plan", "  ", MISSING),
]


def rows() -> list[dict[str, str]]:
    return [{**PLAIN, column: raw, "label": "1"} for column, raw, _ in CASES]


def csv_text(records: list[dict[str, str]], names: list[str], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if header:
        writer.writerow(names)
    writer.writerows([[r[n] for n in names] for r in records])
    return out.getvalue()


def verdict(value: Any) -> Any:
    """A parsed value as the table writes it."""
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and np.isnan(value)):
        return MISSING
    if isinstance(value, np.datetime64 | pd.Timestamp):
        return MISSING if pd.isna(value) else np.datetime64(value, "us")
    return value if isinstance(value, str) else float(value)


def by_validate(tmp_path: Path) -> list[Any]:
    names = [c.name for c in SCHEMA.columns]
    (tmp_path / "data.csv").write_text(csv_text(rows(), names, header=True))
    raw = ingest.ingest(ingest.read_source(FileSource(kind="csv", path="data.csv"), tmp_path),
                        pd.Timestamp("2026-01-01").date())
    result = validate.validate(raw, SCHEMA)
    reasons = dict(zip(result.quarantine["_source_row"], result.quarantine["_reason"],
                       strict=True))
    valid = result.valid.set_index("_source_row")
    out = []
    for i, (column, _, _) in enumerate(CASES):
        mine = [r for r in reasons.get(i, "").split("; ") if r.startswith((f"{column}=",
                                                                            f"{column}:"))]
        if any(r.endswith(TYPE_ERRORS) for r in mine):
            out.append(BAD)
        elif mine:  # a range or category rule: the value parsed, validation keeps it out
            cell = raw.loc[raw["_source_row"] == i, column].iloc[0]
            assert cell not in PLAIN.values() and "not one of" in mine[0]
            out.append(cell)
        else:
            out.append(verdict(valid.loc[i, column]))
    return out


def by_serving() -> list[Any]:
    out = []
    for (column, _, _), record in zip(CASES, rows(), strict=True):
        payload = codec.decode(csv_text([record], NAMES, header=False).encode(), "text/csv")
        try:
            typed, _ = codec.columns(payload, FEATURES)
        except codec.BadRequest as exc:
            assert f"column {column}:" in str(exc), exc
            out.append(BAD)
            continue
        out.append(verdict(typed[column][0]))
    return out


def by_batch(tmp_path: Path) -> list[Any]:
    out = []
    for i, ((column, _, _), record) in enumerate(zip(CASES, rows(), strict=True)):
        source = tmp_path / f"case{i}.csv"
        source.write_text(csv_text([record], NAMES, header=False))
        (build, _), = batch.typed_chunks(FEATURES, source, 100)
        try:
            typed = build()
        except codec.BadRequest as exc:
            assert f"column {column}:" in str(exc), exc
            out.append(BAD)
            continue
        out.append(verdict(typed[column][0]))
    return out


def by_monitoring() -> list[Any]:
    out = []
    for (column, _, _), record in zip(CASES, rows(), strict=True):
        body = csv_text([record], NAMES, header=False)
        series = request_rows(body, "text/csv", NAMES)[column]
        kind = SCHEMA.column(column).type
        col = numbers(series, kind) if kind in ("int", "float", "timestamp") else texts(
            series, kind)
        if col.bad:
            out.append(BAD)
        elif col.missing:
            out.append(MISSING)
        elif kind == "timestamp":
            out.append(np.datetime64(int(col.values[0] * 1e6), "us"))
        elif kind == "bool":
            out.append({"true": 1.0, "false": 0.0}[col.values.iloc[0]])
        else:
            value = col.values.iloc[0] if isinstance(col.values, pd.Series) else col.values[0]
            out.append(verdict(value))
    return out


def test_the_same_raw_text_means_the_same_on_all_four_paths(tmp_path: Path) -> None:
    expected = [want for _, _, want in CASES]
    got = {"validate": by_validate(tmp_path), "serve": by_serving(),
           "batch": by_batch(tmp_path), "monitor": by_monitoring()}
    wrong = [(CASES[i][0], CASES[i][1], {path: seen[i] for path, seen in got.items()}, want)
             for i, want in enumerate(expected)
             if any(not _same(seen[i], want) for seen in got.values())]
    assert not wrong, "\n".join(map(repr, wrong))


def _same(seen: Any, want: Any) -> bool:
    if isinstance(want, np.datetime64):
        return isinstance(seen, np.datetime64) and seen == want
    return type(seen) is type(want) and seen == want


@pytest.mark.parametrize(("raw", "message"), [("1.5", NOT_WHOLE), ("abc", NOT_NUMBER),
                                              ("1e400", NOT_FINITE)])
def test_validate_and_serve_give_the_same_reason(raw: str, message: str) -> None:
    frame = pd.DataFrame({**{k: [v] for k, v in PLAIN.items()}, "n": [raw], "label": ["1"]})
    reason = validate.validate(frame, SCHEMA).quarantine["_reason"].iloc[0]
    assert reason == f"n={raw}: {message}"
    with pytest.raises(codec.BadRequest, match=f"column n: '{raw}' is {message}"):
        codec.coerce([raw], SCHEMA.column("n"))
