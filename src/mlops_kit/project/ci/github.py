"""`.github/workflows/mlops.yml`: on a pull request, test; on a push to `cicd.branch`, test
and deploy each cloud's environments in file order, the first (dev) at once, each later one
after the one before, in a GitHub environment of its name (give it required reviewers). Every
deploy logs in with OIDC: no cloud key is stored in GitHub."""

from __future__ import annotations

from typing import Any

from mlops_kit.adapters.aws import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import ProjectConfig
from mlops_kit.project import ci
from mlops_kit.project.ci.azure import azure_login
from mlops_kit.project.toolchain import CDK_CLI, NODE, PYTHON

PATH = ".github/workflows/mlops.yml"
# Pinned rather than ubuntu-latest so what the steps rely on is the image's documented list.
RUNNER = "ubuntu-24.04"
CDK = f"npx --yes aws-cdk@{CDK_CLI} --no-notices"
ON_PUSH = "github.event_name == 'push'"
OIDC = {"id-token": "write", "contents": "read"}


def workflow(loaded: LoadedConfig) -> tuple[str, dict[str, Any], list[str]]:
    """The workflow's path, body and header notes for the project config `loaded`."""
    cfg = loaded.config
    jobs: dict[str, Any] = {"test": {"runs-on": RUNNER, "steps": [
        *_setup(None), {"run": "pytest"},
        *({"run": command} for command in ci.validate_commands(cfg))]}}
    for cloud, names in ci.environments(cfg).items():
        needs = "test"
        for env in names:
            jobs[ci.job_id(env)] = _deploy(cfg, cloud, env, needs)
            needs = ci.job_id(env)
    notes = _notes(cfg)
    return PATH, {"name": f"{cfg.project} CI",
                  "on": {"push": {"branches": [cfg.cicd.branch]},
                         "pull_request": {"branches": [cfg.cicd.branch]}},
                  "permissions": {"contents": "read"},
                  "concurrency": {"group": f"{cfg.project}-deploy", "cancel-in-progress": False},
                  "jobs": jobs}, notes


def _notes(cfg: ProjectConfig) -> list[str]:
    gated = ci.gated(cfg)
    return [f"Approval gate: give the GitHub environment(s) {', '.join(gated)} required "
            "reviewers."] if gated else []


def _setup(cloud: str | None) -> list[dict[str, Any]]:
    return [{"uses": "actions/checkout@v4"},
            {"uses": "actions/setup-python@v5", "with": {"python-version": PYTHON}},
            {"run": ci.install(cloud)}]


def _deploy(cfg: ProjectConfig, cloud: str, env: str, needs: str) -> dict[str, Any]:
    steps = {"aws": _aws, "azure": _azure, "gcp": _gcp}[cloud](cfg, env)
    job: dict[str, Any] = {"needs": needs, "if": ON_PUSH, "runs-on": RUNNER, "environment": env,
                           "permissions": OIDC}
    if cloud != "aws":
        job["env"] = {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}
    if cloud == "azure":
        job["env"].update({"ARM_USE_OIDC": "true",
                           "ARM_CLIENT_ID": "${{ secrets.AZURE_CLIENT_ID }}",
                           "ARM_TENANT_ID": "${{ secrets.AZURE_TENANT_ID }}"})
    return {**job, "steps": [*_setup(cloud), *steps]}


def _aws(cfg: ProjectConfig, env: str) -> list[dict[str, Any]]:
    return [{"uses": "aws-actions/configure-aws-credentials@v4", "with": {
                "role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
                "aws-region": cfg.environments[env].region}},
            {"uses": "actions/setup-node@v4", "with": {"node-version": NODE}},
            {"name": f"cdk deploy {env}", "run": naming.cdk_deploy(CDK, cfg.project, env)}]


def _azure(cfg: ProjectConfig, env: str) -> list[dict[str, Any]]:
    return [azure_login(str(cfg.environments[env].subscription)), _pulumi_up(env)]


def _gcp(cfg: ProjectConfig, env: str) -> list[dict[str, Any]]:
    return [{"uses": "google-github-actions/auth@v2", "with": {
                "workload_identity_provider": "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}",
                "service_account": "${{ vars.GCP_SERVICE_ACCOUNT }}",
                "project_id": str(cfg.environments[env].project)}},
            _pulumi_up(env)]


def _pulumi_up(env: str) -> dict[str, Any]:
    return {"uses": "pulumi/actions@v6", "with": {"command": "up", "stack-name": env,
                                                  "work-dir": "."}}
