"""Scheduled capacity floors planned from a trace (docs/scaling.md#scheduled-floors).

Each minute of the week belongs to a day type (weekday or weekend) and a slot of the day. A
slot's floor is a quantile of the oracle's instances over the trace's minutes of that day type
and slot, minus a margin. MinCapacity at a minute is the larger of its own floor and the floor
`startup_min` minutes later, so a rise is scheduled early enough for its instances to serve
when the slot starts, and a fall waits for the slot's start. Every change of that weekly step
function is one action; actions at the same time of day with the same floor share one cron.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from mlops_kit.capacity.simulate import Cloud
from mlops_kit.config.model import SCHEDULED_ACTIONS_QUOTA, ScheduledFloor
from mlops_kit.cron import MINUTES_PER_WEEK

DAY = 1440


def slot_floors(need: np.ndarray, cloud: Cloud, quantile: float, margin: int, slot_min: int,
                start_minute: int = 0) -> np.ndarray:
    """The floor of every minute of the week (Monday 00:00 first) from the oracle's `need`."""
    week = (start_minute + np.arange(len(need))) % MINUTES_PER_WEEK
    weekend = week // DAY >= 5
    slot = (week % DAY) // slot_min
    all_week = np.arange(MINUTES_PER_WEEK)
    floors = np.full(MINUTES_PER_WEEK, cloud.min_instances, dtype="int64")
    for is_weekend in (False, True):
        for s in range(math.ceil(DAY / slot_min)):
            seen = need[(weekend == is_weekend) & (slot == s)]
            if not len(seen):
                continue
            level = int(np.quantile(seen, quantile, method="higher")) - margin
            where = ((all_week // DAY >= 5) == is_weekend) & ((all_week % DAY) // slot_min == s)
            floors[where] = cloud.clamp(level)
    return floors


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
