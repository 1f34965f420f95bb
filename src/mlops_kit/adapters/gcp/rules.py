"""What `pulumi up` would refuse in a Google Cloud environment's config.

The Pulumi program runs `problems` before it registers a resource (`mlops_pulumi.config.refuse`)
and `mlops-kit validate` runs the same rules (`adapters/checks.py`). Pure: neither the Google
SDK nor kfp is imported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp.autoscale import scaling
from mlops_kit.adapters.gcp.machines import machine_resources
from mlops_kit.adapters.rules import (
    Problem,
    Rule,
    capture_retention,
    listing,
    pipeline_file,
    problem,
    run,
    time_zone,
    weekly_monitor_schedule,
)
from mlops_kit.config import LoadedConfig
from mlops_kit.config.instances import gcp_machine_type

ONLINE_ID_MAX = 60  # Vertex AI feature online store and feature view ids: [a-z0-9_], <= 60
ONLINE_SUFFIXES = ("_online", "_latest")  # the online store's and the feature view's


def training_machine(loaded: LoadedConfig) -> list[Problem]:
    """`gcp.training_machine_type` and `gcp.monitoring_machine_type` are predefined types
    (the training step's CPU and memory limits are read from the name)."""
    gcp = loaded.config.gcp
    out = []
    for field, value in (("gcp.training_machine_type", gcp.training_machine_type),
                         ("gcp.monitoring_machine_type", gcp.monitoring_machine_type)):
        try:
            machine_resources(value, field)
        except ValueError as exc:
            out.append(problem(loaded, field, str(exc)))
    return out


def serving_machine(loaded: LoadedConfig) -> list[Problem]:
    """The Vertex deployment pools have a predefined machine: `gcp.machine_type`, or the one
    `serving.instance_type` maps to."""
    try:
        machine_resources(gcp_machine_type(loaded.config), "gcp.machine_type")
    except ValueError as exc:
        field = "gcp.machine_type" if loaded.config.gcp.machine_type else "serving.instance_type"
        return [problem(loaded, field, str(exc))]
    return []


def cpu_target(loaded: LoadedConfig) -> list[Problem]:
    """A CPU target-tracking `serving.scaling.target_value` is a percentage (Vertex's
    utilization target)."""
    try:
        scaling(loaded.config.serving, loaded.config.gcp)
    except ValueError as exc:
        return [problem(loaded, "serving.scaling.target_value", str(exc))]
    return []


def feature_store_ids(loaded: LoadedConfig) -> list[Problem]:
    """The online store and feature view ids (`<features.group>_online`, `_latest`) fit
    Vertex AI's 60 characters."""
    group = loaded.config.features.group
    longest = max(len(group.replace("-", "_") + s) for s in ONLINE_SUFFIXES)
    if longest <= ONLINE_ID_MAX:
        return []
    return [problem(loaded, "features.group", (
        f"features.group {group!r}: the Vertex AI feature online store and view ids add "
        f"'_online' and '_latest' and may have at most {ONLINE_ID_MAX} characters; use at "
        f"most {ONLINE_ID_MAX - max(map(len, ONLINE_SUFFIXES))} characters"))]


def model_ids(loaded: LoadedConfig) -> list[Problem]:
    """No two models get the same Vertex model id or deployment resource pool: both are
    clipped to 63 characters, so long names sharing a start would collide."""
    config, env, out = loaded.config, str(loaded.env), []
    names: dict[str, Callable[[str], str]] = {
        "Vertex model id": lambda m: naming.vertex_model_id(config.project, m),
        "deployment resource pool": lambda m: naming.resource_pool(config.project, env, m)}
    for what, name_of in names.items():
        owners: dict[str, list[str]] = defaultdict(list)
        for model in config.all_models:
            owners[name_of(model.name)].append(model.name)
        out += [problem(loaded, "models", (
            f"models {listing(same)}: the same {what} {name!r} (clipped to 63 "
            "characters); make the model names differ early or shorten the project name"))
            for name, same in owners.items() if len(same) > 1]
    return out


def shared_projects(loaded: LoadedConfig) -> list[Problem]:
    """No two Google Cloud environments share a project: their service accounts, feature
    store and schedules have the same names there."""
    seen: dict[str, str] = {}
    out = []
    for name, env in loaded.config.environments.items():
        project = str(env.project)
        if env.cloud != "gcp":
            continue
        if project in seen:
            out.append(Problem(str(loaded.path), "environments", (
                f"environments {seen[project]} and {name} are in the same Google Cloud "
                f"project {project!r}: their service accounts, feature store and "
                "schedules would collide; give each its own project")))
        seen.setdefault(project, name)
    return out


# The rules of one environment; then those across the file's Google Cloud environments.
ENVIRONMENT_RULES: tuple[Rule, ...] = (
    pipeline_file, time_zone, training_machine, serving_machine, cpu_target,
    feature_store_ids, model_ids, weekly_monitor_schedule, capture_retention)
FILE_RULES: tuple[Rule, ...] = (shared_projects,)


def problems(loaded: LoadedConfig) -> list[Problem]:
    """What the Pulumi program refuses for `loaded.env`, a Google Cloud environment (loaded
    with its overrides): its own rules and the file's."""
    return run((*ENVIRONMENT_RULES, *FILE_RULES), loaded)
