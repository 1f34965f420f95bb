"""Build the app's stages from the context (`env`, `config`, `releases`)."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import App, Aspects
from cdk_nag import AwsSolutionsChecks

from mlops_cdk.endpoint import Release
from mlops_cdk.nag import suppress
from mlops_cdk.settings import aws_environments, env_settings
from mlops_cdk.stage import MlopsStage
from mlops_kit.config import ConfigError


def build(app: App, root: Path) -> list[MlopsStage]:
    """A stage for `-c env=NAME`, or for every AWS environment; cdk-nag on all of them."""
    config = root / str(app.node.try_get_context("config") or "mlops.yaml")
    wanted = app.node.try_get_context("env")
    names = [wanted] if wanted else aws_environments(config)
    if not names:
        raise ConfigError(f"{config}: no aws environment to deploy (environments: ...)")
    releases = read_releases(app.node.try_get_context("releases"))
    stages = [MlopsStage(app, settings=env_settings(config, name, root), root=root,
                         releases=releases.get(name, {})) for name in names]
    for stage in stages:
        suppress(stage)
        Aspects.of(stage).add(AwsSolutionsChecks(verbose=True))
    return stages


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
