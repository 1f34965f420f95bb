"""Capacity planning: the simulator on hand-worked traces, bad input, the search, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mlops_kit.capacity import TraceError, load_trace, search, week_profile
from mlops_kit.capacity.plan import cloud_from, compare, instance_rps, vcpus_of
from mlops_kit.capacity.schedule import held_out_floors, plan_floors, slot_floors
from mlops_kit.capacity.search import plan_step_policy
from mlops_kit.capacity.simulate import (
    Alarm,
    Cloud,
    Floors,
    PlanError,
    Projection,
    StepPolicy,
    TargetTracking,
    fixed_at_peak,
    oracle,
    simulate_step,
    simulate_target_tracking,
)
from mlops_kit.capacity.trace import Trace, noise_replicates
from mlops_kit.cli import main
from mlops_kit.config import load_config
from mlops_kit.config.model import ScalingConfig, ScheduledFloor, ServingConfig
from tests.conftest import Trained

C = 100.0  # requests per minute one instance serves in these traces


def step(out: list[tuple[float, int]], inn: list[tuple[float, int]] | None = None,
         **kw: object) -> StepPolicy:
    inn = inn or [(1.0, -1)]
    return StepPolicy(tuple(x for x, _ in out), tuple(c for _, c in out),
                      tuple(x for x, _ in inn), tuple(c for _, c in inn), **kw)  # type: ignore[arg-type]


def cloud(startup_s: int = 0, lo: int = 1, hi: int = 10) -> Cloud:
    return Cloud(C, lo, hi, startup_s, price_per_hour=1.0)


# --- the simulator, worked out by hand -------------------------------------------------------


def test_scale_out_waits_for_datapoints_of_evaluation_periods() -> None:
    trace = [50, 90, 50, 90, 50, 50, 50]
    two_of_three = step([(80, 1)], alarm_out=Alarm(3, 2), cooldown_out_s=0)
    # boundary 4 sees minutes 1-3 (90, 50, 90): 2 of 3 breach -> one more instance
    assert simulate_step(trace, two_of_three, cloud(), initial=1).provisioned.tolist() == \
        [1, 1, 1, 1, 2, 2, 2]
    three_of_three = step([(80, 1)], alarm_out=Alarm(3, 3), cooldown_out_s=0)
    assert simulate_step(trace, three_of_three, cloud(), initial=1).actions == 0


def test_start_up_delay_leaves_minutes_overloaded() -> None:
    trace = [150.0] * 8
    run = simulate_step(trace, step([(80, 1)], cooldown_out_s=600), cloud(startup_s=180),
                        initial=1)
    # asked for at boundary 1, billed from minute 1, serving from minute 4
    assert run.provisioned.tolist() == [1, 2, 2, 2, 2, 2, 2, 2]
    assert run.serving.tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    summary = run.summary(np.array(trace), cloud(startup_s=180))
    assert (summary.overload_minutes, summary.requests_over_objective) == (4, 200)
    assert summary.instance_hours == pytest.approx(15 / 60, abs=0.01)


def test_scale_out_cooldown_lets_only_a_larger_step_through() -> None:
    trace = [90, 90, 250, 250, 250, 250, 250, 250]
    policy = step([(80, 1), (200, 3)], cooldown_out_s=300)
    run = simulate_step(trace, policy, cloud(startup_s=600), initial=1)
    # b1: 1 -> 2, cooldown to b6 from base 1; b2: 1 + 1 is not above 2, blocked;
    # b3: 1 + 3 = 4 > 2 acts; b4, b5: 4 is not above 4; b6: cooldown over, 4 + 3 = 7
    assert run.provisioned.tolist() == [1, 2, 2, 4, 4, 4, 7, 7]
    assert run.actions == 3


def test_scale_in_after_scale_out_waits_out_its_cooldown() -> None:
    trace = [90, 20, 20, 20, 20, 20, 20, 20]
    policy = step([(80, 2)], [(30, -1)], alarm_in=Alarm(2, 2), cooldown_out_s=0,
                  cooldown_in_s=120)
    run = simulate_step(trace, policy, cloud(), initial=1)
    # b1: +2; b3: minutes 1-2 breach -> 2; b4 blocked (cooldown to b5); b5: -> 1; then min
    assert run.provisioned.tolist() == [1, 3, 3, 2, 2, 1, 1, 1]
    assert run.actions == 3


def test_scale_out_ends_the_scale_in_cooldown() -> None:
    trace = [10, 10, 95, 95, 95, 95]
    policy = step([(80, 1)], [(30, -1)], alarm_in=Alarm(1, 1), cooldown_in_s=3600,
                  cooldown_out_s=0)
    run = simulate_step(trace, policy, cloud(), initial=3)
    # b1: 10/3 < 30 -> 2 (scale-in cooldown an hour); b3: 95/2 is not >= 80; stays 2
    assert run.provisioned.tolist() == [3, 2, 2, 2, 2, 2]
    surge = simulate_step([10, 10, 190, 10, 10, 10], policy, cloud(), initial=3)
    # b3: 190/2 = 95 >= 80 -> 3, which ends the scale-in cooldown: b4 scales in again at
    # once (10/3 < 30), then its own cooldown blocks b5
    assert surge.provisioned.tolist() == [3, 2, 2, 3, 2, 2]


def test_bounds_clamp_every_action() -> None:
    run = simulate_step([500.0] * 5, step([(80, 5)], cooldown_out_s=0), cloud(hi=3), initial=1)
    assert run.provisioned.tolist() == [1, 3, 3, 3, 3]
    assert run.actions == 1
    assert run.summary(np.full(5, 500.0), cloud(hi=3)).overload_minutes == 5
    low = simulate_step([1.0] * 6, step([(80, 1)], [(50, -2)], alarm_in=Alarm(1, 1),
                                        cooldown_in_s=0), cloud(lo=2), initial=5)
    assert low.provisioned.tolist() == [5, 3, 2, 2, 2, 2]


def test_scale_in_on_the_metric_after_removal_never_overloads() -> None:
    trace = [120.0] * 6
    current = step([(95, 1)], [(70, -1)], alarm_in=Alarm(1, 1), cooldown_in_s=0,
                   cooldown_out_s=0)
    flapping = simulate_step(trace, current, cloud(), initial=2)
    assert flapping.provisioned.tolist()[:3] == [2, 1, 2]  # 60 < 70 -> 1, then 120 >= 95
    assert flapping.summary(np.array(trace), cloud()).overload_minutes > 0
    projected = StepPolicy(**{**current.__dict__, "in_after_removal": True})
    steady = simulate_step(trace, projected, cloud(), initial=2)
    assert steady.provisioned.tolist() == [2] * 6  # 120 / 1 is not below 70


def floors(*actions: tuple[str, int], lo: int = 1, hi: int = 10, minutes: int = 10) -> Floors:
    """Weekly floors on a trace that starts Monday 00:00."""
    return Floors.weekly([ScheduledFloor(cron=c, min_instances=n) for c, n in actions],
                         cloud(lo=lo, hi=hi), minutes)


def test_scheduled_floor_rises_ahead_and_serves_after_start_up() -> None:
    lazy = step([(1000, 1)], [(1, -1)])  # never scales on its own
    # Monday 00:02 -> 4; Monday 12:00 -> 1, so a week on minute 0 starts at 1
    fl = floors(("2 0 * * 1", 4), ("0 12 * * MON", 1))
    assert (fl.start, fl.changes) == (1, {2: 4})
    run = simulate_step([50.0] * 8, lazy, cloud(startup_s=180), initial=1, floors=fl)
    assert run.provisioned.tolist() == [1, 1, 4, 4, 4, 4, 4, 4]  # billed from the action
    assert run.serving.tolist() == [1, 1, 1, 1, 1, 4, 4, 4]  # serving 3 minutes later
    assert run.actions == 1


def test_a_falling_floor_removes_nothing_the_scale_in_policy_does() -> None:
    policy = step([(80, 1)], [(30, -1)], alarm_in=Alarm(1, 1), cooldown_in_s=120)
    fl = floors(("2 0 * * 1", 1), ("0 23 * * 0", 4))  # Sunday 23:00 -> 4 holds at minute 0
    run = simulate_step([50.0] * 8, policy, cloud(), initial=1, floors=fl)
    # b1: 50/4 < 30 but the floor holds 4 (no action, no cooldown); b2: the floor falls to
    # 1 and the policy removes one (cooldown to b4); b4: 2; b6: 1
    assert run.provisioned.tolist() == [4, 4, 3, 3, 2, 2, 1, 1]
    assert run.actions == 3


def test_scheduled_rise_keeps_the_scale_out_cooldown_and_its_base() -> None:
    policy = step([(80, 1)], cooldown_out_s=300)
    fl = floors(("2 0 * * 1", 3), ("0 23 * * 0", 1))
    run = simulate_step([90, 250, 250, 250, 250, 250, 250, 250], policy, cloud(), initial=1,
                        floors=fl)
    # b1: 1 -> 2, cooldown to b6 from base 1; b2: the floor lifts it to 3; b2-b5: the
    # policy's 1 + 1 is not above 3, blocked; b6: cooldown over, 3 + 1
    assert run.provisioned.tolist() == [1, 2, 3, 3, 3, 3, 4, 4]


def test_floors_outside_the_bounds_and_bad_crons_are_refused() -> None:
    with pytest.raises(PlanError, match="outside"):
        floors(("0 9 * * 1-5", 12), ("0 18 * * 1-5", 2))
    base = {"min_instances": 2, "max_instances": 6}
    ok = ServingConfig.model_validate(
        {**base, "scaling": {"scheduled": [{"cron": "55 8 * * 1-5", "min_instances": 6}]}})
    assert ok.scaling.schedule_time_zone == "UTC"
    for scheduled, message in (
            ([{"cron": "0 9 * * 1-5", "min_instances": 7}], "within min_instances"),
            ([{"cron": "0 9 * * 1-5", "min_instances": 1}], "within min_instances"),
            ([{"cron": "61 9 * * *", "min_instances": 3}], "not within 0-59"),
            ([{"cron": "0 9 1 * *", "min_instances": 3}], "day of month and month"),
            ([{"cron": "0 9 * *", "min_instances": 3}], "5 fields"),
            ([{"cron": "0 9 * * x", "min_instances": 3}], "not a number"),
            ([{"cron": "0 9 * * 1-5", "min_instances": 3},
              {"cron": "0 9 * * 5", "min_instances": 4}], "same minute"),
            ([{"cron": f"{i % 60} {i // 60} * * *", "min_instances": 3} for i in range(201)],
             "at most 200")):
        with pytest.raises(ValueError, match=message):
            ServingConfig.model_validate({**base, "scaling": {"scheduled": scheduled}})
    with pytest.raises(ValueError, match="time zone"):
        ScalingConfig(schedule_time_zone="Mars/Olympus")


def test_floors_planned_from_the_oracle_by_hand() -> None:
    need = np.ones(7 * 1440, dtype="int64")
    for day in range(5):  # weekdays 09:00-10:00 need 5 (Tuesday 6)
        need[day * 1440 + 540:day * 1440 + 600] = 6 if day == 1 else 5
    cl = cloud(startup_s=300)
    top = plan_floors(need, cl, quantile=1.0, margin=0, slot_min=60)
    assert top == (ScheduledFloor(cron="55 8 * * 1-5", min_instances=6),
                   ScheduledFloor(cron="0 10 * * 1-5", min_instances=1))
    typical = plan_floors(need, cl, quantile=0.5, margin=2, slot_min=60)
    assert [(f.cron, f.min_instances) for f in typical or ()] == [
        ("55 8 * * 1-5", 3), ("0 10 * * 1-5", 1)]
    assert plan_floors(np.ones(7 * 1440, dtype="int64"), cl, 1.0, 0) == ()
    t = np.arange(7 * 1440)
    zigzag = 1 + (t // 10 + (t >= 5 * 1440)) % 2  # a change every 10 minutes, weekends shifted
    assert plan_floors(zigzag, cl, 1.0, 0, slot_min=10) is None  # over the quota of 200


def test_held_out_floors_by_hand() -> None:
    need = np.ones(6 * 1440, dtype="int64")  # Monday to Saturday
    for day, n in enumerate((5, 3, 3, 1, 1, 4)):  # need at 10:00-10:30
        need[day * 1440 + 600:day * 1440 + 630] = n
    cl = cloud()
    held = held_out_floors(need, cl, quantile=1.0, margin=0, slot_min=30)
    at_ten = held[600::1440].tolist()
    # Monday gets Tuesday-Friday's highest (3), the others see Monday's 5; Saturday has no
    # other weekend day, so no floor
    assert at_ten == [3, 5, 5, 5, 5, 1]
    # the median ("higher") of the other weekdays' minutes is 3 for every weekday, less 1
    assert held_out_floors(need, cl, 0.5, 1, 30)[600::1440].tolist() == [2, 2, 2, 2, 2, 1]
    fitted = slot_floors(need, cl, 1.0, 0, 30)  # all days, weekly
    assert fitted[600::1440].tolist() == [5, 5, 5, 5, 5, 1, 1]
    assert held[599::1440].tolist() == [1] * 6 and held[630::1440].tolist() == [1] * 6


@pytest.fixture
def few_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two starting points of the search (one with floors): the hand-worked plans stay fast."""
    monkeypatch.setattr(search, "STARTS", (search.STARTS[0], search.STARTS[-1]))


def spike_days(monday: int, tuesday: int) -> np.ndarray:
    """Monday 09:00 to Tuesday 11:00 at 10 requests/min (below every scale-out threshold of
    the grid), and at 10:00-10:30 the requests `monday` and `tuesday` instances serve."""
    rpm = np.full(1440 + 120, 10.0)
    rpm[60:90], rpm[1440 + 60:1440 + 90] = monday * C - 50, tuesday * C - 50
    return rpm


@pytest.mark.usefixtures("few_starts")
def test_cross_validation_rejects_a_floor_that_fits_one_day() -> None:
    cl = cloud(startup_s=300)
    rpm = spike_days(5, 9)
    # in sample, floors fitted on both days (9 at 10:00) cover both surges
    scheduled = plan_floors(oracle(rpm.tolist(), cl).provisioned, cl, 1.0, 0, 30, 540)
    assert scheduled == (ScheduledFloor(cron="55 9 * * 1-5", min_instances=9),  # weekdays
                         ScheduledFloor(cron="30 10 * * 1-5", min_instances=1))
    lazy = step([(95, 1)], cooldown_out_s=0)
    floors = Floors.weekly(scheduled, cl, len(rpm), 540)
    assert simulate_step(rpm.tolist(), lazy, cl, floors=floors).summary(rpm, cl) \
        .overload_minutes == 0
    # held out, Tuesday gets Monday's floor (5) and overloads while 4 more instances start:
    # fewer overloaded minutes than without floors (both days), but over the budget of 0, so
    # the planner falls back to the step policy alone and says why
    plan = plan_step_policy(rpm, cl, start_minute=540)
    assert plan.scheduled == () and plan.held_out is None and not plan.feasible
    assert plan.summary.overload_minutes >= 2 * cl.startup_min
    assert plan.note.startswith("no floors: the best floor plan")
    assert f"overloads {cl.startup_min + 1} minutes with held-out floors" in plan.note


@pytest.mark.usefixtures("few_starts")
def test_cross_validation_keeps_a_floor_every_day_needs() -> None:
    cl = cloud(startup_s=300)
    rpm = spike_days(5, 5)
    plan = plan_step_policy(rpm, cl, start_minute=540)
    assert plan.feasible and plan.held_out is not None
    assert plan.held_out.overload_minutes == plan.summary.overload_minutes == 0
    assert ScheduledFloor(cron="55 9 * * 1-5", min_instances=5) in plan.scheduled
    off = plan_step_policy(rpm, cl, floors=False, start_minute=540)
    assert not off.feasible  # a reactive policy alone cannot meet a jump in time


def test_trend_projection_by_hand() -> None:
    """m * (1 + k * IF(DIFF(inv) > 0, DIFF(inv), 0) / inv), k = 2."""
    p = Projection(2.0)
    # first datapoint: no DIFF (0); 60: +10 -> 60 + 2*10; 70: +10 -> 70 + 20; no requests:
    # no datapoint (0, and DIFF skips it); 80 on 2: +10 against 70 -> 40 * (1 + 20/80); a fall
    # (60 on 2) is not projected
    got = [p.value(r, n) for r, n in [(50, 1), (60, 1), (70, 1), (0, 2), (80, 2), (60, 2)]]
    assert got == pytest.approx([50.0, 80.0, 90.0, 0.0, 50.0, 30.0])
    assert [Projection(0).value(r, 2) for r in (50, 90)] == [25.0, 45.0]  # off: m


def test_trend_scales_out_before_the_level_breaches() -> None:
    trace = [50.0, 60.0, 70.0, 0.0, 80.0, 80.0]
    plain = step([(85, 1)], cooldown_out_s=0)
    assert simulate_step(trace, plain, cloud(), initial=1).actions == 0  # 70 < 85
    ahead = StepPolicy(**{**plain.__dict__, "trend_minutes": 2.0})
    run = simulate_step(trace, ahead, cloud(), initial=1)
    # minute 2 projects 90 >= 85 -> +1 at boundary 3; minute 4 is 40 per instance, +10 against
    # minute 2 (the empty minute 3 is skipped), projecting 50: no further action
    assert run.provisioned.tolist() == [1, 1, 1, 2, 2, 2]


def test_target_tracking_three_of_three_out_fifteen_of_fifteen_in() -> None:
    trace = [40.0] * 2 + [140.0] * 28 + [30.0] * 20
    run = simulate_target_tracking(trace, TargetTracking(target=50), cloud(), initial=1)
    # minutes 2-4 above 50 -> b5 asks ceil(140/50) = 3 (46.7 each, not below 45); from
    # minute 30 (10 each) the low alarm needs 15 datapoints -> b45 asks ceil(30/50) = 1
    assert run.provisioned[4] == 1 and run.provisioned[5] == 3
    assert run.provisioned[44] == 3 and run.provisioned[45] == 1
    assert run.actions == 2


def test_oracle_and_fixed_capacity() -> None:
    trace = [50.0, 150.0, 250.0]
    assert oracle(trace, cloud()).provisioned.tolist() == [1, 2, 3]
    assert fixed_at_peak(trace, cloud()).provisioned.tolist() == [3, 3, 3]
    row = oracle(trace, cloud()).summary(np.array(trace), cloud())
    assert (row.instance_hours, row.overload_minutes, row.actions) == (0.1, 0, 2)


def test_policy_round_trips_through_the_config() -> None:
    policy = step([(80, 1), (120, 3)], [(40, -1)], alarm_out=Alarm(2, 1), alarm_in=Alarm(8, 5),
                  cooldown_out_s=240, cooldown_in_s=600, in_after_removal=True,
                  trend_minutes=1.5)
    cfg = policy.to_config(target_value=50)
    assert StepPolicy.from_config(cfg) == policy
    assert cfg.datapoints_to_alarm_in == 5 and cfg.scale_in_metric == "after_removal"
    assert cfg.scale_out_trend_minutes == 1.5
    with pytest.raises(ValueError, match="scale_out_trend_minutes > 0 needs metric"):
        ScalingConfig.model_validate({"metric": "CPUUtilization", "scale_out_trend_minutes": 2})


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("rpm\n", "no rows"),
    ("rpm\n10\nabc\n", "line 3: 'abc' is not a number"),
    ("rpm\n10\n-5\n", "line 3: rate -5 must be"),
    ("rpm\n10\nnan\n", "must be a finite number"),
    ("time,count\n1,2\n", "no rate column"),
    ("0\n0\n", "every minute has 0 requests"),
])
def test_bad_traces_get_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        load_trace(path)


def test_trace_formats(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("minute,rpm\n0,10\n1,20.5\n")
    (tmp_path / "b.csv").write_text("10\n20\n")
    assert load_trace(tmp_path / "a.csv").rpm.tolist() == [10, 20.5]
    assert load_trace(tmp_path / "b.csv").rpm.tolist() == [10, 20]
    with pytest.raises(TraceError, match="no such file"):
        load_trace(tmp_path / "missing.csv")


def test_bad_cloud_settings() -> None:
    with pytest.raises(PlanError, match="capacity must be > 0"):
        Cloud(0.0)
    with pytest.raises(PlanError, match=r"min_instances \(5\) must be <= .*max_instances \(2\)"):
        Cloud(100.0, 5, 2)
    with pytest.raises(PlanError, match="scale to zero"):
        Cloud(100.0, 0, 2)
    with pytest.raises(PlanError, match="instance_rps"):
        cloud_from(ServingConfig())
    with pytest.raises(ValueError, match="datapoints_to_alarm_out"):
        ScalingConfig(evaluation_periods_out=2, datapoints_to_alarm_out=3)


def test_vcpu_rule() -> None:
    assert [vcpus_of(t) for t in ("ml.m5.large", "ml.c5.xlarge", "ml.m5.4xlarge",
                                  "ml.t2.medium")] == [2, 4, 16, 2]
    assert vcpus_of("ml.inf1.weird", 6) == 6
    with pytest.raises(PlanError, match=r"serving\.capacity\.vcpus"):
        vcpus_of("ml.inf1.weird")
    assert instance_rps(3000, workers=2, vcpus=8) == 12000


# --- the search -------------------------------------------------------------------------------


@pytest.mark.usefixtures("few_starts")
def test_search_beats_target_tracking_without_overload() -> None:
    trace = week_profile(peak_rpm=2000, seed=3, days=2)
    cl = Cloud(200.0, 1, 30, 240, 1.0)
    plan = plan_step_policy(trace.rpm, cl)
    tt = simulate_target_tracking(trace.rpm.tolist(), TargetTracking(100.0), cl)
    tt_row = tt.summary(trace.rpm, cl)
    floor = oracle(trace.rpm.tolist(), cl).summary(trace.rpm, cl)
    assert plan.feasible and plan.summary.overload_minutes == 0
    assert plan.summary.cost < tt_row.cost
    assert floor.instance_hours <= plan.summary.instance_hours
    # the planned policy and its floors behave the same when read back from the config
    cfg = plan.policy.to_config(1, plan.scheduled)
    floors = Floors.weekly(cfg.scheduled, cl, trace.minutes)
    again = simulate_step(trace.rpm.tolist(), StepPolicy.from_config(cfg), cl, floors=floors)
    assert again.provisioned.tolist() == plan.run.provisioned.tolist()


def test_search_chooses_the_trend_when_a_fast_surge_needs_it() -> None:
    trace = week_profile(peak_rpm=60_000, seed=7, days=2, spike_rise=(5, 8))  # fast surges
    cl = Cloud(3000.0, 1, 40, 240, 1.0)
    off = plan_step_policy(trace.rpm, cl, trend=False, floors=False)
    on = plan_step_policy(trace.rpm, cl, floors=False)
    assert off.knobs.trend == 0 and off.feasible and on.feasible
    assert on.knobs.trend > 0 and on.summary.cost < off.summary.cost
    assert on.noise_overloads == (0, 0, 0)


def test_noise_replicates_keep_the_level_and_redraw_the_noise() -> None:
    rpm = week_profile(peak_rpm=60_000, seed=7, days=1).rpm
    copies = noise_replicates(rpm, 2)
    assert len(copies) == 2 and all(len(c) == len(rpm) for c in copies)
    assert not np.array_equal(copies[0], copies[1])
    for c in copies:  # the same traffic within 0.1 % a day, each minute within the noise
        assert abs(c.sum() / rpm.sum() - 1) < 1e-3
        assert np.abs(c / rpm - 1).mean() < 0.05
    assert [c.tolist() for c in noise_replicates(rpm, 2)] == [c.tolist() for c in copies]
    sparse = np.array([0, 0, 5, 0, 0, 0, 0, 3, 0, 0] * 20)  # integers, medians of 0
    assert all(c.sum() == sparse.sum() for c in noise_replicates(sparse, 2))


def test_a_plan_that_holds_only_on_the_traces_own_noise_is_not_kept() -> None:
    # a small endpoint (Poisson noise is large) with fast surges: fitted on the trace alone,
    # the cheapest policy rides the trend on that day's noise and overloads on redrawn noise
    trace = week_profile(peak_rpm=2000, seed=7, days=1, spike_rise=(5, 8))
    cl = Cloud(200.0, 1, 30, 240, 1.0)
    grid, starts = search._grid(True, False), search._starts(True, False)
    naive = search.Search(trace.rpm, cl, grid=grid, replicates=0).best(starts)
    robust = search.Search(trace.rpm, cl, grid=grid)
    assert max(robust.noise_overloads(naive.knobs, Floors.none(cl))) > 0
    plan = robust.best(starts)
    assert plan.feasible and plan.noise_overloads == (0, 0, 0)
    assert plan.summary.cost > naive.summary.cost  # robustness costs a little


def test_week_profile_shape() -> None:
    week = week_profile(peak_rpm=10_000)
    days = week.rpm.reshape(7, 1440)
    assert week.minutes == 7 * 1440
    assert days[5:].mean() < 0.8 * days[:5].mean()  # weekend dip
    assert days[:, 3 * 60:5 * 60].mean() < 0.25 * days[:, 10 * 60:16 * 60].mean()  # night
    assert np.array_equal(week.rpm, week_profile(peak_rpm=10_000).rpm)  # seeded


def test_compare_has_four_policies() -> None:
    serving = ServingConfig(min_instances=1, max_instances=20,
                            capacity={"instance_rps": 5.0})  # type: ignore[arg-type]
    cl = cloud_from(serving)
    day = week_profile(peak_rpm=1500, days=1)
    comp = compare(Trace(day.name, day.rpm[:720]), serving, cl)  # midnight to noon
    assert [r.policy for r in comp.rows] == ["step (planned)", "target tracking",
                                              "fixed at peak", "oracle"]
    assert comp.scaling.target_value == pytest.approx(150.0)


# --- the command ------------------------------------------------------------------------------


def plan(config: Path, *args: str) -> object:
    return CliRunner().invoke(main, ["plan-scaling", "--config", str(config), *args])


@pytest.mark.usefixtures("few_starts")
def test_cli_writes_the_scaling_section_in_place(config_path: Path, tmp_path: Path) -> None:
    text = config_path.read_text()
    text = text.replace("serving:\n", "serving:\n  # keep me\n", 1)
    config_path.write_text("# my project\n" + text)
    trace = tmp_path / "trace.csv"
    trace.write_text("rpm\n" + "\n".join(str(v) for v in week_profile(1500, days=1).rpm))
    out = tmp_path / "out"
    args = ("--traffic", str(trace), "--set", "serving.capacity.instance_rps=5", "--output",
            str(out), "--write")
    before = config_path.read_text()
    # floors planned up to 20 instances do not fit the file's max_instances (4): refused
    short = tmp_path / "short.csv"  # Monday 00:00 to Tuesday 00:40, a jump to 10 instances
    jump = np.full(1440 + 40, 10.0)  # at 00:10-00:30 on both days: floors pay held out
    jump[10:30] = jump[1450:1470] = 2950.0
    short.write_text("rpm\n" + "\n".join(str(v) for v in jump))
    refused = plan(config_path, *args, "--traffic", str(short), "--set", "serving.max_instances=20")
    assert refused.exit_code == 2  # type: ignore[attr-defined]
    assert "must be within min_instances" in refused.output  # type: ignore[attr-defined]
    assert config_path.read_text() == before
    result = plan(config_path, *args)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    printed = yaml.safe_load(result.output[result.output.index("serving:"):]  # type: ignore[attr-defined]
                             .split("wrote")[0])
    written = config_path.read_text()
    assert written.startswith("# my project\n") and "# keep me" in written
    loaded = load_config(config_path).config.serving
    assert loaded.scaling.model_dump(exclude_none=True) == printed["serving"]["scaling"]
    assert loaded.capacity.instance_rps is None  # --set applies to this run, not to the file
    assert (out / "report.html").is_file() and (out / "scaling.png").is_file()
    assert "oracle" in (out / "report.html").read_text()
    assert "noise redrawn 3 times" in " ".join(result.output.split())  # type: ignore[attr-defined]
    found = json.loads((out / "plan.json").read_text())["search"]
    assert len(found["noise_overloads"]) == 3


@pytest.mark.parametrize(("args", "message"), [
    (["--traffic", "missing.csv", "--set", "serving.capacity.instance_rps=5"], "no such file"),
    (["--traffic", "week"], "no per-instance capacity"),
    (["--traffic", "week", "--set", "serving.capacity.instance_rps=0"], "greater than 0"),
    (["--traffic", "week", "--set", "serving.min_instances=9",
      "--set", "serving.capacity.instance_rps=5"], "min_instances (9) must be <="),
])
def test_cli_bad_input_exits_2(config_path: Path, args: list[str], message: str) -> None:
    result = plan(config_path, *args)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert message in " ".join(result.output.split())  # type: ignore[attr-defined]


def test_measure_finds_a_rate_within_the_objective(trained: Trained,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_kit.capacity.measure import measure
    from mlops_kit.runtime.capacity import request_bodies

    monkeypatch.setenv("MLOPS_STATE_DIR", str(trained.state))
    bodies = request_bodies(load_config(trained.config), trained.model_dir)
    result = measure(str(trained.model_dir), bodies, objective_ms=2000, workers=1,
                     seconds=0.4, warmup_s=0.2, max_concurrency=2)
    assert result.steps and result.steps[0].concurrency == 1
    best = result.best  # a rate, never a speed target (those live in bench/)
    assert best is not None and best.rps > 0 and best.p99_ms <= 2000 and best.errors == 0
    tight = measure(str(trained.model_dir), bodies[:5], objective_ms=1e-6, seconds=0.3,
                    warmup_s=0.1)
    assert tight.best is None and len(tight.steps) == 1
