"""Each generated CI definition, run the way its runner starts it (tests/ci/): the Cloud Build
trigger's steps as Pulumi sends them, the Azure GitHub Actions workflow as generated. Steps
that can run offline run for real; those that would reach a cloud are checked and recorded."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

import pulumi
from mlops_kit.adapters.azure import naming as azure_naming
from mlops_kit.adapters.gcp import naming as gcp_naming
from mlops_kit.config import load_config
from mlops_pulumi.azure import cicd as azure_cicd
from mlops_pulumi.config import load_stack
from mlops_pulumi.gcp.platform import build
from mlops_pulumi.gcp.training import jobs_uri
from tests.ci.actions import run_workflow
from tests.ci.cloudbuild import run_build, trigger_substitutions
from tests.ci.container import RunnerError
from tests.conftest import ROOT
from tests.pulumi.mocks import RecordingMocks

COMMIT = "3f5e2a9c0d1b4e6f8a7c9b0d2e4f6a8c0b1d3e5f"
GUID = "0b8e7c2a-1d3f-4e5a-9b6c-7d8e9f0a1b2c"
VALUES = {"secrets.AZURE_CLIENT_ID": GUID, "secrets.AZURE_TENANT_ID": GUID.replace("0b", "1c"),
          "secrets.PULUMI_ACCESS_TOKEN": "pul-emulated", "vars.AZURE_SUBSCRIPTION_ID": GUID,
          "github.sha": COMMIT}


def _content(obj: dict[str, Any]) -> str:
    content = obj["content"]
    return content["value"] if isinstance(content, dict) else content


def _trigger(mocks: RecordingMocks) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The trigger's build steps and the Cloud Storage objects the stack stores."""
    steps = mocks.of_type("cloudbuild/trigger:Trigger")[0].inputs["build"]["steps"]
    objects = {f"gs://{o.inputs['bucket']}/{o.inputs['name']}": _content(o.inputs)
               for o in mocks.of_type("storage/bucketObject:BucketObject")}
    return steps, objects


def _build(steps: list[dict[str, Any]], objects: dict[str, str], folder: Path
           ) -> list[dict[str, Any]]:
    loaded = load_config(ROOT / "mlops.yaml", env="gcp_prod")
    subs = trigger_substitutions(gcp_naming.gcp_project(loaded), loaded.config.cicd.branch,
                                 str(loaded.config.cicd.repository), COMMIT)
    return run_build(steps, folder, subs, objects)


@pulumi.runtime.test
def test_the_cloud_build_trigger_runs_as_cloud_build_starts_it(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    stack = load_stack("gcp_prod", ROOT / "mlops.yaml")
    platform = build(stack)
    loaded = stack.loaded
    repo = gcp_naming.image(loaded).rsplit(":", 1)[0]

    def check(_: Any) -> None:
        steps, objects = _trigger(mocks)
        done = _build(steps, objects, tmp_path)
        tested = next(c for c in done if c["program"] == "make")
        assert tested["args"] == ["test"] and tested["image"].startswith("node:")
        assert {"python3", "python3-venv"} <= set(tested["apt"])
        image = next(c for c in done if c["args"][0] == "build")
        assert f"GIT_COMMIT={COMMIT}" in image["args"] and f"{repo}:{COMMIT[:7]}" in image["args"]
        assert any(c["args"] == ["push", "--all-tags", repo] for c in done)
        deploy = next(c for c in done if c["program"] == "python")
        assert deploy["stopped_for_credentials"], "release deploy got past config and args"
        assert deploy["env"]["MLOPS_GIT_COMMIT"] == COMMIT   # baked in by --build-arg
        posts = [c for c in done if c["program"] == "curl"]
        assert len(posts) == len(loaded.config.all_models)
        for model, post in zip((m.name for m in loaded.config.all_models), posts, strict=True):
            stored = next(text for uri, text in objects.items()
                          if uri.endswith("/" + gcp_naming.run_request_object(model)))
            assert post["body"] == stored, "the run request Training stored is what is posted"
            assert post["url"] == jobs_uri(gcp_naming.gcp_project(loaded),
                                           gcp_naming.region(loaded))
            assert "Authorization: Bearer ya29.emulated-token" in post["headers"]
    assert platform.cicd.trigger is not None
    return platform.cicd.trigger.id.apply(check)


@pulumi.runtime.test
def test_cloud_build_emulation_fails_where_the_image_lacks_what_a_step_needs(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = build(load_stack("gcp_prod", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        steps, objects = _trigger(mocks)
        old = [{"id": "test", "name": "python:3.11", "entrypoint": "make", "args": ["test"]}]
        with pytest.raises(RunnerError, match=r"node is not on PATH in python:3\.11"):
            _build(old, objects, tmp_path / "old")
        no_venv = copy.deepcopy(steps[:1])
        no_venv[0]["args"][-1] = "make test"
        with pytest.raises(RunnerError, match="ensurepip is not available"):
            _build(no_venv, objects, tmp_path / "no-venv")
        literal = copy.deepcopy(steps[-1:])
        literal[0]["args"][-1] += " $HOME"
        with pytest.raises(RunnerError, match="'HOME' is not a valid built-in substitution"):
            _build(literal, objects, tmp_path / "literal")
        missing = {k: v for k, v in objects.items() if "churn-classifier" not in k}
        with pytest.raises(RunnerError, match="matched no objects"):
            _build(steps[-1:], missing, tmp_path / "missing")
    assert platform.cicd.trigger is not None
    return platform.cicd.trigger.id.apply(check)


# -- the Azure GitHub Actions workflow -------------------------------------------------------

@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The committed workflow (test_cicd keeps it equal to the generator's), run once."""
    flow = yaml.safe_load((ROOT / azure_cicd.OUTPUT).read_text())
    return run_workflow(flow, tmp_path_factory.mktemp("actions"), VALUES)


def test_the_azure_workflow_trains_with_a_valid_job_in_the_image_of_its_commit(
        workflow_run: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import PipelineJob

    tested = [c for c in workflow_run["test"] if c.get("program") == "make"]
    assert [c["args"] for c in tested] == [["install"], ["test"]]
    assert "setup-node" in tested[1]["path"].split(":")[0]   # Node.js 20 first on PATH
    env = azure_cicd.azure_environments(load_config(ROOT / "mlops.yaml"))[0]
    cfg = load_config(ROOT / "mlops.yaml", env=env).config
    train = workflow_run["train"]
    login = next(r for r in train if r.get("action") == "azure/login")
    assert login["subscription-id"] == cfg.environments[env].subscription
    build_call = next(c for c in train if c.get("args", [])[:2] == ["acr", "build"])
    assert {k: build_call["build_args"][k] for k in ("EXTRAS", "GIT_COMMIT", "CONFIG")} == {
        "EXTRAS": "azureml", "GIT_COMMIT": COMMIT, "CONFIG": "mlops.yaml"}
    jobs = [c for c in train if c.get("args", [])[:3] == ["ml", "job", "create"]]
    assert len(jobs) == len(cfg.all_models)
    for model, call in zip(cfg.all_models, jobs, strict=True):
        assert call["args"][call["args"].index("-g") + 1] == azure_naming.resource_group(
            cfg.project, env)
        path = tmp_path / f"{model.name}.yml"
        path.write_text(call["file"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            job = load_job(path)
        assert isinstance(job, PipelineJob) and str(job.display_name).endswith(model.name)
        image = f"{azure_naming.registry_server(cfg.project, env)}/{cfg.image.repository}:"
        assert all(j.component.environment.image.startswith(image) for j in job.jobs.values())


def test_each_azure_environment_deploys_with_the_program_in_the_venv(
        workflow_run: dict[str, list[dict[str, Any]]]) -> None:
    base = load_config(ROOT / "mlops.yaml")
    for env in azure_cicd.azure_environments(base):
        records = workflow_run[f"deploy-{env.replace('_', '-')}"]
        pulumi_run = next(r for r in records if r.get("action") == "pulumi/actions")
        assert pulumi_run["stack-name"] == env and pulumi_run["command"] == "up"
        assert Path(pulumi_run["python"]).parent.parent.name == ".venv"
        assert "mlops_pulumi.main" in pulumi_run["imports"]
        login = next(r for r in records if r.get("action") == "azure/login")
        assert login["subscription-id"] == base.config.environments[env].subscription
        built = next(c for c in records if c.get("args", [])[:2] == ["acr", "build"])
        assert built["build_args"]["GIT_COMMIT"] == COMMIT


def test_the_actions_emulation_fails_where_a_step_lacks_what_it_needs(tmp_path: Path) -> None:
    flow = azure_cicd.workflow(ROOT / "mlops.yaml")
    flow["jobs"] = {"train": flow["jobs"]["train"]}
    flow["jobs"]["train"].pop("needs")
    plain = copy.deepcopy(flow)
    step = next(s for s in plain["jobs"]["train"]["steps"] if s.get("name", "").startswith(
        "train "))
    step["run"] = step["run"].replace(".venv/bin/python", "python")
    with pytest.raises(RunnerError, match="ModuleNotFoundError"):
        run_workflow(plain, tmp_path / "plain", VALUES)
    no_ext = copy.deepcopy(flow)
    no_ext["jobs"]["train"]["steps"] = [s for s in no_ext["jobs"]["train"]["steps"]
                                        if "extension add" not in s.get("run", "")]
    with pytest.raises(RunnerError, match="the ml extension is not installed"):
        run_workflow(no_ext, tmp_path / "no-ext", VALUES)
    no_oidc = copy.deepcopy(flow)
    no_oidc.pop("permissions")
    with pytest.raises(RunnerError, match="id-token: write"):
        run_workflow(no_oidc, tmp_path / "no-oidc", VALUES)


def test_a_deploy_without_the_venv_cannot_start_the_program(tmp_path: Path) -> None:
    flow = azure_cicd.workflow(ROOT / "mlops.yaml")
    job = flow["jobs"]["deploy-azure-dev"]
    job.pop("needs")
    job["steps"] = [s for s in job["steps"] if s.get("run") != "make install"]
    with pytest.raises(RunnerError, match=r"python: not in the checkout"):
        run_workflow({**flow, "jobs": {"deploy-azure-dev": job}}, tmp_path, VALUES)
