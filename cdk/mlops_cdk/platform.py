"""The environment's shared platform: key, lake, feature store, image, job role, alarm topic."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from mlops_cdk import defaults
from mlops_cdk.cicd import smoke_role_name
from mlops_cdk.data_lake import DataLake
from mlops_cdk.feature_store import FeatureStore
from mlops_cdk.home import read_home_registry
from mlops_cdk.image import project_image
from mlops_cdk.settings import EnvSettings


class PlatformStack(Stack):
    """Everything the models of one environment share."""

    def __init__(self, scope: Construct, id_: str, *, settings: EnvSettings, root: Path,
                 **kwargs: object) -> None:
        super().__init__(scope, id_, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.key = defaults.project_key(self, "Key", f"alias/{settings.prefix()}")
        self.lake = DataLake(self, "Lake", settings=settings, key=self.key)
        self.features = FeatureStore(self, "FeatureStore", settings=settings, key=self.key,
                                     offline_bucket=self.lake.zones["features"])
        self.image = project_image(self, "Image", root, settings.loaded)
        self.topic = sns.Topic(self, "Alarms", topic_name=settings.prefix("alarms"),
                               master_key=self.key, enforce_ssl=True,
                               display_name=f"{settings.project} {settings.name} alarms")
        for email in settings.config.monitoring.alert_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        self.job_role = self._job_role()
        if settings.name == settings.home:
            self._share_registry(settings.other_accounts)
            self._accept_drift_events(settings.other_accounts)
        elif settings.home_account != settings.account:  # Model Monitor reads its baselines
            read_home_registry(self.job_role, settings)
        self.smoke_role = self._smoke_role()

    def _share_registry(self, accounts: list[str]) -> None:
        """Let the later environments' endpoints read the model files approved here."""
        for account in accounts:
            principal = iam.AccountPrincipal(account)
            self.lake.artifacts.add_to_resource_policy(iam.PolicyStatement(
                actions=["s3:GetObject"], principals=[principal],
                resources=[self.lake.artifacts.arn_for_objects("models/*")]))
            self.key.grant_decrypt(principal)

    def _accept_drift_events(self, accounts: list[str]) -> None:
        """Let the later environments' accounts put their drift alarm events on this
        environment's default event bus (the home pipeline retrains on them)."""
        bus = f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default"
        for account in accounts:
            events.CfnEventBusPolicy(
                self, f"DriftEventsFrom{account}", event_bus_name="default",
                statement_id=f"{account}-{self.settings.prefix('drift')}"[:64],
                statement={"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus,
                           "Principal": {"AWS": f"arn:{self.partition}:iam::{account}:root"}})

    def _smoke_role(self) -> iam.Role:
        """Assumed by the delivery account's smoke test: invoke this project's endpoints."""
        s = self.settings
        role = iam.Role(self, "SmokeTestRole", role_name=smoke_role_name(s),
                        assumed_by=iam.AccountPrincipal(s.home_account),
                        description="Delivery smoke test: invokes the project's endpoints")
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"], resources=[
            f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:endpoint/{s.project}-*"]))
        return role

    def _job_role(self) -> iam.Role:
        """The role of pipeline steps: the project's buckets, key, image, package groups and
        feature group."""
        s = self.settings
        role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal(
            "sagemaker.amazonaws.com"), description=f"{s.project} {s.name} pipeline steps")
        for bucket in [*self.lake.zones.values(), self.lake.artifacts]:
            bucket.grant_read_write(role)
        defaults.grant_volume_encryption(self.key, role)
        self.image.repository.grant_pull(role)
        self.features.grant_put_record(role)  # the features job fills the online store
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        role.add_to_policy(iam.PolicyStatement(
            sid="PipelineJobs", actions=[
                "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob", "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                "sagemaker:AddTags"],
            resources=[f"{arn}:processing-job/*", f"{arn}:training-job/*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="Registry", actions=[
                "sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                "sagemaker:UpdateModelPackage", "sagemaker:ListModelPackages",
                "sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackageGroup",
                "sagemaker:AddTags"],
            resources=[f"{arn}:model-package-group/{s.project}-*",
                       f"{arn}:model-package/{s.project}-*/*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="PassItself", actions=["iam:PassRole"], resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        role.add_to_policy(iam.PolicyStatement(
            sid="Metrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": s.project}}))
        role.add_to_policy(iam.PolicyStatement(
            sid="Logs", actions=["logs:CreateLogGroup", "logs:CreateLogStream",
                                 "logs:PutLogEvents"],
            resources=[f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:"
                       "/aws/sagemaker/*"]))
        return role
