"""GitHub Actions, emulated: a workflow's jobs in `needs` order, each on a fresh runner VM
(its own empty workspace and PATH), its steps in order.

`run:` goes through the runner's `bash -e <script>` (GitHub's default shell) in the workspace
(or `working-directory`), with the workflow's, job's and step's `env`; `${{ ... }}` takes the
test values given (an expression without one is an error). Actions are emulated by what they
do to the VM: checkout copies the repository in, setup-python / setup-node put an interpreter
first on PATH, azure/login needs `az` and OIDC, aws-actions/configure-aws-credentials and
google-github-actions/auth need OIDC and export what the real ones export to later steps,
pulumi/actions checks the project it would run. A job's `if:` may test `github.event_name`
only; a job skipped skips the jobs that need it.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.ci.container import RunnerError, calls, checkout, execute, start
from tests.ci.images import RUNNERS, Tool
from tests.ci.shim import ROOT, write_shim

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
JOB_KEYS = {"needs", "if", "runs-on", "environment", "permissions", "env", "steps"}
EVENT_TEST = re.compile(r"github\.event_name == '(\w+)'")
STEP_KEYS = {"name", "uses", "with", "run", "env", "working-directory"}


@dataclass
class Vm:
    """One job's runner: its workspace, PATH (first entries first) and what it recorded."""

    folder: Path
    workspace: Path
    path: list[str]
    values: dict[str, str]
    permissions: dict[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)
    exported: dict[str, str] = field(default_factory=dict)   # $GITHUB_ENV: later steps' env
    repository: Path = ROOT

    @property
    def run(self) -> Path:
        return self.folder / "run"


def expand(value: Any, values: dict[str, str]) -> Any:
    """`value` with every `${{ expr }}` replaced by its test value."""
    if isinstance(value, dict):
        return {k: expand(v, values) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise RunnerError(f"expression ${{{{ {match[1]} }}}} has no test value")
        return values[match[1]]

    return EXPRESSION.sub(one, value)


def job_order(jobs: dict[str, Any]) -> list[str]:
    """Jobs in `needs` order (file order among the ready ones), RunnerError on a cycle."""
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [j for j, spec in jobs.items() if j not in done
                 and set(_needs(spec)) <= set(done)]
        if not ready:
            raise RunnerError(f"jobs {sorted(set(jobs) - set(done))} wait on each other")
        done.append(ready[0])
    return done


def _runs_on(job: dict[str, Any], event: str, job_id: str) -> bool:
    """Whether the job's `if:` holds for `event` (only `github.event_name == '...'`)."""
    if "if" not in job:
        return True
    test = EVENT_TEST.fullmatch(str(job["if"]).strip())
    if test is None:
        raise RunnerError(f"job {job_id}: if: {job['if']!r} is not emulated")
    return test[1] == event


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def run_workflow(flow: dict[str, Any], folder: Path, values: dict[str, str], *,
                 event: str = "push", repository: Path = ROOT
                 ) -> dict[str, list[dict[str, Any]]]:
    """Run the jobs of `flow` that `event` starts, in `folder`, on a checkout of `repository`;
    per job run, the actions' and programs' records."""
    if event not in flow["on"]:
        raise RunnerError(f"the workflow does not run on {event} (on: {sorted(flow['on'])})")
    out: dict[str, list[dict[str, Any]]] = {}
    skipped: set[str] = set()
    for job_id in job_order(flow["jobs"]):
        job = flow["jobs"][job_id]
        if set(job) - JOB_KEYS:
            raise RunnerError(f"job {job_id}: fields {sorted(set(job) - JOB_KEYS)} not emulated")
        if set(_needs(job)) & skipped or not _runs_on(job, event, job_id):
            skipped.add(job_id)
            continue
        if job["runs-on"] not in RUNNERS:
            raise RunnerError(f"job {job_id}: runner {job['runs-on']} is not in the table")
        vm_folder = folder / job_id
        vm = Vm(vm_folder, _made(vm_folder / "work"), [], values,
                job.get("permissions", flow.get("permissions", {})), repository=repository)
        vm.path.append(str(start(RUNNERS[job["runs-on"]], vm_folder / "runner", vm.run)))
        env = {**flow.get("env", {}), **job.get("env", {})}
        for number, step in enumerate(job["steps"]):
            what = f"job {job_id} step {step.get('name') or step.get('uses') or number}"
            if set(step) - STEP_KEYS:
                raise RunnerError(f"{what}: fields {sorted(set(step) - STEP_KEYS)} not emulated")
            step_env = {**vm.exported, **expand({**env, **step.get("env", {})}, values)}
            if "uses" in step:
                action = ACTIONS.get(step["uses"])
                if action is None:
                    raise RunnerError(f"{what}: action {step['uses']} is not emulated")
                action(vm, expand(step.get("with", {}), values), step_env)
            else:
                _run(vm, number, step, step_env, what)
        out[job_id] = vm.records + calls(vm.run)
    return out


def _run(vm: Vm, number: int, step: dict[str, Any], env: dict[str, str], what: str) -> None:
    script = vm.folder / f"step-{number}.sh"
    script.write_text(expand(step["run"], vm.values))
    bash = shutil.which("bash", path=vm.path[-1])
    assert bash, "every runner has bash"
    execute([bash, "-e", str(script)], vm.workspace / step.get("working-directory", ""),
            {**env, "PATH": ":".join(vm.path), "HOME": str(_made(vm.folder / "home")),
             "GITHUB_WORKSPACE": str(vm.workspace), "GITHUB_SHA": vm.values["github.sha"],
             "CI": "true", "RUNNER_TEMP": str(_made(vm.folder / "tmp"))}, what)


# -- the actions ---------------------------------------------------------------------------

def _checkout(vm: Vm, inputs: dict[str, str], env: dict[str, str]) -> None:
    _inputs("actions/checkout", inputs, set())
    checkout(vm.workspace, vm.repository)


@cache
def _bare_python(version: str) -> Path:
    """A Python `version` with no package of ours (a venv of this machine's Debian python)."""
    base = Path(f"/usr/bin/python{version}")
    if not base.exists():
        raise RunnerError(f"setup-python {version}: this machine has no Python {version}")
    folder = Path(tempfile.mkdtemp(prefix="setup-python-")) / version
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder / "bin" / "python"


def _setup_python(vm: Vm, inputs: dict[str, str], env: dict[str, str]) -> None:
    _inputs("actions/setup-python", inputs, {"python-version"})
    python = str(_bare_python(str(inputs["python-version"])))
    folder = vm.folder / "setup-python"
    for name in ("python", "python3"):
        write_shim(folder, name, vars(Tool(host=python, version=inputs["python-version"])),
                   vm.folder / "runner", vm.run)
    for name in ("pip", "pip3"):
        write_shim(folder, name, vars(Tool(handler="pip")), vm.folder / "runner", vm.run)
    vm.path.insert(0, str(folder))


def _setup_node(vm: Vm, inputs: dict[str, str], env: dict[str, str]) -> None:
    _inputs("actions/setup-node", inputs, {"node-version"})
    node = shutil.which("node", path="/usr/bin:/bin")
    assert node, "this machine has Node.js"
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip().lstrip("v")
    if version.split(".")[0] != str(inputs["node-version"]).split(".")[0]:
        raise RunnerError(f"setup-node {inputs['node-version']}: this machine has {version}")
    folder = vm.folder / "setup-node"
    for name in ("node", "npm"):
        host = shutil.which(name, path="/usr/bin:/bin") or ""
        write_shim(folder, name, vars(Tool(host=host, version=version)),
                   vm.folder / "runner", vm.run)
    write_shim(folder, "npx", vars(Tool(handler="npx", version=version)), vm.folder / "runner",
               vm.run)   # npx fetches packages: checked and recorded, see shim.npx
    vm.path.insert(0, str(folder))


def _azure_login(vm: Vm, inputs: dict[str, str], env: dict[str, str]) -> None:
    """OIDC login: the three ids, `id-token: write`, and the `az` it drives on PATH."""
    _inputs("azure/login", inputs, {"client-id", "tenant-id", "subscription-id"})
    _oidc("azure/login", vm)
    if not shutil.which("az", path=":".join(vm.path)):
        raise RunnerError("azure/login drives the Azure CLI: no `az` on PATH")
    for key in ("subscription-id", "tenant-id", "client-id"):
        if not re.fullmatch(r"[0-9a-f-]{36}", inputs[key]):
            raise RunnerError(f"azure/login {key} {inputs[key]!r} is not a GUID")
    vm.records.append({"action": "azure/login", **inputs})


def _oidc(action: str, vm: Vm) -> None:
    if vm.permissions.get("id-token") != "write":
        raise RunnerError(f"{action} with OIDC needs `permissions: id-token: write`")


def _aws_credentials(vm: Vm, inputs: dict[str, str], env: dict[str, str]) -> None:
    """OIDC role assumption: a role ARN and a region; later steps get the session's keys and
    the region in their environment (what the action exports)."""
    _inputs("aws-actions/configure-aws-credentials", inputs, {"role-to-assume", "aws-region"})
    _oidc("configure-aws-credentials", vm)
    if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+", inputs["role-to-assume"]):
        raise RunnerError(f"role-to-assume {inputs['role-to-assume']!r} is not a role ARN")
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", inputs["aws-region"]):
        raise RunnerError(f"aws-region {inputs['aws-region']!r} is not a region")
    vm.exported.update(AWS_REGION=inputs["aws-region"], AWS_DEFAULT_REGION=inputs["aws-region"],
                       AWS_ACCESS_KEY_ID="ASIAEMULATED", AWS_SECRET_ACCESS_KEY="emulated",
                       AWS_SESSION_TOKEN="emulated")
    vm.records.append({"action": "configure-aws-credentials", **inputs})


def _google_auth(vm: Vm, inputs: dict[str, str], env: dict[str, str]) -> None:
    """Workload identity federation: the provider and service account; later steps get the
    credential file the action writes in the workspace and the project."""
    _inputs("google-github-actions/auth", inputs,
            {"workload_identity_provider", "service_account", "project_id"})
    _oidc("google-github-actions/auth", vm)
    if not re.fullmatch(r"projects/\d+/locations/global/workloadIdentityPools/[\w-]+/"
                        r"providers/[\w-]+", inputs["workload_identity_provider"]):
        raise RunnerError("workload_identity_provider "
                          f"{inputs['workload_identity_provider']!r} is not a provider name")
    if not re.fullmatch(r"[\w-]+@[\w-]+\.iam\.gserviceaccount\.com", inputs["service_account"]):
        raise RunnerError(f"service_account {inputs['service_account']!r} is not an email")
    creds = vm.workspace / "gha-creds-emulated.json"
    creds.write_text(json.dumps({"type": "external_account", "audience":
                                 f"//iam.googleapis.com/{inputs['workload_identity_provider']}",
                                 "service_account": inputs["service_account"]}))
    project = inputs["project_id"]
    vm.exported.update(GOOGLE_APPLICATION_CREDENTIALS=str(creds), GOOGLE_CLOUD_PROJECT=project,
                       CLOUDSDK_CORE_PROJECT=project, CLOUDSDK_PROJECT=project)
    vm.records.append({"action": "google-github-actions/auth", **inputs})


def _pulumi(vm: Vm, inputs: dict[str, str], env: dict[str, str]) -> None:
    """What `pulumi <command>` needs before it reaches a backend: the project and stack
    files, a token, and the program importable by the virtualenv Pulumi.yaml names (or,
    without one, by the `python3` on PATH, as Pulumi's pip toolchain runs it)."""
    _inputs("pulumi/actions", inputs, {"command", "stack-name", "work-dir"})
    if inputs["command"] not in ("up", "preview", "refresh"):
        raise RunnerError(f"pulumi/actions command {inputs['command']} is not emulated")
    project_dir = vm.workspace / inputs.get("work-dir", "./")
    project = yaml.safe_load(_need(project_dir / "Pulumi.yaml").read_text())
    stack_dir = project_dir / project.get("stackConfigDir", ".")
    _need(stack_dir / f"Pulumi.{inputs['stack-name']}.yaml")
    if not env.get("PULUMI_ACCESS_TOKEN"):
        raise RunnerError("pulumi/actions: no PULUMI_ACCESS_TOKEN for the Pulumi Cloud backend")
    runtime = project["runtime"]
    runtime = {"name": runtime} if isinstance(runtime, str) else runtime
    venv = (runtime.get("options") or {}).get("virtualenv")
    if runtime.get("name") != "python":
        raise RunnerError("Pulumi.yaml: the emulation runs python programs only")
    found = shutil.which("python3", path=":".join(vm.path))
    python = _need(project_dir / venv / "bin" / "python") if venv else Path(found or "python3")
    main = project_dir / project.get("main", ".")
    imports = ["pulumi", *_imports(_need(main / "__main__.py"))]   # the SDK the host needs
    code = f"import sys; sys.path.insert(0, {str(main)!r}); " + "; ".join(
        f"import {m}" for m in imports)
    execute([str(python), "-c", code], project_dir, {**env, "PATH": ":".join(vm.path)},
            f"pulumi {inputs['command']}: the program's imports in {venv}")
    vm.records.append({"action": "pulumi/actions", "python": str(python), "imports": imports,
                       **inputs})


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return sorted({n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and n.module} | {a.name for n in ast.walk(tree)
                                    if isinstance(n, ast.Import) for a in n.names})


def _need(path: Path) -> Path:
    if not path.exists():
        raise RunnerError(f"{path.name}: not in the checkout ({path})")
    return path


def _inputs(action: str, inputs: dict[str, str], allowed: set[str]) -> None:
    if set(inputs) - allowed:
        raise RunnerError(f"{action}: inputs {sorted(set(inputs) - allowed)} are not emulated")
    missing = {"actions/checkout": set()}.get(action, allowed - {"work-dir"}) - set(inputs)
    if missing:
        raise RunnerError(f"{action}: needs {sorted(missing)}")


ACTIONS: dict[str, Callable[[Vm, dict[str, str], dict[str, str]], None]] = {
    "actions/checkout@v4": _checkout, "actions/setup-python@v5": _setup_python,
    "actions/setup-node@v4": _setup_node, "azure/login@v2": _azure_login,
    "aws-actions/configure-aws-credentials@v4": _aws_credentials,
    "google-github-actions/auth@v2": _google_auth, "pulumi/actions@v6": _pulumi}


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
