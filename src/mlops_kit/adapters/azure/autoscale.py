"""`serving.scaling` as Azure Monitor autoscale rules for a managed online deployment.

Pure data (no Azure SDK). Scale-out bands become one rule each (Azure applies the largest
increase among the rules that fire, as AWS's step policy does). Azure scales in only when *all*
scale-in rules hold, so only the first (least deep) scale-in band is rendered. Azure's metric
window is at least 5 minutes and its cooldown at least 1 minute: shorter settings are raised.
"""

from __future__ import annotations

import math
from typing import Any

from mlops_kit.config.model import ScalingConfig, ServingConfig

ENDPOINT_NS = "Microsoft.MachineLearningServices/onlineEndpoints"
DEPLOYMENT_NS = "Microsoft.MachineLearningServices/onlineEndpoints/deployments"
MIN_WINDOW_MIN = 5
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
