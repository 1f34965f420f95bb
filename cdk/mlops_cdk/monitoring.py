"""Monitoring of one model: a dashboard, alarms to the project's topic, and the drift alarm
that starts retraining."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops_cdk.endpoint import ModelEndpoint
from mlops_cdk.settings import EnvSettings
from mlops_kit.config.model import ModelConfig


class ModelMonitoring(Construct):
    """Drift alarm (always), endpoint alarms and dashboard widgets (when there is an endpoint)."""

    def __init__(self, scope: Construct, id_: str, *, settings: EnvSettings, model: ModelConfig,
                 topic: sns.ITopic, endpoint: ModelEndpoint | None) -> None:
        super().__init__(scope, id_)
        self.drift = self._drift_metric(settings, model, "DriftedFeatures", "Maximum")
        self.drift_alarm = cloudwatch.Alarm(
            self, "DriftAlarm", alarm_name=settings.drift_alarm_name(model),
            alarm_description=f"{model.name}: features drifted from the training baseline "
                              "(mlops-kit monitor); starts retraining",
            metric=self.drift, threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        self.drift_alarm.add_alarm_action(actions.SnsAction(topic))
        self.quality = self._drift_metric(settings, model, "ModelQuality", "Minimum")
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=settings.prefix(model.name)[:255],
            default_interval=Duration.hours(24))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Drifted features", left=[self.drift], width=12),
            cloudwatch.GraphWidget(title="Model quality (labelled traffic)", left=[self.quality],
                                   width=12))
        if endpoint is not None:
            self._endpoint_widgets(settings, endpoint)

    def _drift_metric(self, settings: EnvSettings, model: ModelConfig, name: str,
                      statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=settings.project, metric_name=name,
                                 dimensions_map={"Model": model.name}, statistic=statistic,
                                 period=Duration.hours(1))

    def _endpoint_widgets(self, settings: EnvSettings, endpoint: ModelEndpoint) -> None:
        invocations = endpoint.metric("Invocations")
        per_instance = endpoint.metric("InvocationsPerInstance")
        instances = cloudwatch.MathExpression(
            expression="IF(p > 0, n / p, 0)", label="Instances (invocations / per instance)",
            using_metrics={"n": invocations, "p": per_instance}, period=Duration.minutes(1))
        latency = [endpoint.metric("ModelLatency", s) for s in ("p50", "p99")]
        errors = [endpoint.metric(n) for n in ("Invocation4XXErrors", "Invocation5XXErrors")]
        objective = cloudwatch.HorizontalAnnotation(
            value=settings.config.serving.latency_p99_ms * 1000, label="p99 objective (µs)")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Invocations per minute", left=[invocations],
                                   right=[per_instance], width=8),
            cloudwatch.GraphWidget(title="Model latency (µs)", left=latency,
                                   left_annotations=[objective], width=8),
            cloudwatch.GraphWidget(title="Errors", left=errors, width=8),
            cloudwatch.GraphWidget(title="Instances", left=[instances],
                                   right=[endpoint.metric("CPUUtilization")], width=12),
            cloudwatch.AlarmStatusWidget(title="Alarms", width=12, alarms=[
                self.drift_alarm, *[cloudwatch.Alarm.from_alarm_arn(
                    self, f"Guard{i}", a.attr_arn) for i, a in enumerate(endpoint.alarms)]]))
