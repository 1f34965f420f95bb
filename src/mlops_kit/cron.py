"""5-field cron expressions (minute hour day month weekday): checked, and weekly ones as
minutes of the week.

Fields take `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n`; weekdays are
0-7 (Sunday 0 or 7) or MON..SUN, months 1-12 or JAN..DEC. A weekly schedule has day of month
and month `*`."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

MINUTES_PER_WEEK = 7 * 1440
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
# Each field's name, range and the names it accepts.
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("weekday", 0, 7, _DAYS))


def check(expr: str) -> list[set[int]]:
    """The values each of `expr`'s five fields selects; ValueError naming the field that is
    out of its range or does not parse (what every cloud's scheduler would refuse)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r}: give 5 fields (minute hour day month weekday)")
    out = []
    for text, (name, low, high, names) in zip(fields, FIELDS, strict=True):
        try:
            out.append(_values(text, low, high, expr, names))
        except ValueError as exc:
            raise ValueError(f"{exc} (the {name} field)") from None
    return out


def _values(field: str, low: int, high: int, expr: str,
            names: dict[str, int] | None = None) -> set[int]:
    """The numbers a cron field selects, each within [low, high]."""
    out: set[int] = set()
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = _number(step_text, expr, {}) if step_text else 1
        if spec == "*":
            first, last = low, high
        else:
            a, _, b = spec.partition("-")
            first = _number(a, expr, names)
            last = _number(b, expr, names) if b else (high if step_text else first)
        if step < 1 or not low <= first <= last <= high:
            raise ValueError(f"cron {expr!r}: {part!r} is not within {low}-{high}")
        out.update(range(first, last + 1, step))
    return out


def _number(text: str, expr: str, names: dict[str, int] | None) -> int:
    names = _DAYS if names is None else names
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ValueError(f"cron {expr!r}: {text!r} is not a number")
    return int(text)


def weekly_minutes(expr: str) -> list[int]:
    """The minutes of the week (0 = Monday 00:00) at which `expr` fires, sorted."""
    minutes, hours, _, _, weekdays = check(expr)
    if expr.split()[2:4] != ["*", "*"]:
        raise ValueError(f"cron {expr!r}: a weekly schedule needs day of month and month `*`")
    days = {d % 7 for d in weekdays}  # cron: Sunday 0 (or 7)
    return sorted(((d - 1) % 7) * 1440 + h * 60 + m  # Monday first
                  for d in days for h in hours for m in minutes)


def last_window(expr: str, now: dt.datetime,
                time_zone: str = "UTC") -> tuple[dt.datetime, dt.datetime]:
    """The (start, end), aware UTC, of the period that ended at `expr`'s latest firing at or
    before `now` (aware): the previous firing to the latest one, each taken as a wall-clock
    time in `time_zone` and converted with its own offset, so across a DST change the window
    is an hour shorter or longer and consecutive firings' windows still chain. A job that
    starts late reads the window of the latest firing before it starts."""
    fired = sorted({f for f in firings(expr, now, time_zone) if f <= now})
    return fired[-2], fired[-1]


def firings(expr: str, now: dt.datetime, time_zone: str) -> set[dt.datetime]:
    """`expr`'s firings (UTC) in the local week of `now` and the two before it. A wall-clock
    time the DST change skips or repeats is taken with its earlier offset (`fold=0`)."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    monday = dt.datetime.combine(today - dt.timedelta(days=today.weekday()), dt.time())
    return {(monday + dt.timedelta(weeks=week, minutes=minute)).replace(tzinfo=zone)
            .astimezone(dt.UTC) for week in (-2, -1, 0) for minute in weekly_minutes(expr)}
