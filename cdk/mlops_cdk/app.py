"""Build the app's stages from the context (`env`, `config`, `releases`)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from aws_cdk import App, Aspects, Environment, Stage, Tags
from cdk_nag import AwsSolutionsChecks

from mlops_cdk.cicd import CicdStack
from mlops_cdk.endpoint import Release
from mlops_cdk.nag import suppress
from mlops_cdk.settings import EnvSettings, env_settings
from mlops_cdk.stage import MlopsStage
from mlops_kit.adapters.aws import naming, rules
from mlops_kit.adapters.rules import message
from mlops_kit.config import ConfigError, load_config


def build(app: App, root: Path) -> list[Stage]:
    """A stage for `-c env=NAME`, or for every AWS environment, plus the delivery stack in
    the home environment; cdk-nag on all of them."""
    config = root / str(app.node.try_get_context("config") or "mlops.yaml")
    base = load_config(config).config
    every = [n for n, e in base.environments.items() if e.cloud == "aws"]
    if not every:
        raise ConfigError(f"{config}: environments: no aws environment to deploy; add one "
                          "(cloud: aws, account, region)")
    wanted = app.node.try_get_context("env")
    names = [wanted] if wanted else every

    @functools.cache
    def settings(name: str) -> EnvSettings:  # each environment's config is loaded once
        return env_settings(config, name, root)

    problems = [p for name in names for p in rules.problems(settings(name).loaded)]
    if problems:  # the rules `mlops-kit validate` runs, before any construct exists
        raise ConfigError(message(list(dict.fromkeys(problems))))
    releases = read_releases(app.node.try_get_context("releases"))
    stages: list[Stage] = [MlopsStage(app, settings=settings(name), root=root,
                                      releases=releases.get(name, {})) for name in names]
    home = naming.home_environment(base)
    if home in names and delivery_configured(settings(home)):
        order = settings(home).config.cicd.stages or [n for n in every if n != home]
        stages.append(delivery_stage(app, settings(home), [settings(n) for n in order]))
    for stage in stages:
        suppress(stage)
        Aspects.of(stage).add(AwsSolutionsChecks(verbose=True))
    return stages


def cdk_context(root: Path) -> dict[str, object]:
    """The context of `cdk.json` (feature flags): what the CLI gives the app."""
    return dict(json.loads((root / "cdk.json").read_text()).get("context", {}))


def delivery_configured(home: EnvSettings) -> bool:
    cicd = home.config.cicd
    return cicd.repository is not None and (
        cicd.source == "codecommit" or cicd.connection_arn is not None)


def delivery_stage(app: App, home: EnvSettings, order: list[EnvSettings]) -> Stage:
    """`<project>-cicd`: the pipelines, in the home environment's account and region. Deployed
    by hand (`cdk deploy -c env=<home> '<project>-cicd/*'`), never by the pipelines themselves."""
    env = Environment(account=home.account, region=home.region)
    stage = Stage(app, naming.cdk_stage(home.project), env=env)
    CicdStack(stage, "delivery", home=home, stack_name=f"{home.project}-cicd", stages=order,
              env=env)
    Tags.of(stage).add("project", home.project)
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
