"""Source columns as monitoring reads them: numbers or text, plus missing and ill-typed counts.

int, float and timestamp columns are numbers (timestamps as epoch seconds); category, string
and bool columns are text (bools as "true"/"false"). A value that is present but does not fit
the column's type (an unparseable number or date, a fractional int, a bool that is neither)
is counted as `bad` and left out of the distribution; it is not counted as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NUMERIC_TYPES = ("int", "float", "timestamp")
BOOL_TEXT = {"true": "true", "false": "false", "1": "true", "0": "false"}


@dataclass(frozen=True)
class Numbers:
    """The present, well-typed values of a numeric column (float64, no NaN)."""

    values: np.ndarray
    rows: int
    missing: int
    bad: int


@dataclass(frozen=True)
class Texts:
    """The present, well-typed values of a text column."""

    values: pd.Series
    rows: int
    missing: int
    bad: int


def numbers(series: pd.Series, kind: str) -> Numbers:
    """Read an int, float or timestamp column."""
    if kind == "timestamp":
        values, bad = _epoch_seconds(series)
    elif series.dtype.kind in "iufb":
        values, bad = series.to_numpy(dtype="float64", na_value=np.nan), 0
    else:
        parsed = pd.to_numeric(series, errors="coerce")
        values = parsed.to_numpy(dtype="float64", na_value=np.nan)
        bad = int((series.notna() & parsed.isna()).sum())
    nan = np.isnan(values)
    n_nan = int(np.count_nonzero(nan))
    if n_nan:
        values = values[~nan]
    missing = n_nan - bad
    if kind == "int" and series.dtype.kind not in "iub":
        whole = values == np.floor(values)
        fractional = len(values) - int(np.count_nonzero(whole))
        if fractional:
            values, bad = values[whole], bad + fractional
    return Numbers(values, len(series), missing, bad)


def texts(series: pd.Series, kind: str) -> Texts:
    """Read a category, string or bool column."""
    present = series.notna()
    n_missing = len(series) - int(present.sum())
    values = series[present] if n_missing else series
    if kind == "bool":
        if values.dtype.kind == "b":
            mapped = pd.Series(np.where(values.to_numpy(), "true", "false"), dtype="string")
        else:
            mapped = values.astype("string").str.strip().str.lower().map(BOOL_TEXT)
        good = mapped.notna()
        return Texts(mapped[good].astype("string"), len(series), n_missing,
                     len(mapped) - int(good.sum()))
    return Texts(values.astype("string"), len(series), n_missing, 0)


def _epoch_seconds(series: pd.Series) -> tuple[np.ndarray, int]:
    """Timestamps as float epoch seconds (NaN where missing or unparseable), and the bad count."""
    ts = series if series.dtype.kind == "M" else pd.to_datetime(
        series, errors="coerce", utc=True, format="ISO8601")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert(None)
    stamps = ts.to_numpy(dtype="datetime64[us]")
    nat = np.isnat(stamps)
    seconds = stamps.astype("int64") / 1e6
    seconds[nat] = np.nan
    return seconds, int(np.count_nonzero(series.notna().to_numpy() & nat))
