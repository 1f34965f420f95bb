"""What `pulumi up` would refuse in an Azure environment's config.

The Pulumi program runs `problems` before it registers a resource (`mlops_pulumi.config.refuse`)
and `mlops-kit validate` runs the same rules (`adapters/checks.py`). Pure: no Azure SDK.
"""

from __future__ import annotations

import re
from collections import defaultdict

from mlops_kit.adapters.azure import autoscale, naming
from mlops_kit.adapters.rules import (
    Problem,
    Rule,
    capture_retention,
    listing,
    pipeline_file,
    problem,
    run,
    weekly_monitor_schedule,
)
from mlops_kit.config import LoadedConfig
from mlops_kit.config.instances import azure_instance_type

# Azure ML workspaces (the feature store is one): 3-33 letters, digits, '-' and '_', a letter
# or digit first (the workspaces API's name pattern).
WORKSPACE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")
# Names Azure makes unique across all subscriptions: (what, naming.compact suffix, limit).
GLOBAL_NAMES = (("lake storage account", "lake", 24), ("workspace storage account", "ws", 24),
                ("key vault", "kv", 24), ("container registry", "acr", 50))


def schedule_time_zone(loaded: LoadedConfig) -> list[Problem]:
    """`training.time_zone` has a Windows name: Azure ML schedules (training, drift monitor)
    take Windows zones, and only the zones of `naming.WINDOWS_TIME_ZONES` are mapped."""
    try:
        naming.windows_time_zone(loaded.config.training.time_zone)
    except ValueError as exc:
        return [problem(loaded, "training.time_zone", str(exc))]
    return []


def scaling_floors(loaded: LoadedConfig) -> list[Problem]:
    """Scheduled floors become recurring autoscale profiles: their zone needs a Windows name,
    and a setting holds at most `autoscale.MAX_PROFILES` profiles (the default one too)."""
    scaling, field = loaded.config.serving.scaling, "serving.scaling.scheduled"
    if not scaling.scheduled:
        return []
    out = []
    try:
        naming.windows_time_zone(scaling.schedule_time_zone, "serving.scaling.schedule_time_zone")
    except ValueError as exc:
        out.append(problem(loaded, "serving.scaling.schedule_time_zone", str(exc)))
    if len(scaling.scheduled) >= autoscale.MAX_PROFILES:
        out.append(problem(loaded, field, (
            f"{field}: {len(scaling.scheduled)} floors, but an Azure autoscale setting holds "
            f"at most {autoscale.MAX_PROFILES} profiles (the default one included); keep at "
            f"most {autoscale.MAX_PROFILES - 1} floors (merge those with the same minimum)")))
    return out


def workspace_names(loaded: LoadedConfig) -> list[Problem]:
    """The workspace and the feature store (`<project>-<env>-ws`, `-fs`) fit the workspace
    name rule (then the resource group and Log Analytics names, which may be longer, fit)."""
    config, env = loaded.config, str(loaded.env)
    name = naming.workspace(config.project, env)
    if WORKSPACE.match(name):
        return []
    return [problem(loaded, "project", (
        f"project {config.project!r}: the Azure ML workspace name {name!r} (and the feature "
        f"store's) must be 3-33 letters, digits, '-' or '_'; shorten the project or the "
        f"environment name ({len(name)} characters)"))]


# An Azure VM size: `Standard_` then the series and size (Standard_DS3_v2, Standard_F4s_v2).
VM_SIZE = re.compile(r"Standard_[A-Z]+[0-9]+[a-z]*(-[0-9]+[a-z]*)?(_[A-Za-z0-9]+)*")


def deployment_instance_type(loaded: LoadedConfig) -> list[Problem]:
    """A model pinned in `azure.deploy_versions` is deployed on a SKU: `azure.instance_type`,
    or the one `serving.instance_type` maps to."""
    if not loaded.config.azure.deploy_versions:
        return []
    try:
        azure_instance_type(loaded.config)
    except ValueError as exc:
        return [problem(loaded, "serving.instance_type", str(exc))]
    return []


def vm_sizes(loaded: LoadedConfig) -> list[Problem]:
    """`azure.instance_type` and `azure.training_vm_size` name Azure VM sizes, which Azure ML
    refuses at `pulumi up` otherwise."""
    azure = loaded.config.azure
    return [problem(loaded, field, f"{field} {value!r} is not an Azure VM size; give "
                    "one such as Standard_DS3_v2 or Standard_F4s_v2 (case matters)")
            for field, value in (("azure.instance_type", azure.instance_type),
                                 ("azure.training_vm_size", azure.training_vm_size))
            if value is not None and not VM_SIZE.fullmatch(value)]


def global_names(loaded: LoadedConfig) -> list[Problem]:
    """No two Azure environments get the same globally unique name (storage accounts, key
    vault, container registry): `naming.compact` keeps letters and digits and clips, so a long
    project name, or environments differing only in '_' or in their tail, would collide."""
    config, out = loaded.config, []
    envs = [n for n, e in config.environments.items() if e.cloud == "azure"]
    for what, suffix, limit in GLOBAL_NAMES:
        owners: dict[str, list[str]] = defaultdict(list)
        for env in envs:
            owners[naming.compact(config.project, env, suffix, limit)].append(env)
        out += [Problem(str(loaded.path), "environments", (
            f"environments {listing(same)}: the same Azure {what} name {name!r} (names "
            f"keep letters and digits, at most {limit}); shorten the project name or make the "
            "environment names differ early"))
            for name, same in owners.items() if len(same) > 1]
    return out


def endpoint_names(loaded: LoadedConfig) -> list[Problem]:
    """Online endpoint names are unique in an Azure region (their scoring URI is
    `<name>.<region>.inference.ml.azure.com`): no two models of the Azure environments of one
    region may get the same one after `naming.endpoint` clips it to 32 characters."""
    config, owners = loaded.config, defaultdict(list)
    for env, e in config.environments.items():
        if e.cloud == "azure":
            for model in config.all_models:
                owners[(e.region, naming.endpoint(config.project, env, model.name))].append(
                    f"{model.name} in {env}")
    return [Problem(str(loaded.path), "environments", (
        f"the Azure online endpoint name {name!r} in {region} would serve "
        f"{listing(same)}; shorten the project or the model names"))
        for (region, name), same in owners.items() if len(same) > 1]


# The rules of one environment; then those across the file's Azure environments.
ENVIRONMENT_RULES: tuple[Rule, ...] = (
    pipeline_file, schedule_time_zone, scaling_floors, workspace_names,
    deployment_instance_type, vm_sizes, weekly_monitor_schedule, capture_retention)
FILE_RULES: tuple[Rule, ...] = (global_names, endpoint_names)


def problems(loaded: LoadedConfig) -> list[Problem]:
    """What the Pulumi program refuses for `loaded.env`, an Azure environment (loaded with its
    overrides): its own rules and the file's."""
    return run((*ENVIRONMENT_RULES, *FILE_RULES), loaded)
