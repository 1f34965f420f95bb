"""The real-time endpoint of one model, from an approved model package: blue/green guardrails
with auto-rollback alarms, data capture, an optional shadow variant, autoscaling."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, Stack, TimeZone
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_cdk import defaults
from mlops_cdk.data_lake import CAPTURE_PREFIX
from mlops_cdk.home import read_home_registry
from mlops_cdk.props import camel
from mlops_cdk.settings import EnvSettings
from mlops_kit.adapters.aws.cron import aws_cron, monitor_cron
from mlops_kit.adapters.aws.endpoint import (
    SHADOW,
    VARIANT,
    data_capture,
    deployment_config,
    rollback_alarms,
)
from mlops_kit.config.model import ModelConfig, ScalingConfig


@dataclass(frozen=True)
class MonitorJob:
    """What the monitoring schedule runs with: the project image and the job role."""

    image_uri: str
    role: iam.IRole


@dataclass(frozen=True)
class Release:
    """What to serve: the approved package (and a package to shadow-test, if any)."""

    package_arn: str
    model_data_url: str | None = None  # its model.tar.gz: how another account serves it
    baseline_uri: str | None = None  # s3://.../baseline/ with statistics.json, constraints.json
    shadow_package_arn: str | None = None
    shadow_model_data_url: str | None = None


class ModelEndpoint(Construct):
    """Model, endpoint config and endpoint named `<project>-<model>`, scaled per the config."""

    def __init__(self, scope: Construct, id_: str, *, settings: EnvSettings, model: ModelConfig,
                 release: Release, key: kms.IKey, artifacts: s3.IBucket,
                 image: ecr.IRepository, image_uri: str, alarm_actions: list[str],
                 monitor: MonitorJob | None = None) -> None:
        super().__init__(scope, id_)
        serving = settings.config.serving
        self.settings = settings
        self.image_uri = image_uri
        self.name = settings.endpoint(model)
        self.role = self._role(artifacts, key, image, settings.package_group(model), model.name)
        production = self._model("Model", release.package_arn, release.model_data_url,
                                 model.name)
        variant = {"variantName": VARIANT, "modelName": production.attr_model_name,
                   "initialInstanceCount": max(1, serving.min_instances),
                   "instanceType": serving.instance_type, "initialVariantWeight": 1.0}
        capture = data_capture(serving,
                               f"s3://{artifacts.bucket_name}/{CAPTURE_PREFIX}/{model.name}")
        shadow = []
        if release.shadow_package_arn:
            shadow_model = self._model("ShadowModel", release.shadow_package_arn,
                                       release.shadow_model_data_url, model.name)
            shadow = [{**variant, "variantName": SHADOW, "modelName": shadow_model.attr_model_name,
                       "initialVariantWeight": serving.deployment.shadow_percent / 100}]
        self.config = sagemaker.CfnEndpointConfig(
            self, "Config", production_variants=[variant], kms_key_id=key.key_arn,
            data_capture_config={**camel(capture), "kmsKeyId": key.key_arn},
            shadow_production_variants=shadow or None)
        self.alarms = [self._alarm(request, alarm_actions)
                       for request in rollback_alarms(self.name, serving)]
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint", endpoint_name=self.name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            # a release keeps the instance count autoscaling reached; capture settings apply
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(
                    variant_property_type="DataCaptureConfig")],
            deployment_config=camel(deployment_config(
                serving.deployment, [a.alarm_name for a in self.alarms])))
        for alarm in self.alarms:
            self.endpoint.node.add_dependency(alarm)
        self.scaling = self._scaling(settings, serving.scaling)
        self.monitoring_schedule = None
        if monitor is not None and release.baseline_uri:
            self.monitoring_schedule = self._data_quality(settings, model, release, key,
                                                          artifacts, monitor)

    def _data_quality(self, settings: EnvSettings, model: ModelConfig, release: Release,
                      key: kms.IKey, artifacts: s3.IBucket,
                      monitor: MonitorJob) -> sagemaker.CfnMonitoringSchedule:
        """Model Monitor runs `mlops_kit.monitoring.job` on the captured traffic against the
        version's training baseline and publishes the drift metrics."""
        config, dq = settings.config, sagemaker.CfnDataQualityJobDefinition
        base = str(release.baseline_uri).rstrip("/")
        # a new baseline replaces the definition: a new name, or CloudFormation cannot
        name = f"{self.name[:46]}-dq-{hashlib.sha256(base.encode()).hexdigest()[:8]}"
        definition = dq(
            self, "DataQuality", role_arn=monitor.role.role_arn, job_definition_name=name,
            data_quality_app_specification=dq.DataQualityAppSpecificationProperty(
                image_uri=monitor.image_uri,
                container_entrypoint=["python", "-m", "mlops_kit.monitoring.job"],
                environment={"MLOPS_CONFIG": config.image.config_path, "MLOPS_ENV": settings.name,
                             "MLOPS_MODEL": model.name, "MLOPS_METRICS_SINK": "cloudwatch",
                             "publish_cloudwatch_metrics": "Enabled"}),
            data_quality_baseline_config=dq.DataQualityBaselineConfigProperty(
                constraints_resource=dq.ConstraintsResourceProperty(
                    s3_uri=f"{base}/constraints.json"),
                statistics_resource=dq.StatisticsResourceProperty(
                    s3_uri=f"{base}/statistics.json")),
            data_quality_job_input=dq.DataQualityJobInputProperty(
                endpoint_input=dq.EndpointInputProperty(
                    endpoint_name=self.name, local_path="/opt/ml/processing/input/endpoint")),
            data_quality_job_output_config=dq.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn, monitoring_outputs=[dq.MonitoringOutputProperty(
                    s3_output=dq.S3OutputProperty(
                        local_path="/opt/ml/processing/resultdata", s3_upload_mode="EndOfJob",
                        s3_uri=f"s3://{artifacts.bucket_name}/monitoring/{model.name}"))]),
            job_resources=dq.MonitoringResourcesProperty(cluster_config=dq.ClusterConfigProperty(
                instance_count=1, instance_type=config.training.processing_instance_type,
                volume_size_in_gb=config.training.volume_gb, volume_kms_key_id=key.key_arn)),
            network_config=dq.NetworkConfigProperty(
                enable_inter_container_traffic_encryption=True),
            stopping_condition=dq.StoppingConditionProperty(max_runtime_in_seconds=3600))
        definition.node.add_dependency(self.endpoint)
        ms = sagemaker.CfnMonitoringSchedule
        schedule = ms(self, "MonitoringSchedule",
                  monitoring_schedule_name=f"{self.name}-data-quality"[:63],
                  monitoring_schedule_config=ms.MonitoringScheduleConfigProperty(
                      monitoring_job_definition_name=name,
                      monitoring_type="DataQuality",
                      schedule_config=ms.ScheduleConfigProperty(
                          schedule_expression=monitor_cron(config.monitoring.schedule))))
        schedule.node.add_dependency(definition)
        return schedule

    def _role(self, artifacts: s3.IBucket, key: kms.IKey, image: ecr.IRepository,
              group: str, model: str) -> iam.Role:
        """Reads its package's files and the image, writes captured traffic."""
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                        description=f"Serves {self.name}")
        artifacts.grant_read(role, f"models/{group}/*")
        artifacts.grant_put(role, f"{CAPTURE_PREFIX}/{model}/*")
        defaults.grant_volume_encryption(key, role)
        image.grant_pull(role)
        if self.settings.home_account != self.settings.account:
            read_home_registry(role, self.settings, f"models/{group}/*")
        stack = Stack.of(self)
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[stack.format_arn(service="logs", resource="log-group",
                                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                        resource_name=f"/aws/sagemaker/Endpoints/{self.name}:*")]))
        return role

    def _model(self, id_: str, package_arn: str, data_url: str | None,
               name: str) -> sagemaker.CfnModel:
        """The package itself at home; elsewhere this account's image with the package's files
        (another account's package names an image in the home registry it cannot pull)."""
        container: dict[str, object] = {"modelPackageName": package_arn}
        if self.settings.home_account != self.settings.account:
            if not data_url:
                raise ValueError(f"releases file: {name} in {self.settings.name} needs the "
                                 "package's model_data_url to be served from another account "
                                 "(python -m mlops_kit.adapters.aws.release approved writes it)")
            container = {"image": self.image_uri, "modelDataUrl": data_url, "environment": {
                "MLOPS_MODEL_NAME": name,
                "MLOPS_MODEL_VERSION": package_arn.rsplit("/", 1)[-1]}}
        model = sagemaker.CfnModel(self, id_, execution_role_arn=self.role.role_arn,
                                   primary_container=container, enable_network_isolation=True)
        model.node.add_dependency(self.role)
        return model

    def _alarm(self, request: dict[str, object],
               actions: list[str]) -> cloudwatch.CfnAlarm:
        name = str(request["AlarmName"])
        alarm = cloudwatch.CfnAlarm(self, name.rsplit("-", 1)[-1].capitalize() + "Alarm",
                                    **{_snake(k): v for k, v in camel(request).items()})
        alarm.alarm_actions = actions
        return alarm

    def _scaling(self, settings: EnvSettings,
                 scaling: ScalingConfig) -> appscaling.ScalableTarget:
        serving = settings.config.serving
        target = appscaling.ScalableTarget(
            self, "ScalableTarget", service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=f"endpoint/{self.name}/variant/{VARIANT}",
            min_capacity=max(1, serving.min_instances), max_capacity=serving.max_instances)
        target.node.add_dependency(self.endpoint)
        for i, floor in enumerate(scaling.scheduled):  # planned floors under either policy
            target.scale_on_schedule(
                f"Floor{i}", schedule=appscaling.Schedule.expression(aws_cron(floor.cron)),
                time_zone=TimeZone.of(scaling.schedule_time_zone),
                min_capacity=floor.min_instances)
        if scaling.policy == "target_tracking":
            target.scale_to_track_metric(
                "TargetTracking", target_value=scaling.target_value,
                predefined_metric=appscaling.PredefinedMetric
                .SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
                scale_in_cooldown=Duration.seconds(scaling.cooldown_in_s),
                scale_out_cooldown=Duration.seconds(scaling.cooldown_out_s))
            return target
        self._scale_out(target, scaling)
        self._scale_in(target, scaling)
        return target

    def _scale_out(self, target: appscaling.ScalableTarget, scaling: ScalingConfig) -> None:
        """The scale-out alarm and policy: `scale_out` bands above the first threshold."""
        metric: cloudwatch.IMetric = self.metric(scaling.metric)
        if scaling.scale_out_trend_minutes:
            metric = self.projected(scaling.scale_out_trend_minutes)
        out = scaling.scale_out
        bands = [appscaling.ScalingInterval(upper=out[0].lower, change=0)]
        bands += [appscaling.ScalingInterval(lower=s.lower, upper=nxt.lower, change=s.change)
                  for s, nxt in itertools.pairwise(out)]
        bands.append(appscaling.ScalingInterval(lower=out[-1].lower, change=out[-1].change))
        target.scale_on_metric("ScaleOut", metric=metric, scaling_steps=bands,
                               adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                               cooldown=Duration.seconds(scaling.cooldown_out_s),
                               evaluation_periods=scaling.evaluation_periods_out,
                               datapoints_to_alarm=scaling.datapoints_to_alarm_out)

    def _scale_in(self, target: appscaling.ScalableTarget, scaling: ScalingConfig) -> None:
        """The scale-in alarm and policy: `scale_in` bands below the first threshold."""
        metric: cloudwatch.IMetric = self.metric(scaling.metric)
        inn = scaling.scale_in[::-1]  # ascending: the lowest band removes the most
        bands = [appscaling.ScalingInterval(upper=inn[0].upper, change=inn[0].change)]
        bands += [appscaling.ScalingInterval(lower=low.upper, upper=s.upper, change=s.change)
                  for low, s in itertools.pairwise(inn)]
        bands.append(appscaling.ScalingInterval(lower=inn[-1].upper, change=0))
        if scaling.scale_in_metric == "after_removal":
            metric = self.after_removal()
        target.scale_on_metric("ScaleIn", metric=metric, scaling_steps=bands,
                               adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                               cooldown=Duration.seconds(scaling.cooldown_in_s),
                               evaluation_periods=scaling.evaluation_periods_in,
                               datapoints_to_alarm=scaling.datapoints_to_alarm_in)

    def projected(self, minutes: float) -> cloudwatch.MathExpression:
        """Invocations per instance `minutes` ahead if the last minute's rise went on (falls
        are not projected): m * (1 + k * max(DIFF(inv), 0) / inv)."""
        return cloudwatch.MathExpression(
            expression=f"IF(inv > 0, m * (1 + {minutes:g} * IF(DIFF(inv) > 0, DIFF(inv), 0) "
                       "/ inv), m)",
            using_metrics={"m": self.metric("InvocationsPerInstance"),
                           "inv": self.metric("Invocations")},
            label=f"InvocationsPerInstance projected {minutes:g} min ahead",
            period=Duration.minutes(1))

    def after_removal(self) -> cloudwatch.MathExpression:
        """Invocations per instance the fleet would see with one instance fewer:
        n / (n/p - 1) = n·p / (n - p); none with one instance, 0 without traffic."""
        return cloudwatch.MathExpression(
            expression="IF(n <= 0, 0, IF(n > p, n * p / (n - p), 1000000000))",
            using_metrics={"n": self.metric("Invocations"),
                           "p": self.metric("InvocationsPerInstance")},
            label="InvocationsPerInstance after one instance less", period=Duration.minutes(1))

    def metric(self, name: str, statistic: str | None = None,
               namespace: str = "AWS/SageMaker") -> cloudwatch.Metric:
        """A per-minute metric of the production variant."""
        stat = statistic or ("Average" if name == "CPUUtilization" else "Sum")
        if name in ("CPUUtilization", "MemoryUtilization"):
            namespace = "/aws/sagemaker/Endpoints"
        return cloudwatch.Metric(namespace=namespace, metric_name=name, statistic=stat,
                                 period=Duration.minutes(1),
                                 dimensions_map={"EndpointName": self.name,
                                                 "VariantName": VARIANT})


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
