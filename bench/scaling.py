"""Benchmark of the scaling planner on the built-in week: the planned step policy beside
target tracking, fixed capacity at peak and the oracle.

Run from the repository root:

    .venv/bin/python bench/scaling.py            # the week, plus two variants of its surges
    .venv/bin/python bench/scaling.py --quick    # the week only

The scenario: one instance serves 50 requests/s (3,000/min) within the latency objective, the
weekday pattern peaks at 60,000 requests/min (20 instances' worth; surges go higher), 2 to 40
instances, 300 s from a scaling action to a serving instance, $0.115 an instance-hour
(ml.m5.large). The goal, on the built-in week: the planned policy within 15 % of the oracle's
instance-hours with zero overloaded minutes, and cheaper than target tracking with no more
overloaded minutes. The variants (no surges; surges that build in 5-15 minutes instead of
10-30 and reach +25-60 %) are printed to show what surges cost; they carry no goal. Each
trace is also planned with the scale-out trend off (`scale_out_trend_minutes: 0`) to show
what the trend adds.
Results go to `bench/results/scaling.json`; the exit status is 1 if the goal is missed.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlops_kit.capacity import week_profile
from mlops_kit.capacity.plan import Comparison, cloud_from, compare
from mlops_kit.capacity.search import plan_step_policy
from mlops_kit.capacity.simulate import (
    Floors,
    Summary,
    TargetTracking,
    fixed_at_peak,
    oracle,
    simulate_step,
    simulate_target_tracking,
)
from mlops_kit.capacity.trace import Trace
from mlops_kit.config.model import ServingConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scaling.json"
SERVING = ServingConfig.model_validate({
    "min_instances": 2, "max_instances": 40,
    "capacity": {"instance_rps": 50, "startup_s": 300, "price_per_hour": 0.115}})
PEAK_RPM = 60_000
GOAL_RATIO = 1.15
HELD_OUT_SEEDS = (8, 9, 10, 11, 12)  # same profile, other noise, wander and surges
VARIANTS = {
    "built-in week": {},
    "no surges": {"spikes": False},
    "fast surges (5-15 min, +25-60 %)": {"spike_rise": (5, 15), "spike_height": (0.25, 0.6)},
}


def table(rows: dict[str, dict[str, Any]]) -> None:
    metrics = ("instance_hours", "cost", "overload_minutes", "requests_over_objective",
               "actions", "peak_instances")
    print(f"{'':26}" + "".join(f"{p:>17}" for p in rows))
    for m in metrics:
        print(f"{m:26}" + "".join(f"{rows[p][m]:>17,}" for p in rows))


def held_out(comp: Comparison, seed: int) -> dict[str, Summary]:
    """The planned policy and floors, fitted on the built-in week, on another week."""
    trace, cloud = week_profile(PEAK_RPM, seed=seed), comp.cloud
    values = trace.rpm.tolist()
    floors = Floors.weekly(comp.plan.scheduled, cloud, trace.minutes, trace.start_minute)
    target = SERVING.capacity.target_safety_factor * cloud.capacity_rpm
    runs = [simulate_step(values, comp.plan.policy, cloud, floors=floors),
            simulate_target_tracking(values, TargetTracking(target), cloud),
            fixed_at_peak(values, cloud), oracle(values, cloud)]
    return {r.name: r.summary(trace.rpm, cloud) for r in runs}


def out_of_sample(comp: Comparison) -> dict[str, Any]:
    """Print and return the held-out weeks: the first in full, then one line per seed."""
    out: dict[str, Any] = {}
    for seed in HELD_OUT_SEEDS:
        rows = held_out(comp, seed)
        step, tt, floor = (rows[p] for p in ("step (planned)", "target tracking", "oracle"))
        out[f"seed {seed}"] = {
            "policies": {p: asdict(r) for p, r in rows.items()},
            "step / oracle instance-hours": round(step.instance_hours / floor.instance_hours, 3),
            "step / target tracking cost": round(step.cost / tt.cost, 3)}
        if seed == HELD_OUT_SEEDS[0]:
            print(f"\nout of sample: the plan above on the week with seed {seed}")
            table(out[f"seed {seed}"]["policies"])
        print(f"  seed {seed}: step {out[f'seed {seed}']['step / oracle instance-hours']:.3f} x "
              f"oracle, {step.overload_minutes} overloaded minutes "
              f"({step.requests_over_objective:,} requests over); target tracking "
              f"{tt.overload_minutes}; step / target tracking cost "
              f"{out[f'seed {seed}']['step / target tracking cost']:.3f}")
    return out


def run(name: str, trace: Trace) -> dict[str, Any]:
    """Plan and compare on one trace; print the four policies side by side."""
    start = time.perf_counter()
    comp = compare(trace, SERVING, cloud_from(SERVING))
    seconds = time.perf_counter() - start
    rows = {r.policy: asdict(r) for r in comp.rows}
    step, tt, floor = (comp.row(p) for p in ("step (planned)", "target tracking", "oracle"))
    ratios = {"step / oracle instance-hours": step.instance_hours / floor.instance_hours,
              "step / target tracking cost": step.cost / tt.cost,
              "target tracking / oracle instance-hours": tt.instance_hours / floor.instance_hours}
    budget = SERVING.capacity.overload_budget_minutes
    for knob, kwargs in (("trend", {"trend": False}), ("scheduled floors", {"floors": False})):
        off = plan_step_policy(trace.rpm, comp.cloud, budget, **kwargs).summary
        ratios[f"step searched without the {knob} / oracle instance-hours"] = (
            off.instance_hours / floor.instance_hours)
    print(f"\n{name}: {trace.minutes:,} minutes, peak {trace.peak:,.0f}/min; "
          f"search {seconds:.1f} s, {comp.plan.evaluated} policies simulated")
    table(rows)
    for label, value in ratios.items():
        print(f"  {label}: {value:.3f}")
    print(f"  planned scale_out_trend_minutes: {comp.scaling.scale_out_trend_minutes:g}; "
          f"{len(comp.scaling.scheduled)} scheduled actions (floors: {comp.plan.knobs.floor_key})")
    goal = (ratios["step / oracle instance-hours"] <= GOAL_RATIO and step.overload_minutes == 0
            and step.cost < tt.cost and step.overload_minutes <= tt.overload_minutes)
    result = {"policies": rows, "ratios": ratios, "scaling": comp.scaling.model_dump(),
              "search_s": round(seconds, 1), "goal_met": goal}
    if name == "built-in week":
        result["out of sample"] = out_of_sample(comp)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the built-in week only")
    args = parser.parse_args()
    out: dict[str, Any] = {"scenario": {"peak_rpm": PEAK_RPM, **SERVING.capacity.model_dump(),
                                        "min_instances": SERVING.min_instances,
                                        "max_instances": SERVING.max_instances}}
    for name, kwargs in VARIANTS.items():
        if args.quick and kwargs:
            continue
        out[name] = run(name, week_profile(PEAK_RPM, **kwargs))  # type: ignore[arg-type]
    week = out["built-in week"]
    print(f"\ngoal (built-in week: step within {GOAL_RATIO:.2f} x oracle, 0 overloaded minutes, "
          f"cheaper than target tracking): {'PASS' if week['goal_met'] else 'FAIL'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if week["goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
