"""`serving` as Vertex AI autoscaling: replica bounds and one utilization target.

Pure data (no Google SDK). Vertex scales a deployment between min and max replicas to keep a
resource metric (CPU, or accelerator duty cycle) at a target; it has no step scaling, no
request-count metric, and no cooldowns or evaluation periods to set. So:

- `min_instances`/`max_instances` are the replica bounds (at least 1: Vertex cannot scale to 0);
- `policy: target_tracking` with `metric: CPUUtilization` keeps CPU at `target_value` percent;
- every other setting (step bands, or requests per instance) becomes `gcp.cpu_target_percent`:
  the bands, cooldowns and evaluation periods have no Vertex counterpart and are not applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_kit.config.model import GcpConfig, ServingConfig

CPU_METRIC = "aiplatform.googleapis.com/prediction/online/cpu/utilization"


@dataclass(frozen=True)
class VertexScaling:
    min_replicas: int
    max_replicas: int
    metric: str
    target: int
    exact: bool     # True when the config's own target is applied, False when approximated


def scaling(serving: ServingConfig, gcp: GcpConfig) -> VertexScaling:
    """The replica bounds and utilization target of a Vertex deployment."""
    low = max(1, serving.min_instances)
    high = max(low, serving.max_instances)
    rule = serving.scaling
    if rule.policy == "target_tracking" and rule.metric == "CPUUtilization":
        if not 1 <= rule.target_value <= 100:
            raise ValueError(f"serving.scaling.target_value {rule.target_value:g} is a CPU "
                             "percentage on Vertex AI: it must be within 1..100")
        return VertexScaling(low, high, CPU_METRIC, round(rule.target_value), True)
    return VertexScaling(low, high, CPU_METRIC, gcp.cpu_target_percent, False)
