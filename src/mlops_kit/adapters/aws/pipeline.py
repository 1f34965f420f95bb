"""The SageMaker Pipeline definition of the cloud-neutral pipeline DAG.

Each step becomes a processing or training job running the project image with
`python -m mlops_kit.runtime.job <step>`, so SageMaker runs the same step code as
`mlops-kit run`. Every output goes to the artifacts bucket under the execution id, so the next
steps read this run's data only; the job entry copies the outputs the DAG publishes into their
lake zone (partition by partition, where the Glue tables point) and puts the `online_store`
output into the Feature Group's online store (one PutRecord per entity). Before `register`, a
condition step reads the gate decision from evaluate's `evaluation.json`; a failed gate ends the
execution in a Fail step with the reason, and nothing is registered.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from mlops_kit.adapters.aws.naming import FEATURE_STORE_SCHEME
from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import FileSource
from mlops_kit.pipeline import EXTERNAL, Pipeline, Step

VERSION = "2020-12-01"
GATE_STEP, FAIL_STEP = "quality-gate", "gate-failed"
EVALUATION_FILE = "EvaluationReport"
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}


@dataclass(frozen=True)
class PipelineSettings:
    """What the definition needs from the infrastructure (CDK tokens are fine as values)."""

    name: str
    env: str
    role_arn: str
    image_uri: str
    artifacts_uri: str  # s3://<artifacts bucket>/<prefix>
    zone_uris: dict[str, str]  # lake zone -> s3://<zone bucket>
    landing_uri: str  # where new source files arrive (ingest's `source` channel)
    kms_key_id: str
    feature_group: str  # the Feature Group whose online store gets `online_store` outputs
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    volume_gb: int = 30
    max_runtime_s: int = 4 * 3600
    cache_days: int = 30
    tags: dict[str, str] = field(default_factory=dict)


def render(loaded: LoadedConfig, pipeline: Pipeline, settings: PipelineSettings) -> dict[str, Any]:
    """The pipeline definition (a JSON-able dict) for the config's model."""
    model = loaded.config.model.name
    steps = []
    for step in pipeline.steps:
        job = _job_step(loaded, pipeline, step, settings, model)
        if step.name == "register":
            steps.append(_gate(job, settings))
        else:
            steps.append(job)
    return {
        "Version": VERSION,
        "Metadata": {"Project": loaded.config.project, "Model": model, "Dag": pipeline.name},
        "Parameters": [
            {"Name": "SourceUri", "Type": "String", "DefaultValue": settings.landing_uri},
            {"Name": "IngestDate", "Type": "String", "DefaultValue": ""},  # empty: today
        ],
        "PipelineExperimentConfig": {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        },
        "Steps": steps,
    }


def render_json(loaded: LoadedConfig, pipeline: Pipeline, settings: PipelineSettings) -> str:
    return json.dumps(render(loaded, pipeline, settings), sort_keys=True)


def _job_step(loaded: LoadedConfig, pipeline: Pipeline, step: Step, settings: PipelineSettings,
              model: str) -> dict[str, Any]:
    kind = step.spec.kind
    args = _container_args(step, settings, model, loaded.config.image.config_path)
    files = isinstance(loaded.config.data.source, FileSource)
    out: dict[str, Any] = {
        "Name": step.name,
        "Type": "Processing" if kind == "processing" else "Training",
        "Arguments": (_processing(step, pipeline, settings, args, files) if kind == "processing"
                      else _training(step, pipeline, settings, args)),
    }
    if step.reusable:  # a cache hit skips the job: never for a step with side effects
        out["CacheConfig"] = {"Enabled": True, "ExpireAfter": f"P{settings.cache_days}D"}
    if step.name == "evaluate":
        out["PropertyFiles"] = [{"PropertyFileName": EVALUATION_FILE,
                                 "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    return out


def _container_args(step: Step, settings: PipelineSettings, model: str,
                    config_path: str) -> list[Any]:
    args: list[Any] = ["python", "-m", "mlops_kit.runtime.job", step.name, "--config", config_path,
            "--env", settings.env, "--model", model, "--set", "registry.backend=sagemaker"]
    for name, output in step.outputs.items():  # the job entry publishes after the step
        if output.publish is not None:
            args += ["--publish", f"{name}={settings.zone_uris[output.publish]}"]
        if output.online_store:
            args += ["--publish", f"{name}={FEATURE_STORE_SCHEME}{settings.feature_group}"]
    if not step.upstream:  # a source step ingests the date the execution names
        args += ["--param", {"Std:Join": {"On": "=", "Values": [
            "ingest_date", {"Get": "Parameters.IngestDate"}]}}]
    if step.name == "register":  # the package serves with the project image; lineage
        args += ["--set", f"serving.image={settings.image_uri}",
                 "--param", {"Std:Join": {"On": "=", "Values": ["run_id", EXECUTION_ID]}}]
    return args


def _processing(step: Step, pipeline: Pipeline, settings: PipelineSettings,
                args: list[Any], files: bool) -> dict[str, Any]:
    # every upstream step is an input's property reference: SageMaker orders by those
    inputs = [_s3_input(ch, _source_uri(src, pipeline)) for ch, src in step.inputs.items()
              if src not in EXTERNAL]
    if step.name == "ingest" and files:
        inputs.append(_s3_input("source", {"Get": "Parameters.SourceUri"}))
    outputs = [{
        "OutputName": name,
        "AppManaged": False,
        "S3Output": {"S3Uri": _output_uri(step, name, settings),
                     "LocalPath": f"/opt/ml/processing/output/{name}",
                     "S3UploadMode": "EndOfJob"},
    } for name in step.outputs]
    return {
        "ProcessingResources": {"ClusterConfig": {
            "InstanceType": settings.processing_instance_type, "InstanceCount": 1,
            "VolumeSizeInGB": settings.volume_gb, "VolumeKmsKeyId": settings.kms_key_id}},
        "AppSpecification": {"ImageUri": settings.image_uri, "ContainerEntrypoint": args[:3],
                             "ContainerArguments": args[3:]},
        "RoleArn": settings.role_arn,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs, "KmsKeyId": settings.kms_key_id},
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_s},
    }


def _training(step: Step, pipeline: Pipeline, settings: PipelineSettings,
              args: list[Any]) -> dict[str, Any]:
    channels = [{
        "ChannelName": ch,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                        "S3Uri": _source_uri(src, pipeline),
                                        "S3DataDistributionType": "FullyReplicated"}},
        "InputMode": "File",
    } for ch, src in step.inputs.items() if src not in EXTERNAL]
    return {
        "AlgorithmSpecification": {"TrainingImage": settings.image_uri,
                                   "TrainingInputMode": "File",
                                   "ContainerEntrypoint": args[:3],
                                   "ContainerArguments": args[3:]},
        "OutputDataConfig": {"S3OutputPath": _join(settings.artifacts_uri, step.name),
                             "KmsKeyId": settings.kms_key_id},
        "ResourceConfig": {"InstanceType": settings.training_instance_type, "InstanceCount": 1,
                           "VolumeSizeInGB": settings.volume_gb,
                           "VolumeKmsKeyId": settings.kms_key_id},
        "RoleArn": settings.role_arn,
        "InputDataConfig": channels,
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_s},
        "EnableInterContainerTrafficEncryption": True,
    }


def _s3_input(channel: str, uri: Any) -> dict[str, Any]:
    return {"InputName": channel, "AppManaged": False, "S3Input": {
        "S3Uri": uri, "LocalPath": f"/opt/ml/processing/input/{channel}",
        "S3DataType": "S3Prefix", "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}


def _source_uri(source: str, pipeline: Pipeline) -> dict[str, Any]:
    """A property reference to the upstream output `step.output`."""
    name, output = source.split(".", 1)
    if pipeline.step(name).spec.kind == "training":
        return {"Get": f"Steps.{name}.ModelArtifacts.S3ModelArtifacts"}
    return {"Get": f"Steps.{name}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"}


def _output_uri(step: Step, name: str, settings: PipelineSettings) -> Any:
    """Every output goes to the artifacts bucket under the execution id: the next steps read
    this run's data only. The job entry copies published ones into their lake zone."""
    return {"Std:Join": {"On": "/", "Values": [
        settings.artifacts_uri, EXECUTION_ID, step.name, name]}}


def _gate(register: dict[str, Any], settings: PipelineSettings) -> dict[str, Any]:
    """Register only if evaluate's gate passed; otherwise fail with the reasons."""
    passed = {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.evaluate.PropertyFiles."
                                                      f"{EVALUATION_FILE}"},
                              "Path": "passed"}}
    fail = {"Name": FAIL_STEP, "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
        "On": " ", "Values": ["quality gate failed; see", {"Get": (
            "Steps.evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri")},
            "evaluation.json"]}}}}
    register = {k: v for k, v in register.items() if k != "CacheConfig"}
    return {"Name": GATE_STEP, "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": passed, "RightValue": True}],
        "IfSteps": [register], "ElseSteps": [fail]}}


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


# --- reading a definition back ------------------------------------------------------------

EXECUTION_VARIABLES = {"PipelineExecutionId", "PipelineExecutionArn", "PipelineName",
                       "PipelineArn", "CurrentDateTime", "StartDateTime"}
JOB_REQUESTS = {"Processing": ("CreateProcessingJob", "ProcessingJobName"),
                "Training": ("CreateTrainingJob", "TrainingJobName")}


def check(definition: dict[str, Any]) -> list[str]:
    """Problems SageMaker would refuse the definition for (empty: none found).

    Job arguments are validated against botocore's model of the API request they become;
    every reference must name a declared parameter, an execution variable, a property file or
    a step that runs before the one referring to it.
    """
    problems: list[str] = []
    if definition.get("Version") != VERSION:
        problems.append(f"Version must be {VERSION!r}")
    params = {p["Name"] for p in definition.get("Parameters", [])}
    flat = list(_flatten(definition.get("Steps", [])))
    names = [s.get("Name") for s in flat]
    problems += [f"duplicate step name {n!r}" for n in sorted({n for n in names
                                                                 if names.count(n) > 1})]
    files = {(s["Name"], f["PropertyFileName"]) for s in flat for f in s.get("PropertyFiles", [])}
    order = _order(flat, problems)
    for step in flat:
        problems += _check_step(step, params, files, order)
    return problems


def _flatten(steps: list[dict[str, Any]]) -> Any:
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            args = step.get("Arguments", {})
            yield from _flatten(args.get("IfSteps", []) + args.get("ElseSteps", []))


def _order(flat: list[dict[str, Any]], problems: list[str]) -> dict[str, int]:
    """Topological rank of each step from DependsOn, property references and conditions."""
    edges = {s["Name"]: set(s.get("DependsOn", [])) | _step_refs(s) for s in flat}
    for s in flat:
        if s.get("Type") == "Condition":
            args = s["Arguments"]
            for child in args.get("IfSteps", []) + args.get("ElseSteps", []):
                edges[child["Name"]].add(s["Name"])
    rank: dict[str, int] = {}
    while len(rank) < len(edges):
        ready = [n for n, deps in edges.items() if n not in rank and deps <= set(rank)]
        if not ready:
            unknown = {d for deps in edges.values() for d in deps} - set(edges)
            problems.append(f"steps reference unknown steps {sorted(unknown)}" if unknown else
                            f"cycle among steps {sorted(set(edges) - set(rank))}")
            return rank
        rank.update({n: len(rank) for n in ready})
    return rank


def _step_refs(value: Any) -> set[str]:
    return {ref.split(".")[1] for ref in _refs(value) if ref.startswith("Steps.")}


def _refs(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            yield value["Get"]
            return
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _check_step(step: dict[str, Any], params: set[str], files: set[tuple[str, str]],
                order: dict[str, int]) -> list[str]:
    name, problems = step.get("Name", "?"), []
    args = step.get("Arguments", {})
    for ref in _refs(args if step.get("Type") != "Condition" else args.get("Conditions")):
        kind, _, rest = ref.partition(".")
        head = rest.split(".")[0]
        if kind == "Parameters" and head not in params:
            problems.append(f"{name}: unknown parameter {head!r}")
        elif kind == "Execution" and head not in EXECUTION_VARIABLES:
            problems.append(f"{name}: unknown execution variable {head!r}")
        elif kind == "Steps" and head in order and order[head] >= order.get(name, -1):
            problems.append(f"{name}: refers to {head!r}, which does not run before it")
        elif kind == "Steps" and ".PropertyFiles." in ref and \
                (head, ref.rsplit(".", 1)[1]) not in files:
            problems.append(f"{name}: unknown property file in {ref!r}")
        elif kind not in ("Parameters", "Execution", "Steps"):
            problems.append(f"{name}: unknown reference {ref!r}")
    if step.get("Type") in JOB_REQUESTS:
        problems += _check_request(step)
    return problems


@functools.cache
def _request_shape(operation: str) -> Any:
    """botocore's input shape of a SageMaker operation (loading the model takes ~70 ms)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker") \
        .operation_model(operation).input_shape


def _check_request(step: dict[str, Any]) -> list[str]:
    """The step's arguments, placeholders filled in, against botocore's request shape."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import ParamValidator

    operation, name_field = JOB_REQUESTS[step["Type"]]
    request = {**_placeholders(step["Arguments"]), name_field: "job"}
    report = ParamValidator().validate(request, _request_shape(operation))
    if report.has_errors():
        return [f"{step['Name']}: {ParamValidationError(report=report.generate_report())}"]
    return []


TOKEN_PLACEHOLDER = "arn:aws:placeholder:us-east-1:000000000000:resolved-at-deploy-time"


def _placeholders(value: Any) -> Any:
    """Runtime expressions, and values resolved at deploy time (CDK's `${Token[...]}`),
    replaced by a string of the kind they resolve to."""
    if isinstance(value, str) and "${Token[" in value:
        return TOKEN_PLACEHOLDER
    if isinstance(value, dict):
        if value.keys() & {"Get", "Std:Join", "Std:JsonGet"}:
            return "s3://placeholder/value"
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value
