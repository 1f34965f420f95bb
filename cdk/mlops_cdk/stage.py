"""One Stage per AWS environment: the platform stack and a stack per model."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Environment, Stage, Tags
from constructs import Construct

from mlops_cdk.endpoint import Release
from mlops_cdk.model_stack import ModelStack
from mlops_cdk.platform import PlatformStack
from mlops_cdk.settings import EnvSettings


class MlopsStage(Stage):
    """`<project>-<env>`: deployed with `cdk deploy -c env=<env> '<project>-<env>/*'`
    (`EnvSettings.selector`; the CLI's `--all` takes top-level stacks only)."""

    def __init__(self, scope: Construct, *, settings: EnvSettings, root: Path,
                 releases: dict[str, Release]) -> None:
        env = Environment(account=settings.account, region=settings.region)
        super().__init__(scope, settings.stage, env=env)
        self.settings = settings
        self.platform = PlatformStack(self, "platform", settings=settings, root=root,
                                      stack_name=settings.prefix("platform"), env=env)
        self.models = [
            ModelStack(self, model.name, platform=self.platform, model=model,
                       release=releases.get(model.name), env=env,
                       stack_name=settings.prefix(model.name))
            for model in settings.config.all_models
        ]
        for key, value in settings.tags.items():
            Tags.of(self).add(key, value)
