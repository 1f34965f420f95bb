"""Request and response bodies: CSV, JSON and JSON Lines in, CSV or JSON out.

Requests carry source rows (the columns the features read, in schema order, or named: JSON
fields, or a CSV header line, by each column's header or name). Every value is
checked against its column's type and nullability, and any fault is a `BadRequest` naming the
row, the column and what is allowed, never a crash or a silent NaN. Values outside a column's
range or categories are still served, as the world drifts: monitoring reports them.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mlops_kit.config.model import Column
from mlops_kit.config.names import HeaderClash, map_headers
from mlops_kit.steps.features import FeatureSet
from mlops_kit.values import parse, required

CSV, JSON, JSONL = "text/csv", "application/json", "application/jsonlines"
ALIASES = {"application/x-ndjson": JSONL, "application/jsonl": JSONL, "text/plain": CSV}


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
    rows = named_rows(rows, names, features.aliases)
    if all(type(row) is list for row in rows):
        values = _positional(rows, names)
    else:
        values = _by_name(rows, names, {c.name for c in schema.columns})
    return {n: coerce(v, schema.column(n)) for n, v in zip(names, values, strict=True)}, len(rows)


def named_rows(rows: list[Any], names: Sequence[str], aliases: Mapping[str, str]) -> list[Any]:
    """`rows` with fields named by column names: a first row of text naming every input
    column (by its header or its name) is a header line, and the rows after it become objects;
    an object's fields given by header (`aliases`: header -> name) are renamed."""
    first = rows[0]
    if type(first) is list and is_header(first, names, aliases):
        head = _mapped(first, aliases, "the header line")
        body = rows[1:]
        if not body:
            raise BadRequest("the request has a header line but no rows")
        for i, row in enumerate(body, 1):
            if type(row) is not list or len(row) != len(head):
                raise BadRequest(f"row {i} is not {len(head)} values like the header line "
                                 f"{shorten(repr(first))}")
        return [dict(zip(head, row, strict=True)) for row in body]
    if not aliases:
        return rows
    return [dict(zip(_mapped(list(row), aliases, f"row {i}"), row.values(), strict=True))
            if type(row) is dict and not aliases.keys().isdisjoint(row) else row
            for i, row in enumerate(rows, 1)]


def is_header(row: list[Any], names: Sequence[str], aliases: Mapping[str, str]) -> bool:
    """Whether `row` is a header line: text cells naming every one of `names`."""
    if not all(type(cell) is str for cell in row):
        return False
    return set(names) <= {aliases.get(cell, cell) for cell in row}


def _mapped(fields: list[str], aliases: Mapping[str, str], where: str) -> list[str]:
    try:
        return map_headers(fields, aliases)
    except HeaderClash as exc:
        raise BadRequest(f"{where}: {shorten(str(exc), 200)}") from exc


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


def coerce(values: Sequence[Any] | pa.ChunkedArray, col: Column) -> np.ndarray:
    """One column's values as the transforms take them, read under the value rules
    (`mlops_kit.values`); BadRequest names the first bad row."""
    parsed = parse(values, col.type)
    first = parsed.first_problem()
    if first is not None:
        row, message = first
        raise BadRequest(f"row {row + 1}, column {col.name}: {_shown(values[row])} is {message}")
    absent = required(parsed, col)
    if absent.any():
        raise BadRequest(f"row {int(np.argmax(absent)) + 1}, column {col.name}: a value is "
                         "required (the column is not nullable)")
    return parsed.values


def _shown(value: Any) -> str:
    """A bad value as the error shows it: its repr, cut to 40 characters."""
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def encode(scores: np.ndarray, task: str, classes: list[Any], accept: str,
           header: bool = True) -> tuple[bytes, str]:
    """Predictions as SageMaker's built-in algorithms answer: CSV lines or JSON objects. A
    multiclass CSV answer starts with a line naming the classes, in the order of the scores
    (the model's classes, sorted at training); `header=False` leaves it out."""
    if accept == CSV:
        if scores.ndim == 2:
            lines = [",".join(map("%.8g".__mod__, row)) for row in scores.tolist()]
            if header:
                lines.insert(0, class_header(classes))
        else:
            lines = list(map("%.8g".__mod__, scores.tolist()))
        return ("\n".join(lines) + "\n").encode(), CSV
    return json.dumps({"predictions": records(scores, task, classes)}).encode(), JSON


def class_header(classes: list[Any]) -> str:
    """The CSV line naming a multiclass answer's score columns."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([str(c) for c in classes])
    return out.getvalue()


def records(scores: np.ndarray, task: str, classes: list[Any]) -> list[dict[str, Any]]:
    """One JSON object per row: the score(s) and, for classifiers, the predicted label; a
    multiclass object names the class of each score (`labels`)."""
    if task == "regression":
        return [{"score": v} for v in scores.tolist()]
    if scores.ndim == 2:
        picked = scores.argmax(axis=1).tolist()
        return [{"scores": row, "labels": classes, "predicted_label": classes[k]}
                for row, k in zip(scores.tolist(), picked, strict=True)]
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
