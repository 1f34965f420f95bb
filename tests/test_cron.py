"""`cron.last_window`: the period from a schedule's previous firing to its latest one, with the
firings taken as wall-clock times of the schedule's zone, across DST changes too."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from mlops_kit.cron import last_window

BERLIN = "Europe/Berlin"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def windows(expr: str, first: dt.datetime, runs: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """The window each run reads, runs an hour apart from `first` (hourly enough for 03:00)."""
    seen = [last_window(expr, first + dt.timedelta(hours=h), BERLIN) for h in range(runs)]
    return sorted(set(seen))


@pytest.mark.parametrize(("first", "short_or_long", "change"), [
    (utc(2026, 3, 26, 12), dt.timedelta(hours=23), utc(2026, 3, 29, 1)),   # CET -> CEST
    (utc(2026, 10, 22, 12), dt.timedelta(hours=25), utc(2026, 10, 25, 2))])  # CEST -> CET
def test_daily_windows_chain_across_a_dst_change(first: dt.datetime,
                                                 short_or_long: dt.timedelta,
                                                 change: dt.datetime) -> None:
    found = windows("0 3 * * *", first, 6 * 24)
    for (_, end), (start, _) in pairwise(found):
        assert end == start                               # no overlap, no gap
    for start, end in found:
        local = end.astimezone(ZoneInfo(BERLIN))
        assert (local.hour, local.minute) == (3, 0)       # every end is a 03:00 firing
        assert end - start == (short_or_long if end == change else dt.timedelta(days=1))


def test_spring_window_is_23_hours() -> None:
    # 29 March 2026: 03:00 CEST is 01:00 UTC; the day before 03:00 CET was 02:00 UTC.
    assert last_window("0 3 * * *", utc(2026, 3, 29, 1, 30), BERLIN) == (
        utc(2026, 3, 28, 2), utc(2026, 3, 29, 1))
    assert last_window("0 3 * * *", utc(2026, 3, 30, 1, 30), BERLIN) == (
        utc(2026, 3, 29, 1), utc(2026, 3, 30, 1))


def test_autumn_window_is_25_hours() -> None:
    # 25 October 2026: 03:00 CET is 02:00 UTC; the day before 03:00 CEST was 01:00 UTC.
    assert last_window("0 3 * * *", utc(2026, 10, 25, 2, 30), BERLIN) == (
        utc(2026, 10, 24, 1), utc(2026, 10, 25, 2))


def test_hourly_windows_chain_through_the_repeated_and_skipped_hours() -> None:
    for first in (utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)):
        found = windows("0 * * * *", first, 8)
        assert all(a[1] == b[0] for a, b in pairwise(found))
        assert all(dt.timedelta(0) < end - start <= dt.timedelta(hours=2)
                   for start, end in found)


def test_windows_in_utc_and_of_weekly_schedules() -> None:
    now = utc(2026, 11, 10, 14, 7)                           # a Tuesday
    assert last_window("0 * * * *", now) == (utc(2026, 11, 10, 13), utc(2026, 11, 10, 14))
    assert last_window("0 9,17 * * *", now) == (utc(2026, 11, 9, 17), utc(2026, 11, 10, 9))
    assert last_window("30 2 * * 1", now) == (utc(2026, 11, 2, 2, 30), utc(2026, 11, 9, 2, 30))
    assert last_window("0 14 * * *", utc(2026, 11, 10, 14)) == (
        utc(2026, 11, 9, 14), utc(2026, 11, 10, 14))      # a firing at `now` is the latest
