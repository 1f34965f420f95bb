"""Scheduled capacity floors planned from a trace (docs/scaling.md#scheduled-floors).

Each minute of the week belongs to a day type (weekday or weekend) and a slot of the day. A
slot's floor is a quantile of the oracle's instances over the trace's minutes of that day type
and slot, minus a margin. MinCapacity at a minute is the larger of its own floor and the floor
`startup_min` minutes later, so a rise is scheduled early enough for its instances to serve
when the slot starts, and a fall waits for the slot's start. Every change of that weekly step
function is one action; actions at the same time of day with the same floor share one cron.

Floors are judged out of sample (`held_out_floors`): each day of the trace gets the floors
fitted on the other days of its type, so a floor that only fits the day it was fitted on shows
up as cost (on the other days) or overload (on its own day) in the simulation. A (day type,
slot) seen on fewer than two days of the trace gets no floor, in the fit as in the held-out
floors: nothing would hold it out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlops_kit.capacity.simulate import Cloud
from mlops_kit.config.model import SCHEDULED_ACTIONS_QUOTA, ScheduledFloor
from mlops_kit.cron import MINUTES_PER_WEEK

DAY = 1440


def _groups(minutes: int, slot_min: int,
            start_minute: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """For each (day type, slot) of the trace: its minutes, their day of the trace, and its
    first minute of the week."""
    week = (start_minute % MINUTES_PER_WEEK + np.arange(minutes)) % MINUTES_PER_WEEK
    day = (start_minute % MINUTES_PER_WEEK + np.arange(minutes)) // DAY
    key = (week // DAY >= 5) * DAY + (week % DAY) // slot_min  # weekend, then slot of the day
    order = np.argsort(key, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        yield idx, day[idx], int(week[idx[0]] - week[idx[0]] % DAY % slot_min)


def _level(seen: np.ndarray, cloud: Cloud, quantile: float, margin: int) -> int:
    return cloud.clamp(int(np.quantile(seen, quantile, method="higher")) - margin)


def slot_floors(need: np.ndarray, cloud: Cloud, quantile: float, margin: int, slot_min: int,
                start_minute: int = 0) -> np.ndarray:
    """The floor of every minute of the week (Monday 00:00 first) from the oracle's `need`
    on all the trace's days (a slot seen on one day only keeps min_instances)."""
    floors = np.full(MINUTES_PER_WEEK, cloud.min_instances, dtype="int64")
    for idx, days, first in _groups(len(need), slot_min, start_minute):
        if len(np.unique(days)) < 2:
            continue
        weekend = first // DAY >= 5
        for d in range(5, 7) if weekend else range(5):
            at = d * DAY + first % DAY
            floors[at:min(at + slot_min, (d + 1) * DAY)] = _level(need[idx], cloud, quantile,
                                                                 margin)
    return floors


def held_out_floors(need: np.ndarray, cloud: Cloud, quantile: float, margin: int,
                    slot_min: int, start_minute: int = 0) -> np.ndarray:
    """The floor of every minute of the trace, each day's fitted on the other days of its
    type only (leave one day out); a slot no other day shares keeps min_instances."""
    floors = np.full(len(need), cloud.min_instances, dtype="int64")
    for idx, days, _ in _groups(len(need), slot_min, start_minute):
        for d in np.unique(days):
            own = days == d
            if not own.all():
                floors[idx[own]] = _level(need[idx[~own]], cloud, quantile, margin)
    return floors


def trace_min_capacity(floors: np.ndarray, lead_min: int) -> np.ndarray:
    """MinCapacity each minute of a trace: the floor now or up to `lead_min` minutes ahead
    (the trace's last floor holds beyond its end)."""
    padded = np.concatenate([floors, np.repeat(floors[-1:], lead_min)])
    return sliding_window_view(padded, lead_min + 1).max(axis=1)


def min_capacity(floors: np.ndarray, lead_min: int) -> np.ndarray:
    """MinCapacity each minute of the week: the floor now or `lead_min` minutes ahead."""
    return np.maximum.reduce([np.roll(floors, -k) for k in range(lead_min + 1)])


def schedule_of(minimum: np.ndarray, cloud: Cloud) -> tuple[ScheduledFloor, ...]:
    """One scheduled action per change of the weekly MinCapacity (a constant floor above
    min_instances gets one action, Monday 00:00); equal actions share a cron's weekdays."""
    changes = np.flatnonzero(minimum != np.roll(minimum, 1))
    if not len(changes) and minimum[0] != cloud.min_instances:
        changes = np.array([0])
    days: dict[tuple[int, int], list[int]] = defaultdict(list)
    for m in changes.tolist():
        days[(m % DAY, int(minimum[m]))].append((m // DAY + 1) % 7)  # cron weekday, Sunday 0
    return tuple(ScheduledFloor(cron=f"{t % 60} {t // 60} * * {_weekdays(d)}", min_instances=n)
                 for (t, n), d in sorted(days.items()))


def _weekdays(days: list[int]) -> str:
    """Cron weekdays as a list of ranges: [1, 2, 3, 4, 5] -> 1-5, [0, 6] -> 0,6."""
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def plan_floors(need: np.ndarray, cloud: Cloud, quantile: float, margin: int,
                slot_min: int = 30, start_minute: int = 0) -> tuple[ScheduledFloor, ...] | None:
    """The scheduled floors for these knobs, or None if they need more actions than AWS
    allows per scalable target."""
    floors = slot_floors(need, cloud, quantile, margin, slot_min, start_minute)
    actions = schedule_of(min_capacity(floors, cloud.startup_min), cloud)
    return actions if len(actions) <= SCHEDULED_ACTIONS_QUOTA else None
