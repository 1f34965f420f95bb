"""Drift monitoring: per served model with request capture, an Azure ML Schedule that runs the
drift monitor (`python -m mlops_kit.adapters.azure.monitor`) as a command job of the project
image on the training cluster, as the jobs' identity, on `monitoring.schedule`; and a log alert
on the `DriftedFeatures` custom metric it publishes to Application Insights, to the action
group, muted for an hour after it fires so one drifted point notifies once. The monitor itself
starts the training pipeline once per drift episode (`training.retrain_on_drift`); the alert
tells people."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import monitor

import pulumi
from mlops_kit.adapters.azure import naming
from mlops_kit.adapters.azure.appinsights import CONNECTION_ENV
from mlops_pulumi.azure.training import schedule_time_zone
from mlops_pulumi.config import Stack, monitor_schedule

MONITOR_MODULE = "mlops_kit.adapters.azure.monitor"
# Stateless rule: without the mute a drifted point stays in the 1 h window for 4 evaluations
# and would notify 4 times; muting for the window length notifies once per point.
ALERT_WINDOW, ALERT_EVERY, ALERT_MUTE = "PT1H", "PT15M", "PT1H"


@dataclass(frozen=True)
class DriftMonitoringArgs:
    stack: Stack
    location: str
    resource_group: pulumi.Input[str]
    workspace: pulumi.Input[str]
    models: tuple[str, ...]                  # the models whose deployment logs requests
    cluster_id: pulumi.Input[str]
    environment_id: pulumi.Input[str]        # the project image's environment version
    identity_client_id: pulumi.Input[str]
    insights_id: pulumi.Input[str]
    insights_connection_string: pulumi.Input[str]
    action_group_id: pulumi.Input[str]
    tags: dict[str, str]


def monitor_command(stack: Stack, model: str) -> str:
    """The job's command line (the config baked into the image at `image.config_path`)."""
    cfg = stack.loaded.config
    return (f"python -m {MONITOR_MODULE} --config {cfg.image.config_path} "
            f"--env {stack.env_name} --model {model}")


def drift_query(model: str) -> str:
    """Application Insights rows of `model`'s drift checks that found drifted features."""
    return ('customMetrics | where name == "DriftedFeatures" '
            f'and tostring(customDimensions.Model) == "{model}" and value > 0')


class DriftMonitoring(pulumi.ComponentResource):
    """One monitor schedule and one drift alert per model."""

    def __init__(self, name: str, args: DriftMonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if args.models:
            monitor_schedule(args.stack)   # StackError before anything is built
            schedule_time_zone(args.stack)
        super().__init__("mlops:azure:DriftMonitoring", name, None, opts)
        self._args = args
        self.schedules = {m: self._schedule(name, m) for m in args.models}
        self.alerts = {m: self._alert(name, m) for m in args.models}
        self.register_outputs({"schedules": [s.name for s in self.schedules.values()]})

    def _schedule(self, name: str, model: str) -> ml.Schedule:
        args, cfg = self._args, self._args.stack.loaded.config
        job = ml.CommandJobArgs(
            job_type="Command", command=monitor_command(args.stack, model),
            environment_id=args.environment_id, compute_id=args.cluster_id,
            display_name=f"monitor-{model}", experiment_name=f"{cfg.project}-{model}-monitor",
            identity=ml.ManagedIdentityArgs(identity_type="Managed",
                                            client_id=args.identity_client_id),
            environment_variables={CONNECTION_ENV: args.insights_connection_string,
                                   "AZURE_CLIENT_ID": args.identity_client_id},
            tags={**args.tags, "model": model})
        return ml.Schedule(
            f"{name}-{model}-schedule", name=f"monitor-{model}",
            resource_group_name=args.resource_group, workspace_name=args.workspace,
            opts=pulumi.ResourceOptions(parent=self),
            properties={
                "display_name": f"drift monitor {model}", "is_enabled": True,
                "tags": args.tags,
                "trigger": {"trigger_type": "Cron", "expression": monitor_schedule(args.stack),
                            "time_zone": schedule_time_zone(args.stack)},
                "action": {"action_type": "CreateJob", "job_definition": job},
            })

    def _alert(self, name: str, model: str) -> monitor.ScheduledQueryRule:
        args, cfg = self._args, self._args.stack.loaded.config
        stem = naming.prefix(cfg.project, args.stack.env_name)
        retrain = ("the monitor starts the training pipeline once per drift episode (see "
                   "retrain in the window's summary.json)"
                   if cfg.training.retrain_on_drift else "retrain_on_drift is off: retrain by hand")
        return monitor.ScheduledQueryRule(
            f"{name}-{model}-drift", rule_name=f"{stem}-{model}-drift", kind="LogAlert",
            resource_group_name=args.resource_group, location=args.location,
            scopes=[args.insights_id], severity=2, enabled=True, auto_mitigate=False,
            evaluation_frequency=ALERT_EVERY, window_size=ALERT_WINDOW,
            mute_actions_duration=ALERT_MUTE, tags=args.tags,
            description=(f"{model}: features drifted from the training baseline; {retrain}. "
                         f"Results: {naming.CAPTURE_DATASTORE}/{naming.MONITORING_PREFIX}"
                         f"{model}/"),
            criteria={"all_of": [{"query": drift_query(model), "time_aggregation": "Count",
                                  "operator": "GreaterThan", "threshold": 0,
                                  "failing_periods": {"number_of_evaluation_periods": 1,
                                                      "min_failing_periods_to_alert": 1}}]},
            actions={"action_groups": [args.action_group_id]},
            opts=pulumi.ResourceOptions(parent=self))
