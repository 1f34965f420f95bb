"""One stack per model, so no template grows with the number of models."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_cdk.endpoint import ModelEndpoint, MonitorJob, Release
from mlops_cdk.monitoring import ModelMonitoring
from mlops_cdk.platform import PlatformStack
from mlops_cdk.settings import EnvSettings
from mlops_cdk.training import PipelineInputs, TrainingPipeline
from mlops_kit.config.model import ModelConfig


class ModelStack(Stack):
    """Training pipeline, monitoring and (once a version is approved) the endpoint of a model."""

    def __init__(self, scope: Construct, id_: str, *, platform: PlatformStack,
                 model: ModelConfig, release: Release | None, **kwargs: object) -> None:
        super().__init__(scope, id_, **kwargs)  # type: ignore[arg-type]
        settings, lake = platform.settings, platform.lake
        self.training = TrainingPipeline(self, "Training", settings=settings, model=model,
                                         inputs=PipelineInputs(
            role=platform.job_role, image_uri=platform.image.image_uri,
            artifacts_bucket=lake.artifacts.bucket_name,
            zone_uris={z: lake.table_uri(z) for z in lake.zones},
            landing_uri=f"s3://{lake.zones['raw'].bucket_name}/landing/",
            key_arn=platform.key.key_arn, feature_group=platform.features.name))
        self.endpoint = None
        if release is not None:
            self.endpoint = ModelEndpoint(
                self, "Serving", settings=settings, model=model, release=release,
                key=platform.key, image=platform.image.repository,
                image_uri=platform.image.image_uri,
                # by name, not by reference: no export that exists only while there is an
                # endpoint (CloudFormation refuses to drop an export a stack still imports)
                artifacts=s3.Bucket.from_bucket_name(self, "Artifacts",
                                                     settings.artifacts_bucket),
                alarm_actions=[platform.topic.topic_arn],
                monitor=MonitorJob(platform.image.image_uri, platform.job_role))
        if settings.name == settings.home and settings.other_accounts:
            self.training.share_with(settings.other_accounts)
        self.monitoring = ModelMonitoring(self, "Monitoring", settings=settings, model=model,
                                          topic=platform.topic, endpoint=self.endpoint)
        self._retrain_on_drift(settings, model)

    def _retrain_on_drift(self, settings: EnvSettings, model: ModelConfig) -> None:
        """Each environment's `training.retrain_on_drift` says whether its drift retrains: the
        home pipeline's, since the versions served everywhere are approved there. A later
        environment forwards its drift alarm to the home event bus; the home rule matches its
        own alarm and every later one (an alarm that is not forwarded never arrives)."""
        own, alarm = settings.config.training.retrain_on_drift, self.monitoring.drift_alarm
        if settings.name != settings.home:
            if own:
                self.training.forward_drift(alarm, settings)
            return
        arns = [alarm.alarm_arn] if own else []
        arns += settings.later_drift_alarms(model, self.partition)
        if arns:
            self.training.retrain_on(arns)
