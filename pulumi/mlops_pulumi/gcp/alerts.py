"""Cloud Monitoring: an email channel per `monitoring.alert_emails` entry, and per endpoint an
alert on p99 latency above `serving.latency_p99_ms` and one on replicas pinned at the maximum."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_gcp import monitoring

import pulumi
from mlops_kit.adapters.gcp.autoscale import scaling
from mlops_kit.config.model import GcpConfig, ServingConfig

RESOURCE = "aiplatform.googleapis.com/Endpoint"
METRIC = "aiplatform.googleapis.com/prediction/online/"


@dataclass(frozen=True)
class AlertsArgs:
    stem: str
    emails: tuple[str, ...]
    serving: ServingConfig
    gcp: GcpConfig
    endpoints: dict[str, str]     # model -> endpoint id
    labels: dict[str, str]


class Alerts(pulumi.ComponentResource):
    """Notification channels and two alert policies per endpoint."""

    def __init__(self, name: str, args: AlertsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Alerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.channels = [monitoring.NotificationChannel(
            f"{name}-email-{i}", type="email", display_name=f"{args.stem} alerts: {email}",
            labels={"email_address": email}, user_labels=args.labels, opts=child)
            for i, email in enumerate(args.emails)]
        self.policies: dict[str, list[monitoring.AlertPolicy]] = {}
        limit = scaling(args.serving, args.gcp).max_replicas
        for model, endpoint in args.endpoints.items():
            checks = [("latency", "prediction_latencies", "ALIGN_PERCENTILE_99",
                       "COMPARISON_GT", args.serving.latency_p99_ms, "ERROR"),
                      ("saturated", "replicas", "ALIGN_MAX", "COMPARISON_GE", float(limit),
                       "WARNING")]
            self.policies[model] = [self._policy(name, model, endpoint, check, args)
                                    for check in checks]
        self.register_outputs({"channels": [c.id for c in self.channels]})

    def _policy(self, name: str, model: str, endpoint: str,
                check: tuple[str, str, str, str, float, str],
                args: AlertsArgs) -> monitoring.AlertPolicy:
        label, metric, aligner, comparison, threshold, severity = check
        where = (f'resource.type = "{RESOURCE}" AND resource.labels.endpoint_id = "{endpoint}" '
                 f'AND metric.type = "{METRIC}{metric}"')
        return monitoring.AlertPolicy(
            f"{name}-{model}-{label}", display_name=f"{args.stem}-{model}-{label}",
            combiner="OR", severity=severity, enabled=True, user_labels=args.labels,
            notification_channels=[c.id for c in self.channels],
            documentation={"mime_type": "text/markdown",
                           "content": f"{model}: {metric} {comparison} {threshold:g}"},
            alert_strategy={"auto_close": "1800s"},
            conditions=[{"display_name": f"{model} {label}", "condition_threshold": {
                "filter": where, "comparison": comparison, "threshold_value": threshold,
                "duration": "300s", "trigger": {"count": 1},
                "aggregations": [{"alignment_period": "60s", "per_series_aligner": aligner,
                                  "cross_series_reducer": "REDUCE_MAX",
                                  "group_by_fields": ["resource.labels.endpoint_id"]}]}}],
            opts=pulumi.ResourceOptions(parent=self))
