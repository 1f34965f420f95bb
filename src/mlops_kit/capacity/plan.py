"""The planner: four policies on one trace, and the planned `scaling` section as YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from mlops_kit.capacity.search import Plan, plan_step_policy
from mlops_kit.capacity.simulate import (
    Cloud,
    PlanError,
    Run,
    Summary,
    TargetTracking,
    fixed_at_peak,
    oracle,
    simulate_target_tracking,
)
from mlops_kit.capacity.trace import Trace
from mlops_kit.config.model import ScalingConfig, ServingConfig

SIZE = re.compile(r"^ml\.[a-z0-9-]+\.(?:(\d*)xlarge|large|medium)$")


def vcpus_of(instance_type: str, override: int | None = None) -> int:
    """vCPUs of a SageMaker instance type by its size: medium and large 2, xlarge 4,
    Nxlarge 4N (the rule of AWS's general, compute and memory families)."""
    if override:
        return override
    match = SIZE.match(instance_type)
    if not match:
        raise PlanError(f"cannot tell the vCPUs of instance type {instance_type!r}: set "
                        "serving.capacity.vcpus")
    if instance_type.endswith("xlarge"):
        return 4 * int(match.group(1) or 1)
    return 2


def instance_rps(measured_rps: float, workers: int, vcpus: int) -> float:
    """The documented rule: the server runs one single-threaded worker per vCPU, so one
    instance serves the measured rate per local worker times its vCPUs."""
    return measured_rps / workers * vcpus


def cloud_from(serving: ServingConfig, rps: float | None = None) -> Cloud:
    """The endpoint the policies run on, from the config (`rps` wins over instance_rps)."""
    rps = rps if rps is not None else serving.capacity.instance_rps
    if rps is None:
        raise PlanError("no per-instance capacity: set serving.capacity.instance_rps "
                        "(requests/s within latency_p99_ms) or pass --measure")
    cap = serving.capacity
    return Cloud(rps * 60.0, serving.min_instances, serving.max_instances, cap.startup_s,
                 cap.price_per_hour)


@dataclass
class Comparison:
    """The planned step policy beside target tracking, fixed capacity and the oracle."""

    trace: Trace
    cloud: Cloud
    plan: Plan
    scaling: ScalingConfig
    runs: list[Run] = field(default_factory=list)
    rows: list[Summary] = field(default_factory=list)

    def row(self, policy: str) -> Summary:
        return next(r for r in self.rows if r.policy == policy)


def compare(trace: Trace, serving: ServingConfig, cloud: Cloud) -> Comparison:
    """Search the step policy, then simulate all four policies on `trace`."""
    cap = serving.capacity
    plan = plan_step_policy(trace.rpm, cloud, cap.overload_budget_minutes,
                            start_minute=trace.start_minute)
    target = cap.target_safety_factor * cloud.capacity_rpm
    values = trace.rpm.tolist()
    runs = [plan.run, simulate_target_tracking(values, TargetTracking(target), cloud),
            fixed_at_peak(values, cloud), oracle(values, cloud)]
    scaling = plan.policy.to_config(target, plan.scheduled, serving.scaling.schedule_time_zone)
    return Comparison(trace, cloud, plan, scaling, runs,
                      [r.summary(trace.rpm, cloud) for r in runs])


def scaling_doc(scaling: ScalingConfig, rps: float | None = None) -> dict[str, object]:
    """The `serving.scaling` section (and `capacity.instance_rps` when measured) as plain
    data, fields that keep their defaults left out."""
    doc: dict[str, object] = {"scaling": scaling.model_dump(exclude_none=True)}
    if rps is not None:
        doc["capacity"] = {"instance_rps": round(rps, 1)}
    return doc


def to_yaml(doc: dict[str, object]) -> str:
    """Block style for sections, flow style for each band."""
    return yaml.safe_dump({"serving": doc}, sort_keys=False, default_flow_style=None)
