"""Delivery: a git push tests, synthesizes, deploys the platform and trains; an approved model
version is deployed to each later environment in turn, smoke-tested, and held for a manual
approval before the last one (CodePipeline V2, CodeBuild). The pipelines deploy the environments'
Stages only: this stack is deployed by hand, so a push never changes the pipelines themselves."""

from __future__ import annotations

from aws_cdk import DefaultStackSynthesizer, Duration, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as cpactions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from mlops_cdk import defaults
from mlops_cdk.nag import privileged
from mlops_cdk.settings import EnvSettings
from mlops_kit.adapters.aws import naming

QUIET = {"CDK_DISABLE_CLI_TELEMETRY": "true", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
RELEASE = ".venv/bin/python -m mlops_kit.adapters.aws.release"
CDK = "npx cdk --no-notices"


def deploy_command(env: EnvSettings, *context: str) -> str:
    """`cdk deploy` of `env`'s Stage with the pinned CLI of package.json (naming.cdk_deploy)."""
    return naming.cdk_deploy(CDK, env.project, env.name, *context)


def smoke_role_name(settings: EnvSettings) -> str:
    """The role each environment lets the delivery account assume to smoke-test endpoints."""
    return settings.prefix("smoke-test")[:64]


class CicdStack(Stack):
    """The delivery and release pipelines, in the account of the `cicd.environment`."""

    def __init__(self, scope: Construct, id_: str, *, home: EnvSettings,
                 stages: list[EnvSettings], **kwargs: object) -> None:
        super().__init__(scope, id_, **kwargs)  # type: ignore[arg-type]
        self.home, self.stages = home, stages
        cicd = home.config.cicd
        self.key = defaults.project_key(self, "Key", f"alias/{home.project}-cicd")
        logs = defaults.logs_bucket(self, "Logs", f"{home.project}-cicd-logs-{home.account}-"
                                    f"{home.region}", home.config.lake.logs_expire_days)
        self.artifacts = defaults.secure_bucket(
            self, "Artifacts", name=f"{home.project}-cicd-{home.account}-{home.region}",
            key=self.key, logs=logs)
        self.topic = sns.Topic(self, "Approvals", topic_name=f"{home.project}-approvals",
                               master_key=self.key, enforce_ssl=True)
        for email in cicd.notify_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        if cicd.source == "codecommit":
            self.repository = codecommit.Repository.from_repository_name(
                self, "Repo", str(cicd.repository).split("/", 1)[1])
        self.delivery, source = self._pipeline("Delivery", f"{home.project}-delivery", push=True)
        self._delivery_stages(source)
        self.release, source = self._pipeline("Release", f"{home.project}-release", push=False)
        self._release_stages(source)
        self.on_approval = events.Rule(
            self, "OnApproval", description="An approved model version starts the release",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [{"prefix": f"{home.project}-"}],
                        "ModelApprovalStatus": ["Approved"]}),
            targets=[targets.CodePipeline(self.release)])

    def _pipeline(self, id_: str, name: str, *,
                  push: bool) -> tuple[codepipeline.Pipeline, codepipeline.Artifact]:
        """A V2 pipeline with its source stage, and the source artifact its actions read."""
        pipeline = codepipeline.Pipeline(
            self, id_, pipeline_name=name, pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=self.artifacts, restart_execution_on_update=False)
        source = codepipeline.Artifact("source")
        pipeline.add_stage(stage_name="Source", actions=[self._source(source, push)])
        return pipeline, source

    def _source(self, output: codepipeline.Artifact, push: bool) -> codepipeline.IAction:
        cicd = self.home.config.cicd
        owner, repo = str(cicd.repository).split("/", 1)
        if cicd.source == "codecommit":
            return cpactions.CodeCommitSourceAction(
                action_name="Source", repository=self.repository, branch=cicd.branch,
                output=output, trigger=cpactions.CodeCommitTrigger.EVENTS
                if push else cpactions.CodeCommitTrigger.NONE)
        assert cicd.connection_arn is not None  # checked when the stack is built
        return cpactions.CodeStarConnectionsSourceAction(
            action_name="Source", connection_arn=cicd.connection_arn, owner=owner, repo=repo,
            branch=cicd.branch, output=output, trigger_on_push=push)

    def _delivery_stages(self, source: codepipeline.Artifact) -> None:
        home = self.home
        self.delivery.add_stage(stage_name="Test", actions=[self._build(
            "Test", ["make test", "make synth"], source)])
        self.delivery.add_stage(stage_name="Deploy-" + home.name, actions=[self._build(
            "Deploy", [deploy_command(home)], source, deploys_to=home)])
        self.delivery.add_stage(stage_name="Train", actions=[self._build(
            "Train", [f"{RELEASE} train --env {home.name} --wait"], source, trains=True)])

    def _release_stages(self, source: codepipeline.Artifact) -> None:
        for i, env in enumerate(self.stages):
            actions: list[codepipeline.IAction] = []
            if i == len(self.stages) - 1 and i > 0:
                actions.append(cpactions.ManualApprovalAction(
                    action_name="Approve", run_order=1, notification_topic=self.topic,
                    additional_information=f"Deploy the approved models to {env.name}?"))
            actions.append(self._build("Deploy", [
                f"{RELEASE} approved --env {env.name} --require --out releases.json",
                deploy_command(env, "releases=releases.json")], source, deploys_to=env,
                run_order=2))
            actions.append(self._build("Smoke", [
                f"{RELEASE} smoke --env {env.name} --role-arn "
                f"arn:{self.partition}:iam::{env.account}:role/{smoke_role_name(env)}"],
                source, smokes=env, run_order=3))
            self.release.add_stage(stage_name=f"Release-{env.name}", actions=actions)

    def _build(self, name: str, commands: list[str], source: codepipeline.Artifact, *,
               deploys_to: EnvSettings | None = None,
               trains: bool = False, smokes: EnvSettings | None = None,
               run_order: int = 1) -> cpactions.CodeBuildAction:
        target = deploys_to or smokes
        suffix = f"-{target.name}" if target else ""
        project = codebuild.PipelineProject(
            self, f"{name}{suffix}".replace("_", "-"),
            project_name=f"{self.home.project}-{name.lower()}{suffix}".replace("_", "-"),
            encryption_key=self.key, timeout=Duration.hours(2),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                # `cdk deploy` builds the project image (a Docker asset): Docker needs it
                compute_type=codebuild.ComputeType.MEDIUM, privileged=deploys_to is not None),
            environment_variables={k: codebuild.BuildEnvironmentVariable(value=v)
                                   for k, v in QUIET.items()},
            build_spec=codebuild.BuildSpec.from_object({"version": "0.2", "phases": {
                "install": {"runtime-versions": {"python": "3.11", "nodejs": "20"},
                            "commands": ["make install", "npm ci --no-audit --no-fund"]},
                "build": {"commands": commands}}}))
        if deploys_to is not None:
            self._may_deploy(project, deploys_to)
            privileged(project)
        if trains:
            self._may_train(project)
        if smokes is not None:
            project.add_to_role_policy(iam.PolicyStatement(
                actions=["sts:AssumeRole"], resources=[
                    f"arn:{self.partition}:iam::{smokes.account}:role/{smoke_role_name(smokes)}"]))
        if name == "Deploy" and deploys_to is not self.home:
            self._may_read_registry(project)
        return cpactions.CodeBuildAction(action_name=name, project=project,
                                         input=source, run_order=run_order)

    def _may_deploy(self, project: codebuild.PipelineProject, env: EnvSettings) -> None:
        """`cdk deploy` into `env`: assume that account's CDK bootstrap roles."""
        qualifier = DefaultStackSynthesizer.DEFAULT_QUALIFIER
        project.add_to_role_policy(iam.PolicyStatement(
            actions=["sts:AssumeRole"], resources=[
                f"arn:{self.partition}:iam::{env.account}:role/cdk-{qualifier}-*-{env.account}-"
                f"{env.region}"]))

    def _may_train(self, project: codebuild.PipelineProject) -> None:
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        project.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:StartPipelineExecution", "sagemaker:DescribePipelineExecution"],
            resources=[f"{arn}:pipeline/{self.home.project}-*"]))

    def _may_read_registry(self, project: codebuild.PipelineProject) -> None:
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}"
        project.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:ListModelPackages"], resources=["*"]))  # no resource-level
        project.add_to_role_policy(iam.PolicyStatement(
            actions=["sagemaker:DescribeModelPackage"],
            resources=[f"{arn}:model-package/{self.home.project}-*/*"]))
        bucket = naming.artifacts_bucket(self.home.project, self.account, self.region)
        project.add_to_role_policy(iam.PolicyStatement(  # finds each version's baseline
            actions=["s3:ListBucket"], resources=[f"arn:{self.partition}:s3:::{bucket}"],
            conditions={"StringLike": {"s3:prefix": ["models/*"]}}))
