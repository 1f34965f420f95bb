"""Everything the stacks need from `mlops.yaml`, per environment, in one typed object.

Constructs read these settings and never the raw config: names come from
`mlops_kit.adapters.aws.naming` (the functions the local moto target uses too), accounts and
regions from the environment, sizes and thresholds from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_kit.adapters.aws import naming
from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.config.model import ModelConfig, ProjectConfig
from mlops_kit.image import in_context
from mlops_kit.serving.endpoint import endpoint_name


@dataclass(frozen=True)
class EnvSettings:
    """One AWS environment of the project."""

    loaded: LoadedConfig
    name: str
    account: str
    region: str
    config_file: str  # the config's path relative to the build context

    @property
    def config(self) -> ProjectConfig:
        return self.loaded.config

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def stage(self) -> str:
        """The id of this environment's Stage: its stacks' paths start with it."""
        return naming.cdk_stage(self.project, self.name)

    @property
    def selector(self) -> str:
        """The `cdk deploy|diff|list` pattern of every stack of this environment."""
        return naming.cdk_selector(self.project, self.name)

    def prefix(self, *parts: str) -> str:
        """`<project>-<env>-<parts>`: names of resources that exist once per environment."""
        return _prefix(self.project, self.name, *parts)

    def drift_alarm_name(self, model: ModelConfig, env: str | None = None) -> str:
        """The drift alarm of `model` in environment `env` (this one by default)."""
        return _prefix(self.project, env or self.name, model.name, "drift")

    def later_drift_alarms(self, model: ModelConfig, partition: str) -> list[str]:
        """ARNs of `model`'s drift alarms in the other AWS environments, which forward them
        to the home environment's event bus."""
        return [f"arn:{partition}:cloudwatch:{e.region}:{e.account}:alarm:"
                f"{self.drift_alarm_name(model, name)}"
                for name, e in self.config.environments.items()
                if e.cloud == "aws" and name != self.name]

    def zone_bucket(self, zone: str) -> str:
        return naming.zone_bucket(self.project, zone, self.account, self.region)

    @property
    def artifacts_bucket(self) -> str:
        return naming.artifacts_bucket(self.project, self.account, self.region)

    @property
    def logs_bucket(self) -> str:
        return naming.logs_bucket(self.project, self.account, self.region)

    @property
    def database(self) -> str:
        return naming.glue_database(self.project)

    def package_group(self, model: ModelConfig) -> str:
        return naming.model_package_group(self.project, model.name)

    def endpoint(self, model: ModelConfig) -> str:
        return endpoint_name(self.project, model.name)

    @property
    def home(self) -> str:
        """The environment that hosts delivery and the model registry (`cicd.environment`,
        else the first AWS one): later environments serve the versions approved there."""
        return naming.home_environment(self.config)

    @property
    def home_account(self) -> str:
        return str(self.config.environments[self.home].account)

    @property
    def home_region(self) -> str:
        return self.config.environments[self.home].region

    @property
    def other_accounts(self) -> list[str]:
        """AWS accounts of the other environments (readers of this one's registry)."""
        mine = {self.account}
        return sorted({str(e.account) for e in self.config.environments.values()
                       if e.cloud == "aws" and str(e.account) not in mine})

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "environment": self.name, "managed-by": "mlops-kit"}


def _prefix(project: str, env: str, *parts: str) -> str:
    return "-".join([project, env.replace("_", "-"), *parts])


def env_settings(config_path: Path, env: str, root: Path) -> EnvSettings:
    """The settings of environment `env`; ConfigError if it is missing or not on AWS."""
    loaded = load_config(config_path, env=env)
    environment = loaded.environment
    assert environment is not None
    if environment.cloud != "aws":
        raise ConfigError(f"{config_path}: environments.{env}: cloud is {environment.cloud}; "
                          "the CDK app deploys aws environments (use pulumi for the others)")
    relative = in_context(loaded, root, loaded.path)
    return EnvSettings(loaded, env, str(environment.account), environment.region, relative)
