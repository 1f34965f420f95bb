"""The config's 5-field cron as an EventBridge cron expression (six fields, `?`, SUN=1)."""

from __future__ import annotations

from mlops_kit.cron import check


def aws_cron(expr: str) -> str:
    """`0 3 * * 1` → `cron(0 3 ? * 2 *)`; ValueError for what EventBridge cannot express."""
    weekdays = check(expr)[4]
    minute, hour, day, month, weekday = expr.split()
    if day != "*" and weekday != "*":
        raise ValueError(f"cron {expr!r}: EventBridge cannot combine a day of the month with a "
                         "day of the week; set one of them to *")
    if weekday == "*":
        return f"cron({minute} {hour} {day} {month} ? *)"
    return f"cron({minute} {hour} ? {month} {_weekdays(weekdays)} *)"


def _weekdays(days: set[int]) -> str:
    """Cron's weekdays (0-7, Sunday 0 or 7) as EventBridge's (1-7, Sunday 1), as ascending
    ranges and single days, so a range ending on Sunday (`1-7`) never comes out reversed."""
    numbers = sorted({day % 7 + 1 for day in days})
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def monitor_cron(expr: str) -> str:
    """Model Monitor takes hourly or daily schedules only: `0 * * * *` or `0 H * * *`."""
    fields = expr.split()
    if len(fields) == 5 and fields[0] == "0" and fields[2:] == ["*", "*", "*"] and (
            fields[1] == "*" or (fields[1].isdigit() and int(fields[1]) < 24)):
        return f"cron(0 {fields[1]} ? * * *)"
    raise ValueError(f"monitoring.schedule {expr!r}: SageMaker Model Monitor runs hourly "
                     "('0 * * * *') or daily at an hour ('0 H * * *')")
