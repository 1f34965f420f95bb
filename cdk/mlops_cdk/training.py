"""The training pipeline of one model: the DAG as a SageMaker Pipeline, its package group, a
schedule, and the retraining trigger (drift alarm → EventBridge → start the pipeline)."""

from __future__ import annotations

import dataclasses

import jsii
from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from mlops_cdk.settings import EnvSettings
from mlops_kit.adapters.aws.cron import aws_cron
from mlops_kit.adapters.aws.pipeline import PipelineSettings, render
from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import ModelConfig
from mlops_kit.pipeline import load_pipeline


@dataclasses.dataclass(frozen=True)
class PipelineInputs:
    """What the pipeline uses from the platform stack."""

    role: iam.IRole
    image_uri: str
    artifacts_bucket: str
    zone_uris: dict[str, str]
    landing_uri: str
    key_arn: str
    feature_group: str


@jsii.implements(events.IRuleTarget)
class StartPipeline:
    """An EventBridge target that starts a SageMaker pipeline execution."""

    def __init__(self, pipeline_arn: str, role: iam.IRole) -> None:
        self.pipeline_arn, self.role = pipeline_arn, role

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.pipeline_arn, role=self.role,
                                       retry_policy=events.CfnRule.RetryPolicyProperty(
                                           maximum_retry_attempts=3))


class TrainingPipeline(Construct):
    """Package group, pipeline, schedule and retraining trigger of `model`."""

    def __init__(self, scope: Construct, id_: str, *, settings: EnvSettings, model: ModelConfig,
                 inputs: PipelineInputs) -> None:
        super().__init__(scope, id_)
        self.group_name = settings.package_group(model)
        self.group = sagemaker.CfnModelPackageGroup(
            self, "PackageGroup", model_package_group_name=self.group_name,
            model_package_group_description=f"{model.name} ({model.framework}, {model.task})")
        self.name = self.group_name  # the pipeline is named after its package group
        definition = self.definition(settings, model, inputs)
        self.pipeline = sagemaker.CfnPipeline(
            self, "Pipeline", pipeline_name=self.name, role_arn=inputs.role.role_arn,
            pipeline_display_name=self.name,
            pipeline_description=f"Training of {model.name} from pipelines/ (mlops-kit)",
            pipeline_definition={"PipelineDefinitionBody": Stack.of(self).to_json_string(
                definition)})
        self.pipeline.node.add_dependency(self.group)
        self.arn = Stack.of(self).format_arn(service="sagemaker", resource="pipeline",
                                             resource_name=self.name.lower())
        self.events_role = iam.Role(self, "StartRole", assumed_by=iam.CompositePrincipal(
            iam.ServicePrincipal("events.amazonaws.com"),
            iam.ServicePrincipal("scheduler.amazonaws.com")),
            description=f"EventBridge starts {self.name}")
        self.events_role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:StartPipelineExecution"], resources=[self.arn]))
        training = settings.config.training
        if training.schedule:
            self.schedule = scheduler.CfnSchedule(
                self, "Schedule", description=f"Retrain {model.name} ({training.schedule})",
                schedule_expression=aws_cron(training.schedule),
                schedule_expression_timezone=training.time_zone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(
                    mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=self.arn, role_arn=self.events_role.role_arn,
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=3)))

    @staticmethod
    def definition(settings: EnvSettings, model: ModelConfig,
                   inputs: PipelineInputs) -> dict[str, object]:
        """The rendered definition (`build` has run `aws.rules.pipeline_definition`, the same
        render checked against SageMaker's request models, before any construct exists)."""
        loaded = loaded_for(settings, model)
        training = settings.config.training
        return render(loaded, load_pipeline(loaded), PipelineSettings(
            name=settings.package_group(model), env=settings.name,
            role_arn=inputs.role.role_arn, image_uri=inputs.image_uri,
            artifacts_uri=f"s3://{inputs.artifacts_bucket}/pipelines/{model.name}",
            zone_uris=inputs.zone_uris, landing_uri=inputs.landing_uri,
            kms_key_id=inputs.key_arn, feature_group=inputs.feature_group,
            processing_instance_type=training.processing_instance_type,
            training_instance_type=training.instance_type, volume_gb=training.volume_gb,
            max_runtime_s=training.max_runtime_s))

    def share_with(self, accounts: list[str]) -> None:
        """Let other accounts read the group's packages (to serve approved versions)."""
        stack = Stack.of(self)
        group_arn = stack.format_arn(service="sagemaker", resource="model-package-group",
                                     resource_name=self.group_name)
        packages = stack.format_arn(service="sagemaker", resource="model-package",
                                    resource_name=f"{self.group_name}/*")
        self.group.model_package_group_policy = {"Version": "2012-10-17", "Statement": [{
            "Sid": "ReadApprovedVersions", "Effect": "Allow",
            "Principal": {"AWS": [f"arn:{stack.partition}:iam::{a}:root" for a in accounts]},
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                       "sagemaker:DescribeModelPackageGroup"],
            "Resource": [group_arn, packages]}]}

    def retrain_on(self, alarm_arns: list[str]) -> events.Rule:
        """Start the pipeline whenever one of these drift alarms goes into ALARM: this
        environment's, and those the later environments forward to its event bus."""
        return events.Rule(self, "RetrainOnDrift", description="Drift alarm → retrain",
                           event_pattern=alarm_pattern(alarm_arns),
                           targets=[StartPipeline(self.arn, self.events_role)])

    def forward_drift(self, alarm: cloudwatch.IAlarm, settings: EnvSettings) -> events.Rule:
        """Send `alarm`'s ALARM events to the home environment's default event bus, whose
        pipeline retrains (the versions served here are the ones approved there)."""
        stack = Stack.of(self)
        bus = events.EventBus.from_event_bus_arn(
            self, "HomeBus", f"arn:{stack.partition}:events:{settings.home_region}:"
                             f"{settings.home_account}:event-bus/default")
        return events.Rule(self, "ForwardDrift", description="Drift alarm → the home pipeline",
                           event_pattern=alarm_pattern([alarm.alarm_arn]),
                           targets=[targets.EventBus(bus)])


def alarm_pattern(alarm_arns: list[str]) -> events.EventPattern:
    """CloudWatch's events of these alarms going into ALARM."""
    return events.EventPattern(source=["aws.cloudwatch"],
                               detail_type=["CloudWatch Alarm State Change"],
                               resources=alarm_arns, detail={"state": {"value": ["ALARM"]}})


def loaded_for(settings: EnvSettings, model: ModelConfig) -> LoadedConfig:
    return dataclasses.replace(settings.loaded, config=settings.config.for_model(model.name))
