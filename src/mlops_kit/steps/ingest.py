"""Ingest: source data into the lake's raw zone, Hive-partitioned by ingestion date, one
file per batch named by its content (`ingest_date=D/part-<data version>.parquet`).

The raw zone keeps the source as it came (CSV values stay text), plus `_source_row` so that
any row found bad later can be traced back to its line in the source. Only the headers
change: each column gets its safe name (`mlops_kit.config.names`), the name the lake uses.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlops_kit.config.model import FileSource, GeneratorSource, Schema
from mlops_kit.config.names import RESERVED, HeaderClash, map_headers
from mlops_kit.datasets import churn
from mlops_kit.fileio import sha256_file
from mlops_kit.steps.base import Job, StepError, StepSpec, job_main, write_json, write_parquet

SPEC = StepSpec("ingest", "processing", inputs=(), outputs=("raw",), optional_inputs=("source",))


def read_source(source: GeneratorSource | FileSource, base: Path) -> pd.DataFrame:
    """The source as a frame; files are resolved against `base` (the config's folder)."""
    if isinstance(source, GeneratorSource):
        return churn.generate(source.rows, source.seed, source.shift, source.start,
                              source.dirty_fraction)
    path = Path(source.path).expanduser()
    path = path if path.is_absolute() else base / path
    files = _files(path, source.kind)
    if source.kind == "csv":
        tables = [_read_csv(f, source.delimiter) for f in files]
    else:
        tables = [_read_parquet(f) for f in files]
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowInvalid as exc:
        raise StepError(f"source files under {path} do not share one schema: {exc}") from exc
    return table.to_pandas()


def source_rows(source: GeneratorSource | FileSource, schema: Schema,
                base: Path) -> pd.DataFrame:
    """The source's rows with each header replaced by its column's name (`read_source`)."""
    return named(read_source(source, base), schema)


def named(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """`frame` with its headers mapped to column names (a header the schema does not list
    gets its safe name); StepError when two headers name one column."""
    headers = [str(h) for h in frame.columns]
    try:
        mapped = map_headers(headers, schema.aliases, safe_extras=True)
    except HeaderClash as exc:
        raise StepError(f"the source's {exc}") from exc
    return frame.set_axis(mapped, axis=1) if mapped != headers else frame


def _files(path: Path, kind: str) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.rglob(f"*.{kind}"))
        if files:
            return files
        raise StepError(f"no *.{kind} files under {path} (data.source.path)")
    raise StepError(f"source not found: {path} (set data.source.path in the config)")


def _read_csv(path: Path, delimiter: str) -> pa.Table:
    try:
        parse = pacsv.ParseOptions(delimiter=delimiter)
        with pacsv.open_csv(path, parse_options=parse) as reader:
            names = reader.schema.names
        text = dict.fromkeys(names, pa.string())
        return pacsv.read_csv(
            path, parse_options=parse,
            convert_options=pacsv.ConvertOptions(  # only "" is null: `values` reads the rest
                column_types=text, strings_can_be_null=True, null_values=[""]),
        )
    except pa.ArrowInvalid as exc:
        raise StepError(f"{path}: not a readable CSV: {exc}") from exc


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StepError(f"{path}: not a readable Parquet file: {exc}") from exc


def ingest(frame: pd.DataFrame, ingest_date: dt.date) -> pd.DataFrame:
    """The raw-zone rows: the source unchanged plus its row numbers."""
    if frame.empty:
        raise StepError("the source has no rows: nothing to ingest")
    for name in RESERVED:
        if name in frame.columns:
            raise StepError(f"the source has a column named {name}, a name the kit reserves; "
                            f"declare it in data.schema.columns with `source: {name}` and "
                            "another `name:`")
    out = frame.reset_index(drop=True)
    out.insert(0, "_source_row", pd.RangeIndex(len(out), dtype="int64"))
    return out


def batch_file(data_version: str) -> str:
    """The raw file of one ingested batch, named by its content: the raw zone is append-only,
    so a same-day batch of other data lands beside this one and the same data lands on it."""
    return f"part-{data_version[:16]}.parquet"


def run(job: Job) -> dict[str, Any]:
    cfg = job.config.config
    date = dt.date.fromisoformat(job.params.get("ingest_date") or dt.date.today().isoformat())
    source = cfg.data.source
    override = job.optional_input("source")
    if override is not None and isinstance(source, FileSource):
        source = source.model_copy(update={"path": str(override)})
    frame = ingest(source_rows(source, cfg.table, job.config.root), date)
    folder = job.output("raw") / f"ingest_date={date.isoformat()}"
    written = write_parquet(frame, folder / "batch.parquet")
    version = sha256_file(written)
    written.replace(folder / batch_file(version))
    meta = {"table": cfg.table.table, "rows": len(frame), "columns": list(frame.columns),
            "data_version": version, "ingest_date": date.isoformat(), "source": source.kind}
    write_json(meta, job.output("raw") / "_dataset.json")
    return {"rows": len(frame), "data_version": version[:12]}


def main(argv: list[str] | None = None) -> int:
    return job_main(SPEC, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
