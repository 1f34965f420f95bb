"""The column kernels (`parse_column`) and the scalar rule (`parse_value`) give every value the
same verdict: the same value, missing or not, and the same reason."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_kit.values import SMALL, parse, parse_column, parse_value

EDGE = ["1", " 3 ", "\t-1.5e3\n", ".5", "5.", "+5", "-0", "1.0", "1.5", "1e5", "1E+05", "0x10",
        "inf", "-inf", "Infinity", "INF", "nan", "NaN", " NA ", "n/a", "null", "None", "",
        "  ", "1_000", "1,000", "١٢", "１２", "²", "9" * 400, "1e400", "-1e400", "e5", ".",
        "TRUE", " yes ", "Y", "t", "F", "no", "0", "00", "1.00", "truthy", "oui",
        "2026-02-03", "2026-02-03T04:05:06", "2026-02-03T04:05:06Z", "2026-02-03 04:05:06+02:00",
        "2026-02-03T04:05:06.123456-05:30", "2026-02-30", "0999-12-31", "9999-12-31T23:59:59",
        "now", "Today", "2026-13-01", "20260203", "2026/02/03", "12:00", "2026-02-03T25:00",
        "gold", " gold", "GOLD", "ünïcödé", "\u00a0", "\u3000x", "none", "-", "+", "1e", "--1"]
KINDS = ("int", "float", "bool", "timestamp", "category", "string")
ALPHABET = "0123456789 .eE+-_xabinfINFtrueyesTnoN:TZ-\t\u00a0١"


def random_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8))) for _ in range(n)]


def verdicts_of_column(values: Any, kind: str) -> list[tuple[Any, bool, str | None]]:
    parsed = parse_column(values, kind)
    reasons: list[str | None] = [None] * len(values)
    for mask, message in parsed.problems:
        for i in np.flatnonzero(mask):
            reasons[i] = message
    return [(_plain(v), bool(m), r)
            for v, m, r in zip(parsed.values, parsed.missing, reasons, strict=True)]


def _plain(v: Any) -> Any:
    """None for a missing marker; otherwise the value as the scalar rule gives it."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.datetime64):
        return None if np.isnat(v) else v
    return v


@pytest.mark.parametrize("form", [list, pa.array, pd.Series])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("values", [EDGE, random_strings(400, 1), random_strings(400, 2)],
                         ids=["edge", "random-1", "random-2"])
def test_column_kernels_agree_with_the_scalar_rule(values: list[str], kind: str,
                                                   form: Any) -> None:
    """Text as a request list, an arrow column (batch) and a pandas column (validate)."""
    values = [*values, None]
    column = verdicts_of_column(form(values), kind)
    for raw, got in zip(values, column, strict=True):
        want = parse_value(raw, kind)
        assert (_plain(want[0]), want[1], want[2]) == got, f"{kind}: {raw!r}"


MIXED = [None, np.nan, 1, 0, 1.5, True, False, 10**30, float("inf"), [1], {"a": 1},
         pd.Timestamp("2026-01-01", tz="Europe/Paris"), np.datetime64("2026-01-02T03:04"),
         np.float32(0.5), np.int64(7), " 2 ", "x", "\ud800"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_reads_as_a_column_does(kind: str) -> None:
    """JSON values (numbers, booleans, lists, lone surrogates) in a short request."""
    assert len(MIXED) <= SMALL
    small, column = parse(MIXED, kind), parse_column(MIXED, kind)
    np.testing.assert_array_equal(small.missing, column.missing)
    assert [m for _, m in small.problems] == [m for _, m in column.problems]
    for (a, _), (b, _) in zip(small.problems, column.problems, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [_plain(v) for v in small.values] == [_plain(v) for v in column.values]
