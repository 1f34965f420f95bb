"""Request and response bodies: CSV, JSON and JSON Lines in, CSV or JSON out.

Requests carry source rows (the columns the features read, in schema order). Every value is
checked against its column's type and nullability, and any fault is a `BadRequest` naming the
row, the column and what is allowed, never a crash or a silent NaN. Values outside a column's
range or categories are still served, as the world drifts: monitoring reports them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.config.model import Column
from mlops_kit.steps.features import FeatureSet

CSV, JSON, JSONL = "text/csv", "application/json", "application/jsonlines"
ALIASES = {"application/x-ndjson": JSONL, "application/jsonl": JSONL, "text/plain": CSV}
TRUE, FALSE = {"true", "1", "yes", "t", "y"}, {"false", "0", "no", "f", "n"}


class BadRequest(Exception):
    """A request the server refuses, with its HTTP status (4xx) and a message for the caller."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def shorten(text: str, limit: int = 100) -> str:
    """`text` cut to `limit` characters, saying how much was cut: errors never echo unbounded
    input back."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


@dataclass
class Payload:
    """A decoded request: rows as lists (positional) or dicts (by name), and its media type."""

    rows: list[Any]
    content_type: str


def media_type(header: str | None, default: str = CSV) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`, aliases resolved; `default` if absent."""
    kind = (header or "").split(";")[0].strip().lower()
    return ALIASES.get(kind, kind) or default


def decode(body: bytes, content_type: str | None) -> Payload:
    """Parse a request body into rows; BadRequest (415) for a type we do not read."""
    kind = media_type(content_type)
    if not body.strip():
        raise BadRequest("empty request body: send at least one row")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 text (byte {exc.start})") from exc
    if kind == CSV:
        return Payload(csv_rows(text), kind)
    if kind == JSON:
        return Payload(_json_rows(_json(text)), kind)
    if kind == JSONL:
        lines = [line for line in text.splitlines() if line.strip()]
        return Payload([_json(line, i) for i, line in enumerate(lines, 1)], kind)
    raise BadRequest(f"unsupported content type {shorten(repr(kind))}: send {CSV}, {JSON} or "
                     f"{JSONL}", 415)


def csv_rows(text: str) -> list[list[str]]:
    """Rows of a header-less CSV body (quoted fields allowed); blank lines are skipped."""
    if '"' not in text:
        return [line.split(",") for line in text.replace("\r", "").split("\n") if line.strip()]
    try:
        return [row for row in csv.reader(io.StringIO(text), strict=True) if row]
    except csv.Error as exc:
        raise BadRequest(f"malformed CSV: {exc}") from exc


def _json(text: str, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise BadRequest("malformed JSON: nested too deeply") from exc
    except json.JSONDecodeError as exc:
        where = f"line {line}: " if line else ""
        raise BadRequest(f"malformed JSON: {where}{exc}") from exc
    except ValueError as exc:  # an integer longer than Python converts
        where = f"line {line}: " if line else ""
        raise BadRequest(f"malformed JSON: {where}an integer has more than "
                         f"{sys.get_int_max_str_digits()} digits") from exc


def _json_rows(doc: Any) -> list[Any]:
    """`{"instances": [...]}`, a list of rows, or one row (an object or a list of values)."""
    if isinstance(doc, dict):
        if "instances" in doc:
            doc = doc["instances"]
            if not isinstance(doc, list):
                raise BadRequest('"instances" must be a list of rows')
        else:
            return [doc]
    if not isinstance(doc, list):
        raise BadRequest("JSON body must be an object, a list of rows or {\"instances\": [...]}")
    if doc and not isinstance(doc[0], (dict, list)):
        return [doc]
    return doc


def columns(payload: Payload, features: FeatureSet) -> tuple[dict[str, np.ndarray], int]:
    """Typed source columns (see `features.typed_column`) and the row count of a request."""
    rows = payload.rows
    if not rows:
        raise BadRequest("the request has no rows")
    names = features.inputs
    schema = features.schema
    if all(type(row) is list for row in rows):
        values = _positional(rows, names)
    else:
        values = _by_name(rows, names, {c.name for c in schema.columns})
    return {n: coerce(v, schema.column(n)) for n, v in zip(names, values, strict=True)}, len(rows)


def _positional(rows: list[Any], names: list[str]) -> list[Sequence[Any]]:
    """Columns of rows given as value lists (all of the right length)."""
    if len(set(map(len, rows))) != 1 or len(rows[0]) != len(names):
        i, row = next((i, r) for i, r in enumerate(rows, 1) if len(r) != len(names))
        raise BadRequest(f"row {i} has {len(row)} values, expected {len(names)}: "
                         f"{', '.join(names)}")
    return list(zip(*rows, strict=True))


def _by_name(rows: list[Any], names: list[str], known: set[str]) -> list[Sequence[Any]]:
    """Columns of rows given as objects (or a mix of objects and value lists)."""
    by_name: dict[str, list[Any]] = {n: [] for n in names}
    for i, row in enumerate(rows, 1):
        if isinstance(row, dict):
            unknown = sorted(set(row) - known)
            if unknown:
                raise BadRequest(f"row {i}: unknown field(s) {shorten(repr(unknown))}; "
                                 f"fields are {names}")
            for n in names:
                by_name[n].append(row.get(n))
        elif isinstance(row, list):
            if len(row) != len(names):
                raise BadRequest(f"row {i} has {len(row)} values, expected {len(names)}: "
                                 f"{', '.join(names)}")
            for n, v in zip(names, row, strict=True):
                by_name[n].append(v)
        else:
            raise BadRequest(f"row {i}: a row is a list of values or an object, got "
                             f"{shorten(repr(row))}")
    return [by_name[n] for n in names]


def _absent(values: Sequence[Any]) -> np.ndarray:
    """Which values are missing: None, an empty string, or NaN."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return np.asarray(pd.isna(arr) | (arr == ""), dtype=bool)


def _missing(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, float) and math.isnan(v))


def coerce(values: Sequence[Any], col: Column) -> np.ndarray:
    """One column's values as the transforms take them, checked against the schema."""
    kind = col.type
    if kind in ("int", "float"):
        out = _numbers(values, col)
    elif kind == "bool":
        out = _bools(values, col)
    elif kind == "timestamp":
        out = _timestamps(values, col)
    else:
        out = _texts(values, col)
    if not col.nullable:
        absent = pd.isna(out)
        if absent.any():
            row = int(np.argmax(absent)) + 1
            raise BadRequest(f"row {row}, column {col.name}: a value is required "
                             "(the column is not nullable)")
    return out


def _texts(values: Sequence[Any], col: Column) -> np.ndarray:
    """Category and string values: text (numbers as their text), never lists or objects."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    out[_absent(values)] = None
    if not set(map(type, out)) <= {str, type(None)}:
        for i, v in enumerate(out, 1):
            if (v is not None and not isinstance(v, (str, int, float))) or isinstance(v, bool):
                raise BadRequest(f"row {i}, column {col.name}: {v!r} is not a text value")
        out = np.array([None if v is None else str(v) for v in out], dtype=object)
    _utf8(out, col)
    return out


def _utf8(texts: Iterable[Any], col: Column) -> None:
    """Refuse text that cannot be stored (lone surrogates from JSON escapes)."""
    strings = [v for v in texts if isinstance(v, str)]
    try:
        "".join(strings).encode("utf-8")
        return
    except UnicodeEncodeError:
        pass
    for i, v in enumerate(texts, 1):
        if isinstance(v, str) and not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadRequest(f"row {i}, column {col.name}: not valid Unicode text "
                                 f"({exc.reason})") from exc


def _numbers(values: Sequence[Any], col: Column) -> np.ndarray:
    raw = np.empty(len(values), dtype=object)
    raw[:] = values
    raw[_absent(values)] = math.nan
    if bool in set(map(type, raw)):
        row, value = _first_bad(raw, lambda v: type(v) is not bool)
        raise BadRequest(f"row {row}, column {col.name}: {value!r} is not a number")
    try:
        out = raw.astype("float64")
    except (TypeError, ValueError, OverflowError):
        out = None
    if out is None or (out.size and not np.isfinite(out[~np.isnan(out)]).all()):
        row, value = _first_bad(values, _is_number)
        raise BadRequest(f"row {row}, column {col.name}: {value!r} is not a finite number")
    if col.type == "int":
        whole = np.isnan(out) | (out == np.round(out))
        if not whole.all():
            row = int(np.argmin(whole)) + 1
            raise BadRequest(f"row {row}, column {col.name}: {values[row - 1]!r} is not a "
                             "whole number")
    return out


def _is_number(v: Any) -> bool:
    if _missing(v) or isinstance(v, bool):
        return _missing(v)
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError, OverflowError):
        return False


def _first_bad(values: Iterable[Any], ok: Any) -> tuple[int, Any]:
    return next((i, v) for i, v in enumerate(values, 1) if not ok(v))


def _bools(values: Sequence[Any], col: Column) -> np.ndarray:
    out = np.empty(len(values), dtype="float64")
    for i, v in enumerate(values):
        text = "" if _missing(v) else str(v).strip().lower()
        if text in TRUE:
            out[i] = 1.0
        elif text in FALSE:
            out[i] = 0.0
        elif text == "":
            out[i] = math.nan
        else:
            raise BadRequest(f"row {i + 1}, column {col.name}: {v!r} is not a boolean "
                             "(true/false, 1/0, yes/no)")
    return out


def _timestamps(values: Sequence[Any], col: Column) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":  # already typed (Parquet)
        return values.astype("datetime64[us]")
    texts = ["NaT" if _missing(v) else v for v in values]
    if not all(isinstance(t, str) for t in texts):
        row, value = _first_bad(texts, lambda t: isinstance(t, str))
        raise BadRequest(f"row {row}, column {col.name}: {value!r} is not an ISO 8601 timestamp")
    _utf8(texts, col)
    words = {"now", "today"} & {t.strip().lower() for t in texts}
    if words:  # numpy reads these as the current time: not data
        row, value = _first_bad(texts, lambda t: t.strip().lower() not in words)
        raise BadRequest(f"row {row}, column {col.name}: {value!r} is not an ISO 8601 timestamp")
    try:  # naive ISO 8601 parses fast in numpy; a time zone (deprecated there) goes to pandas
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return _in_range(np.array(texts, dtype="datetime64[us]"), texts, col)
    except (ValueError, OverflowError, Warning):
        pass
    try:
        ts = pd.to_datetime(pd.Series(texts), errors="coerce", utc=True, format="ISO8601")
    except Exception:  # pandas and pyarrow raise several types on odd text
        ts = pd.Series([pd.NaT] * len(texts), dtype="datetime64[us, UTC]")
    bad = ts.isna().to_numpy() & np.array([t != "NaT" for t in texts])
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise BadRequest(f"row {row}, column {col.name}: {texts[row - 1]!r} is not an ISO 8601 "
                         "timestamp")
    return _in_range(ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]"), texts, col)


def _in_range(ts: np.ndarray, texts: list[Any], col: Column) -> np.ndarray:
    """Years 1000 to 9999 only: numpy accepts far larger ones."""
    bad = ~np.isnat(ts) & ((ts < np.datetime64("1000-01-01")) | (ts > np.datetime64("9999-12-31")))
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise BadRequest(f"row {row}, column {col.name}: {texts[row - 1]!r} is outside the "
                         "years 1000-9999")
    return ts


def encode(scores: np.ndarray, task: str, classes: list[Any], accept: str) -> tuple[bytes, str]:
    """Predictions as SageMaker's built-in algorithms answer: CSV lines or JSON objects."""
    if accept == CSV:
        if scores.ndim == 2:
            lines = [",".join(map("%.8g".__mod__, row)) for row in scores.tolist()]
        else:
            lines = list(map("%.8g".__mod__, scores.tolist()))
        return ("\n".join(lines) + "\n").encode(), CSV
    return json.dumps({"predictions": records(scores, task, classes)}).encode(), JSON


def records(scores: np.ndarray, task: str, classes: list[Any]) -> list[dict[str, Any]]:
    """One JSON object per row: the score(s) and, for classifiers, the predicted label."""
    if task == "regression":
        return [{"score": v} for v in scores.tolist()]
    if scores.ndim == 2:
        labels = scores.argmax(axis=1).tolist()
        return [{"scores": row, "predicted_label": classes[k]}
                for row, k in zip(scores.tolist(), labels, strict=True)]
    return [{"score": p, "predicted_label": classes[int(p >= 0.5)]} for p in scores.tolist()]


def accept_type(header: str | None, content_type: str) -> str:
    """The response type: the Accept header's first type we write, else like the request."""
    for part in (header or "").split(","):
        kind = media_type(part, "")
        if kind in (CSV, JSON):
            return kind
        if kind == JSONL:
            return JSON
        if kind in ("", "*/*", "application/*", "text/*"):
            return CSV if content_type == CSV else JSON
    raise BadRequest(f"cannot answer in {shorten(repr(header))}: accept {CSV} or {JSON}", 406)
