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

References printed beside the plan: an idealised reactive rule (`IdealRule`: exact rates a
minute late, any instance count at once, the same start-up) fitted on each week, and run on the
week with its noise redrawn and on the other weeks; the plan's overloaded minutes on the
noise replicates. The full run adds a wider search of the built-in week (finer grid, 8 random
starting points more) and the built-in week planned with start-ups of 60 to 300 s.
Results go to `bench/results/scaling.json`; the exit status is 1 unless the goal is met both
in and out of sample.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlops_kit.capacity import search, week_profile
from mlops_kit.capacity.plan import Comparison, cloud_from, compare
from mlops_kit.capacity.search import plan_step_policy
from mlops_kit.capacity.simulate import (
    Cloud,
    Floors,
    Summary,
    TargetTracking,
    fixed_at_peak,
    oracle,
    simulate_step,
    simulate_target_tracking,
)
from mlops_kit.capacity.trace import noise_replicates
from mlops_kit.config.model import ServingConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scaling.json"
SERVING = ServingConfig.model_validate({
    "min_instances": 2, "max_instances": 40,
    "capacity": {"instance_rps": 50, "startup_s": 300, "price_per_hour": 0.115}})
PEAK_RPM = 60_000
GOAL_RATIO = 1.15
HELD_OUT_SEEDS = (8, 9, 10, 11, 12)  # same profile, other noise, wander and surges
STARTUPS_S = (60, 120, 180, 300)  # the start-up sweep (full run only)
# the idealised reactive controller's family: headroom, trend gain, trend span, scale-in hold
IDEAL_GRID = (tuple(round(0.01 * i, 2) for i in range(41)), (0, 2, 4, 6, 8), (1, 2, 3, 5),
              (1, 5, 10))
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


@dataclass(frozen=True)
class IdealRule:
    """An idealised reactive rule, a reference for what reactive scaling can reach with this
    start-up (not a policy AWS can run): at each minute boundary it knows every finished
    minute's exact requests r (no alarm, band or cooldown) and sets any instance count at once,
    ceil((r[t-1] (1 + headroom) + gain max(0, r[t-1] - r[t-1-span]) / span) / capacity), held
    at the highest of its last `hold` decisions; new instances serve startup_s later, removed
    ones stop at once."""

    headroom: float
    gain: int
    span: int
    hold: int

    def run(self, rpm: np.ndarray, cloud: Cloud) -> tuple[float, int]:
        """(instance-hours, overloaded minutes) on `rpm`."""
        prev = np.concatenate([rpm[:1], rpm[:-1]])  # the latest finished minute, each boundary
        back = np.concatenate([np.full(self.span, rpm[0]), prev[:-self.span]])
        rise = np.maximum(0.0, prev - back) / self.span
        want = np.ceil((prev * (1 + self.headroom) + self.gain * rise) / cloud.capacity_rpm
                       - 1e-9)
        want = _window(want, self.hold).max(axis=1)
        want = np.clip(want, cloud.min_instances, cloud.max_instances)
        serving = _window(want, cloud.startup_min + 1).min(axis=1)  # additions serve later
        return float(want.sum()) / 60, int((rpm > serving * cloud.capacity_rpm + 1e-9).sum())


def _window(values: np.ndarray, width: int) -> np.ndarray:
    """Each position's last `width` values (the first value repeated before the start)."""
    return sliding_window_view(np.concatenate([np.repeat(values[:1], width - 1), values]), width)


def fit_ideal(rpm: np.ndarray, cloud: Cloud) -> IdealRule | None:
    """The cheapest IdealRule of IDEAL_GRID with no overloaded minute on `rpm` (None if every
    rule overloads)."""
    heads, gains, spans, holds = IDEAL_GRID
    best: tuple[float, IdealRule] | None = None
    for span, gain, hold in itertools.product(spans, gains, holds):
        for h in heads:  # more headroom never overloads more: the first that holds is cheapest
            rule = IdealRule(h, gain, span, hold)
            hours, over = rule.run(rpm, cloud)
            if not over:
                best = min(best or (hours, rule), (hours, rule), key=lambda b: b[0])
                break
    return None if best is None else best[1]


def ideal_ratio(rule: IdealRule | None, rpm: np.ndarray, cloud: Cloud) -> float | None:
    """The rule's instance-hours over the oracle's on `rpm`."""
    if rule is None:
        return None
    return round(rule.run(rpm, cloud)[0] / _oracle_hours(rpm, cloud), 3)


def _oracle_hours(rpm: np.ndarray, cloud: Cloud) -> float:
    return float(oracle(rpm.tolist(), cloud).provisioned.sum()) / 60


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


def out_of_sample(comp: Comparison, kwargs: dict[str, Any],
                  ideal: IdealRule | None) -> dict[str, Any]:
    """Print and return the held-out weeks: the four policies summed over the seeds, then one
    line per seed."""
    weeks = {seed: held_out(comp, seed, kwargs) for seed in HELD_OUT_SEEDS}
    traces = {seed: week_profile(PEAK_RPM, seed=seed, **kwargs).rpm for seed in HELD_OUT_SEEDS}
    refit = {seed: ideal_ratio(fit_ideal(rpm, comp.cloud), rpm, comp.cloud)
             for seed, rpm in traces.items()}
    total = {p: Summary(p, *(round(sum(getattr(w[p], f) for w in weeks.values()), 2)
                             for f in SUMMED), max(w[p].peak_instances for w in weeks.values()))
             for p in weeks[HELD_OUT_SEEDS[0]]}
    print(f"\n  out of sample: the plan run unchanged on seeds {HELD_OUT_SEEDS[0]}-"
          f"{HELD_OUT_SEEDS[-1]} (sums over the {len(weeks)} weeks)")
    table({p: asdict(r) for p, r in total.items()})
    out: dict[str, Any] = {"sum": {p: asdict(r) for p, r in total.items()}}
    for seed, rows in weeks.items():
        v = verdict(rows)
        out[f"seed {seed}"] = {"policies": {p: asdict(r) for p, r in rows.items()}, **v,
                               "ideal reactive fitted on this week, x oracle": refit[seed],
                               "ideal reactive fitted on seed 7": _ideal_row(
                                   ideal, traces[seed], comp.cloud)}
        print(f"  seed {seed}: step {v['step / oracle instance-hours']:.3f} x oracle, "
              f"{v['step overloaded minutes']} overloaded minutes "
              f"({rows['step (planned)'].requests_over_objective:,} requests over); target "
              f"tracking {rows['target tracking'].overload_minutes}; step / target tracking "
              f"cost {v['step / target tracking cost']:.3f}; goal {_ok(v['goal_met'])}; "
              f"ideal reactive: fitted on this week {_ratio(refit[seed])}, the seed-7 rule "
              f"{_ideal_row(ideal, traces[seed], comp.cloud)} (x oracle, overloaded minutes)")
    out["goal_met"] = all(out[f"seed {s}"]["goal_met"] for s in HELD_OUT_SEEDS)
    return out


def _ok(met: bool) -> str:
    return "met" if met else "missed"


def _ratio(ratio: float | None) -> str:
    return "overloads at any headroom" if ratio is None else f"{ratio:.3f} x oracle"


def _ideal_row(rule: IdealRule | None, rpm: np.ndarray, cloud: Cloud) -> list[float] | None:
    """[x oracle, overloaded minutes] of a fitted rule on another trace."""
    if rule is None:
        return None
    hours, over = rule.run(rpm, cloud)
    return [round(hours / _oracle_hours(rpm, cloud), 3), over]


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
    ideal = fit_ideal(trace.rpm, comp.cloud)
    noisy = list(comp.plan.noise_overloads)
    ideal_noisy = [_ideal_row(ideal, r, comp.cloud)
                   for r in noise_replicates(trace.rpm, search.NOISE_REPLICATES)]
    print(f"  ideal reactive (reference), fitted on this week: "
          f"{_ratio(ideal_ratio(ideal, trace.rpm, comp.cloud))} ({ideal}); on the week with "
          f"its noise redrawn 3 times, overloaded minutes: the plan {noisy}, the ideal rule "
          f"{[row and row[1] for row in ideal_noisy]}")
    outside = out_of_sample(comp, kwargs, ideal)
    return {"policies": {p: asdict(r) for p, r in rows.items()},
            "ideal reactive": asdict(ideal) if ideal else None,
            "ideal reactive x oracle": ideal_ratio(ideal, trace.rpm, comp.cloud),
            "noise replicates overloaded minutes": noisy,
            "ideal reactive on the noise replicates": ideal_noisy,
            "ratios": {k: round(v, 3) for k, v in ratios.items()},
            "floors": comp.plan.note,
            "held_out_days": asdict(comp.plan.held_out) if comp.plan.held_out else None,
            "scaling": comp.scaling.model_dump(), "search_s": round(seconds, 1),
            "in sample": inside, "out of sample": outside}


def wider_search(replicates: int = search.NOISE_REPLICATES, seeds: int = 8) -> dict[str, Any]:
    """The built-in week searched harder (trend every 0.25, thresholds every 0.0125 of
    capacity, `seeds` random starting points more; no floors), with the budget held on
    `replicates` noise replicates (0: on the trace alone), to show what a cheaper plan in
    sample costs on noise replicates and on the other weeks."""
    trace, cloud = week_profile(PEAK_RPM), cloud_from(SERVING)
    grid = dict(search._grid(True, False), trend=tuple(0.25 * i for i in range(25)),
                out_share=tuple(round(0.3 + 0.0125 * i, 4) for i in range(57)))
    grid["in_share"] = grid["out_share"]
    rng = np.random.default_rng(0)
    starts = search._starts(True, False)
    while len(starts) < len(search._starts(True, False)) + seeds:
        start = {k: v[rng.integers(len(v))] for k, v in grid.items()}
        if replace(search.Knobs(), **start).valid():
            starts.append(start)
    begun = time.perf_counter()
    found = search.Search(trace.rpm, cloud, grid=grid, replicates=replicates).best(starts)
    policy, floor = found.policy, _oracle_hours(trace.rpm, cloud)
    weeks = {}
    for seed in HELD_OUT_SEEDS:
        rpm = week_profile(PEAK_RPM, seed=seed).rpm
        row = simulate_step(rpm.tolist(), policy, cloud).summary(rpm, cloud)
        weeks[seed] = (round(row.instance_hours / _oracle_hours(rpm, cloud), 3),
                       row.overload_minutes)
    out = {"x oracle": round(found.summary.instance_hours / floor, 3),
           "overloaded minutes": found.summary.overload_minutes,
           "noise replicates overloaded minutes": list(  # the planner's own check
               search.Search(trace.rpm, cloud).noise_overloads(found.knobs, Floors.none(cloud))),
           "budget held on replicates": replicates,
           "other weeks (x oracle, overloaded minutes)": weeks,
           "policies": found.evaluated, "search_s": round(time.perf_counter() - begun, 1),
           "scaling": policy.to_config(1.0).model_dump(exclude={"target_value"})}
    print(f"\nwider search on the built-in week, budget held on {replicates} noise replicates: "
          f"{out['x oracle']:.3f} x oracle, "
          f"{out['overloaded minutes']} overloaded minutes in sample; on the noise replicates "
          f"{out['noise replicates overloaded minutes']}; on seeds 8-12 {weeks} "
          f"({found.evaluated} policies, {out['search_s']} s)")
    return out


def startup_sweep() -> dict[int, dict[str, Any]]:
    """The built-in week planned with other start-up times: step, target tracking and the
    ideal reactive reference against the oracle, and the plan's overload on seeds 8-12."""
    out = {}
    print("\nstart-up sweep (built-in week): startup_s, step / oracle, target tracking / oracle, "
          "ideal reactive / oracle, step overloaded minutes on seeds 8-12")
    for startup in STARTUPS_S:
        doc = SERVING.model_dump()
        doc["capacity"]["startup_s"] = startup
        serving = ServingConfig.model_validate(doc)
        comp = compare(week_profile(PEAK_RPM), serving, cloud_from(serving))
        floor = comp.row("oracle").instance_hours
        ideal = ideal_ratio(fit_ideal(comp.trace.rpm, comp.cloud), comp.trace.rpm, comp.cloud)
        weeks = [held_out(comp, seed, {})["step (planned)"].overload_minutes
                 for seed in HELD_OUT_SEEDS]
        out[startup] = {"step x oracle": round(comp.row("step (planned)").instance_hours
                                               / floor, 3),
                        "target tracking x oracle": round(comp.row("target tracking")
                                                          .instance_hours / floor, 3),
                        "ideal reactive": ideal, "step overloaded minutes, seeds 8-12": weeks}
        print(f"  {startup:>4} s: {out[startup]['step x oracle']:.3f}, "
              f"{out[startup]['target tracking x oracle']:.3f}, {_ratio(ideal)}, {weeks}")
    return out


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
    if not args.quick:
        out["wider search"] = wider_search()
        out["start-up sweep"] = startup_sweep()
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
