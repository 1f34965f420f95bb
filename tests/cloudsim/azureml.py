"""Azure ML on this machine: runs a rendered CLI v2 pipeline job (what `az ml job create -f`
sends) the way the service runs it. It reads the job, never the DAG it was rendered from.

What a submission does, as Azure ML documents it:
- the job is first loaded with azure-ai-ml's `load_job` (the CLI's own validation);
- jobs run in the order their `${{parent.jobs.<job>.outputs.<output>}}` bindings give; a failed
  job ends the pipeline (`continue_on_step_failure: false`);
- each job runs its command component's `command` in a shell in the project image
  (`container.Image`, built from docker/Dockerfile with the GitHub workflow's build args),
  `${{inputs.x}}` / `${{outputs.y}}` replaced by the paths Azure ML mounts them at
  (`/mnt/azureml/cr/j/<job>/cap/data-capability/wd/...`), `$[[...]]` dropped when an input
  in it is unbound, and `AZUREML_RUN_ID` (the step job) / `AZUREML_ROOT_RUN_ID` (the pipeline
  job) set; pipeline inputs (`${{parent.inputs.x}}`) bind as given (an empty string: unbound,
  as azure-ai-ml drops it);
- datastores are folders (`<workspace>/datastores/<name>/`): `uri_folder` inputs are mounted
  read-only (`ro_mount`: a job that writes into one fails) or copied (`download`); outputs are
  mounted read-write at their datastore path (`rw_mount`) or written locally and uploaded after
  the job (`upload`); an output without a path is a default job output at
  `azureml://datastores/workspaceblobstore/paths/azureml/<job name>/<output>/`;
- a `custom_model` input naming a registry model version mounts that version's files;
- a component with `is_deterministic` (Azure ML's default: true) is reused instead of run when
  a job of the same component (command, environment, code, interface) succeeded before with
  the same inputs, data by PATH and literals by value, whatever the data under those paths is
  now: the job's outputs are then the earlier job's. `PipelineRun.stale` lists the reuses whose
  inputs' content had changed since, i.e. results computed from different data.

The one thing the harness adds to a job's environment (`sitehook`): the real
`AzureMLRegistry` adapter pointed at the stand-in registry clients of `azureml_registry.py`,
kept under the workspace folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_kit.fileio import digest_dir
from tests.cloudsim.azureml_registry import StandInClient, open_registry, version_folder
from tests.cloudsim.container import Image, JobFailed, Sandbox
from tests.cloudsim.project import COMMIT
from tests.cloudsim.sitehook import write_site

DEFAULT_DATASTORE = "workspaceblobstore"
DATASTORE_URI = re.compile(r"azureml://datastores/([^/]+)/paths/(.*)")
MODEL_URI = re.compile(r"azureml://registries/([^/]+)/models/([^/]+)/versions/([^/]+)")
PARENT_INPUT = re.compile(r"\$\{\{\s*parent\.inputs\.(\w+)\s*\}\}")
PARENT_OUTPUT = re.compile(r"\$\{\{\s*parent\.jobs\.(\w+)\.outputs\.(\w+)\s*\}\}")
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}")
OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]")
DATA_TYPES = ("uri_folder", "uri_file", "custom_model", "mlflow_model")


class HarnessError(AssertionError):
    """The job is one Azure ML would refuse or fail; the message says which part and why."""


@dataclass(frozen=True)
class Bound:
    """A bound input: a data URI (mounted) or a literal value."""

    kind: str   # "data" or "literal"
    value: str
    mode: str = "ro_mount"


@dataclass
class JobRun:
    """One step job of a pipeline run."""

    step: str
    name: str                               # the step job's name (Azure ML's `${{name}}`)
    inputs: dict[str, Bound]
    outputs: dict[str, str]                 # output -> datastore URI
    command: str = ""                       # as run; empty when reused
    reused: str | None = None               # the job whose results were reused
    digests: dict[str, str] = field(default_factory=dict)  # input -> content when it ran
    returncode: int = 0
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""

    def fail(self, code: int, why: str) -> JobRun:
        self.returncode, self.stderr = code, why
        return self


@dataclass
class PipelineRun:
    name: str                               # the pipeline job's name
    jobs: dict[str, JobRun] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)

    def output(self, step: str, name: str) -> str:
        return self.jobs[step].outputs[name]


def ci_image(workflow: dict[str, Any]) -> tuple[str, dict[str, str], bool]:
    """The image the workflow's train job builds (`az acr build`): its URI, its build args
    (`${{ github.sha }}` as COMMIT), and whether GIT_COMMIT had to be added (the workflow does
    not pass it)."""
    steps = workflow["jobs"]["train"]["steps"]
    run = next(s["run"] for s in steps if str(s.get("run", "")).startswith("az acr build"))
    words = shlex.split(run.replace("${{ github.sha }}", COMMIT))
    args = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--build-arg")
    registry, image = words[words.index("--registry") + 1], words[words.index("--image") + 1]
    added = "GIT_COMMIT" not in args
    args.setdefault("GIT_COMMIT", COMMIT)
    return f"{registry}.azurecr.io/{image}", args, added


class Workspace:
    """An Azure ML workspace on this machine: datastores, registries, reuse, one image."""

    def __init__(self, folder: Path, image: Image, image_uri: str) -> None:
        self.folder = folder
        self.image = image
        self.image_uri = image_uri
        self.sandbox = Sandbox(folder / "sandbox")
        self.registries = folder / "registries"
        self.site = write_site(folder / "site", "mlops_kit.adapters.azure.registry",
                               "tests.cloudsim.azureml_registry:install",
                               registries=str(self.registries))
        self.reuse: dict[str, JobRun] = {}
        self.runs: list[PipelineRun] = []

    def path(self, uri: str) -> Path:
        """The folder a datastore URI names, or a registry model version's files."""
        if match := DATASTORE_URI.fullmatch(uri):
            return self.folder / "datastores" / match.group(1) / match.group(2).strip("/")
        if match := MODEL_URI.fullmatch(uri):
            registry, asset, version = match.groups()
            try:
                return version_folder(self.registries / registry / "storage", asset, version)
            except FileNotFoundError as exc:
                raise HarnessError(f"model input {uri}: {exc}") from None
        raise HarnessError(f"{uri!r}: not an azureml://datastores/.../paths/... or registry "
                           "model URI")

    def registry(self, name: str) -> StandInClient:
        """The stand-in client of a registry, as the jobs see it."""
        return open_registry(self.registries, name)

    def submit(self, spec: dict[str, Any], inputs: dict[str, Any] | None = None,
               check: bool = True) -> PipelineRun:
        """Run the pipeline job `spec` with `inputs` set (`az ml job create --set inputs.x=v`);
        JobFailed (after recording the run) if a job fails and `check`."""
        spec = json.loads(json.dumps(spec))
        spec.setdefault("inputs", {}).update(inputs or {})
        load(spec, self.folder)
        if spec.get("type") != "pipeline" or not spec.get("jobs"):
            raise HarnessError("not a pipeline job with jobs")
        run = PipelineRun(f"{spec.get('display_name', 'pipeline')}-{uuid.uuid4().hex[:8]}")
        self.runs.append(run)
        for name in order(spec["jobs"]):
            job = self._job(run, spec, name)
            run.jobs[name] = job
            if job.returncode != 0:
                if check:
                    raise JobFailed(f"job {name} of {run.name} exited {job.returncode}\n"
                                    f"--- command\n{job.command}\n--- stdout\n"
                                    f"{job.stdout[-4000:]}\n--- stderr\n{job.stderr[-8000:]}")
                break
        return run

    def _job(self, run: PipelineRun, spec: dict[str, Any], name: str) -> JobRun:
        job = spec["jobs"][name]
        component = job.get("component")
        if job.get("type") != "command" or not isinstance(component, dict):
            raise HarnessError(f"jobs.{name}: only command jobs with an inline component run here")
        if component.get("environment") != {"image": self.image_uri}:
            raise HarnessError(f"jobs.{name}.component.environment "
                               f"{component.get('environment')!r} is not the image built "
                               f"here ({self.image_uri})")
        bound = self._inputs(run, spec, name)
        key = reuse_key(component, bound)
        earlier = self.reuse.get(key) if component.get("is_deterministic", True) else None
        if earlier is not None:
            reused = JobRun(name, earlier.name, bound, earlier.outputs, reused=earlier.name,
                            digests=earlier.digests)
            if self._digests(bound) != earlier.digests:
                run.stale.append(name)
            return reused
        job_name = f"{name}_{uuid.uuid4().hex[:10]}"
        outputs = self._outputs(job, component, name, job_name)
        done = self._execute(run, component, JobRun(name, job_name, bound, outputs), job)
        if done.returncode == 0:
            self.reuse[key] = done
        return done

    def _inputs(self, run: PipelineRun, spec: dict[str, Any], name: str) -> dict[str, Bound]:
        """The job's inputs resolved as Azure ML binds them; unbound optional ones absent."""
        declared = spec["jobs"][name]["component"].get("inputs") or {}
        given = spec["jobs"][name].get("inputs") or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise HarnessError(f"jobs.{name}.inputs {sorted(unknown)}: not inputs of its "
                               "component")
        out: dict[str, Bound] = {}
        for channel, decl in declared.items():
            value = resolve(given.get(channel), spec, run, decl)
            if value is None and not decl.get("optional"):
                raise HarnessError(f"jobs.{name}.inputs.{channel}: required and not bound")
            if value is not None:
                out[channel] = value
        return out

    def _outputs(self, job: dict[str, Any], component: dict[str, Any], name: str,
                 job_name: str) -> dict[str, str]:
        declared = component.get("outputs") or {}
        given = job.get("outputs") or {}
        if set(given) - set(declared):
            raise HarnessError(f"jobs.{name}.outputs {sorted(set(given) - set(declared))}: "
                               "not outputs of its component")
        return {ch: (given.get(ch) or {}).get("path") or
                f"azureml://datastores/{DEFAULT_DATASTORE}/paths/azureml/{job_name}/{ch}/"
                for ch in declared}

    def _execute(self, run: PipelineRun, component: dict[str, Any], job: JobRun,
                 job_spec: dict[str, Any]) -> JobRun:
        """Mount the job's data, run its command in the image, upload its `upload` outputs."""
        wd = f"/mnt/azureml/cr/j/{job.name}"
        scratch = self.folder / "jobs" / job.name
        mounts = {**self.image.mounts(), f"{wd}/exe/wd": mkdir(scratch / "exe"),
                  "/opt/ml": mkdir(scratch / "container-opt-ml")}
        values: dict[str, str] = {}
        for channel, b in job.inputs.items():
            if b.kind == "literal":
                values[channel] = b.value
                continue
            host = self.path(b.value)
            if not host.is_dir():
                return job.fail(1, f"input {channel}: {b.value} does not exist (mount failed)")
            if b.mode == "download":
                host = copy_tree(host, scratch / "download" / channel)
            values[channel] = f"{wd}/cap/data-capability/wd/INPUT_{channel}"
            mounts[values[channel]] = host
        modes = {ch: ((job_spec.get("outputs") or {}).get(ch) or {}).get("mode", "rw_mount")
                 for ch in job.outputs}
        targets: dict[str, str] = {}
        for channel, uri in job.outputs.items():
            targets[channel] = f"{wd}/cap/data-capability/wd/{channel}"
            local = scratch / "upload" / channel if modes[channel] == "upload" else self.path(uri)
            mounts[targets[channel]] = mkdir(local)
        job.command = substitute(component["command"], values, targets)
        job.digests = self._digests(job.inputs)
        env = {**self.image.env, "AZUREML_RUN_ID": job.name, "AZUREML_ROOT_RUN_ID": run.name,
               **self.site}
        start = time.monotonic()
        done = self.sandbox.run(["bash", "-c", job.command], mounts=mounts, env=env,
                                cwd=f"{wd}/exe/wd", check=False)
        job.seconds = round(time.monotonic() - start, 1)
        job.stdout, job.stderr = done.stdout, done.stderr
        if done.returncode != 0:
            return job.fail(done.returncode, done.stderr)
        changed = [ch for ch, b in job.inputs.items() if b.kind == "data"
                   and b.mode == "ro_mount" and self._digest(b) != job.digests[ch]]
        if changed:
            return job.fail(1, f"{done.stderr}\nwrote into read-only mounted inputs {changed}")
        for channel, uri in job.outputs.items():
            if modes[channel] == "upload":
                copy_tree(scratch / "upload" / channel, self.path(uri))
        return job

    def _digest(self, bound: Bound) -> str:
        if bound.kind == "literal":
            return bound.value
        path = self.path(bound.value)
        return str(digest_dir(path)["digest"]) if path.is_dir() else "missing"

    def _digests(self, inputs: dict[str, Bound]) -> dict[str, str]:
        return {ch: self._digest(b) for ch, b in inputs.items()}


def resolve(value: Any, spec: dict[str, Any], run: PipelineRun,
            declared: dict[str, Any]) -> Bound | None:
    """An input binding as a Bound (None: unbound)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and (match := PARENT_INPUT.fullmatch(value.strip())):
        given = (spec.get("inputs") or {}).get(match.group(1))
        if isinstance(given, str) and "${{" in given:
            raise HarnessError(f"inputs.{match.group(1)}: a pipeline input cannot bind {given}")
        return resolve(given, {}, run, declared)
    if isinstance(value, str) and (match := PARENT_OUTPUT.fullmatch(value.strip())):
        producer, output = match.groups()
        if producer not in run.jobs:
            raise HarnessError(f"{value}: job {producer} has not run before its consumer")
        return Bound("data", run.jobs[producer].outputs[output])
    if isinstance(value, dict):
        if value.get("type") not in DATA_TYPES or not value.get("path"):
            raise HarnessError(f"input {value!r}: expected a data input with a type and path")
        return Bound("data", str(value["path"]), str(value.get("mode", "ro_mount")))
    if declared.get("type") in DATA_TYPES:
        return Bound("data", str(value))
    return Bound("literal", str(value))


def order(jobs: dict[str, Any]) -> list[str]:
    """The jobs in dependency order (declared order among independent ones)."""
    needs = {name: {m.group(1) for v in (job.get("inputs") or {}).values()
                    if isinstance(v, str) for m in PARENT_OUTPUT.finditer(v)}
             for name, job in jobs.items()}
    for name, deps in needs.items():
        if deps - set(jobs):
            raise HarnessError(f"jobs.{name} binds outputs of unknown jobs {sorted(deps)}")
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [n for n in jobs if n not in done and needs[n] <= set(done)]
        if not ready:
            raise HarnessError(f"the jobs' bindings form a cycle: {sorted(set(jobs) - set(done))}")
        done.append(ready[0])
    return done


def substitute(command: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    """The command as the job runs it: optional parts kept only when their inputs are bound."""
    def optional(match: re.Match[str]) -> str:
        names = [n for kind, n in PLACEHOLDER.findall(match.group(1)) if kind == "inputs"]
        return match.group(1) if all(n in inputs for n in names) else ""

    def value(match: re.Match[str]) -> str:
        table = inputs if match.group(1) == "inputs" else outputs
        if match.group(2) not in table:
            raise HarnessError(f"command uses {match.group(0)}, which is not bound (make it "
                               "optional inside $[[...]] or bind it)")
        return table[match.group(2)]

    return " ".join(PLACEHOLDER.sub(value, OPTIONAL.sub(optional, command)).split())


def reuse_key(component: dict[str, Any], inputs: dict[str, Bound]) -> str:
    """Azure ML's reuse identity: the component and its inputs, data by path."""
    parts = {k: component.get(k) for k in ("type", "command", "environment", "code", "inputs",
                                            "outputs")}
    bound = {ch: [b.kind, b.value.rstrip("/")] for ch, b in sorted(inputs.items())}
    return hashlib.sha256(json.dumps([parts, bound], sort_keys=True).encode()).hexdigest()


def load(spec: dict[str, Any], folder: Path) -> Any:
    """azure-ai-ml's `load_job` on the YAML: what the CLI refuses, the harness refuses."""
    from azure.ai.ml import load_job

    path = folder / "submitted" / f"{uuid.uuid4().hex[:8]}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return load_job(path)
        except Exception as exc:  # the SDK's ValidationError and its kin
            raise HarnessError(f"azure-ai-ml refuses the job: {exc}") from exc


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, dirs_exist_ok=True)
    return dest
