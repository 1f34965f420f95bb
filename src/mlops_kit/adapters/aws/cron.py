"""The config's 5-field cron as an EventBridge cron expression (six fields, `?`, SUN=1)."""

from __future__ import annotations

import re

_DAYS = re.compile(r"\d+")


def aws_cron(expr: str) -> str:
    """`0 3 * * 1` → `cron(0 3 ? * 2 *)`; ValueError for what EventBridge cannot express."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r}: give 5 fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        raise ValueError(f"cron {expr!r}: EventBridge cannot combine a day of the month with a "
                         "day of the week; set one of them to *")
    if weekday == "*":
        return f"cron({minute} {hour} {day} {month} ? *)"
    return f"cron({minute} {hour} ? {month} {_weekdays(weekday, expr)} *)"


def _weekdays(field: str, expr: str) -> str:
    """Cron's 0-7 (Sunday 0 or 7) as EventBridge's 1-7 (Sunday 1); names pass unchanged."""
    if "/" in field:
        raise ValueError(f"cron {expr!r}: steps in the weekday field are not supported")

    def shift(match: re.Match[str]) -> str:
        day = int(match.group())
        if day > 7:
            raise ValueError(f"cron {expr!r}: weekday {day} is not 0-7")
        return str(day % 7 + 1)

    return _DAYS.sub(shift, field)


def monitor_cron(expr: str) -> str:
    """Model Monitor takes hourly or daily schedules only: `0 * * * *` or `0 H * * *`."""
    fields = expr.split()
    if len(fields) == 5 and fields[0] == "0" and fields[2:] == ["*", "*", "*"] and (
            fields[1] == "*" or (fields[1].isdigit() and int(fields[1]) < 24)):
        return f"cron(0 {fields[1]} ? * * *)"
    raise ValueError(f"monitoring.schedule {expr!r}: SageMaker Model Monitor runs hourly "
                     "('0 * * * *') or daily at an hour ('0 H * * *')")
