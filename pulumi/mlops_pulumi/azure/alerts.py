"""An action group mailing `platform.alert_emails`, and per served model the metric alerts:
p99 latency above `serving.latency_p99_ms` and capacity pinned at `serving.max_instances`."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_azure_native import monitor

import pulumi
from mlops_kit.adapters.azure import autoscale, naming
from mlops_kit.config.model import ServingConfig

MULTI = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"


@dataclass(frozen=True)
class AlertsArgs:
    project: str
    env: str
    resource_group: pulumi.Input[str]
    emails: tuple[str, ...]
    serving: ServingConfig
    deployments: dict[str, pulumi.Input[str]]   # model -> deployment resource id
    tags: dict[str, str]


class Alerts(pulumi.ComponentResource):
    """Action group and, for each deployment, a latency and a saturation alert."""

    def __init__(self, name: str, args: AlertsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:Alerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stem = naming.prefix(args.project, args.env)
        self.action_group = monitor.ActionGroup(
            f"{name}-group", action_group_name=f"{stem}-alerts", location="Global",
            group_short_name=stem.replace("-", "")[:12], enabled=True,
            resource_group_name=args.resource_group, tags=args.tags, opts=child,
            email_receivers=[{"name": f"email-{i}", "email_address": email,
                              "use_common_alert_schema": True}
                             for i, email in enumerate(args.emails)])
        self.alerts: dict[str, list[monitor.MetricAlert]] = {}
        for model, deployment_id in args.deployments.items():
            checks = [("latency", "RequestLatency_P99", "Maximum",
                       args.serving.latency_p99_ms, "GreaterThan", 2),
                      ("saturated", "DeploymentCapacity", "Maximum",
                       float(autoscale.capacity(args.serving)["maximum"]),
                       "GreaterThanOrEqual", 3)]
            self.alerts[model] = [self._alert(name, stem, model, deployment_id, check, args)
                                  for check in checks]
        self.register_outputs({"action_group": self.action_group.id})

    def _alert(self, name: str, stem: str, model: str, scope: pulumi.Input[str],
               check: tuple[str, str, str, float, str, int],
               args: AlertsArgs) -> monitor.MetricAlert:
        label, metric, aggregation, threshold, operator, severity = check
        return monitor.MetricAlert(
            f"{name}-{model}-{label}", rule_name=f"{stem}-{model}-{label}",
            resource_group_name=args.resource_group, location="global", scopes=[scope],
            severity=severity, enabled=True, evaluation_frequency="PT1M", window_size="PT5M",
            auto_mitigate=True, tags=args.tags, opts=pulumi.ResourceOptions(parent=self),
            description=f"{model}: {metric} {operator} {threshold:g}",
            actions=[{"action_group_id": self.action_group.id}],
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type=MULTI, all_of=[monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion", name=label, metric_name=metric,
                    metric_namespace=autoscale.DEPLOYMENT_NS, operator=operator,
                    threshold=threshold, time_aggregation=aggregation)]))
