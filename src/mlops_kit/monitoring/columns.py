"""Source columns as monitoring reads them: numbers or text, plus missing and ill-typed counts.

Values are read under the rules every path shares (`mlops_kit.values`). int, float and
timestamp columns are numbers (timestamps as epoch seconds); category, string and bool columns
are text (bools as "true"/"false"). A value that is present but does not fit the column's type
(an unparseable number or date, a fractional int, a bool that is neither) is counted as `bad`
and left out of the distribution; it is not counted as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_kit.values import parse

NUMERIC_TYPES = ("int", "float", "timestamp")


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
    """Read an int, float or timestamp column under the value rules."""
    parsed = parse(series, kind)
    keep = ~parsed.missing & ~parsed.bad
    if kind == "timestamp":
        values = parsed.values[keep].astype("int64") / 1e6
    else:
        values = parsed.values[keep]
    return Numbers(values, len(series), int(parsed.missing.sum()), int(parsed.bad.sum()))


def texts(series: pd.Series, kind: str) -> Texts:
    """Read a category, string or bool column under the value rules."""
    parsed = parse(series, kind)
    keep = ~parsed.missing & ~parsed.bad
    if kind == "bool":
        shown = np.where(parsed.values[keep] == 1.0, "true", "false")
    else:
        shown = parsed.values[keep]
    return Texts(pd.Series(shown, dtype="string"), len(series), int(parsed.missing.sum()),
                 int(parsed.bad.sum()))
