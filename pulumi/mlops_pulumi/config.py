"""The stack's settings: which `mlops.yaml` environment it is, read once into the typed config.

A stack file carries only `mlops:environment` (and optionally `mlops:config`, the path of the
project config relative to the repository root). Everything else comes from `mlops.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_kit.adapters.rules import Problem, message, weekly_monitor_schedule
from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.config.model import Environment
from mlops_kit.pipeline import Pipeline, load_pipeline

CLOUDS = ("azure", "gcp")


class StackError(Exception):
    """The stack cannot be built from this config; the message says what to fix."""


@dataclass(frozen=True)
class Stack:
    """One environment of the project: its typed config, DAG and cloud identity."""

    loaded: LoadedConfig
    pipeline: Pipeline

    @property
    def env_name(self) -> str:
        return str(self.loaded.env)

    @property
    def environment(self) -> Environment:
        env = self.loaded.environment
        assert env is not None  # load_stack always selects one
        return env

    @property
    def project(self) -> str:
        return self.loaded.config.project

    def lake_zones(self) -> tuple[str, ...]:
        """raw/curated/quarantine plus every zone the pipeline publishes to."""
        published = {o.publish for s in self.pipeline.steps for o in s.outputs.values()
                     if o.publish}
        return tuple(sorted(published | {"raw", "curated", "quarantine"}))

    def tags(self) -> dict[str, str]:
        """The tags (Azure) or labels (GCP) every resource carries."""
        return {"project": self.project, "environment": self.env_name.replace("_", "-"),
                "managed-by": "pulumi"}


def refuse(problems: list[Problem]) -> None:
    """StackError listing `problems` (one line each, as `mlops-kit validate` prints them)."""
    if problems:
        raise StackError(message(problems))


def monitor_schedule(stack: Stack) -> str:
    """`monitoring.schedule`, refused unless weekly (`rules.weekly_monitor_schedule`)."""
    refuse(weekly_monitor_schedule(stack.loaded))
    return stack.loaded.config.monitoring.schedule


def load_stack(environment: str | None, config_path: str | Path) -> Stack:
    """Load `config_path` with `environment`'s overrides; StackError unless it is azure or gcp."""
    if not environment:
        raise StackError("the stack has no 'mlops:environment': run "
                         "`pulumi config set mlops:environment <name>` with a name from mlops.yaml")
    try:
        loaded = load_config(config_path, env=environment)
        pipeline = load_pipeline(loaded)
    except ConfigError as exc:
        raise StackError(str(exc)) from None
    env = loaded.environment
    assert env is not None
    if env.cloud not in CLOUDS:
        raise StackError(f"environment {environment!r} targets {env.cloud}; this program "
                         f"deploys {' or '.join(CLOUDS)} (use the CDK app for aws)")
    return Stack(loaded, pipeline)


def from_pulumi(root: Path) -> Stack:
    """The stack of the running `pulumi up`: `mlops:environment`, `mlops:config` (mlops.yaml)."""
    import pulumi

    cfg = pulumi.Config("mlops")
    return load_stack(cfg.get("environment"), root / (cfg.get("config") or "mlops.yaml"))
