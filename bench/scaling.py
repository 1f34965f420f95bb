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
overloaded minutes. It is judged twice: in sample (the week the plan was fitted on, seed 7)
and out of sample (the plan run unchanged on the weeks with seeds 8-12, same profile; met only
if met on every one). The variants (no surges; surges that build in 5-15 minutes instead of
10-30 and reach +25-60 %) are printed in and out of sample to show what surges cost; they
carry no goal. Each trace is also planned with the scale-out trend off and with the floors
off to show what each adds.
Results go to `bench/results/scaling.json`; the exit status is 1 unless the goal is met both
in and out of sample.
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
from mlops_kit.config.model import ServingConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scaling.json"
SERVING = ServingConfig.model_validate({
    "min_instances": 2, "max_instances": 40,
    "capacity": {"instance_rps": 50, "startup_s": 300, "price_per_hour": 0.115}})
PEAK_RPM = 60_000
GOAL_RATIO = 1.15
HELD_OUT_SEEDS = (8, 9, 10, 11, 12)  # same profile, other noise, wander and surges
SUMMED = ("instance_hours", "cost", "overload_minutes", "requests_over_objective", "actions")
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


def held_out(comp: Comparison, seed: int, kwargs: dict[str, Any]) -> dict[str, Summary]:
    """The planned policy and floors, fitted on the week with seed 7, on another week of the
    same profile (the four policies)."""
    trace, cloud = week_profile(PEAK_RPM, seed=seed, **kwargs), comp.cloud
    values = trace.rpm.tolist()
    floors = Floors.weekly(comp.plan.scheduled, cloud, trace.minutes, trace.start_minute)
    target = SERVING.capacity.target_safety_factor * cloud.capacity_rpm
    runs = [simulate_step(values, comp.plan.policy, cloud, floors=floors),
            simulate_target_tracking(values, TargetTracking(target), cloud),
            fixed_at_peak(values, cloud), oracle(values, cloud)]
    return {r.name: r.summary(trace.rpm, cloud) for r in runs}


def verdict(rows: dict[str, Summary]) -> dict[str, Any]:
    """The goal's figures on one week: step within GOAL_RATIO x the oracle, 0 overloaded
    minutes, cheaper than target tracking with no more overloaded minutes."""
    step, tt, floor = (rows[p] for p in ("step (planned)", "target tracking", "oracle"))
    ratio = step.instance_hours / floor.instance_hours
    return {"step / oracle instance-hours": round(ratio, 3),
            "step / target tracking cost": round(step.cost / tt.cost, 3),
            "step overloaded minutes": step.overload_minutes,
            "goal_met": (ratio <= GOAL_RATIO and step.overload_minutes == 0
                         and step.cost < tt.cost
                         and step.overload_minutes <= tt.overload_minutes)}


def out_of_sample(comp: Comparison, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Print and return the held-out weeks: the four policies summed over the seeds, then one
    line per seed."""
    weeks = {seed: held_out(comp, seed, kwargs) for seed in HELD_OUT_SEEDS}
    total = {p: Summary(p, *(round(sum(getattr(w[p], f) for w in weeks.values()), 2)
                             for f in SUMMED), max(w[p].peak_instances for w in weeks.values()))
             for p in weeks[HELD_OUT_SEEDS[0]]}
    print(f"\n  out of sample: the plan run unchanged on seeds {HELD_OUT_SEEDS[0]}-"
          f"{HELD_OUT_SEEDS[-1]} (sums over the {len(weeks)} weeks)")
    table({p: asdict(r) for p, r in total.items()})
    out: dict[str, Any] = {"sum": {p: asdict(r) for p, r in total.items()}}
    for seed, rows in weeks.items():
        v = verdict(rows)
        out[f"seed {seed}"] = {"policies": {p: asdict(r) for p, r in rows.items()}, **v}
        print(f"  seed {seed}: step {v['step / oracle instance-hours']:.3f} x oracle, "
              f"{v['step overloaded minutes']} overloaded minutes "
              f"({rows['step (planned)'].requests_over_objective:,} requests over); target "
              f"tracking {rows['target tracking'].overload_minutes}; step / target tracking "
              f"cost {v['step / target tracking cost']:.3f}; goal {_ok(v['goal_met'])}")
    out["goal_met"] = all(out[f"seed {s}"]["goal_met"] for s in HELD_OUT_SEEDS)
    return out


def _ok(met: bool) -> str:
    return "met" if met else "missed"


def run(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Plan on the week (seed 7); print the four policies in sample and out of sample."""
    trace = week_profile(PEAK_RPM, **kwargs)
    start = time.perf_counter()
    comp = compare(trace, SERVING, cloud_from(SERVING))
    seconds = time.perf_counter() - start
    rows = {r.policy: r for r in comp.rows}
    floor = comp.row("oracle")
    ratios = {"target tracking / oracle instance-hours":
              comp.row("target tracking").instance_hours / floor.instance_hours}
    if comp.plan.held_out is not None:
        ratios["step with held-out floors / oracle instance-hours"] = (
            comp.plan.held_out.instance_hours / floor.instance_hours)
    budget = SERVING.capacity.overload_budget_minutes
    for knob, off in (("trend", {"trend": False}), ("scheduled floors", {"floors": False})):
        alt = plan_step_policy(trace.rpm, comp.cloud, budget, **off).summary
        ratios[f"step searched without the {knob} / oracle instance-hours"] = (
            alt.instance_hours / floor.instance_hours)
    print(f"\n{name}: {trace.minutes:,} minutes, peak {trace.peak:,.0f}/min; "
          f"search {seconds:.1f} s, {comp.plan.evaluated} policies simulated")
    print(f"  {comp.plan.note}")
    print("  in sample: the plan on the week it was fitted on (seed 7)")
    table({p: asdict(r) for p, r in rows.items()})
    inside = verdict(rows)
    for label, value in ratios.items():
        print(f"  {label}: {value:.3f}")
    print(f"  in sample: step {inside['step / oracle instance-hours']:.3f} x oracle, "
          f"{inside['step overloaded minutes']} overloaded minutes, step / target tracking "
          f"cost {inside['step / target tracking cost']:.3f}; goal {_ok(inside['goal_met'])}")
    print(f"  planned scale_out_trend_minutes: {comp.scaling.scale_out_trend_minutes:g}; "
          f"{len(comp.scaling.scheduled)} scheduled actions (floors: {comp.plan.knobs.floor_key})")
    outside = out_of_sample(comp, kwargs)
    return {"policies": {p: asdict(r) for p, r in rows.items()},
            "ratios": {k: round(v, 3) for k, v in ratios.items()},
            "floors": comp.plan.note,
            "held_out_days": asdict(comp.plan.held_out) if comp.plan.held_out else None,
            "scaling": comp.scaling.model_dump(), "search_s": round(seconds, 1),
            "in sample": inside, "out of sample": outside}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the built-in week only")
    args = parser.parse_args()
    out: dict[str, Any] = {"scenario": {"peak_rpm": PEAK_RPM, **SERVING.capacity.model_dump(),
                                        "min_instances": SERVING.min_instances,
                                        "max_instances": SERVING.max_instances,
                                        "held_out_seeds": list(HELD_OUT_SEEDS)}}
    for name, kwargs in VARIANTS.items():
        if args.quick and kwargs:
            continue
        out[name] = run(name, kwargs)
    week = out["built-in week"]
    inside, outside = week["in sample"]["goal_met"], week["out of sample"]["goal_met"]
    print(f"\ngoal (built-in week: step within {GOAL_RATIO:.2f} x oracle, 0 overloaded minutes, "
          f"cheaper than target tracking): in sample {_ok(inside)}; out of sample (every one "
          f"of seeds {HELD_OUT_SEEDS[0]}-{HELD_OUT_SEEDS[-1]}) {_ok(outside)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if inside and outside else 1


if __name__ == "__main__":
    raise SystemExit(main())
