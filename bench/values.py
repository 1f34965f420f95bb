"""Value parsing: rows/s of the shared value rules (`mlops_kit.values`) on the paths that read
whole columns, against plain pandas parsing of the same columns in the same run.

Run from the repository root:

    .venv/bin/python bench/values.py                 # 200,000 rows, best of 3
    .venv/bin/python bench/values.py --rows 50000  # smaller

The data: `--rows` clean rows of the churn generator (seed 3; batch and serve stop at the first
bad value), written as CSV and read back as text, so every value is parsed.
Timed, best of `--repeat`:

- **validate**: `steps.validate.validate` on the text frame (value rules, domains, quarantine).
- **batch**: `codec.coerce` on each input column of pyarrow's text columns, as batch scoring does.
- **peer**: plain pandas on the same columns: `pd.to_numeric(errors="coerce")` for numbers,
  `pd.to_datetime(format="ISO8601", errors="coerce", utc=True)` for timestamps, `astype(str)`
  for text. It checks nothing (no reasons, no domains), so it is a floor, not a rival.
- **serve**: one JSON request's columns through `codec.coerce` (1 row and 100 rows), µs each.

Prints a table and writes `bench/results/values.json`.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from mlops_kit.config import load_config
from mlops_kit.config.model import Schema
from mlops_kit.datasets.churn import generate
from mlops_kit.serving import batch as scoring
from mlops_kit.serving import codec
from mlops_kit.steps.validate import validate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "values.json"


def text_table(rows: int) -> pa.Table:
    """The generator's rows as CSV text, read back with every column as text."""
    buf = io.BytesIO()
    generate(rows, seed=3, dirty_fraction=0.0).to_csv(buf, index=False)
    buf.seek(0)
    head = buf.getvalue().split(b"\n", 1)[0].decode().split(",")
    return pacsv.read_csv(buf, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(head, pa.string()), strings_can_be_null=False))


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batch(table: pa.Table, schema: Schema) -> None:
    for col in schema.columns:
        codec.coerce(scoring._arrow_values(table, col.name), col)  # as batch reads a CSV


def peer(frame: pd.DataFrame, schema: Schema) -> None:
    for col in schema.columns:
        values = frame[col.name]
        if col.type in ("int", "float", "bool"):
            pd.to_numeric(values, errors="coerce")
        elif col.type == "timestamp":
            pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
        else:
            values.astype(str)


def serve_us(frame: pd.DataFrame, schema: Schema, rows: int, loops: int) -> float:
    """µs per request: a JSON body's values decoded and coerced column by column."""
    records = json.loads(frame.head(rows).to_json(orient="records"))
    cols = [c for c in schema.columns if c.name != schema.target]

    def one() -> None:
        for col in cols:
            codec.coerce([r[col.name] for r in records], col)

    one()
    start = time.perf_counter()
    for _ in range(loops):
        one()
    return (time.perf_counter() - start) / loops * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = load_config(ROOT / "mlops.yaml").config.table
    table = text_table(args.rows)
    frame = table.to_pandas()
    n = table.num_rows
    seconds = {
        "validate": best(lambda: validate(frame, schema), args.repeat),
        "batch": best(lambda: batch(table, schema), args.repeat),
        "peer": best(lambda: peer(frame, schema), args.repeat),
    }
    serve = {f"{r} rows": serve_us(frame, schema, r, 2000 if r == 1 else 500) for r in (1, 100)}
    print(f"{n:,} rows x {len(schema.columns)} columns, best of {args.repeat}")
    print("| path | rows/s | seconds | / peer |\n|---|---|---|---|")
    for name, sec in seconds.items():
        print(f"| {name} | {n / sec:,.0f} | {sec:.3f} | {sec / seconds['peer']:.2f}x |")
    for name, us in serve.items():
        print(f"| serve, one request of {name} | {us:,.0f} µs | | |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": n, "seconds": seconds, "serve_us": serve}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
