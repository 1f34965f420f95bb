"""Infer a project config from one CSV or Parquet file: the engine behind `init --from`.

Every decision is one small rule with the reason it gives; `Inferred.to_yaml` writes the
reasons as comments, so a user reviews what was inferred and why. Values are read by the
kit's own rules (`mlops_kit.values.parse`, the ingest step's reader), so what inference
calls an int is what `validate` accepts as one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_kit.config.model import (
    Column,
    FileSource,
    ProjectConfig,
)
from mlops_kit.config.names import unique_names
from mlops_kit.errors import MlopsKitError
from mlops_kit.steps.base import StepError
from mlops_kit.steps.ingest import read_source
from mlops_kit.values import parse

SAMPLE_ROWS = 200_000  # types and roles are decided on a seeded sample of larger files
MAX_CATEGORIES = 50  # more distinct strings than this: text, not a category
MAX_CLASSES = 20  # a whole-number target with more distinct values is a regression target
MARGIN = 0.10  # bounds: the observed range widened by this share of it on each side
ID_NAME = re.compile(r"(^|_)id$|[a-z0-9]Id$|^ID$", re.IGNORECASE)
TIME_NAME = re.compile(r"time|date|_at$|^ts$|timestamp", re.IGNORECASE)


class InferError(MlopsKitError):
    """A data file inference cannot turn into a config; the message names the file and fix."""

    kind = "init error"
    exit_code = 2


@dataclass
class ColumnGuess:
    """One column as inferred: its schema entry, its role and why."""

    column: Column
    reasons: list[str]
    role: str | None = None  # target, entity_id, event_time
    usable: bool = True  # may a feature read it
    times_of_day: bool = False  # timestamps: do values carry a time, not only a date
    distinct: int = 0


@dataclass
class FeatureGuess:
    name: str
    transform: str
    inputs: list[str]
    reason: str


@dataclass
class Inferred:
    """What inference decided; `config()` is the validated project, `to_yaml()` its text."""

    project: str
    table: str
    source: FileSource
    columns: list[ColumnGuess]
    features: list[FeatureGuess]
    task: str
    task_reason: str
    split: str
    split_reason: str
    metric: str
    max_bad_fraction: float = 0.05
    notes: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnGuess:
        return next(c for c in self.columns if c.column.name == name)

    def role(self, role: str) -> str | None:
        return next((c.column.name for c in self.columns if c.role == role), None)

    def as_dict(self) -> dict[str, object]:
        """The config as plain data (what `to_yaml` writes, without the comments)."""
        from mlops_kit.project.render import as_dict

        return as_dict(self)

    def config(self) -> ProjectConfig:
        return ProjectConfig.model_validate(self.as_dict())

    def to_yaml(self) -> str:
        from mlops_kit.project.render import to_yaml

        return to_yaml(self)


def infer_project(path: str | Path, target: str, name: str | None = None,
                  out_dir: str | Path | None = None) -> Inferred:
    """Read `path` (CSV or Parquet, file or folder) once and infer a project predicting
    `target`. `out_dir` is where mlops.yaml will live (the source path is written relative to
    it); `name` the project (default: from the file name)."""
    path = Path(path).resolve()
    kind = _kind(path)
    frame = _read(path, kind)
    headers = [str(h) for h in frame.columns]
    columns = unique_names(headers)  # the config's one naming rule (config.names)
    frame.columns = pd.Index(columns)
    target = _target_name(target, headers, columns, path)
    sample, notes = _sample(frame)
    guesses = [_guess_column(frame[c], sample[c], c == target) for c in columns]
    for guess, header in zip(guesses, headers, strict=True):
        if header != guess.column.name:
            guess.column = guess.column.model_copy(update={"source": header})
    _assign_roles(guesses, target, len(frame))
    _keep_keys_unique(guesses, frame)
    target_guess = next(g for g in guesses if g.role == "target")
    task, task_reason = _task(target_guess)
    split, split_reason = _split(guesses)
    stem = path.stem if path.is_file() else path.name
    base = Path(out_dir).resolve() if out_dir else Path.cwd()
    inferred = Inferred(
        project=name or cloud_name(stem), table=_table_name(stem),
        source=FileSource(kind=kind, path=_relative(path, base)), columns=guesses,
        features=_features(guesses), task=task, task_reason=task_reason, split=split,
        split_reason=split_reason, metric=METRIC[task],
        max_bad_fraction=_bad_fraction(frame[target], target_guess.column.type, notes),
        notes=notes)
    if not inferred.features:
        raise InferError(f"{path}: no column besides the target can be a feature (ids, "
                         "constants and free text are not); add columns with signal")
    inferred.config()  # what inference writes must validate
    return inferred


def _target_name(target: str, headers: list[str], columns: list[str], path: Path) -> str:
    """`--target` as the file's header or as its column name."""
    if target in columns:
        return target
    if target in headers:
        return columns[headers.index(target)]
    raise InferError(f"{path}: no column {target!r} to predict (--target); the columns are "
                     f"{headers}")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower() if path.is_file() else ""
    if suffix in (".csv", ".parquet"):
        return suffix[1:]
    if path.is_dir():
        for kind in ("parquet", "csv"):
            if any(path.rglob(f"*.{kind}")):
                return kind
    if not path.exists():
        raise InferError(f"{path}: file not found (--from)")
    raise InferError(f"{path}: not a .csv or .parquet file or a folder of them (--from)")


def _read(path: Path, kind: str) -> pd.DataFrame:
    """The data as the ingest step reads it (CSV values stay text), so both see one file."""
    try:
        frame = read_source(FileSource(kind=kind, path=str(path)), path.parent)
    except StepError as exc:
        raise InferError(str(exc)) from None
    if frame.empty:
        raise InferError(f"{path}: the file has no rows; inference needs data")
    return frame


def _sample(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    if len(frame) <= SAMPLE_ROWS:
        return frame, [f"read all {len(frame):,} rows"]
    sample = frame.sample(SAMPLE_ROWS, random_state=0)
    return sample, [f"types and roles from a random sample of {SAMPLE_ROWS:,} of "
                    f"{len(frame):,} rows; bounds, categories and nulls from all rows"]


# --- one column -----------------------------------------------------------------------------


TYPE_ORDER = ("int", "float", "bool", "timestamp")


def _parses(values: pd.Series, kind: str) -> bool:
    parsed = parse(values, kind)
    return not parsed.bad.any() and not parsed.missing.all()


def _type_of(sample: pd.Series, full: pd.Series) -> str:
    """The narrowest type every value reads as: int, float, bool, timestamp, else text. The
    sample proposes; all rows confirm (else the next type is tried on all rows)."""
    for kind in TYPE_ORDER:
        if _parses(sample, kind) and (sample is full or _parses(full, kind)):
            return kind
    return "string"


def _guess_column(full: pd.Series, sample: pd.Series, is_target: bool) -> ColumnGuess:
    name = str(full.name)
    kind = _type_of(sample, full)
    parsed = parse(full, kind)
    present = int((~parsed.missing).sum())
    reasons = [_type_reason(kind, present)]
    col: dict[str, object] = {"name": name, "type": kind}
    distinct = int(pd.Series(parsed.values[~parsed.missing]).nunique())
    if kind == "string" and present and distinct <= MAX_CATEGORIES and (
            distinct <= max(2, present // 2)):
        values = sorted(map(str, pd.Series(parsed.values[~parsed.missing]).unique()))
        col.update(type="category", categories=values)
        reasons = [f"category: {distinct} distinct values"]
    elif kind == "string" and present:
        reasons = [f"string: {distinct:,} distinct values in {present:,} rows"]
    missing = len(full) - present
    col["nullable"] = bool(missing) and not is_target
    reasons.append(f"nullable: {missing:,} of {len(full):,} values missing" if missing
                   else "not nullable: no value missing")
    if kind in ("int", "float") and present:
        reasons.append(_bounds(parsed.values[~parsed.missing], kind, is_target, col))
    guess = ColumnGuess(Column.model_validate(col), reasons, distinct=distinct)
    if kind == "timestamp":
        stamps = parsed.values[~parsed.missing]
        guess.times_of_day = bool((stamps != stamps.astype("datetime64[D]")).any())
        reasons[0] = "timestamp: every value is an ISO 8601 " + (
            "date and time" if guess.times_of_day else "date")
    return guess


def _type_reason(kind: str, present: int) -> str:
    return {
        "int": f"integer: all {present:,} values are whole numbers",
        "float": f"float: all {present:,} values are numbers",
        "bool": f"bool: all {present:,} values are true/false words (yes/no, true/false)",
        "timestamp": "timestamp",
        "string": "string: no value present" if not present else "string",
    }[kind]


def _bounds(values: np.ndarray, kind: str, is_target: bool, col: dict[str, object]) -> str:
    """Observed min..max widened by MARGIN of the range (not below 0 for non-negative data;
    whole numbers for int columns); a class target keeps its observed classes exactly."""
    lo, hi = float(values.min()), float(values.max())
    shown = f"{_num(lo)}..{_num(hi)}"
    if is_target and kind == "int" and len(np.unique(values)) <= MAX_CLASSES:
        col.update(min=lo, max=hi)
        return f"bounds: observed {shown}, kept exact (the target's classes)"
    pad = (hi - lo) * MARGIN or max(abs(lo) * MARGIN, 1.0)
    low, high = lo - pad, hi + pad
    if lo >= 0:
        low = max(low, 0.0)
    if kind == "int":
        low, high = float(math.floor(low)), float(math.ceil(high))
    col.update(min=_round(low), max=_round(high))
    return f"bounds: observed {shown} with a {MARGIN:.0%} margin"


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:,.6g}"


# --- roles, task, split, features -----------------------------------------------------------


def _assign_roles(guesses: list[ColumnGuess], target: str, rows: int) -> None:
    for g in guesses:
        if g.column.name == target:
            g.role, g.usable = "target", False
            g.reasons.append("target: given by --target")
    entity = next((g for g in guesses if g.role is None and _looks_like_id(g, rows)), None)
    if entity is not None:
        entity.role, entity.usable = "entity_id", False
        entity.column = entity.column.model_copy(
            update={"type": "string", "min": None, "max": None, "categories": None})
        unique = "unique per row" if entity.distinct == rows else (
            f"{entity.distinct:,} distinct values in {rows:,} rows")
        entity.reasons = [f"entity id: {unique} and named like an id; read as text",
                          *entity.reasons[1:2]]
    stamps = [g for g in guesses if g.role is None and g.column.type == "timestamp"]
    if stamps:
        named = [g for g in stamps if TIME_NAME.search(g.column.name)]
        event = (named or stamps)[0]
        event.role = "event_time"
        event.reasons.append("event time: " + ("the first timestamp column named like a time"
                                               if named else "the first timestamp column"))
    for g in guesses:
        if g.role is None and g.usable:
            _usable(g, rows)


def _keep_keys_unique(guesses: list[ColumnGuess], frame: pd.DataFrame) -> None:
    """Validation quarantines rows that repeat an (entity id, event time) pair: with repeats,
    the id column is no entity id (each row is its own entity)."""
    entity = next((g for g in guesses if g.role == "entity_id"), None)
    event = next((g for g in guesses if g.role == "event_time"), None)
    if entity is None or event is None:
        return
    pair = [entity.column.name, event.column.name]
    repeats = int(frame.duplicated(pair).sum())
    if repeats:
        entity.role = None
        entity.reasons[0] = (f"string: named like an id, but not the entity id: {repeats:,} rows "
                             f"repeat an earlier ({', '.join(pair)}) pair; not a feature")


def _looks_like_id(g: ColumnGuess, rows: int) -> bool:
    """Named `id` or `*_id` and (nearly) one value per row, or repeating entity keys."""
    if not ID_NAME.search(g.column.name) or g.column.type not in ("int", "string", "category"):
        return False
    return g.distinct == rows or g.distinct >= max(2, rows // 10)


def _usable(g: ColumnGuess, rows: int) -> None:
    """Columns no feature reads: constants, all-missing and free text (or keys)."""
    if g.distinct <= 1:
        g.usable = False
        g.reasons.append("not a feature: " + ("no value present" if not g.distinct
                                              else "one value only"))
    elif g.column.type == "string":
        g.usable = False
        g.reasons.append("not a feature: too many distinct strings (free text or a key)")
    elif g.column.type in ("int", "string") and g.distinct == rows and ID_NAME.search(
            g.column.name):
        g.usable = False
        g.reasons.append("not a feature: an id")


def _task(g: ColumnGuess) -> tuple[str, str]:
    kind, n = g.column.type, g.distinct
    if n == 2:
        return "binary", "task: binary, target has 2 values"
    if kind == "float":
        return "regression", "task: regression, target is a float"
    if kind == "int" and n > MAX_CLASSES:
        return "regression", f"task: regression, target has {n:,} whole-number values"
    if n < 2:
        raise InferError(f"target {g.column.name!r} has {n} distinct value(s); a model "
                         "needs 2 or more to learn anything")
    if kind == "string":
        raise InferError(f"target {g.column.name!r} has {n:,} distinct strings, too many "
                         f"classes (at most {MAX_CATEGORIES}); pick another --target")
    return "multiclass", f"task: multiclass, target has {n} values"


METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


def _split(guesses: list[ColumnGuess]) -> tuple[str, str]:
    if any(g.role == "event_time" for g in guesses):
        return "time", "split: time, because event_time is set (the latest rows are held out)"
    return "random", "split: random, because no column is an event time"


def _features(guesses: list[ColumnGuess]) -> list[FeatureGuess]:
    out: list[FeatureGuess] = []
    for g in guesses:
        if not g.usable:
            continue
        name, kind = g.column.name, g.column.type
        if kind == "category":
            out.append(FeatureGuess(name, "one_hot", [name], "one-hot of a category"))
        elif kind == "timestamp":
            parts = ["month", "day_of_week", *(["hour"] if g.times_of_day else [])]
            out += [FeatureGuess(f"{name}_{p}"[:128], p, [name], f"{p} of a timestamp")
                    for p in parts]
        else:
            out.append(FeatureGuess(name, "identity", [name], f"{kind} as is"))
    return out


def _bad_fraction(target: pd.Series, kind: str, notes: list[str]) -> float:
    """Rows without a target are quarantined: allow their share, else validate stops."""
    share = float(parse(target, kind).missing.mean())
    if share == 0:
        return 0.05
    allowed = min(1.0, math.ceil((share + 0.01) * 100) / 100)
    notes.append(f"max_bad_fraction {allowed:g}: {share:.1%} of rows have no target and are "
                 "quarantined")
    return max(0.05, allowed)


# --- names ----------------------------------------------------------------------------------


def cloud_name(stem: str) -> str:
    """A project name from a file name: lower case, digits and single hyphens."""
    text = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    text = re.sub(r"^[^a-z]+", "", text)[:41].strip("-")
    return text if len(text) >= 2 else "project"


def _table_name(stem: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    text = re.sub(r"^[^a-z]+", "", text)[:63]
    return text or "events"


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
