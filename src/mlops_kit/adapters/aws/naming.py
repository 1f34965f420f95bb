"""Names of the AWS resources derived from the config; the CDK app uses the same functions."""

from __future__ import annotations

import re
import shlex

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import ProjectConfig

DEFAULT_TARGET = ("123456789012", "us-east-1")
_PACKAGE_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


LAKE_ZONES = ("raw", "curated", "quarantine", "features")
# `--publish online=featurestore://<feature group>`: the job entry puts the output's
# `latest.parquet` into that Feature Group's online store
FEATURE_STORE_SCHEME = "featurestore://"


def zone_bucket(project: str, zone: str, account: str, region: str) -> str:
    """The lake bucket of one zone (raw, curated, quarantine, features): one bucket per zone,
    so that access, retention and lifecycle rules differ by zone."""
    if zone not in LAKE_ZONES:
        raise ValueError(f"unknown lake zone {zone!r}; zones are {LAKE_ZONES}")
    return _bucket(f"{project}-{zone}-{account}-{region}")


def logs_bucket(project: str, account: str, region: str) -> str:
    """The bucket that receives the other buckets' server access logs."""
    return _bucket(f"{project}-access-logs-{account}-{region}")


def artifacts_bucket(project: str, account: str, region: str) -> str:
    """The artifacts bucket (models, step outputs): `<project>-artifacts-<account>-<region>`."""
    return _bucket(f"{project}-artifacts-{account}-{region}")


def glue_database(project: str) -> str:
    """The Glue database of the project's lake tables (Glue names take '_', not '-')."""
    return project.replace("-", "_")


def model_package_group(project: str, model: str) -> str:
    """The SageMaker model package group of `model`; ValueError if SageMaker would refuse it."""
    name = f"{project}-{model}"
    if len(name) > 63 or not _PACKAGE_GROUP.match(name):  # the pattern alone lets '-' through
        raise ValueError(
            f"model package group name {name!r} is not valid for SageMaker: it must match "
            f"{_PACKAGE_GROUP.pattern} (letters, digits and hyphens, at most 63 characters)"
        )
    return name


def cdk_stage(project: str, env: str | None = None) -> str:
    """The CDK Stage of environment `env` (`<project>-<env>`, '_' as '-'), or of the delivery
    pipelines (`<project>-cicd`) without one: the first part of its stacks' paths."""
    return f"{project}-{env.replace('_', '-')}" if env else f"{project}-cicd"


def cdk_selector(project: str, env: str | None = None) -> str:
    """The `cdk deploy|diff|list` pattern of every stack in that Stage. The CLI's `--all`
    takes top-level stacks only (aws-cdk #16865), and every stack of the app sits in a Stage."""
    return f"{cdk_stage(project, env)}/*"


def cdk_deploy(cli: str, project: str, env: str, *context: str) -> str:
    """`<cli> deploy` of every stack of `env`'s Stage (its selector: `--all` selects no stack
    inside a Stage), synthesizing only that environment; `context`: more `-c KEY=VALUE`."""
    flags = " ".join(f"-c {pair}" for pair in (f"env={env}", *context))
    return (f"{cli} deploy --require-approval never {flags} "
            f"{shlex.quote(cdk_selector(project, env))}")


def feature_group(project: str, env: str, group: str) -> str:
    """The environment's Feature Group: `<project>-<env>-<features.group>` with '-' for '_',
    clipped to SageMaker's 64 characters (never ending in '-', which SageMaker refuses)."""
    name = "-".join([project, env, group]).replace("_", "-")
    return name[:64].rstrip("-")


def home_environment(config: ProjectConfig) -> str:
    """The AWS environment that runs delivery and holds the registry later ones serve from:
    `cicd.environment`, else the first AWS environment (ValueError if there is none)."""
    if config.cicd.environment:
        return config.cicd.environment
    for name, env in config.environments.items():
        if env.cloud == "aws":
            return name
    raise ValueError("no aws environment in the config")


def shared_targets(config: ProjectConfig) -> list[tuple[str, str]]:
    """Pairs of AWS environments on the same account and region (their names would collide)."""
    seen: dict[tuple[str, str], str] = {}
    pairs = []
    for name, env in config.environments.items():
        if env.cloud == "aws":
            key = (str(env.account), env.region)
            if key in seen:
                pairs.append((seen[key], name))
            seen.setdefault(key, name)
    return pairs


def aws_target(loaded: LoadedConfig) -> tuple[str, str]:
    """(account, region): the selected environment's, else the first AWS one, else a default."""
    env = loaded.environment
    if env is not None:
        if env.cloud != "aws":
            raise ValueError(f"environment {loaded.env!r} targets {env.cloud}, not aws")
        return str(env.account), env.region
    for candidate in loaded.config.environments.values():
        if candidate.cloud == "aws":
            return str(candidate.account), candidate.region
    return DEFAULT_TARGET


def _bucket(name: str) -> str:
    """`name` if it is a valid S3 bucket name; ValueError otherwise."""
    if not _BUCKET.match(name) or ".." in name:
        raise ValueError(
            f"S3 bucket name {name!r} is not valid: 3-63 lower-case letters, digits, '.' or '-' "
            "(shorten the project name)"
        )
    return name
