"""SageMaker Pipelines on this machine: a pipeline definition executed as SageMaker executes it.

What it reads is the definition the CloudFormation template carries (resolved as deployed, see
`cfn.py`), never the DAG. What it does, per the SageMaker documentation:
- steps run once everything they reference (`Get: Steps.X...`, `DependsOn`, the condition
  step above them) has succeeded; a Condition step runs its `IfSteps` or its `ElseSteps`, the
  other branch never runs; a Fail step ends the execution as Failed with its message;
- `Get`, `Std:Join` and `Std:JsonGet` (a PropertyFile: a JSON file in a step's output) are
  evaluated at run time, parameters from the start request over their defaults;
- a processing job gets each `S3Prefix` input by copying every object whose key starts with
  the prefix (a prefix, not a folder) to its `LocalPath`, and its outputs are uploaded from
  their `LocalPath` to their `S3Uri` at the end of the job (`EndOfJob`); a training job gets its
  channels under `/opt/ml/input/data/<channel>`, and `/opt/ml/model` is uploaded as
  `<S3OutputPath>/<job>/output/model.tar.gz` (its `ModelArtifacts.S3ModelArtifacts`);
- a step with `CacheConfig.Enabled` reuses a previous successful run whose cache key
  attributes are equal (processing: AppSpecification, Environment, ProcessingInputs; training:
  AlgorithmSpecification, Environment, HyperParameters, InputDataConfig, ...), within
  `ExpireAfter`.
Object storage is moto's S3 (a server on loopback, so each job, a separate process, reaches
it); each job runs the definition's entrypoint and arguments in a container (`container.py`)
with the image's environment, the step's `Environment`, and the region and credentials
SageMaker gives a job's role.
"""

from __future__ import annotations

import json
import re
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cloudsim.container import Image, Sandbox

CACHE_KEYS = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": ("AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig",
                 "DebugRuleConfigurations", "Environment", "HyperParameters",
                 "InputDataConfig"),
}
_SEGMENT = re.compile(r"(\w+)(?:\['([^']+)'\]|\[(\d+)\])?")


@dataclass
class StepRun:
    """One step of an execution: its status, what it was given and what it reports."""

    name: str
    type: str
    status: str = "NotStarted"
    arguments: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    cache_hit: bool = False
    failure: str = ""
    output: str = ""


@dataclass
class Execution:
    id: str
    parameters: dict[str, str]
    status: str = "Executing"
    failure: str = ""
    steps: dict[str, StepRun] = field(default_factory=dict)


class SageMakerPipeline:
    """One pipeline definition; `start()` runs an execution to its end."""

    def __init__(self, definition: dict[str, Any], *, name: str, s3: Any, image: Image,
                 sandbox: Sandbox, job_env: dict[str, str]) -> None:
        self.definition, self.name = definition, name
        self.s3, self.image, self.sandbox, self.job_env = s3, image, sandbox, job_env
        self.steps = {s["Name"]: s for s in _flatten(definition["Steps"])}
        self.cache: dict[str, StepRun] = {}
        self.executions: list[Execution] = []

    def start(self, parameters: dict[str, str] | None = None) -> Execution:
        defaults = {p["Name"]: p.get("DefaultValue", "") for p in self.definition["Parameters"]}
        unknown = set(parameters or {}) - set(defaults)
        if unknown:
            raise ValueError(f"unknown pipeline parameters {sorted(unknown)}")
        run = Execution(uuid.uuid4().hex[:12], {**defaults, **(parameters or {})})
        self.executions.append(run)
        skipped: set[str] = set()
        for name in self._order():
            step = self.steps[name]
            if name in skipped or run.status == "Failed":  # another branch, or after a failure
                run.steps[name] = StepRun(name, step["Type"], status="NotExecuted")
                continue
            record = self._run_step(step, run, skipped)
            run.steps[name] = record
            if record.status == "Failed":
                run.status, run.failure = "Failed", record.failure
        run.status = "Failed" if run.status == "Failed" else "Succeeded"
        return run

    # --- order -------------------------------------------------------------------------------

    def _order(self) -> list[str]:
        """Steps in an order where each comes after every step it depends on."""
        deps = {n: set(s.get("DependsOn", [])) | _step_refs(s.get("Arguments", {}))
                for n, s in self.steps.items()}
        for name, step in self.steps.items():
            if step["Type"] == "Condition":
                for child in _branches(step):
                    deps[child["Name"]].add(name)
        done: list[str] = []
        while len(done) < len(deps):
            ready = sorted(n for n, d in deps.items() if n not in done and d <= set(done))
            if not ready:
                raise ValueError(f"cycle or unknown step among {sorted(set(deps) - set(done))}")
            done += ready
        return done

    # --- one step ----------------------------------------------------------------------------

    def _run_step(self, step: dict[str, Any], run: Execution, skipped: set[str]) -> StepRun:
        kind = step["Type"]
        record = StepRun(step["Name"], kind)
        if kind == "Condition":
            outcome = all(self._condition(c, run) for c in step["Arguments"]["Conditions"])
            record.properties = {"Outcome": outcome}
            branch = "ElseSteps" if outcome else "IfSteps"
            skipped |= {s["Name"] for s in _flatten(step["Arguments"].get(branch, []))}
            record.status = "Succeeded"
            return record
        if kind == "Fail":
            record.status = "Failed"
            record.failure = str(self.evaluate(step["Arguments"]["ErrorMessage"], run))
            return record
        record.arguments = self.evaluate(step["Arguments"], run)
        key = self._cache_key(step, record.arguments)
        if key and key in self.cache:
            hit = self.cache[key]
            record.properties, record.status, record.cache_hit = hit.properties, "Succeeded", True
            return record
        job = f"pipelines-{run.id}-{step['Name']}-{uuid.uuid4().hex[:6]}"
        runner = self._processing if kind == "Processing" else self._training
        record.properties, record.status, record.output, record.failure = runner(
            job, record.arguments)
        if record.status == "Succeeded" and key:
            self.cache[key] = record
        return record

    def _cache_key(self, step: dict[str, Any], arguments: dict[str, Any]) -> str | None:
        if not step.get("CacheConfig", {}).get("Enabled"):
            return None
        picked = {k: arguments.get(k) for k in CACHE_KEYS[step["Type"]]}
        return json.dumps({"step": step["Name"], "type": step["Type"], **picked},
                          sort_keys=True)

    def _processing(self, job: str, args: dict[str, Any]) -> tuple[dict[str, Any], str, str,
                                                                    str]:
        work = self.sandbox.folder / "jobs" / job
        mounts: dict[str, Path] = {}
        for item in args.get("ProcessingInputs", []):
            s3in = item["S3Input"]
            local = work / "in" / item["InputName"]
            self._download_prefix(s3in["S3Uri"], local)
            mounts[s3in["LocalPath"]] = local
        outputs = args["ProcessingOutputConfig"]["Outputs"]
        for item in outputs:
            local = work / "out" / item["OutputName"]
            local.mkdir(parents=True)
            mounts[item["S3Output"]["LocalPath"]] = local
        spec = args["AppSpecification"]
        done = self._container(spec["ContainerEntrypoint"] + spec.get("ContainerArguments", []),
                               mounts, args.get("Environment", {}), {"PROCESSING_JOB_NAME": job})
        properties = {**args, "ProcessingJobName": job,
                      "ProcessingJobStatus": "Completed" if done[0] == 0 else "Failed"}
        if done[0] != 0:
            return properties, "Failed", done[1], f"ClientError: job {job} failed: {done[1]}"
        for item in outputs:
            self._upload(work / "out" / item["OutputName"], item["S3Output"]["S3Uri"])
        return properties, "Succeeded", done[1], ""

    def _training(self, job: str, args: dict[str, Any]) -> tuple[dict[str, Any], str, str,
                                                                  str]:
        work = self.sandbox.folder / "jobs" / job
        mounts: dict[str, Path] = {}
        for channel in args.get("InputDataConfig", []):
            local = work / "data" / channel["ChannelName"]
            self._download_prefix(channel["DataSource"]["S3DataSource"]["S3Uri"], local)
            mounts[f"/opt/ml/input/data/{channel['ChannelName']}"] = local
        for sub in ("model", "output"):
            (work / sub).mkdir(parents=True, exist_ok=True)
            mounts[f"/opt/ml/{sub}"] = work / sub
        spec = args["AlgorithmSpecification"]
        done = self._container(spec["ContainerEntrypoint"] + spec.get("ContainerArguments", []),
                               mounts, args.get("Environment", {}), {"TRAINING_JOB_NAME": job})
        if done[0] != 0:
            return {**args, "TrainingJobName": job}, "Failed", done[1], \
                f"AlgorithmError: job {job} failed: {done[1]}"
        tarball = work / "model.tar.gz"
        with tarfile.open(tarball, "w:gz") as tar:
            for path in sorted((work / "model").rglob("*")):
                tar.add(path, arcname=path.relative_to(work / "model").as_posix(),
                        recursive=False)
        uri = f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
        bucket, key = _split(uri)
        self.s3.upload_file(str(tarball), bucket, key)
        return ({**args, "TrainingJobName": job, "TrainingJobStatus": "Completed",
                 "ModelArtifacts": {"S3ModelArtifacts": uri}}, "Succeeded", done[1], "")

    def _container(self, argv: list[str], mounts: dict[str, Path], step_env: dict[str, str],
                   job_env: dict[str, str]) -> tuple[int, str]:
        env = {**self.image.env, **self.job_env, **step_env, **job_env}
        done = self.sandbox.run(argv, mounts={**self.image.mounts(), **mounts}, env=env,
                                cwd=self.image.workdir, check=False)
        return done.returncode, (done.stdout + done.stderr)[-6000:]

    # --- S3 ----------------------------------------------------------------------------------

    def _download_prefix(self, uri: str, dest: Path) -> None:
        """Every object whose key starts with the URI's key prefix, as S3Prefix copies it."""
        bucket, prefix = _split(uri)
        dest.mkdir(parents=True, exist_ok=True)
        for key in self.list_keys(bucket, prefix):
            rel = _relative(key, prefix)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, key, str(target))

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def _upload(self, local: Path, uri: str) -> None:
        bucket, prefix = _split(uri)
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}"
            self.s3.upload_file(str(path), bucket, key)

    # --- expressions -------------------------------------------------------------------------

    def evaluate(self, value: Any, run: Execution) -> Any:
        if isinstance(value, list):
            return [self.evaluate(v, run) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self._get(value["Get"], run)
        if "Std:Join" in value:
            join = value["Std:Join"]
            return str(join["On"]).join(str(self.evaluate(v, run)) for v in join["Values"])
        if "Std:JsonGet" in value:
            return self._json_get(value["Std:JsonGet"], run)
        return {k: self.evaluate(v, run) for k, v in value.items()}

    def _get(self, path: str, run: Execution) -> Any:
        kind, _, rest = path.partition(".")
        if kind == "Parameters":
            return run.parameters[rest]
        if kind == "Execution":
            return {"PipelineExecutionId": run.id, "PipelineName": self.name,
                    "PipelineExecutionArn": f"arn:aws:sagemaker:::pipeline/{self.name}/"
                                            f"execution/{run.id}"}[rest]
        step, _, prop = rest.partition(".")
        node: Any = run.steps[step].properties
        for match in _SEGMENT.finditer(prop):
            node = node[match.group(1)]
            if match.group(2) is not None:
                node = next(o for o in node if o.get("OutputName") == match.group(2))
            elif match.group(3) is not None:
                node = node[int(match.group(3))]
        return node

    def _json_get(self, spec: dict[str, Any], run: Execution) -> Any:
        ref = spec["PropertyFile"]["Get"]  # Steps.<step>.PropertyFiles.<name>
        _, step, _, name = ref.split(".")
        declared = next(f for f in self.steps[step]["PropertyFiles"]
                        if f["PropertyFileName"] == name)
        outputs = run.steps[step].properties["ProcessingOutputConfig"]["Outputs"]
        output = next(o for o in outputs if o["OutputName"] == declared["OutputName"])
        bucket, prefix = _split(output["S3Output"]["S3Uri"])
        body = self.s3.get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/"
                                                     f"{declared['FilePath']}")["Body"].read()
        node: Any = json.loads(body)
        for part in str(spec["Path"]).split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def _condition(self, condition: dict[str, Any], run: Execution) -> bool:
        kind = condition["Type"]
        if kind == "Not":
            return not self._condition(condition["Expression"], run)
        if kind == "Or":
            return any(self._condition(c, run) for c in condition["Conditions"])
        left = self.evaluate(condition.get("LeftValue"), run)
        if kind == "In":
            return left in [self.evaluate(v, run) for v in condition["RightValue"]]
        right = self.evaluate(condition["RightValue"], run)
        compare = {"Equals": lambda a, b: a == b, "GreaterThan": lambda a, b: a > b,
                   "GreaterThanOrEqualTo": lambda a, b: a >= b,
                   "LessThan": lambda a, b: a < b, "LessThanOrEqualTo": lambda a, b: a <= b}
        return bool(compare[kind](left, right))


def _flatten(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for step in steps:
        out.append(step)
        if step.get("Type") == "Condition":
            out += _flatten(_branches(step))
    return out


def _branches(step: dict[str, Any]) -> list[dict[str, Any]]:
    args = step.get("Arguments", {})
    return list(args.get("IfSteps", [])) + list(args.get("ElseSteps", []))


def _step_refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {"Get"} and str(value["Get"]).startswith("Steps."):
            return {str(value["Get"]).split(".")[1]}
        if "PropertyFile" in value:
            return _step_refs(value["PropertyFile"])
        return set().union(*(_step_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_step_refs(v) for v in value)) if value else set()
    return set()


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _relative(key: str, prefix: str) -> str:
    """Where S3Prefix puts an object: its key below the prefix (an object named by the whole
    prefix keeps its own name; a prefix ending mid-name keeps the rest of the name)."""
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    rest = key[len(prefix):]
    if rest.startswith("/") or prefix.endswith("/") or not prefix:
        return rest.lstrip("/")
    return key[len(prefix.rsplit("/", 1)[0]) + 1:] if "/" in prefix else key
