"""The search for the cheapest step-scaling policy within an overload budget.

A policy is a point of a small grid (thresholds as shares of one instance's capacity, band
gaps, step sizes, alarm periods and datapoints, cooldowns). The search is coordinate descent
from several starting points: change one knob at a time to each of its values, keep the best
policy, repeat until no knob improves it. "Best" is lexicographic: overload minutes above the
budget first, then cost, then the number of scaling actions.

The budget holds on the trace and on `NOISE_REPLICATES` copies of it with the minute-to-minute
noise redrawn (`noise_replicates`): a policy that avoids overload only thanks to the particular
noise of the trace's surge minutes is not kept. A candidate is first scored on the trace alone;
only one that would replace the best so far is simulated on the copies.

With scheduled floors a candidate is scored out of sample: the trace is simulated with each
day's floors fitted on the other days of its type (leave one day out, `held_out_floors`), and
the budget applies to that simulation. The floors emitted are then fitted on all days with the
chosen quantile, margin and slot. If the best floor plan is over the budget held out (or its
final floors in sample), the planner emits the best plan without floors instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlops_kit.capacity.schedule import held_out_floors, plan_floors, trace_min_capacity
from mlops_kit.capacity.simulate import (
    Alarm,
    Cloud,
    Floors,
    Run,
    StepPolicy,
    Summary,
    oracle,
    simulate_step,
)
from mlops_kit.capacity.trace import noise_replicates
from mlops_kit.config.model import ScheduledFloor

SHARES = tuple(round(0.30 + 0.025 * i, 3) for i in range(27))  # 0.30 .. 0.95 of capacity
GRID: dict[str, tuple[Any, ...]] = {
    "out_share": SHARES,
    "bands": (1, 2, 3),
    "gap": (0.025, 0.05, 0.1, 0.15),
    "first_change": (1, 2, 3, 4, 6),
    "growth": (1, 2, 3),
    "cooldown_out_s": (0, 60, 120, 180, 240, 300, 420, 600),
    "periods_out": (1, 2, 3),
    "datapoints_out": (1, 2, 3),
    "in_share": SHARES,
    "in_change": (-1, -2, -3, -4),
    "periods_in": (1, 2, 3, 5, 8, 10, 15),
    "datapoints_in": (1, 2, 3, 5, 8, 10, 15),
    "cooldown_in_s": (0, 60, 120, 180, 300, 600, 900),
    "after_removal": (False, True),
    "trend": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0),
    "floor_q": (None, 0.25, 0.5, 0.75, 0.9, 1.0),
    "floor_margin": (-2, -1, 0, 1, 2, 4),
    "floor_slot": (10, 30, 60, 120),
}
FLOOR_KNOBS = ("floor_q", "floor_margin", "floor_slot")
STARTS: tuple[dict[str, Any], ...] = (
    {"out_share": 0.5, "in_share": 0.3},
    {"out_share": 0.65, "in_share": 0.45},
    {"out_share": 0.8, "in_share": 0.6},
    {"out_share": 0.7, "in_share": 0.65, "after_removal": True},
    {"out_share": 0.85, "in_share": 0.8, "after_removal": True},
    {"out_share": 0.85, "in_share": 0.8, "after_removal": True, "trend": 1.0},
    {"out_share": 0.9, "in_share": 0.85, "after_removal": True, "floor_q": 0.9,
     "floor_slot": 10},
    {"out_share": 0.95, "in_share": 0.9, "floor_q": 1.0, "floor_slot": 10},
)
ROUNDS = 6
NOISE_REPLICATES = 3  # copies of the trace with its noise redrawn that the budget must hold on


@dataclass(frozen=True)
class Knobs:
    """One point of the grid."""

    out_share: float = 0.6
    bands: int = 3
    gap: float = 0.1
    first_change: int = 2
    growth: int = 2
    cooldown_out_s: int = 300
    periods_out: int = 1
    datapoints_out: int = 1
    in_share: float = 0.4
    in_change: int = -1
    periods_in: int = 5
    datapoints_in: int = 5
    cooldown_in_s: int = 300
    after_removal: bool = False
    trend: float = 0.0
    floor_q: float | None = None  # scheduled floors: quantile of the oracle per slot (None: off)
    floor_margin: int = 0  # instances below that quantile (negative: above it)
    floor_slot: int = 30  # minutes per slot of the day

    @property
    def floor_key(self) -> tuple[float, int, int] | None:
        return None if self.floor_q is None else (self.floor_q, self.floor_margin, self.floor_slot)

    def valid(self) -> bool:
        top = self.out_share + (self.bands - 1) * self.gap
        return (self.in_share < self.out_share and top <= 1.0
                and self.datapoints_out <= self.periods_out
                and self.datapoints_in <= self.periods_in)

    def policy(self, capacity_rpm: float) -> StepPolicy:
        """The policy, thresholds rounded as the config writes them (0.1 requests/min)."""
        lowers = tuple(round(capacity_rpm * (self.out_share + i * self.gap), 1)
                       for i in range(self.bands))
        changes = tuple(int(self.first_change * self.growth**i) for i in range(self.bands))
        return StepPolicy(lowers, changes, (round(capacity_rpm * self.in_share, 1),),
                          (self.in_change,),
                          Alarm(self.periods_out, self.datapoints_out),
                          Alarm(self.periods_in, self.datapoints_in),
                          self.cooldown_out_s, self.cooldown_in_s, self.after_removal,
                          self.trend)


@dataclass(frozen=True)
class Plan:
    """The policy found, its run and row of the table on the trace (with the floors fitted on
    all days), the held-out row that chose the floors, and how many policies were simulated."""

    knobs: Knobs
    policy: StepPolicy
    run: Run
    summary: Summary
    evaluated: int
    feasible: bool
    scheduled: tuple[ScheduledFloor, ...] = ()
    held_out: Summary | None = None  # leave-one-day-out floors (None: no floors planned)
    note: str = ""  # why the plan has or lacks floors
    noise_overloads: tuple[int, ...] = ()  # overloaded minutes on each noise replicate


class Search:
    """Coordinate descent over `GRID` on one trace (each point simulated once); floors are
    scored on held-out days."""

    def __init__(self, rpm: np.ndarray, cloud: Cloud, budget_minutes: int = 0,
                 grid: dict[str, tuple[Any, ...]] | None = None, start_minute: int = 0,
                 replicates: int = NOISE_REPLICATES) -> None:
        self.rpm, self.values, self.cloud, self.budget = rpm, rpm.tolist(), cloud, budget_minutes
        self.grid = GRID if grid is None else grid
        self.start_minute = start_minute
        self.need = oracle(self.values, cloud).provisioned
        self.noisy = noise_replicates(rpm, replicates)
        self.seen: dict[Knobs, tuple[tuple[float, ...], Run, Summary]] = {}
        self.robust: dict[Knobs, tuple[float, ...]] = {}
        self.schedules: dict[tuple[float, int, int], tuple[ScheduledFloor, ...] | None] = {}
        self.held_out: dict[tuple[float, int, int], Floors] = {}

    def schedule(self, knobs: Knobs) -> tuple[ScheduledFloor, ...] | None:
        """The knobs' scheduled floors fitted on all days (() when off; None when over the
        AWS quota)."""
        key = knobs.floor_key
        if key is None:
            return ()
        if key not in self.schedules:
            self.schedules[key] = plan_floors(self.need, self.cloud, *key, self.start_minute)
        return self.schedules[key]

    def floors(self, knobs: Knobs) -> Floors:
        """The MinCapacity a candidate is scored with: each day's floors fitted on the others."""
        key = knobs.floor_key
        if key is None:
            return Floors.none(self.cloud)
        if key not in self.held_out:
            floors = held_out_floors(self.need, self.cloud, *key, self.start_minute)
            minimum = trace_min_capacity(floors, self.cloud.startup_min)
            self.held_out[key] = Floors.of_minutes(minimum)
        return self.held_out[key]

    def score(self, knobs: Knobs) -> tuple[float, ...]:
        if not knobs.valid() or self.schedule(knobs) is None:
            return (np.inf,)
        if knobs not in self.seen:
            run = self.simulate(knobs, self.floors(knobs))
            summary = run.summary(self.rpm, self.cloud)
            self.seen[knobs] = (self.key(summary), run, summary)
        return self.seen[knobs][0]

    def robust_score(self, knobs: Knobs) -> tuple[float, ...]:
        """The score with the overload the worst of the trace and its noise replicates."""
        score = self.score(knobs)
        if score[0] or not self.noisy:  # invalid or over the budget on the trace itself
            return score
        if knobs not in self.robust:
            worst = max(self.noise_overloads(knobs, self.floors(knobs)))
            self.robust[knobs] = (max(0, worst - self.budget), *score[1:])
        return self.robust[knobs]

    def noise_overloads(self, knobs: Knobs, floors: Floors) -> tuple[int, ...]:
        """Overloaded minutes of the knobs' policy on each noise replicate."""
        policy = knobs.policy(self.cloud.capacity_rpm)
        return tuple(simulate_step(r.tolist(), policy, self.cloud, floors=floors)
                     .summary(r, self.cloud).overload_minutes for r in self.noisy)

    def key(self, summary: Summary) -> tuple[float, ...]:
        return (max(0, summary.overload_minutes - self.budget), summary.cost, summary.actions)

    def simulate(self, knobs: Knobs, floors: Floors) -> Run:
        return simulate_step(self.values, knobs.policy(self.cloud.capacity_rpm), self.cloud,
                             floors=floors)

    def descend(self, knobs: Knobs) -> Knobs:
        """Improve one knob at a time until a whole round changes nothing. A knob's values are
        tried cheapest on the trace first; the first that beats the best so far on the trace
        and on its noise replicates is kept."""
        best = self.robust_score(knobs)
        for _ in range(ROUNDS):
            before = knobs
            for name, values in self.grid.items():
                for candidate in sorted((replace(knobs, **{name: v}) for v in values),
                                        key=self.score):
                    if self.score(candidate) >= best:
                        break  # the replicates can only add overload
                    if (score := self.robust_score(candidate)) < best:
                        knobs, best = candidate, score
                        break
            if knobs == before:
                break
        return knobs

    def best(self, starts: Sequence[dict[str, Any]] = STARTS) -> Plan:
        """The best descent's plan; with floors, its floors fitted on all days, simulated on
        the trace, beside the held-out row that chose them."""
        found = [self.descend(replace(Knobs(), **start)) for start in starts]
        knobs = min(found, key=self.robust_score)
        key, (_, run, summary) = self.robust_score(knobs), self.seen[knobs]
        policy = knobs.policy(self.cloud.capacity_rpm)
        scheduled = self.schedule(knobs) or ()
        if knobs.floor_key is None:
            noisy = self.noise_overloads(knobs, Floors.none(self.cloud))
            return Plan(knobs, policy, run, summary, len(self.seen), key[0] == 0,
                        noise_overloads=noisy)
        weekly = Floors.weekly(scheduled, self.cloud, len(self.rpm), self.start_minute)
        final = self.simulate(knobs, weekly)
        fitted = final.summary(self.rpm, self.cloud)
        noisy = self.noise_overloads(knobs, weekly)
        within = max((fitted.overload_minutes, *noisy)) <= self.budget
        return Plan(knobs, policy, final, fitted, len(self.seen), key[0] == 0 and within,
                    scheduled, held_out=summary, noise_overloads=noisy)


def plan_step_policy(rpm: np.ndarray, cloud: Cloud, budget_minutes: int = 0,
                     trend: bool = True, floors: bool = True, start_minute: int = 0) -> Plan:
    """The cheapest step policy found with at most `budget_minutes` overloaded minutes (or the
    least overloaded one, `feasible` False, if none is within the budget). Floors, chosen on
    held-out days, are kept only if that plan is within the budget held out and in sample;
    otherwise the best plan without floors is emitted. `trend` or `floors` False keeps the
    scale-out trend or the floors off."""
    search = Search(rpm, cloud, budget_minutes, _grid(trend, floors), start_minute)
    plan = search.best(_starts(trend, floors))
    if plan.held_out is None:
        note = "" if floors else "scheduled floors off"
        return replace(plan, note=note or "no floors: floors held out did not pay")
    if plan.feasible:
        return replace(plan, note=_floors_note(plan, plan.held_out, budget_minutes))
    search.grid = _grid(trend, False)
    step_only = search.best(_starts(trend, False))
    why = (f"no floors: the best floor plan ({_knobs_text(plan.knobs)}) overloads "
           f"{plan.held_out.overload_minutes} minutes with held-out floors and "
           f"{plan.summary.overload_minutes} with floors fitted on all days "
           f"(budget {budget_minutes})")
    return replace(step_only, evaluated=len(search.seen), note=why)


def _grid(trend: bool, floors: bool) -> dict[str, tuple[Any, ...]]:
    off = ({"trend"} if not trend else set()) | (set(FLOOR_KNOBS) if not floors else set())
    return {k: v for k, v in GRID.items() if k not in off}


def _starts(trend: bool, floors: bool) -> list[dict[str, Any]]:
    grid = _grid(trend, floors)
    starts = [{k: v for k, v in s.items() if k in grid} for s in STARTS]
    return [dict(t) for t in dict.fromkeys(tuple(s.items()) for s in starts)]


def _knobs_text(knobs: Knobs) -> str:
    return (f"q {knobs.floor_q:g}, margin {knobs.floor_margin}, "
            f"{knobs.floor_slot}-min slots")


def _floors_note(plan: Plan, held: Summary, budget: int) -> str:
    return (f"floors {_knobs_text(plan.knobs)}, chosen on held-out days: "
            f"{held.overload_minutes} overloaded minutes held out (budget {budget}), "
            f"{plan.summary.overload_minutes} with the floors fitted on all days")
