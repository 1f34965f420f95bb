"""Batch inference: stream a CSV, JSON Lines or Parquet file through the handler in chunks.

The output is what SageMaker Batch Transform writes with `SplitType=Line` and
`AssembleWith=Line`: `<input name>.out`, one prediction line per input row, in input order.
It is written to a temporary file and renamed at the end, so a failure leaves no output.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.models import PackagedModel
from mlops_kit.serving import codec
from mlops_kit.serving.codec import CSV, JSON, BadRequest, Payload


class BatchError(Exception):
    """Input that cannot be transformed; the message names the file and the row."""


@dataclass
class BatchResult:
    output: Path
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def output_path(source: Path, dest: str | Path) -> Path:
    """`dest` itself, or `dest/<source name>.out` when `dest` is a folder (or ends in /)."""
    if Path(dest).is_dir() or str(dest).endswith(("/", os.sep)):
        return Path(dest) / f"{source.name}.out"
    return Path(dest)


def transform(model: PackagedModel, source: Path, dest: str | Path, *, chunk_rows: int = 10_000,
              accept: str = CSV) -> BatchResult:
    """Predict every row of `source` into `dest`; BatchError (and no output) on bad input."""
    if not source.is_file():
        raise BatchError(f"{source}: input file not found")
    target = output_path(source, dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    started, rows = time.perf_counter(), 0
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for typed, n in _chunks(model, source, chunk_rows):
                out.write(_lines(model.predict_typed(typed, n), model, accept))
                rows += n
        if rows == 0:
            raise BatchError(f"{source}: no rows to transform")
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return BatchResult(target, rows, time.perf_counter() - started)


def _lines(scores: np.ndarray, model: PackagedModel, accept: str) -> str:
    if accept == CSV:
        return codec.encode(scores, model.meta.task, model.meta.classes, CSV)[0].decode()
    recs = codec.records(scores, model.meta.task, model.meta.classes)
    return "".join(json.dumps(r) + "\n" for r in recs)


def _shift(message: str, first_row: int) -> str:
    """Chunk-relative `row N` -> file-relative row number."""
    if message.startswith("row "):
        head, _, rest = message[4:].partition(" ")
        number = head.rstrip(",")
        if number.isdigit():
            return f"row {int(number) + first_row - 1}{head[len(number):]} {rest}"
    return message


Chunk = tuple[dict[str, np.ndarray], int]


def _chunks(model: PackagedModel, source: Path, size: int) -> Iterator[Chunk]:
    suffix = source.suffix.lower()
    if suffix in (".parquet", ".pq"):
        yield from _parquet(model, source, size)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        yield from _decoded(model, source, size, _json_lines(source))
    else:
        yield from _csv(model, source, size)


def _decoded(model: PackagedModel, source: Path, size: int,
             rows: Iterator[Any]) -> Iterator[Chunk]:
    first = 1
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        try:
            typed, n = codec.columns(Payload(chunk, CSV), model.features)
        except BadRequest as exc:
            raise BatchError(f"{source}: {_shift(str(exc), first)}") from exc
        yield typed, n
        first += n


def _csv(model: PackagedModel, source: Path, size: int) -> Iterator[Chunk]:
    """CSV in request order, read by pyarrow as text. A first row holding the model's column
    names is a header: columns are then picked by name and any others ignored."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = model.features.inputs
    with source.open(newline="", encoding="utf-8") as fh:
        head = next(csv.reader(fh), None)
    if not head:
        return
    header = set(names) <= set(head)
    if not header and len(head) != len(names):
        raise BatchError(f"{source}: row 1 has {len(head)} values, expected {len(names)}: "
                         f"{', '.join(names)}")
    columns = head if header else names
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=int(header),
                                           block_size=1 << 22),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False,
                include_columns=names))
        first = 1
        for block in reader:
            for start in range(0, block.num_rows, size):
                part = block.slice(start, size)
                yield _typed_part(model, source, part, first), part.num_rows
                first += part.num_rows
    except pa.ArrowInvalid as exc:
        raise BatchError(f"{source}: malformed CSV: {exc}") from exc


def _typed_part(model: PackagedModel, source: Path, part: Any, first: int) -> dict[str, Any]:
    schema = model.features.schema
    try:
        return {n: codec.coerce(part.column(n).to_numpy(zero_copy_only=False),
                                schema.column(n)) for n in model.features.inputs}
    except BadRequest as exc:
        raise BatchError(f"{source}: {_shift(str(exc), first)}") from exc


def _json_lines(source: Path) -> Iterator[Any]:
    with source.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BatchError(f"{source}: line {number}: malformed JSON: {exc}") from exc


def _parquet(model: PackagedModel, source: Path, size: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    names = model.features.inputs
    try:
        parquet = pq.ParquetFile(source)
    except Exception as exc:
        raise BatchError(f"{source}: not a readable Parquet file: {exc}") from exc
    missing = sorted(set(names) - set(parquet.schema_arrow.names))
    if missing:
        raise BatchError(f"{source}: columns {missing} are missing; the model reads {names}")
    first = 1
    for batch in parquet.iter_batches(batch_size=size, columns=names):
        frame = batch.to_pandas()
        try:
            typed = {n: _typed(frame[n], model, n) for n in names}
        except BadRequest as exc:
            raise BatchError(f"{source}: {_shift(str(exc), first)}") from exc
        yield typed, len(frame)
        first += len(frame)


def _typed(series: pd.Series, model: PackagedModel, name: str) -> np.ndarray:
    col = model.features.schema.column(name)
    if col.type == "timestamp" and pd.api.types.is_datetime64_any_dtype(series):
        values = series.dt.tz_localize(None) if series.dt.tz is not None else series
        typed = values.to_numpy(dtype="datetime64[us]")
        if not col.nullable and np.isnat(typed).any():
            row = int(np.argmax(np.isnat(typed))) + 1
            raise BadRequest(f"row {row}, column {name}: a value is required "
                             "(the column is not nullable)")
        return typed
    values = series.astype(object).where(series.notna(), None).tolist()
    return codec.coerce(values, col)


__all__ = ["JSON", "BatchError", "BatchResult", "transform"]
