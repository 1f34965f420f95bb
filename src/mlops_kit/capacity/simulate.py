"""Minute-by-minute simulation of an endpoint's instance count under a scaling policy.

The model (docs/scaling.md#the-simulation-model): minute `t` carries `rpm[t]` requests. At the
start of each minute (a boundary) the alarms look at the finished minutes' datapoints of
InvocationsPerInstance (the minute's requests over the instances in service, CloudWatch's
1-minute Sum) and the policies act at once. Instances added at boundary `b` are billed from
minute `b` and serve from minute `b + ceil(startup_s / 60)`; instances removed stop at once
(those still starting go first). A minute is overloaded when its requests exceed the serving
instances times the per-instance capacity at the latency objective.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlops_kit.config.model import ScalingConfig, ScheduledFloor
from mlops_kit.cron import MINUTES_PER_WEEK, weekly_minutes


class PlanError(ValueError):
    """Inputs the planner cannot use: the message names the setting and the fix."""


@dataclass(frozen=True)
class Cloud:
    """The endpoint and the cloud's behaviour the policies run against."""

    capacity_rpm: float  # requests per minute one instance serves within the objective
    min_instances: int = 1
    max_instances: int = 4
    startup_s: int = 300
    price_per_hour: float = 0.115

    def __post_init__(self) -> None:
        if not math.isfinite(self.capacity_rpm) or self.capacity_rpm <= 0:
            raise PlanError(f"the per-instance capacity must be > 0 requests/min, got "
                            f"{self.capacity_rpm}: set serving.capacity.instance_rps or measure "
                            "it with --measure")
        if self.min_instances < 1:
            raise PlanError("serving.min_instances must be >= 1 to plan: an instance endpoint "
                            "keeps at least one instance (scale to zero is not modelled)")
        if self.min_instances > self.max_instances:
            raise PlanError(f"serving.min_instances ({self.min_instances}) must be <= "
                            f"serving.max_instances ({self.max_instances})")
        if self.startup_s < 0 or self.price_per_hour <= 0:
            raise PlanError("startup_s must be >= 0 and price_per_hour > 0")

    @property
    def startup_min(self) -> int:
        return math.ceil(self.startup_s / 60)

    def clamp(self, n: int) -> int:
        return max(self.min_instances, min(self.max_instances, n))

    def needed(self, rpm: float) -> int:
        """Instances that serve `rpm` within the objective (within the bounds)."""
        return self.clamp(math.ceil(rpm / self.capacity_rpm - 1e-9))


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm on 1-minute datapoints: ALARM when `datapoints` of the last
    `periods` breach (missing datapoints at the start of the trace do not breach)."""

    periods: int = 1
    datapoints: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.datapoints <= self.periods:
            raise PlanError(f"an alarm needs 1 <= datapoints ({self.datapoints}) <= evaluation "
                            f"periods ({self.periods})")


@dataclass(frozen=True)
class StepPolicy:
    """Two step-scaling policies on InvocationsPerInstance, each behind its own alarm.

    Scale-out bands: the metric at least `out_lowers[i]` adds `out_changes[i]` (the alarm's
    threshold is `out_lowers[0]`). Scale-in bands: below `in_uppers[i]` adds `in_changes[i]`
    (negative; threshold `in_uppers[0]`). The band is chosen by the latest datapoint.
    """

    out_lowers: tuple[float, ...]
    out_changes: tuple[int, ...]
    in_uppers: tuple[float, ...]
    in_changes: tuple[int, ...]
    alarm_out: Alarm = Alarm(1, 1)
    alarm_in: Alarm = Alarm(5, 5)
    cooldown_out_s: int = 60
    cooldown_in_s: int = 300
    in_after_removal: bool = False  # scale-in reads the metric with one instance fewer
    trend_minutes: float = 0.0  # scale-out reads the rate projected this far ahead (0: off)

    @classmethod
    def from_config(cls, cfg: ScalingConfig) -> StepPolicy:
        return cls(
            out_lowers=tuple(s.lower for s in cfg.scale_out),
            out_changes=tuple(s.change for s in cfg.scale_out),
            in_uppers=tuple(s.upper for s in cfg.scale_in),
            in_changes=tuple(s.change for s in cfg.scale_in),
            alarm_out=Alarm(cfg.evaluation_periods_out,
                            cfg.datapoints_to_alarm_out or cfg.evaluation_periods_out),
            alarm_in=Alarm(cfg.evaluation_periods_in,
                           cfg.datapoints_to_alarm_in or cfg.evaluation_periods_in),
            cooldown_out_s=cfg.cooldown_out_s, cooldown_in_s=cfg.cooldown_in_s,
            in_after_removal=cfg.scale_in_metric == "after_removal",
            trend_minutes=cfg.scale_out_trend_minutes)

    def to_config(self, target_value: float, scheduled: Sequence[ScheduledFloor] = (),
                  time_zone: str = "UTC") -> ScalingConfig:
        """The config's `scaling` section for this policy and its scheduled floors
        (validated by the model)."""
        return ScalingConfig.model_validate({
            "policy": "step", "metric": "InvocationsPerInstance",
            "scale_out": [{"lower": round(lo, 1), "change": c}
                          for lo, c in zip(self.out_lowers, self.out_changes, strict=True)],
            "scale_in": [{"upper": round(up, 1), "change": c}
                         for up, c in zip(self.in_uppers, self.in_changes, strict=True)],
            "target_value": round(target_value, 1),
            "cooldown_out_s": self.cooldown_out_s, "cooldown_in_s": self.cooldown_in_s,
            "evaluation_periods_out": self.alarm_out.periods,
            "datapoints_to_alarm_out": self.alarm_out.datapoints,
            "evaluation_periods_in": self.alarm_in.periods,
            "datapoints_to_alarm_in": self.alarm_in.datapoints,
            "scale_in_metric": "after_removal" if self.in_after_removal else "current",
            "scale_out_trend_minutes": self.trend_minutes,
            "scheduled": [f.model_dump() for f in scheduled],
            "schedule_time_zone": time_zone,
        })


@dataclass(frozen=True)
class TargetTracking:
    """AWS-style target tracking on InvocationsPerInstance: scale out when 3 of 3 datapoints
    are above the target, scale in when 15 of 15 are below 90 % of it, to the capacity that
    brings the latest minute to the target. Scale-in waits out a 300 s cooldown (SageMaker's
    default). A scale-out asks for an absolute capacity, so the scale-out cooldown (act only
    if larger) never holds it back."""

    target: float
    alarm_out: Alarm = Alarm(3, 3)
    alarm_in: Alarm = Alarm(15, 15)
    scale_in_ratio: float = 0.9
    cooldown_in_s: int = 300


@dataclass(frozen=True)
class Floors:
    """Scheduled MinCapacity on one trace: `start` in effect at minute 0, then `changes`
    (minute of the trace -> the new MinCapacity set at the start of that minute)."""

    start: int
    changes: dict[int, int]

    @classmethod
    def none(cls, cloud: Cloud) -> Floors:
        return cls(cloud.min_instances, {})

    @classmethod
    def of_minutes(cls, minimum: np.ndarray) -> Floors:
        """MinCapacity given minute by minute: one change wherever it differs from the
        minute before."""
        at = np.flatnonzero(np.diff(minimum)) + 1
        return cls(int(minimum[0]), dict(zip(at.tolist(), minimum[at].tolist(), strict=True)))

    @classmethod
    def weekly(cls, scheduled: Sequence[ScheduledFloor], cloud: Cloud, minutes: int,
               start_minute: int = 0) -> Floors:
        """The recurring actions on a trace that starts `start_minute` into the week (0:
        Monday 00:00 in the schedule's time zone); at minute 0 the floor is the latest
        action's before it, a week back if need be."""
        actions = sorted((m, f.min_instances) for f in scheduled for m in weekly_minutes(f.cron))
        if not actions:
            return cls.none(cloud)
        for floor in scheduled:
            if not cloud.min_instances <= floor.min_instances <= cloud.max_instances:
                raise PlanError(f"scheduled floor {floor.cron!r}: min_instances "
                                f"{floor.min_instances} is outside [{cloud.min_instances}, "
                                f"{cloud.max_instances}]")
        first = start_minute % MINUTES_PER_WEEK
        before = [n for m, n in actions if m < first]
        changes = {}
        for m, n in actions:
            for t in range((m - first) % MINUTES_PER_WEEK, minutes, MINUTES_PER_WEEK):
                changes[t] = n
        return cls(before[-1] if before else actions[-1][1], changes)


@dataclass
class Run:
    """One policy on one trace: instances billed and serving each minute, scaling actions."""

    name: str
    provisioned: np.ndarray
    serving: np.ndarray
    actions: int

    def summary(self, rpm: np.ndarray, cloud: Cloud) -> Summary:
        capacity = self.serving * cloud.capacity_rpm
        excess = np.maximum(0.0, rpm - capacity)
        hours = float(self.provisioned.sum()) / 60.0
        return Summary(self.name, round(hours, 2), round(hours * cloud.price_per_hour, 2),
                       int((excess > 1e-9).sum()), round(float(excess.sum())),
                       self.actions, int(self.provisioned.max()))


@dataclass(frozen=True)
class Summary:
    """The table's row for one policy."""

    policy: str
    instance_hours: float
    cost: float
    overload_minutes: int
    requests_over_objective: int  # requests beyond capacity in overloaded minutes
    actions: int
    peak_instances: int


# --- the simple policies --------------------------------------------------------------------


def oracle(rpm: Sequence[float], cloud: Cloud) -> Run:
    """Exactly the instances each minute needs, in service at once: the lower bound."""
    need = np.array([cloud.needed(r) for r in rpm], dtype="int64")
    return Run("oracle", need, need, int((np.diff(need) != 0).sum()))


def fixed_at_peak(rpm: Sequence[float], cloud: Cloud) -> Run:
    """The instances the busiest minute needs, all week."""
    n = cloud.needed(max(rpm))
    flat = np.full(len(rpm), n, dtype="int64")
    return Run("fixed at peak", flat, flat, 0)


# --- the fleet the reactive policies drive ---------------------------------------------------


class Fleet:
    """Desired instances, those still starting (their ready minutes), and those serving."""

    def __init__(self, cloud: Cloud, initial: int, floor: int | None = None) -> None:
        self.cloud = cloud
        self.floor = cloud.min_instances if floor is None else floor  # MinCapacity now
        self.desired = self.serving = max(self.floor, cloud.clamp(initial))
        self.starting: deque[int] = deque()
        self.actions = 0

    def set(self, minute: int, n: int) -> bool:
        """Ask for `n` instances at the start of `minute` (clamped to the current MinCapacity
        and max_instances); True if the count changed."""
        n = max(self.floor, self.cloud.clamp(n))
        if n == self.desired:
            return False
        for _ in range(n - self.desired):
            self.starting.append(minute + self.cloud.startup_min)
        for _ in range(self.desired - n):  # the newest starting instances go first
            if self.starting:
                self.starting.pop()
            else:
                self.serving -= 1
        self.desired = n
        self.actions += 1
        return True

    def schedule(self, minute: int, floor: int) -> None:
        """A scheduled action sets MinCapacity: below it the fleet scales out to it; a lower
        floor removes nothing (the scale-in policy does)."""
        self.floor = floor
        if self.desired < floor:
            self.set(minute, floor)

    def arrive(self, minute: int) -> None:
        while self.starting and self.starting[0] <= minute:
            self.starting.popleft()
            self.serving += 1


class Window:
    """Breach flags of the last `alarm.periods` datapoints and whether the alarm is on."""

    def __init__(self, alarm: Alarm) -> None:
        self.alarm = alarm
        self.flags: deque[bool] = deque(maxlen=alarm.periods)
        self.count = 0

    def push(self, breach: bool) -> None:
        if len(self.flags) == self.alarm.periods and self.flags[0]:
            self.count -= 1
        self.flags.append(breach)
        self.count += breach

    @property
    def on(self) -> bool:
        return self.count >= self.alarm.datapoints


class Projection:
    """The scale-out alarm's metric. Without a trend, InvocationsPerInstance `m`; with
    `minutes` k > 0, the metric-math expression `m * (1 + k * IF(DIFF(inv) > 0, DIFF(inv), 0)
    / inv)` over the variant's Invocations `inv`: the rate the fleet would see k minutes ahead
    if traffic kept rising as in its last minute (a fall is not projected). A minute without
    requests publishes no datapoint (read as not breaching) and DIFF skips it; the first
    datapoint has no DIFF, which counts as 0."""

    def __init__(self, minutes: float) -> None:
        self.minutes = minutes
        self.previous: float | None = None  # the latest Invocations datapoint

    def value(self, requests: float, serving: int) -> float:
        per_instance = requests / serving
        if not self.minutes or requests <= 0:
            return per_instance
        rise = 0.0 if self.previous is None else max(0.0, requests - self.previous)
        self.previous = requests
        return per_instance * (1 + self.minutes * rise / requests)


def simulate_step(rpm: Sequence[float], policy: StepPolicy, cloud: Cloud,
                  initial: int | None = None, name: str = "step (planned)",
                  floors: Floors | None = None) -> Run:
    """Step scaling with Application Auto Scaling's cooldown rules: during a scale-out
    cooldown a scale-out acts only if the cooldown's starting capacity plus its step is above
    the current capacity; scale-in waits out its cooldown, which a scale-out ends. Scheduled
    `floors` act first at their minute and neither start nor end a cooldown."""
    floors = floors or Floors.none(cloud)
    fleet = Fleet(cloud, cloud.needed(rpm[0]) if initial is None else initial, floors.start)
    out, inn = Window(policy.alarm_out), Window(policy.alarm_in)
    cd_out, cd_in = policy.cooldown_out_s / 60.0, policy.cooldown_in_s / 60.0
    out_until, in_until, base = -math.inf, -math.inf, 0
    provisioned, serving = np.empty(len(rpm), "int64"), np.empty(len(rpm), "int64")
    last = last_in = 0.0
    fewer = 1 if policy.in_after_removal else 0
    projection = Projection(policy.trend_minutes)
    for t, demand in enumerate(rpm):
        if t in floors.changes:
            fleet.schedule(t, floors.changes[t])
        if out.on and (change := _band_out(policy, last)):
            if t < out_until:  # in the cooldown: only a larger scale-out than the first acts
                if base + change > fleet.desired and fleet.set(t, base + change):
                    in_until = -math.inf
            else:
                base = fleet.desired
                if fleet.set(t, base + change):
                    out_until, in_until = t + cd_out, -math.inf
        elif (inn.on and t >= in_until and (change := _band_in(policy, last_in))
              and fleet.set(t, fleet.desired + change)):
            in_until = t + cd_in
        fleet.arrive(t)
        provisioned[t], serving[t] = fleet.desired, fleet.serving
        last = projection.value(demand, fleet.serving)
        last_in = demand / (fleet.serving - fewer) if fleet.serving > fewer else math.inf
        out.push(last >= policy.out_lowers[0])
        inn.push(last_in < policy.in_uppers[0])
    return Run(name, provisioned, serving, fleet.actions)


def _band_out(policy: StepPolicy, value: float) -> int:
    change = 0
    for lower, step in zip(policy.out_lowers, policy.out_changes, strict=True):
        if value >= lower:
            change = step
    return change


def _band_in(policy: StepPolicy, value: float) -> int:
    change = 0
    for upper, step in zip(policy.in_uppers, policy.in_changes, strict=True):
        if value < upper:
            change = step
    return change


def simulate_target_tracking(rpm: Sequence[float], policy: TargetTracking, cloud: Cloud,
                             initial: int | None = None) -> Run:
    """Target tracking: each alarm asks for the capacity that puts the latest minute's
    requests at the target."""
    start = cloud.clamp(math.ceil(rpm[0] / policy.target)) if initial is None else initial
    fleet = Fleet(cloud, start)
    out, inn = Window(policy.alarm_out), Window(policy.alarm_in)
    in_until = -math.inf
    provisioned, serving = np.empty(len(rpm), "int64"), np.empty(len(rpm), "int64")
    last = 0.0
    for t, demand in enumerate(rpm):
        want = math.ceil(last / policy.target - 1e-9)
        if out.on and want > fleet.desired:
            if fleet.set(t, want):
                in_until = -math.inf  # a scale-out ends the scale-in cooldown
        elif inn.on and t >= in_until and want < fleet.desired and fleet.set(t, want):
            in_until = t + policy.cooldown_in_s / 60.0
        fleet.arrive(t)
        provisioned[t], serving[t] = fleet.desired, fleet.serving
        last = demand  # the latest minute's requests: want = requests / target
        per_instance = demand / fleet.serving
        out.push(per_instance > policy.target)
        inn.push(per_instance < policy.scale_in_ratio * policy.target)
    return Run("target tracking", provisioned, serving, fleet.actions)
