"""Vertex AI Pipelines on this machine: a PipelineJob request executed as Vertex executes it.

What it reads is the request Vertex receives (the body the schedule, the push trigger and the
drift monitor POST: the compiled KFP v2 spec inline in `pipelineSpec`, and `runtimeConfig`),
never the DAG. What it does, per the Vertex AI and KFP v2 documentation:
- the request must parse as an `aiplatform_v1.PipelineJob` (unknown fields are refused); the
  run gets a job id `<pipeline name>-<YYYYMMDDhhmmss>` and a uuid; its parameters are
  `runtimeConfig.parameterValues` over the spec's defaults (unknown, missing or mistyped ones
  refused); its root is `runtimeConfig.gcsOutputDirectory`, else the spec's
  `defaultPipelineRoot`;
- a task runs once the tasks it depends on (`dependentTasks`, the producers of its inputs)
  have succeeded; after a failure, tasks that do not depend on it still run (Vertex's default
  fail-slow policy), the others never start, and the job fails;
- an importer task makes an artifact of its URI (`reimport: false` reuses the artifact ML
  Metadata already holds for that URI, `true` records a new one);
- a container task gets new output artifacts at
  `<root>/<project number>/<job id>/<task>_<task id>/<output>` (the launcher creates their
  parent folders); its `command` + `args` run with KFP's placeholders resolved: an artifact's
  `.path` is its Cloud Storage FUSE path (`gs://b/o` -> `/gcs/b/o`, `fuse_path`, the one place
  of that mapping), `.uri` its URI, parameters their values, and the job name, job uuid, task
  name, ... theirs. A placeholder it does not know is an error, as is a write to a bucket that
  does not exist;
- a task with `cachingOptions.enableCache` is skipped (state SKIPPED, the earlier execution's
  output artifacts) when an earlier successful execution of the pipeline has the same cache
  key, which is KFP's (`backend/src/v2/cacheutils`): the input artifacts' identities, the input
  parameter values, the output artifact types, the image, command and args (placeholders
  unresolved) and env. Without caching, a task is neither looked up nor recorded.
Each container runs in a `container.Sandbox` with the image's environment, the executor's
`env` and what the harness adds (`sitehook`), with Cloud Storage (a folder per bucket) at
`/gcs`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cloudsim.container import Image, Sandbox

FUSE = "/gcs"
PROJECT_NUMBER = "123456789012"
_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")
_IO = re.compile(r"\{\{\$\.(inputs|outputs)\.(artifacts|parameters)\['([^']+)'\](?:\.(\w+))?\}\}")
_TYPES = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": (int, float),
          "BOOLEAN": bool, "LIST": list, "STRUCT": dict}


def fuse_path(uri: str) -> str:
    """Where a job sees a Cloud Storage object: `gs://<bucket>/<object>` -> `/gcs/...`."""
    if not uri.startswith("gs://"):
        raise ValueError(f"{uri!r} is not a Cloud Storage URI: Vertex mounts gs:// only")
    return f"{FUSE}/{uri.removeprefix('gs://')}"


@dataclass(frozen=True)
class Artifact:
    """An artifact as ML Metadata records it: its identity (`name`), URI and type."""

    name: str
    uri: str
    schema: str


@dataclass
class TaskRun:
    """One task of a run: its state, what it was given and what it printed."""

    name: str
    state: str = "PENDING"
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Artifact] = field(default_factory=dict)
    outputs: dict[str, Artifact] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    cache_key: str = ""
    output: str = ""
    error: str = ""


@dataclass
class PipelineRun:
    name: str
    uuid: str
    parameters: dict[str, Any]
    root: str
    state: str = "PIPELINE_STATE_RUNNING"
    tasks: dict[str, TaskRun] = field(default_factory=dict)

    @property
    def error(self) -> str:
        return "\n".join(f"{t.name}: {t.error}" for t in self.tasks.values() if t.error)


class Vertex:
    """Vertex AI Pipelines of one project and region: its ML Metadata (artifacts, cache),
    the Cloud Storage its jobs see (`gcs`: a folder per bucket), the image they run."""

    def __init__(self, *, gcs: Path, image: Image, sandbox: Sandbox, job_env: dict[str, str],
                 location: str) -> None:
        self.gcs, self.image, self.sandbox, self.job_env = gcs, image, sandbox, job_env
        self.location = location
        self.by_uri: dict[str, Artifact] = {}
        self.cache: dict[tuple[str, str], TaskRun] = {}
        self.runs: list[PipelineRun] = []
        self._ids = itertools.count(1000)

    # --- a run -------------------------------------------------------------------------------

    def create_pipeline_job(self, request: dict[str, Any]) -> PipelineRun:
        """Run the PipelineJob `request` to its end; the run, as its details would show it."""
        from google.cloud.aiplatform_v1 import types

        types.PipelineJob.from_json(json.dumps(request))  # the API refuses unknown fields
        spec, config = request["pipelineSpec"], request.get("runtimeConfig", {})
        if config.get("parameters"):
            raise ValueError("runtimeConfig.parameters is for schema 2.0.0 specs: use "
                             "parameterValues")
        run = PipelineRun(self._job_id(spec["pipelineInfo"]["name"]), str(uuid.uuid4()),
                          parameters(spec, config.get("parameterValues", {})),
                          config.get("gcsOutputDirectory") or spec["defaultPipelineRoot"])
        self.runs.append(run)
        tasks = spec["root"]["dag"]["tasks"]
        run.tasks = {name: TaskRun(name) for name in tasks}
        for name in order(tasks):
            if all(run.tasks[d].state in ("SUCCEEDED", "SKIPPED") for d in depends(tasks[name])):
                self._task(spec, run, name)
        failed = any(t.state != "SUCCEEDED" and t.state != "SKIPPED" for t in run.tasks.values())
        run.state = "PIPELINE_STATE_FAILED" if failed else "PIPELINE_STATE_SUCCEEDED"
        return run

    def _job_id(self, pipeline: str) -> str:
        """`<pipeline>-<UTC timestamp>`, as Vertex names a job submitted without an id (one a
        second: two jobs of the same second would collide, so this waits a second)."""
        stamp = dt.datetime.now(dt.UTC)
        while True:
            name = f"{pipeline}-{stamp:%Y%m%d%H%M%S}"
            if all(r.name != name for r in self.runs):
                return name
            stamp += dt.timedelta(seconds=1)

    # --- a task ------------------------------------------------------------------------------

    def _task(self, spec: dict[str, Any], run: PipelineRun, name: str) -> None:
        task, record = spec["root"]["dag"]["tasks"][name], run.tasks[name]
        component = spec["components"][task["componentRef"]["name"]]
        executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
        try:
            record.parameters = {k: self._parameter(v, run, name)
                                 for k, v in task.get("inputs", {}).get("parameters", {}).items()}
            record.inputs = {k: self._artifact(v, run)
                             for k, v in task.get("inputs", {}).get("artifacts", {}).items()}
            check_inputs(component, record)
            if "importer" in executor:
                self._import(executor["importer"], record)
            else:
                self._container(spec, run, task, component, executor["container"], record)
        except (KeyError, ValueError) as exc:
            record.state, record.error = "FAILED", f"{type(exc).__name__}: {exc}"

    def _parameter(self, given: dict[str, Any], run: PipelineRun, task: str) -> Any:
        if "componentInputParameter" in given:
            return run.parameters[given["componentInputParameter"]]
        if "runtimeValue" in given:
            value = given["runtimeValue"]["constant"]
            return self._resolve(value, run, task) if isinstance(value, str) else value
        raise ValueError(f"input parameter {given}: a kind this harness does not run")

    @staticmethod
    def _artifact(given: dict[str, Any], run: PipelineRun) -> Artifact:
        source = given["taskOutputArtifact"]
        return run.tasks[source["producerTask"]].outputs[source["outputArtifactKey"]]

    def _import(self, importer: dict[str, Any], record: TaskRun) -> None:
        uri_of = importer["artifactUri"]
        uri = record.parameters[uri_of["runtimeParameter"]] if "runtimeParameter" in uri_of \
            else uri_of["constant"]
        schema = importer["typeSchema"]["schemaTitle"]
        found = self.by_uri.get(uri)
        if importer.get("reimport") or found is None:
            found = self.by_uri[uri] = Artifact(self._new_id(), uri, schema)
        record.outputs, record.state = {"artifact": found}, "SUCCEEDED"

    def _container(self, spec: dict[str, Any], run: PipelineRun, task: dict[str, Any],
                   component: dict[str, Any], container: dict[str, Any],
                   record: TaskRun) -> None:
        outputs = component.get("outputDefinitions", {})
        if outputs.get("parameters"):
            raise ValueError("output parameters: not run by this harness")
        if task.get("cachingOptions", {}).get("enableCache"):
            record.cache_key = cache_key(record, outputs.get("artifacts", {}), container)
            hit = self.cache.get((spec["pipelineInfo"]["name"], record.cache_key))
            if hit is not None:
                record.outputs, record.state, record.output = hit.outputs, "SKIPPED", hit.output
                return
        folder = f"{run.root}/{PROJECT_NUMBER}/{run.name}/{record.name}_{self._new_id()}"
        record.outputs = {key: Artifact(self._new_id(), f"{folder}/{key}",
                                        out["artifactType"]["schemaTitle"])
                          for key, out in outputs.get("artifacts", {}).items()}
        for artifact in record.outputs.values():  # the launcher makes the parent folders
            self.host_path(artifact.uri).parent.mkdir(parents=True, exist_ok=True)
        record.argv = [self._resolve(a, run, record.name, record)
                       for a in [*container.get("command", []), *container.get("args", [])]]
        self._execute(record, container)
        if record.state == "SUCCEEDED" and record.cache_key:
            self.cache[(spec["pipelineInfo"]["name"], record.cache_key)] = record

    def _execute(self, record: TaskRun, container: dict[str, Any]) -> None:
        buckets = set(self._buckets())
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        done = self.sandbox.run(
            record.argv, mounts={FUSE: self.gcs, **self.image.mounts()},
            env={**self.image.env, **env, **self.job_env}, cwd=self.image.workdir, check=False)
        record.output = done.stdout
        made = sorted(set(self._buckets()) - buckets)
        if done.returncode != 0:
            record.state = "FAILED"
            record.error = f"exited {done.returncode}: {done.stderr[-4000:]}"
        elif made:
            record.state, record.error = "FAILED", f"no such buckets: {made} (FUSE cannot " \
                "create a bucket)"
        else:
            record.state = "SUCCEEDED"

    # --- placeholders and paths ---------------------------------------------------------------

    def _resolve(self, text: str, run: PipelineRun, task: str,
                 record: TaskRun | None = None) -> str:
        """`text` with every KFP placeholder replaced by its value in this task."""
        values = {"{{$.pipeline_job_name}}": run.name, "{{$.pipeline_job_uuid}}": run.uuid,
                  "{{$.pipeline_job_resource_name}}":
                      f"{self.location}/pipelineJobs/{run.name}",
                  "{{$.pipeline_task_name}}": task, "{{$.pipeline_root}}": run.root}

        def sub(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole in values:
                return values[whole]
            io = _IO.fullmatch(whole)
            if io is None or record is None:
                raise ValueError(f"placeholder {whole} in {text!r}: not one Vertex resolves here")
            side, kind, key, attr = io.groups()
            if kind == "parameters" and side == "inputs" and attr is None:
                value = record.parameters[key]
                return value if isinstance(value, str) else json.dumps(value)
            artifact = (record.inputs if side == "inputs" else record.outputs).get(key)
            if kind != "artifacts" or artifact is None or attr not in ("path", "uri"):
                raise ValueError(f"placeholder {whole}: no such {side[:-1]} {kind[:-1]}")
            return fuse_path(artifact.uri) if attr == "path" else artifact.uri

        return _PLACEHOLDER.sub(sub, text)

    def host_path(self, uri: str) -> Path:
        """The folder on this machine that holds a Cloud Storage object."""
        return self.gcs / fuse_path(uri).removeprefix(f"{FUSE}/")

    def _buckets(self) -> list[str]:
        return [p.name for p in self.gcs.iterdir()]

    def _new_id(self) -> str:
        return str(next(self._ids))


def parameters(spec: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters: `given` over the spec's defaults, each of its declared type."""
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"runtimeConfig.parameterValues {unknown}: not inputs of the pipeline")
    out = {}
    for name, definition in declared.items():
        if name in given:
            out[name] = given[name]
        elif "defaultValue" in definition:
            out[name] = definition["defaultValue"]
        elif not definition.get("isOptional"):
            raise ValueError(f"pipeline input {name!r} has no default and no value")
        if name in out and not isinstance(out[name], _TYPES[definition["parameterType"]]):
            raise ValueError(f"pipeline input {name!r}: {out[name]!r} is not "
                             f"{definition['parameterType']}")
    return out


def depends(task: dict[str, Any]) -> set[str]:
    """The tasks a task waits for: `dependentTasks` and the producers of its inputs."""
    ins = task.get("inputs", {})
    producers = {a["taskOutputArtifact"]["producerTask"]
                 for a in ins.get("artifacts", {}).values() if "taskOutputArtifact" in a}
    producers |= {p["taskOutputParameter"]["producerTask"]
                  for p in ins.get("parameters", {}).values() if "taskOutputParameter" in p}
    return set(task.get("dependentTasks", [])) | producers


def order(tasks: dict[str, Any]) -> list[str]:
    """Task names so that each comes after every task it depends on."""
    done: list[str] = []
    while len(done) < len(tasks):
        ready = sorted(n for n in tasks if n not in done and depends(tasks[n]) <= set(done))
        if not ready:
            raise ValueError(f"cycle or unknown task among {sorted(set(tasks) - set(done))}")
        done += ready
    return done


def check_inputs(component: dict[str, Any], record: TaskRun) -> None:
    """Every input the component declares and does not mark optional is given."""
    declared = component.get("inputDefinitions", {})
    for kind, given in (("parameters", record.parameters), ("artifacts", record.inputs)):
        for name, definition in declared.get(kind, {}).items():
            if name not in given and not definition.get("isOptional"):
                raise ValueError(f"input {kind[:-1]} {name!r} of {record.name} is not given")


def cache_key(record: TaskRun, outputs: dict[str, Any], container: dict[str, Any]) -> str:
    """KFP's execution cache fingerprint (sha256 of the cache key as JSON)."""
    key = {
        "inputArtifactNames": {k: {"artifactNames": [a.name]} for k, a in record.inputs.items()},
        "inputParameterValues": record.parameters,
        "outputArtifactsSpec": {k: {"type": o["artifactType"]} for k, o in outputs.items()},
        "outputParametersSpec": {},
        "containerSpec": {"image": container["image"],
                          "cmdArgs": [*container.get("command", []), *container.get("args", [])],
                          "env": container.get("env", [])},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
