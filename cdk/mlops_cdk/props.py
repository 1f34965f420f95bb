"""Request dicts of the boto3 adapters as L1 construct properties.

The SageMaker endpoint adapter builds DeploymentConfig, DataCaptureConfig and the rollback
alarms as API request dicts; CloudFormation's properties have the same shape, so the app reuses
them instead of keeping a second copy. A dict given to an L1 struct property must use the
JavaScript (camelCase) names: other keys are dropped without a word, hence this conversion.
"""

from __future__ import annotations

from typing import Any


def camel(value: Any) -> Any:
    """`{"AlarmName": ..., "Metrics": [{"MetricStat": ...}]}` → `{"alarmName": ..., ...}`."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value
