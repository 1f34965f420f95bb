"""What `cdk synth` and `cdk deploy` would refuse in an AWS environment's config.

The CDK app runs `problems` for every environment it builds before it creates a construct, and
`mlops-kit validate` runs the same rules (`adapters/checks.py`). Pure: importing this needs
neither aws-cdk-lib nor Node; the pipeline definition check reads botocore's request models.
"""

from __future__ import annotations

import dataclasses
import json

from mlops_kit.adapters.aws import naming
from mlops_kit.adapters.aws.cron import aws_cron, monitor_cron
from mlops_kit.adapters.aws.pipeline import PipelineSettings, check, render
from mlops_kit.adapters.rules import (
    Problem,
    Rule,
    capture_retention,
    image_dockerfile,
    pipeline_file,
    problem,
    run,
    time_zone,
)
from mlops_kit.config import ConfigError, LoadedConfig
from mlops_kit.pipeline import load_pipeline

# What the definition check puts where the CDK puts its tokens (role, image, key).
PLACEHOLDER_ARN = "arn:aws:iam::000000000000:role/resolved-at-deploy"
PLACEHOLDER_IMAGE = "000000000000.dkr.ecr.us-east-1.amazonaws.com/image:resolved-at-deploy"


def _model_field(loaded: LoadedConfig, index: int) -> str:
    return f"models[{index}].name" if loaded.config.models else "model.name"


def buckets(loaded: LoadedConfig) -> list[Problem]:
    """S3 bucket names (a bucket per lake zone, artifacts, access logs) fit S3's rules:
    3-63 lower-case letters, digits, '.' and '-'; the project name is the part to shorten."""
    account, region = naming.aws_target(loaded)
    project = loaded.config.project
    try:
        for zone in naming.LAKE_ZONES:
            naming.zone_bucket(project, zone, account, region)
        naming.artifacts_bucket(project, account, region)
        naming.logs_bucket(project, account, region)
    except ValueError as exc:
        return [problem(loaded, "project", f"project {project!r}: {exc}")]
    return []


def package_groups(loaded: LoadedConfig) -> list[Problem]:
    """Each model's package group (also its pipeline and endpoint name) fits SageMaker's
    `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`."""
    out = []
    for i, model in enumerate(loaded.config.all_models):
        try:
            naming.model_package_group(loaded.config.project, model.name)
        except ValueError as exc:
            field = _model_field(loaded, i)
            out.append(problem(loaded, field, f"{field} {model.name!r}: {exc}; shorten the "
                               "project or the model name"))
    return out


def training_schedule(loaded: LoadedConfig) -> list[Problem]:
    """`training.schedule` is a cron EventBridge Scheduler can express."""
    expr = loaded.config.training.schedule
    if expr is None:
        return []
    try:
        aws_cron(expr)
    except ValueError as exc:
        return [problem(loaded, "training.schedule", f"training.schedule: {exc}")]
    return []


def schedule_time_zone(loaded: LoadedConfig) -> list[Problem]:
    """`training.time_zone` is an IANA zone when there is a training schedule (EventBridge
    Scheduler's ScheduleExpressionTimezone)."""
    return time_zone(loaded) if loaded.config.training.schedule else []


def monitor_schedule(loaded: LoadedConfig) -> list[Problem]:
    """`monitoring.schedule` is hourly or daily: the only schedules Model Monitor takes (the
    data quality schedule of every endpoint with a training baseline)."""
    try:
        monitor_cron(loaded.config.monitoring.schedule)
    except ValueError as exc:
        return [problem(loaded, "monitoring.schedule",
                        f"{exc}; set monitoring.schedule to one of them")]
    return []


def lake_zones(loaded: LoadedConfig) -> list[Problem]:
    """The pipeline publishes only to the zones the AWS lake has a bucket for."""
    try:
        pipeline = load_pipeline(loaded)
    except ConfigError:
        return []  # pipeline_file reports it
    return [Problem(str(pipeline.path), "pipeline", (
        f"steps[{i}] ({step.name}): outputs.{name}.publish {output.publish!r}: the AWS lake has "
        f"a bucket per zone {', '.join(naming.LAKE_ZONES)}; publish to one of them"))
        for i, step in enumerate(pipeline.steps) for name, output in step.outputs.items()
        if output.publish is not None and output.publish not in naming.LAKE_ZONES]


def pipeline_definition(loaded: LoadedConfig) -> list[Problem]:
    """Each model's SageMaker pipeline definition passes `pipeline.check`: job arguments
    against botocore's request models (instance types, volume size, run time), references
    between steps in order. Infrastructure values are placeholders, as CDK tokens are there."""
    try:
        pipeline = load_pipeline(loaded)
    except ConfigError:
        return []  # pipeline_file reports it
    if lake_zones(loaded):
        return []  # the definition cannot name that zone's bucket
    out = []
    for model in loaded.config.all_models:
        one = dataclasses.replace(loaded, config=loaded.config.for_model(model.name))
        found = check(json.loads(json.dumps(render(one, pipeline, _settings(one)))))
        if found:
            out.append(problem(loaded, "training", f"training: the SageMaker pipeline "
                               f"definition of {model.name} would be refused: "
                               + "; ".join(found)))
    return out


def _settings(loaded: LoadedConfig) -> PipelineSettings:
    """What the CDK app passes to the renderer, with placeholders for what it resolves."""
    config, training = loaded.config, loaded.config.training
    uri = f"s3://{config.project}-bucket"
    return PipelineSettings(
        name=f"{config.project}-{config.model.name}", env=str(loaded.env),
        role_arn=PLACEHOLDER_ARN, image_uri=PLACEHOLDER_IMAGE,
        artifacts_uri=f"{uri}/pipelines/{config.model.name}",
        zone_uris={zone: f"{uri}/{zone}" for zone in naming.LAKE_ZONES},
        landing_uri=f"{uri}/landing/", kms_key_id=PLACEHOLDER_ARN,
        feature_group=f"{config.project}-features",
        processing_instance_type=training.processing_instance_type,
        training_instance_type=training.instance_type, volume_gb=training.volume_gb,
        max_runtime_s=training.max_runtime_s)


def shared_targets(loaded: LoadedConfig) -> list[Problem]:
    """No two AWS environments share an account and region: their buckets, endpoints and
    pipelines would have the same names."""
    return [Problem(str(loaded.path), "environments", (
        f"environments {a} and {b} are on the same AWS account and region: their buckets, "
        "endpoints and pipelines would collide; give each its own account or region"))
        for a, b in naming.shared_targets(loaded.config)]


# The rules of one environment; then those across the file's AWS environments.
ENVIRONMENT_RULES: tuple[Rule, ...] = (
    pipeline_file, buckets, package_groups, training_schedule, schedule_time_zone,
    monitor_schedule, lake_zones, pipeline_definition, capture_retention, image_dockerfile)
FILE_RULES: tuple[Rule, ...] = (shared_targets,)


def problems(loaded: LoadedConfig) -> list[Problem]:
    """What the CDK app refuses for `loaded.env`, an AWS environment (loaded with its
    overrides): its own rules and the file's."""
    return run((*ENVIRONMENT_RULES, *FILE_RULES), loaded)
