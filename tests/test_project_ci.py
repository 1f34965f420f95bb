"""A project's CI on git push (mlops_kit.project.ci): the files `mlops-kit ci render` writes for
configs with each cloud, parsed, and the GitHub workflow run the way its runner starts it
(tests/ci/actions.py) on a project folder: its test job really installs the project, runs its
tests and validates; its deploy jobs call the cloud tools (recorded) with the right targets."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.adapters.aws import naming
from mlops_kit.config import load_config
from mlops_kit.project.ci import UnknownCiSystem, render
from mlops_kit.project.toolchain import CDK_CLI
from tests.ci.actions import run_workflow
from tests.ci.container import RunnerError
from tests.conftest import ROOT

COMMIT = "3f5e2a9c0d1b4e6f8a7c9b0d2e4f6a8c0b1d3e5f"
GUID = "0b8e7c2a-1d3f-4e5a-9b6c-7d8e9f0a1b2c"
VALUES = {"secrets.AZURE_CLIENT_ID": GUID, "secrets.AZURE_TENANT_ID": GUID.replace("0b", "1c"),
          "secrets.PULUMI_ACCESS_TOKEN": "pul-emulated", "github.sha": COMMIT,
          "vars.AWS_DEPLOY_ROLE_ARN": "arn:aws:iam::111111111111:role/churn-github-deploy",
          "vars.GCP_WORKLOAD_IDENTITY_PROVIDER":
              "projects/123456789/locations/global/workloadIdentityPools/github/providers/repo",
          "vars.GCP_SERVICE_ACCOUNT": "deploy@churn-dev-111111.iam.gserviceaccount.com"}
CLOUDS = {"aws": ["dev", "staging", "prod"], "azure": ["azure_dev", "azure_staging", "azure_prod"],
          "gcp": ["gcp_dev", "gcp_prod"]}
PROJECT_TEST = '''from pathlib import Path

from mlops_kit.config import load_config

import churn_project


def test_the_config_loads_and_the_package_imports():
    loaded = load_config(Path(__file__).parents[1] / "mlops.yaml")
    assert loaded.config.project == "churn" and churn_project.__name__ == "churn_project"
'''


def make_project(folder: Path, clouds: tuple[str, ...]) -> Path:
    """A project folder as `mlops-kit init` lays one out: the root mlops.yaml with only the
    environments of `clouds`, its pyproject (depending on the kit), a package, a test, the
    CDK and Pulumi entry files, the Dockerfile and a stack file per Azure/GCP environment."""
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    keep = [e for cloud in clouds for e in CLOUDS[cloud]]
    raw["environments"] = {k: v for k, v in raw["environments"].items() if k in keep}
    if "aws" not in clouds:
        raw["cicd"] = {"branch": "main"}
    folder.mkdir(parents=True)
    (folder / "mlops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    if raw.get("pipeline"):
        (folder / raw["pipeline"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / raw["pipeline"]).write_text((ROOT / raw["pipeline"]).read_text())
    dockerfile = folder / raw["image"]["dockerfile"]
    dockerfile.parent.mkdir(parents=True, exist_ok=True)
    dockerfile.write_text((ROOT / raw["image"]["dockerfile"]).read_text())
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "churn-project"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["mlops-kit==0.1.0"]\n')
    (folder / "src" / "churn_project").mkdir(parents=True)
    (folder / "src" / "churn_project" / "__init__.py").write_text('"""Our code."""\n')
    (folder / "tests").mkdir()
    (folder / "tests" / "test_project.py").write_text(PROJECT_TEST)
    (folder / "cdk.json").write_text(json.dumps({"app": "python -m mlops_cdk",
                                                 "output": "cdk.out",
                                                 "context": {"config": "mlops.yaml"}}))
    (folder / "Pulumi.yaml").write_text("name: churn\nruntime:\n  name: python\n  options:\n"
                                        "    toolchain: pip\nmain: infra/\n")
    (folder / "infra").mkdir()
    (folder / "infra" / "__main__.py").write_text((ROOT / "pulumi" / "__main__.py").read_text())
    for env in raw["environments"]:
        if raw["environments"][env]["cloud"] != "aws":
            (folder / f"Pulumi.{env}.yaml").write_text(
                f"config:\n  mlops:environment: {env}\n")
    return folder


def _files(folder: Path, system: str) -> dict[str, Any]:
    return {k: yaml.safe_load(v) for k, v in render(load_config(folder / "mlops.yaml"),
                                                     system).items()}


def test_the_cdk_cli_version_is_package_jsons_pin() -> None:
    pin = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert pin == CDK_CLI


@pytest.mark.parametrize("clouds", [("aws",), ("azure",), ("gcp",), ("aws", "azure", "gcp")])
def test_github_deploys_each_environment_after_the_one_before(
        tmp_path: Path, clouds: tuple[str, ...]) -> None:
    project = make_project(tmp_path / "p", clouds)
    loaded = load_config(project / "mlops.yaml")
    text = render(loaded, "github")[".github/workflows/mlops.yml"]
    assert text.startswith("# Generated by mlops-kit from mlops.yaml")
    assert "mlops-kit ci render --system github" in text.splitlines()[1]
    assert render(loaded, "github") == render(load_config(project / "mlops.yaml"), "github")
    flow = yaml.safe_load(text)
    assert set(flow["on"]) == {"push", "pull_request"}
    jobs = flow["jobs"]
    runs = [s["run"] for s in jobs["test"]["steps"] if "run" in s]
    assert runs == ["pip install -e . pytest", "pytest", "mlops-kit validate",
                    *(f"mlops-kit validate --env {e}" for c in clouds for e in CLOUDS[c])]
    for cloud in clouds:
        needs = "test"
        for env in CLOUDS[cloud]:
            job = jobs[f"deploy-{env.replace('_', '-')}"]
            assert (job["needs"], job["environment"]) == (needs, env)
            assert job["permissions"]["id-token"] == "write"
            assert {"run": f"pip install -e . 'mlops-kit[{cloud}]'"} in job["steps"]
            needs = f"deploy-{env.replace('_', '-')}"
    later = [e for c in clouds for e in CLOUDS[c][1:]]
    assert f"environment(s) {', '.join(later)} required reviewers" in text


@pytest.mark.parametrize("clouds", [("aws",), ("azure",), ("gcp",), ("aws", "azure", "gcp")])
def test_gitlab_has_the_same_jobs_with_id_token_logins(
        tmp_path: Path, clouds: tuple[str, ...]) -> None:
    project = make_project(tmp_path / "p", clouds)
    text = render(load_config(project / "mlops.yaml"), "gitlab")[".gitlab-ci.yml"]
    assert text.startswith("# Generated by mlops-kit from mlops.yaml")
    pipeline = yaml.safe_load(text)
    assert pipeline["stages"] == ["test", "deploy"]
    assert pipeline["test"]["script"][:2] == ["pip install -e . pytest", "pytest"]
    tokens = {"aws": "AWS_ID_TOKEN", "azure": "AZURE_ID_TOKEN", "gcp": "GCP_ID_TOKEN"}
    for cloud in clouds:
        needs = "test"
        for position, env in enumerate(CLOUDS[cloud]):
            job = pipeline[f"deploy-{env.replace('_', '-')}"]
            assert job["needs"] == [needs] and job["environment"] == {"name": env}
            assert (job["rules"][0].get("when") == "manual") == (position > 0)
            assert list(job["id_tokens"]) == [tokens[cloud]]
            script = "\n".join(job["script"])
            assert {"aws": "aws sts assume-role-with-web-identity",
                    "azure": "az login --service-principal",
                    "gcp": '"type": "external_account"'}[cloud] in script
            last = job["script"][-1]
            assert last == ({"aws": naming.cdk_deploy(f"npx --yes aws-cdk@{CDK_CLI} --no-notices",
                                                      "churn", env)}.get(cloud)
                            or f"pulumi up -s {env} --yes")
            needs = f"deploy-{env.replace('_', '-')}"


def test_codepipeline_and_none_write_no_file_and_others_are_refused(tmp_path: Path) -> None:
    loaded = load_config(make_project(tmp_path / "p", ("aws",)) / "mlops.yaml")
    assert render(loaded, "codepipeline") == {} and render(loaded, "none") == {}
    with pytest.raises(UnknownCiSystem, match="use one of github, gitlab"):
        render(loaded, "jenkins")


def test_ci_render_writes_the_files_as_the_docs_say(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ("gcp",))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for system in ("github", "gitlab"):
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "mlops-kit"), "ci", "render",
                               "--system", system], cwd=project, env=env, capture_output=True,
                              text=True, check=True)
        (relative, text), = render(load_config(project / "mlops.yaml"), system).items()
        assert done.stdout.strip() == f"wrote {relative}"
        assert (project / relative).read_text() == text


# -- the GitHub workflow, run ----------------------------------------------------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("project") / "churn", ("aws", "azure", "gcp"))


@pytest.fixture(scope="module")
def pushed(project: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, list[dict[str, Any]]]:
    flow = _files(project, "github")[".github/workflows/mlops.yml"]
    return run_workflow(flow, tmp_path_factory.mktemp("push"), VALUES, repository=project)


@pytest.mark.slow
def test_the_test_job_installs_tests_and_validates_the_project(
        pushed: dict[str, list[dict[str, Any]]]) -> None:
    installed = next(c for c in pushed["test"] if c["program"] == "pip")
    assert installed["args"] == ["install", "-e", ".", "pytest"]
    assert installed["project"] == "churn-project"


@pytest.mark.slow
def test_aws_deploys_with_the_assumed_role_and_the_pinned_cdk(
        pushed: dict[str, list[dict[str, Any]]], project: Path) -> None:
    cfg = load_config(project / "mlops.yaml").config
    for env in CLOUDS["aws"]:
        records = pushed[f"deploy-{env}"]
        role = next(r for r in records if r.get("action") == "configure-aws-credentials")
        assert role["aws-region"] == cfg.environments[env].region
        assert role["role-to-assume"] == VALUES["vars.AWS_DEPLOY_ROLE_ARN"]
        deploy = next(c for c in records if c.get("program") == "npx")
        assert deploy["cli"] == f"aws-cdk@{CDK_CLI}" and deploy["context"] == {"env": env}
        assert deploy["selector"] == naming.cdk_selector("churn", env)
        assert deploy["app"] == ["python", "-m", "mlops_cdk"]


@pytest.mark.slow
def test_azure_and_gcp_deploy_their_stacks_with_oidc(
        pushed: dict[str, list[dict[str, Any]]], project: Path) -> None:
    cfg = load_config(project / "mlops.yaml").config
    for env in CLOUDS["azure"] + CLOUDS["gcp"]:
        records = pushed[f"deploy-{env.replace('_', '-')}"]
        up = next(r for r in records if r.get("action") == "pulumi/actions")
        assert (up["command"], up["stack-name"]) == ("up", env)
        assert Path(up["python"]).parent.name == "setup-python"   # where pip installed
        assert "mlops_pulumi.main" in up["imports"]
        login = next(r for r in records if r.get("action") in (
            "azure/login", "google-github-actions/auth"))
        if cfg.environments[env].cloud == "azure":
            assert login["subscription-id"] == cfg.environments[env].subscription
        else:
            assert login["project_id"] == cfg.environments[env].project


def test_a_pull_request_runs_only_the_test_job(project: Path, tmp_path: Path) -> None:
    flow = _files(project, "github")[".github/workflows/mlops.yml"]
    flow["jobs"]["test"]["steps"] = flow["jobs"]["test"]["steps"][:1]
    ran = run_workflow(flow, tmp_path, VALUES, event="pull_request", repository=project)
    assert list(ran) == ["test"]


def test_the_emulation_fails_where_a_deploy_lacks_what_it_needs(
        project: Path, tmp_path: Path) -> None:
    flow = _files(project, "github")[".github/workflows/mlops.yml"]
    job = {**flow["jobs"]["deploy-dev"], "needs": []}
    no_oidc = copy.deepcopy(job)
    no_oidc.pop("permissions")
    with pytest.raises(RunnerError, match="id-token: write"):
        run_workflow({**flow, "jobs": {"d": no_oidc}}, tmp_path / "a", VALUES, repository=project)
    no_install = copy.deepcopy(job)
    no_install["steps"] = [s for s in job["steps"] if not s.get("run", "").startswith("pip")]
    with pytest.raises(RunnerError, match="cannot import mlops_cdk"):
        run_workflow({**flow, "jobs": {"d": no_install}}, tmp_path / "b", VALUES,
                     repository=project)
    no_creds = copy.deepcopy(job)
    no_creds["steps"] = [s for s in job["steps"] if "configure-aws" not in s.get("uses", "")]
    with pytest.raises(RunnerError, match="no AWS credentials"):
        run_workflow({**flow, "jobs": {"d": no_creds}}, tmp_path / "c", VALUES,
                     repository=project)


def test_the_test_job_fails_when_a_project_test_fails(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    (broken / "tests" / "test_project.py").write_text("def test_no():\n    assert False\n")
    flow = _files(broken, "github")[".github/workflows/mlops.yml"]
    flow["jobs"] = {"test": flow["jobs"]["test"]}
    flow["jobs"]["test"]["steps"] = flow["jobs"]["test"]["steps"][:4]   # up to pytest
    with pytest.raises(RunnerError, match="1 failed"):
        run_workflow(flow, tmp_path / "run", VALUES, repository=broken)
