"""`serving.scaling` as Azure Monitor autoscale rules for a managed online deployment.

Pure data (no Azure SDK). Scale-out bands become one rule each (Azure applies the largest
increase among the rules that fire, as AWS's step policy does). Azure scales in only when *all*
scale-in rules hold, so only the first (least deep) scale-in band is rendered. Azure's metric
window is at least 5 minutes and its cooldown at least 1 minute: shorter settings are raised.
Each `scheduled` floor becomes a recurring profile (weekly, in the Windows zone of
`schedule_time_zone`) with the floor as its minimum and the same rules: a recurring profile
holds until the next one starts, as a floor does.
"""

from __future__ import annotations

import math
from typing import Any

from mlops_kit.adapters.azure import naming
from mlops_kit.config.model import ScalingConfig, ScheduledFloor, ServingConfig
from mlops_kit.cron import weekly_minutes

ENDPOINT_NS = "Microsoft.MachineLearningServices/onlineEndpoints"
DEPLOYMENT_NS = "Microsoft.MachineLearningServices/onlineEndpoints/deployments"
MIN_WINDOW_MIN = 5
MAX_PROFILES = 20  # Azure Monitor: profiles per autoscale setting (the default one included)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# config metric -> (Azure metric, on the deployment?, divided per instance)
METRICS = {
    "InvocationsPerInstance": ("RequestsPerMinute", False, True),
    "CPUUtilization": ("CpuUtilizationPercentage", True, False),
}


def capacity(serving: ServingConfig) -> dict[str, str]:
    """Autoscale bounds: a managed deployment keeps at least one instance."""
    low = max(1, serving.min_instances)
    return {"minimum": str(low), "maximum": str(max(low, serving.max_instances)),
            "default": str(low)}


def profiles(serving: ServingConfig, rules_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The default profile, then one recurring profile per scheduled floor (ValueError if
    `schedule_time_zone` has no Windows name)."""
    out: list[dict[str, Any]] = [{"name": serving.scaling.policy, "capacity": capacity(serving),
                                  "rules": rules_}]
    if not serving.scaling.scheduled:
        return out
    windows_zone = naming.windows_time_zone(serving.scaling.schedule_time_zone,
                                            "serving.scaling.schedule_time_zone")
    for i, floor in enumerate(serving.scaling.scheduled, start=1):
        low = max(1, floor.min_instances)
        out.append({"name": f"floor-{i}", "rules": rules_,
                    "capacity": {"minimum": str(low), "default": str(low),
                                 "maximum": str(max(low, serving.max_instances))},
                    "recurrence": {"frequency": "Week",
                                   "schedule": recurrence(floor, windows_zone)}})
    return out


def recurrence(floor: ScheduledFloor, windows_zone: str) -> dict[str, Any]:
    """A floor's cron as Azure's weekly schedule: days, hours and minutes (a cron's firings
    are always their cross product)."""
    fired = weekly_minutes(floor.cron)
    return {"time_zone": windows_zone,
            "days": [DAYS[d] for d in sorted({m // 1440 for m in fired})],
            "hours": sorted({m % 1440 // 60 for m in fired}),
            "minutes": sorted({m % 60 for m in fired})}


def rules(scaling: ScalingConfig, endpoint_id: Any, deployment_id: Any,
          deployment: str) -> list[dict[str, Any]]:
    """The autoscale rules of `scaling`: step bands, or a pair around the tracking target."""
    if scaling.policy == "target_tracking":
        out = [(scaling.target_value, 1)]
    else:
        out = [(s.lower, s.change) for s in scaling.scale_out]
    first_in = scaling.scale_in[0]
    made = [_rule(scaling, endpoint_id, deployment_id, deployment, True, lower, change)
            for lower, change in out]
    made.append(_rule(scaling, endpoint_id, deployment_id, deployment, False,
                      first_in.upper, -first_in.change))
    return made


def _rule(scaling: ScalingConfig, endpoint_id: Any, deployment_id: Any, deployment: str,
          scale_out: bool, threshold: float, count: int) -> dict[str, Any]:
    metric, on_deployment, per_instance = METRICS[scaling.metric]
    periods = scaling.evaluation_periods_out if scale_out else scaling.evaluation_periods_in
    cooldown = scaling.cooldown_out_s if scale_out else scaling.cooldown_in_s
    trigger: dict[str, Any] = {
        "metric_name": metric,
        "metric_namespace": DEPLOYMENT_NS if on_deployment else ENDPOINT_NS,
        "metric_resource_uri": deployment_id if on_deployment else endpoint_id,
        "time_grain": "PT1M", "statistic": "Average", "time_aggregation": "Average",
        "time_window": f"PT{max(MIN_WINDOW_MIN, periods)}M",
        "operator": "GreaterThanOrEqual" if scale_out else "LessThan",
        "threshold": float(threshold), "divide_per_instance": per_instance,
    }
    if not on_deployment:
        trigger["dimensions"] = [{"dimension_name": "deployment", "operator": "Equals",
                                  "values": [deployment]}]
    return {"metric_trigger": trigger, "scale_action": {
        "direction": "Increase" if scale_out else "Decrease", "type": "ChangeCount",
        "value": str(count), "cooldown": f"PT{max(1, math.ceil(cooldown / 60))}M"}}
