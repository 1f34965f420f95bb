"""Scheduled capacity floors on Azure: recurring autoscale profiles, and the limits the rules
refuse before `pulumi up` would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from mlops_kit.adapters.azure import autoscale, rules
from mlops_kit.config import load_config
from mlops_pulumi.azure.platform import build
from mlops_pulumi.config import load_stack
from tests.pulumi.conftest import two_models
from tests.pulumi.mocks import RecordingMocks

FLOORS = {"serving": {"scaling": {"schedule_time_zone": "Europe/Berlin", "scheduled": [
    {"cron": "30 7 * * 1-5", "min_instances": 4}, {"cron": "0 20 * * *", "min_instances": 2}]}}}


@pulumi.runtime.test
def test_each_floor_is_a_weekly_profile_in_the_windows_zone(tmp_path: Path,
                                                             mocks: RecordingMocks) -> Any:
    platform = build(load_stack("azure_prod", two_models(tmp_path, FLOORS)))

    def check(_: Any) -> None:
        profiles = mocks.of_type("monitor:AutoscaleSetting")[0].inputs["profiles"]
        assert [p["name"] for p in profiles] == ["step", "floor-1", "floor-2"]
        assert "recurrence" not in profiles[0]
        weekday, nightly = profiles[1], profiles[2]
        assert weekday["capacity"] == {"minimum": "4", "default": "4", "maximum": "10"}
        assert weekday["recurrence"] == {"frequency": "Week", "schedule": {
            "timeZone": "W. Europe Standard Time",
            "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
            "hours": [7], "minutes": [30]}}
        assert len(nightly["recurrence"]["schedule"]["days"]) == 7
        assert weekday["rules"] == profiles[0]["rules"]  # the same policy above each floor
    model = next(iter(platform.serving.models.values()))
    return model.autoscale.id.apply(check)


def test_floors_beyond_the_profile_limit_and_unmapped_zones_are_refused(
        tmp_path: Path) -> None:
    many = [{"cron": f"{m} 6 * * 1", "min_instances": 2} for m in range(20)]
    config = two_models(tmp_path, {"serving": {"scaling": {
        "schedule_time_zone": "Pacific/Chatham", "scheduled": many}}})
    found = rules.scaling_floors(load_config(config, env="azure_dev"))
    assert [p.field for p in found] == ["serving.scaling.schedule_time_zone",
                                        "serving.scaling.scheduled"]
    assert "at most 20 profiles" in found[1].message
    (tmp_path / "fine").mkdir()
    fine = two_models(tmp_path / "fine", FLOORS)
    assert rules.scaling_floors(load_config(fine, env="azure_dev")) == []
    assert len(autoscale.profiles(load_config(fine).config.serving, [])) == 3
