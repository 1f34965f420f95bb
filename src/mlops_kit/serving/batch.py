"""Batch inference: stream a CSV, JSON Lines or Parquet file through the handler in chunks.

The output is what SageMaker Batch Transform writes with `SplitType=Line` and
`AssembleWith=Line`: `<input name>.out`, one prediction line per input row, in input order
(a multiclass CSV output starts with one line naming the classes).
It is written to a temporary file and renamed at the end, so a failure leaves no output.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.config.names import HeaderClash, map_headers
from mlops_kit.fileio import temp_file
from mlops_kit.models import PackagedModel
from mlops_kit.serving import codec
from mlops_kit.serving.codec import CSV, JSON, BadRequest, Payload
from mlops_kit.steps.features import FeatureSet


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
    fd, tmp = temp_file(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for build, n in typed_chunks(model.features, source, chunk_rows):
                try:
                    typed = build()
                except BadRequest as exc:
                    raise BatchError(f"{source}: {_shift(str(exc), rows + 1)}") from exc
                scores = model.predict_typed(typed, n)
                if rows == 0 and accept == CSV and scores.ndim == 2:
                    out.write(codec.class_header(model.meta.classes) + "\n")
                out.write(_lines(scores, model, accept))
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
        return codec.encode(scores, model.meta.task, model.meta.classes, CSV,
                            header=False)[0].decode()
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


# A chunk: its row count and how to build its typed columns (BadRequest for a bad value,
# with rows counted from the chunk's first).
Chunk = tuple[Callable[[], dict[str, np.ndarray]], int]


def typed_chunks(features: FeatureSet, source: Path, size: int) -> Iterator[Chunk]:
    """The file's rows in chunks of `size`, each with how to build its typed source columns
    (the values read as the server reads them: `codec.coerce`)."""
    suffix = source.suffix.lower()
    if suffix in (".parquet", ".pq"):
        yield from _parquet(features, source, size)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        yield from _decoded(features, size, _json_objects(features, source))
    else:
        yield from _csv(features, source, size)


def _decoded(features: FeatureSet, size: int, rows: Iterator[Any]) -> Iterator[Chunk]:
    while chunk := list(itertools.islice(rows, size)):
        yield functools.partial(_columns, Payload(chunk, CSV), features), len(chunk)


def _columns(payload: Payload, features: FeatureSet) -> dict[str, np.ndarray]:
    return codec.columns(payload, features)[0]


def _csv(features: FeatureSet, source: Path, size: int) -> Iterator[Chunk]:
    """CSV in request order, read by pyarrow as text. A first row naming every column the
    model reads (by header or name) is a header: columns are then picked by name and any
    others ignored."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = features.inputs
    with source.open(newline="", encoding="utf-8") as fh:
        head = next(csv.reader(fh), None)
    if not head:
        return
    header = codec.is_header(head, names, features.aliases)
    if not header and len(head) != len(names):
        raise BatchError(f"{source}: row 1 has {len(head)} values, expected {len(names)}: "
                         f"{', '.join(names)}")
    try:
        columns = map_headers(head, features.aliases, only=names) if header else names
    except HeaderClash as exc:
        raise BatchError(f"{source}: the header line: {exc}") from exc
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=int(header),
                                           block_size=1 << 22),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False,
                include_columns=names))
        for block in reader:
            for start in range(0, block.num_rows, size):
                part = block.slice(start, size)
                yield _typed(features, part, _arrow_values), part.num_rows
    except pa.ArrowInvalid as exc:
        raise BatchError(f"{source}: malformed CSV: {exc}") from exc


def _typed(features: FeatureSet, part: Any, values: Callable[[Any, str], Any]
           ) -> Callable[[], dict[str, np.ndarray]]:
    """Build a part's typed columns (`values(part, name)` reads one column's values)."""
    schema = features.schema
    return lambda: {n: codec.coerce(values(part, n), schema.column(n)) for n in features.inputs}


def _arrow_values(part: Any, name: str) -> Any:
    return part.column(name)


def _json_objects(features: FeatureSet, source: Path) -> Iterator[Any]:
    """The file's JSON rows; a first line that is a header (a list naming every column the
    model reads) names the value lists of every line after it, in every chunk."""
    rows = _json_lines(source)
    first = next(rows, None)
    if first is None:
        return
    if not (type(first) is list and codec.is_header(first, features.inputs, features.aliases)):
        yield first
        yield from rows
        return
    try:
        head = map_headers(first, features.aliases, only=features.inputs)
    except HeaderClash as exc:
        raise BatchError(f"{source}: the header line: {exc}") from exc
    for number, row in enumerate(rows, 1):
        if type(row) is not list or len(row) != len(head):
            raise BatchError(f"{source}: row {number} after the header line is not "
                             f"{len(head)} values like it")
        yield dict(zip(head, row, strict=True))


def _json_lines(source: Path) -> Iterator[Any]:
    with source.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BatchError(f"{source}: line {number}: malformed JSON: {exc}") from exc


def _parquet(features: FeatureSet, source: Path, size: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    names = features.inputs
    try:
        parquet = pq.ParquetFile(source)
    except Exception as exc:
        raise BatchError(f"{source}: not a readable Parquet file: {exc}") from exc
    present = parquet.schema_arrow.names
    try:
        mapped = dict(zip(map_headers(present, features.aliases, only=names), present,
                          strict=True))
    except HeaderClash as exc:
        raise BatchError(f"{source}: {exc}") from exc
    missing = sorted(set(names) - set(mapped))
    if missing:
        raise BatchError(f"{source}: columns {missing} are missing; the model reads {names}")
    renamed = {mapped[n]: n for n in names}
    for batch in parquet.iter_batches(batch_size=size, columns=list(renamed)):
        frame = batch.to_pandas().rename(columns=renamed)
        yield _typed(features, frame, _parquet_values), batch.num_rows


def _parquet_values(frame: pd.DataFrame, name: str) -> Any:
    """Typed timestamps as datetime64 (UTC, naive); anything else as values, None if absent."""
    series = frame[name]
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.dt.tz_localize(None) if series.dt.tz is not None else series
        return values.to_numpy(dtype="datetime64[us]")
    return series.astype(object).where(series.notna(), None).tolist()


__all__ = ["JSON", "BatchError", "BatchResult", "transform"]
