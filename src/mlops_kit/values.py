"""The rules for reading a schema value, in one place: validate, serve, batch and monitor all
parse a column with `parse`, so a value means the same on every path.

- **Missing**: None, NaN, or blank text; in number, bool and timestamp columns also the words
  of `MISSING_TEXT` (stripped, any case: `NA`, `NaN`, `null`...). In category and string columns
  those words are values (`none` can be a category). Missing is never bad; nullability is the
  caller's rule (`required`).
- **int, float**: numbers, or decimal text (`3`, ` 3 `, `-1.5e3`, `.5`; no `1_000`, no hex, no
  digits of other scripts). Infinite values (`inf`, `1e400`) are bad, an int must be whole
  (`1.0` is 1). Booleans are not numbers.
- **bool**: True/False, the numbers 1/0, or the text (stripped, any case) of `TRUE_TEXT` and
  `FALSE_TEXT`.
- **timestamp**: ISO 8601 text (`2026-02-03`, `2026-02-03T04:05:06`, with a zone such as `Z` or
  `+02:00`), or typed datetimes. A zone is converted to UTC; a time without one is UTC. Years
  1000-9999 only; `2026-02-30`, `now` and numbers are bad.
- **category, string**: text as given (not stripped); numbers become their text; lists, objects
  and booleans are bad, and so is text that is not valid Unicode. A value outside the categories
  (or a number outside min/max) parses: `domain` flags it, as validation does before training,
  while serving answers it and monitoring reports it as drift.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_kit.config.model import Column

MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none"})
TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0"})
NUMERIC, TEXT = ("int", "float"), ("category", "string")
DECIMAL = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity))$"
SMALL = 32  # up to this many values, the scalar rule (`parse_value`) is quicker than arrow
DECIMAL_RE = re.compile(DECIMAL)
FIRST_TIME = np.datetime64("1000-01-01", "us")
LAST_TIME = np.datetime64("9999-12-31T23:59:59.999999", "us")

NOT_NUMBER, NOT_FINITE, NOT_WHOLE = "not a number", "not a finite number", "not a whole number"
NOT_BOOL = "not a boolean (true/false, 1/0, yes/no)"
NOT_TIME, OUT_OF_YEARS = "not an ISO 8601 timestamp", "outside the years 1000-9999"
NOT_TEXT, NOT_UNICODE = "not a text value", "not valid Unicode text"


@dataclass(frozen=True)
class Parsed:
    """One column read under its type. `values` is float64 (NaN) for int, float and bool,
    datetime64[us] (NaT, UTC) for timestamps, objects (None) for text; missing and bad rows
    hold the missing marker. `problems` pairs each bad-row mask with what is wrong."""

    values: np.ndarray
    missing: np.ndarray
    problems: tuple[tuple[np.ndarray, str], ...]

    @property
    def bad(self) -> np.ndarray:
        out = np.zeros(len(self.missing), dtype=bool)
        for mask, _ in self.problems:
            out |= mask
        return out

    def first_problem(self) -> tuple[int, str] | None:
        """The first bad row (0-based) and what is wrong with it, or None."""
        hits = [(int(np.argmax(mask)), message) for mask, message in self.problems]
        return min(hits, key=lambda hit: hit[0]) if hits else None


def parse(values: Sequence[Any] | np.ndarray | pd.Series | pa.Array | pa.ChunkedArray,
          kind: str) -> Parsed:
    """`values` read as a column of `kind` (int, float, bool, timestamp, category, string).
    A few plain values (a request) go one by one; a column goes through the vector kernels."""
    if len(values) <= SMALL and isinstance(values, list | tuple):
        return _small(list(values), kind)
    return parse_column(values, kind)


def parse_column(values: Sequence[Any] | np.ndarray | pd.Series | pa.Array | pa.ChunkedArray,
                 kind: str) -> Parsed:
    """`parse` with whole-column kernels (arrow, pandas); same verdicts as `parse_value`.
    A column of text (pyarrow strings, or objects that are all text) is trimmed and lowered
    once in arrow; other columns go by their type."""
    text = _arrow_text(values)
    if text is not None:
        return _parse_text(values, text, kind)
    raw = _array(values)
    missing = _missing(raw, words=kind not in TEXT)
    if kind in NUMERIC:
        out, problems = _numbers(raw, missing, whole=kind == "int")
    elif kind == "bool":
        out, problems = _bools(raw, missing)
    elif kind == "timestamp":
        out, problems = _timestamps(raw, missing)
    else:
        out, problems = _texts(raw, missing)
    return Parsed(out, missing, tuple((m, msg) for m, msg in problems if m.any()))


ORDER = {"int": (NOT_NUMBER, NOT_FINITE, NOT_WHOLE), "float": (NOT_NUMBER, NOT_FINITE),
         "bool": (NOT_BOOL,), "timestamp": (NOT_TIME, OUT_OF_YEARS, NOT_UNICODE)}


def _small(values: list[Any], kind: str) -> Parsed:
    """`parse` of a few values, each by `parse_value`."""
    n = len(values)
    read = [parse_value(v, kind) for v in values]
    if kind in NUMERIC or kind == "bool":
        out = np.array([np.nan if r[0] is None else r[0] for r in read], dtype="float64")
    elif kind == "timestamp":
        out = np.array([np.datetime64("NaT") if r[0] is None else r[0] for r in read],
                       dtype="datetime64[us]")
    else:
        out = np.empty(n, dtype=object)
        out[:] = [r[0] for r in read]
    missing = np.array([r[1] for r in read], dtype=bool)
    problems = []
    for message in ORDER.get(kind, (NOT_TEXT, NOT_UNICODE)):
        mask = np.array([r[2] == message for r in read], dtype=bool)
        if mask.any():
            problems.append((mask, message))
    return Parsed(out, missing, tuple(problems))


def parse_value(v: Any, kind: str) -> tuple[Any, bool, str | None]:
    """One value read as `kind`: (the value or None, missing, what is wrong or None). The
    scalar form of the rules; `parse_column` must give the same verdicts."""
    if _is_missing(v, words=kind not in TEXT):
        return None, True, None
    if kind in NUMERIC:
        return _one_number(v, whole=kind == "int")
    if kind == "bool":
        b = _bool(v)
        return (None, False, NOT_BOOL) if math.isnan(b) else (b, False, None)
    if kind == "timestamp":
        return _one_stamp(v)
    text = _text(v)
    if text is None:
        return None, False, NOT_TEXT
    return (None, False, NOT_UNICODE) if _bad_utf8(text) else (text, False, None)


def _is_missing(v: Any, words: bool) -> bool:
    if isinstance(v, str):
        word = v.strip()
        return word.lower() in MISSING_TEXT if words else word == ""
    if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
        return True
    return (isinstance(v, np.datetime64) and bool(np.isnat(v))) or v is pd.NaT or v is pd.NA


def _one_number(v: Any, whole: bool) -> tuple[Any, bool, str | None]:
    if isinstance(v, str):
        text = v.strip()
        x = float(text) if DECIMAL_RE.match(text) and text.isascii() else math.nan
    else:
        x = _number(v)
    if math.isnan(x):
        return None, False, NOT_NUMBER
    if math.isinf(x):
        return None, False, NOT_FINITE
    if whole and x != round(x):
        return None, False, NOT_WHOLE
    return x, False, None


def _one_stamp(v: Any) -> tuple[Any, bool, str | None]:
    if isinstance(v, str):
        if _bad_utf8(v):
            return None, False, NOT_UNICODE
        text = v.strip()
        if text.lower() in ("now", "today"):
            return None, False, NOT_TIME
        v = text
    elif not (isinstance(v, pd.Timestamp | np.datetime64) or hasattr(v, "isoformat")):
        return None, False, NOT_TIME
    stamp = _one_time(v)
    if stamp is pd.NaT:
        return None, False, NOT_TIME
    t = np.datetime64(stamp.tz_convert(None) if stamp.tzinfo else stamp, "us")
    if np.isnat(t):
        return None, False, NOT_TIME
    if t < FIRST_TIME or t > LAST_TIME:
        return None, False, OUT_OF_YEARS
    return t, False, None


def _bad_utf8(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def required(parsed: Parsed, col: Column) -> np.ndarray:
    """Rows missing a value the column needs (it is not nullable)."""
    return parsed.missing if not col.nullable else np.zeros(len(parsed.missing), dtype=bool)


def domain(parsed: Parsed, col: Column) -> list[tuple[np.ndarray, str]]:
    """Well-typed values outside the column's min, max or categories, with what they break."""
    out: list[tuple[np.ndarray, str]] = []
    x = parsed.values
    if col.type in NUMERIC:
        with np.errstate(invalid="ignore"):
            if col.min is not None:
                out.append((x < col.min, f"below min {col.min:g}"))
            if col.max is not None:
                out.append((x > col.max, f"above max {col.max:g}"))
    if col.categories is not None and col.type in TEXT:
        known = np.isin(x.astype(object), np.asarray(col.categories, dtype=object))
        out.append((~known & ~parsed.missing & ~parsed.bad, f"not one of {col.categories}"))
    return [(np.asarray(m, dtype=bool), msg) for m, msg in out if np.any(m)]


def _arrow_text(values: Any) -> pa.Array | None:
    """The values as one arrow string array when they are all text (or missing), else None."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            return None
        return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if isinstance(values, pd.Series | pd.Index) and values.dtype.kind in "iufbM":
        return None
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return None
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return None
    try:
        return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowException, UnicodeError):  # lone surrogates: the general path
        return None


def _parse_text(values: Any, text: pa.Array, kind: str) -> Parsed:
    """`parse_column` of valid UTF-8 text: every rule as one arrow kernel over the column."""
    trimmed = pc.utf8_trim_whitespace(text)
    lower = pc.utf8_lower(trimmed)
    null = np.asarray(pc.is_null(text), dtype=bool)
    if kind in TEXT:
        missing = null | _filled(pc.equal(trimmed, ""))
        out = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object).copy()
        out[missing] = None
        return Parsed(out, missing, ())
    missing = null | _filled(pc.is_in(lower, value_set=pa.array(sorted(MISSING_TEXT))))
    if kind in NUMERIC:
        ok = pc.match_substring_regex(trimmed, DECIMAL)
        cast = pc.cast(pc.if_else(ok, trimmed, pa.scalar("nan")), pa.float64())
        num = np.asarray(cast.to_numpy(zero_copy_only=False), dtype="float64").copy()
        num[missing] = np.nan
        out, problems = _checked_numbers(num, missing, ~missing & np.isnan(num), kind == "int")
    elif kind == "bool":
        out = np.full(len(null), np.nan)
        out[_filled(pc.is_in(lower, value_set=pa.array(sorted(TRUE_TEXT))))] = 1.0
        out[_filled(pc.is_in(lower, value_set=pa.array(sorted(FALSE_TEXT))))] = 0.0
        out[missing] = np.nan
        problems = [(~missing & np.isnan(out), NOT_BOOL)]
    else:
        out, problems = _text_stamps(trimmed, lower, missing)
    return Parsed(out, missing, tuple((m, msg) for m, msg in problems if m.any()))


def _filled(mask: Any) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False), dtype=bool)


def _text_stamps(trimmed: pa.Array, lower: pa.Array, missing: np.ndarray
                 ) -> tuple[np.ndarray, Problems]:
    n = len(missing)
    stamps = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    words = _filled(pc.is_in(lower, value_set=pa.array(["now", "today"])))
    ok = ~missing & ~words
    if ok.any():
        texts = pd.Series(trimmed.filter(pa.array(ok)).to_numpy(zero_copy_only=False),
                          dtype=object)
        stamps[ok] = _utc(texts)
    not_time = ~missing & np.isnat(stamps)
    outside = ~np.isnat(stamps) & ((stamps < FIRST_TIME) | (stamps > LAST_TIME))
    stamps[outside] = np.datetime64("NaT")
    return stamps, [(not_time, NOT_TIME), (outside, OUT_OF_YEARS)]


def _array(values: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
    """A typed numpy array (float64, bool, datetime64[us] in UTC) or objects (None missing)."""
    if isinstance(values, pd.Series | pd.Index):
        series = pd.Series(values)
        kind = series.dtype.kind
        if kind in "iuf":
            return series.to_numpy(dtype="float64", na_value=np.nan)
        if kind == "M":
            stamps = series.dt.tz_convert(None) if series.dt.tz is not None else series
            return stamps.to_numpy(dtype="datetime64[us]")
        return series.astype(object).where(series.notna(), None).to_numpy(dtype=object)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iufbM":
        if values.dtype.kind == "M":
            return values.astype("datetime64[us]")
        return values.astype("float64") if values.dtype.kind in "iuf" else values
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _missing(raw: np.ndarray, words: bool) -> np.ndarray:
    if raw.dtype.kind == "f":
        return np.isnan(raw)
    if raw.dtype.kind == "M":
        return np.isnat(raw)
    if raw.dtype.kind == "b":
        return np.zeros(len(raw), dtype=bool)
    out = np.asarray(pd.isna(raw), dtype=bool)
    text = _is_str(raw)
    if text.any():
        trimmed = _trimmed(raw[text])
        out[text] = _is_word(trimmed, MISSING_TEXT) if words else trimmed == ""
    return out


def _trimmed(strings: np.ndarray) -> np.ndarray:
    """Text without surrounding white space (arrow's vectorised kernel where it can)."""
    try:
        return np.asarray(pc.utf8_trim_whitespace(pa.array(strings, type=pa.string())),
                          dtype=object)
    except (pa.ArrowException, UnicodeError):  # lone surrogates: one by one
        return np.array([v.strip() for v in strings], dtype=object)


def _is_word(trimmed: np.ndarray, words: frozenset[str]) -> np.ndarray:
    """Which trimmed texts are one of `words` in any case."""
    try:
        lower = pc.utf8_lower(pa.array(trimmed, type=pa.string()))
        return np.asarray(pc.is_in(lower, value_set=pa.array(sorted(words))), dtype=bool)
    except (pa.ArrowException, UnicodeError):  # lone surrogates: one by one
        return np.array([t.lower() in words for t in trimmed], dtype=bool)


def _is_str(raw: np.ndarray) -> np.ndarray:
    if pd.api.types.infer_dtype(raw, skipna=True) == "string":
        return ~np.asarray(pd.isna(raw), dtype=bool)
    return np.fromiter((isinstance(v, str) for v in raw), dtype=bool, count=len(raw))


Problems = list[tuple[np.ndarray, str]]


def _numbers(raw: np.ndarray, missing: np.ndarray, whole: bool) -> tuple[np.ndarray, Problems]:
    n = len(raw)
    not_number = np.zeros(n, dtype=bool)
    if raw.dtype.kind == "f":
        num = raw.copy()
    elif raw.dtype.kind in "bM":
        num, not_number = np.full(n, np.nan), ~missing
    else:
        num = np.full(n, np.nan)
        text = _is_str(raw) & ~missing
        if text.any():
            num[text] = _decimal(raw[text])
        other = ~text & ~missing
        for i in np.flatnonzero(other):
            num[i] = _number(raw[i])
        not_number = ~missing & np.isnan(num)
    return _checked_numbers(num, missing, not_number, whole)


def _checked_numbers(num: np.ndarray, missing: np.ndarray, not_number: np.ndarray,
                     whole: bool) -> tuple[np.ndarray, Problems]:
    """Numbers read, less the infinite ones (and fractions when they must be whole)."""
    infinite = np.isinf(num)
    num[infinite | not_number | missing] = np.nan
    problems = [(not_number, NOT_NUMBER), (infinite, NOT_FINITE)]
    if whole:
        fraction = ~np.isnan(num) & (num != np.round(num))
        num[fraction] = np.nan
        problems.append((fraction, NOT_WHOLE))
    return num, problems


def _decimal(strings: np.ndarray) -> np.ndarray:
    """Decimal text as float64 (NaN where it is not decimal; inf beyond a float's range)."""
    try:
        text = pc.utf8_trim_whitespace(pa.array(strings, type=pa.string()))
        ok = pc.match_substring_regex(text, DECIMAL)
        cast = pc.cast(pc.if_else(ok, text, pa.scalar("nan")), pa.float64())
        return np.asarray(cast.to_numpy(zero_copy_only=False), dtype="float64")
    except (pa.ArrowException, UnicodeError):  # lone surrogates: none of them is a number
        return pd.to_numeric(pd.Series(strings, dtype=object),
                             errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _number(v: Any) -> float:
    """A non-text value as a float: NaN for anything that is not a number (booleans too)."""
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number):
        return math.nan
    try:
        return float(v)
    except OverflowError:  # an int too large for a float
        return math.inf


def _bools(raw: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, Problems]:
    n = len(raw)
    if raw.dtype.kind == "b":
        return raw.astype("float64"), []
    if raw.dtype.kind == "f":
        out = np.where(np.isin(raw, (0.0, 1.0)), raw, np.nan)
        return out, [(~missing & np.isnan(out), NOT_BOOL)]
    out = np.full(n, np.nan)
    text = _is_str(raw) & ~missing
    if text.any():
        trimmed = _trimmed(raw[text])
        words = np.full(len(trimmed), np.nan)
        words[_is_word(trimmed, TRUE_TEXT)] = 1.0
        words[_is_word(trimmed, FALSE_TEXT)] = 0.0
        out[text] = words
    for i in np.flatnonzero(~missing & ~text):
        out[i] = _bool(raw[i])
    return out, [(~missing & np.isnan(out), NOT_BOOL)]


def _bool(v: Any) -> float:
    if isinstance(v, bool | np.bool_):
        return float(v)
    if isinstance(v, str):
        word = v.strip().lower()
        return 1.0 if word in TRUE_TEXT else 0.0 if word in FALSE_TEXT else math.nan
    if isinstance(v, int | float | np.number) and v in (0, 1):
        return float(v)
    return math.nan


def _timestamps(raw: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, Problems]:
    n = len(raw)
    if raw.dtype.kind == "M":
        stamps = raw
        not_time = bad_unicode = np.zeros(n, dtype=bool)
    elif raw.dtype.kind in "fb":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"), [(~missing, NOT_TIME)]
    else:
        stamps = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
        present = ~missing
        if pd.api.types.infer_dtype(raw, skipna=True) == "string":
            ok = present.copy()
        else:
            ok = present & np.fromiter((isinstance(v, str | pd.Timestamp | np.datetime64) or
                                        hasattr(v, "isoformat") for v in raw), dtype=bool,
                                       count=n)
        bad_unicode = _unicode_bad(raw)
        ok &= ~bad_unicode
        if ok.any():
            stamps[ok] = _iso(raw[ok])
        not_time = present & np.isnat(stamps) & ~bad_unicode
    outside = ~np.isnat(stamps) & ((stamps < FIRST_TIME) | (stamps > LAST_TIME))
    stamps = stamps.copy()
    stamps[outside] = np.datetime64("NaT")
    return stamps, [(not_time, NOT_TIME), (outside, OUT_OF_YEARS), (bad_unicode, NOT_UNICODE)]


def _iso(values: np.ndarray) -> np.ndarray:
    """ISO 8601 values as naive UTC datetime64[us] (NaT where unreadable)."""
    strings = _is_str(values)
    texts = pd.Series(values, dtype=object)
    if strings.any():
        texts[strings] = _trimmed(values[strings])
    words = np.zeros(len(values), dtype=bool)
    words[strings] = _is_word(texts[strings].to_numpy(), frozenset({"now", "today"}))
    return _utc(texts.mask(words))


def _utc(texts: pd.Series) -> np.ndarray:
    """Trimmed ISO 8601 values as naive UTC datetime64[us] (NaT where unreadable)."""
    try:
        ts = pd.to_datetime(texts, errors="coerce", utc=True, format="ISO8601")
    except Exception:  # pandas and pyarrow raise several types on odd text: read one by one
        ts = pd.Series([_one_time(t) for t in texts], dtype="datetime64[us, UTC]")
    return ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _one_time(value: Any) -> Any:
    try:
        return pd.to_datetime(value, utc=True, format="ISO8601")
    except Exception:
        return pd.NaT


def _texts(raw: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, Problems]:
    n = len(raw)
    if raw.dtype.kind in "fM":
        out = np.array([None if m else str(v) for v, m in zip(raw, missing, strict=True)],
                       dtype=object)
        return out, []
    out = np.empty(n, dtype=object)
    if pd.api.types.infer_dtype(raw, skipna=True) == "string":
        out[:] = raw
        out[missing] = None
        not_text = np.zeros(n, dtype=bool)
    else:
        out[:] = [None if m else _text(v) for v, m in zip(raw, missing, strict=True)]
        not_text = ~missing & np.array([o is None for o in out], dtype=bool)
    bad_unicode = _unicode_bad(out)
    out[bad_unicode] = None
    return out, [(not_text, NOT_TEXT), (bad_unicode, NOT_UNICODE)]


def _text(v: Any) -> str | None:
    """Text as given, a number as its text; None for anything else (booleans, lists)."""
    if isinstance(v, str):
        return v
    if isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_):
        return str(v)
    return None


def _unicode_bad(values: np.ndarray) -> np.ndarray:
    """Text that cannot be stored as UTF-8 (lone surrogates from JSON escapes)."""
    out = np.zeros(len(values), dtype=bool)
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        strings = values[~np.asarray(pd.isna(values), dtype=bool)].tolist()
    else:
        strings = [v for v in values if isinstance(v, str)]
    try:
        "".join(strings).encode("utf-8")
        return out
    except UnicodeEncodeError:
        pass
    for i, v in enumerate(values):
        if isinstance(v, str) and not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                out[i] = True
    return out
