"""Build the app's stages from the context (`env`, `config`, `releases`)."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import App, Aspects, Environment, Stage, Tags
from cdk_nag import AwsSolutionsChecks

from mlops_cdk.cicd import CicdStack
from mlops_cdk.endpoint import Release
from mlops_cdk.nag import suppress
from mlops_cdk.settings import aws_environments, env_settings
from mlops_cdk.stage import MlopsStage
from mlops_kit.adapters.aws import naming
from mlops_kit.config import ConfigError, load_config


def build(app: App, root: Path) -> list[Stage]:
    """A stage for `-c env=NAME`, or for every AWS environment, plus the delivery stack in
    the home environment; cdk-nag on all of them."""
    config = root / str(app.node.try_get_context("config") or "mlops.yaml")
    every = aws_environments(config)
    if not every:
        raise ConfigError(f"{config}: environments: no aws environment to deploy; add one "
                          "(cloud: aws, account, region)")
    shared = naming.shared_targets(load_config(config).config)
    if shared:
        raise ConfigError(f"{config}: environments {shared[0][0]} and {shared[0][1]} are on the "
                          "same AWS account and region: their buckets, endpoints and pipelines "
                          "would collide; give each its own account or region")
    wanted = app.node.try_get_context("env")
    names = [wanted] if wanted else every
    releases = read_releases(app.node.try_get_context("releases"))
    stages: list[Stage] = [MlopsStage(app, settings=env_settings(config, name, root), root=root,
                                      releases=releases.get(name, {})) for name in names]
    home = env_settings(config, every[0], root).home
    if home in names and delivery_configured(config, home, root):
        stages.append(delivery_stage(app, config, home, every, root))
    for stage in stages:
        suppress(stage)
        Aspects.of(stage).add(AwsSolutionsChecks(verbose=True))
    return stages


def cdk_context(root: Path) -> dict[str, object]:
    """The context of `cdk.json` (feature flags): what the CLI gives the app."""
    return dict(json.loads((root / "cdk.json").read_text()).get("context", {}))


def delivery_configured(config: Path, home: str, root: Path) -> bool:
    cicd = env_settings(config, home, root).config.cicd
    return cicd.repository is not None and (
        cicd.source == "codecommit" or cicd.connection_arn is not None)


def delivery_stage(app: App, config: Path, home: str, every: list[str], root: Path) -> Stage:
    """`<project>-cicd`: the pipelines, in the home environment's account and region."""
    settings = env_settings(config, home, root)
    order = settings.config.cicd.stages or [n for n in every if n != home]
    env = Environment(account=settings.account, region=settings.region)
    stage = Stage(app, f"{settings.project}-cicd", env=env)
    CicdStack(stage, "delivery", home=settings, stack_name=f"{settings.project}-cicd",
              stages=[env_settings(config, n, root) for n in order], env=env)
    Tags.of(stage).add("project", settings.project)
    return stage


def read_releases(path: str | None) -> dict[str, dict[str, Release]]:
    """`{env: {model: Release}}` from the releases file (empty without one)."""
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text())
        return {env: {model: Release(**release) for model, release in models.items()}
                for env, models in raw.items()}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"releases file {path}: {exc} (expected {{env: {{model: "
                          "{package_arn, baseline_uri?, shadow_package_arn?}}}})") from None
