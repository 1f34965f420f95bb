"""The Vertex AI registry back-end and the release step, on stand-in clients.

The stand-in ModelService / EndpointService accept only `google.cloud.aiplatform_v1` request
messages (whose constructors refuse unknown fields and wrong types), round-trip each through
its wire form, and apply Vertex's documented rules (model ids, version-only label updates,
alias syntax and uniqueness, traffic splits summing to 100). Storage is a folder-backed stand-in
of `google.cloud.storage.Client`. The ModelService and Storage stand-ins live in
`tests/cloudsim/gcp_clients.py`, which the Vertex pipeline harness shares.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.api_core.exceptions import FailedPrecondition, InvalidArgument, NotFound
from google.cloud.aiplatform_v1 import types

from mlops_kit.adapters.gcp import naming, release, serve
from mlops_kit.adapters.gcp.registry import PRODUCTION_ALIAS, STATUS_LABEL, VertexRegistry, labels
from mlops_kit.config import load_config
from mlops_kit.fileio import digest_dir
from mlops_kit.registry import RegistryError, fetch_production, open_registry, production
from mlops_kit.steps import register as register_step
from tests.cloudsim.gcp_clients import Done, StandInModels, StandInStorage, wire
from tests.conftest import ROOT, refuses_bad_input, register_job

MODEL = "churn-classifier"
LOCATION = "projects/churn-dev-111111/locations/europe-west1"
RESOURCE = f"{LOCATION}/models/churn-churn-classifier"


class StandInEndpoints:
    """EndpointServiceClient: get / deploy (shared pool) / undeploy, with traffic rules."""

    def __init__(self, models: StandInModels) -> None:
        self.models = models
        self.endpoints: dict[str, types.Endpoint] = {}
        self.requests: list[Any] = []
        self.ids = itertools.count(100)

    def get_endpoint(self, request: Any) -> types.Endpoint:
        name = wire(request, types.GetEndpointRequest).name
        return types.Endpoint(self.endpoints.setdefault(name, types.Endpoint(name=name)))

    def deploy_model(self, request: Any) -> Done:
        req = wire(request, types.DeployModelRequest)
        self.requests.append(req)
        endpoint = self.endpoints[req.endpoint]
        self.models._find(req.deployed_model.model)  # the version must exist
        assert re.fullmatch(rf"{LOCATION}/deploymentResourcePools/[a-z0-9-]+",
                            req.deployed_model.shared_resources)
        assert sum(req.traffic_split.values()) == 100
        deployed = types.DeployedModel(req.deployed_model)
        deployed.id = str(next(self.ids))
        deployed.model, _, deployed.model_version_id = req.deployed_model.model.partition("@")
        endpoint.deployed_models.append(deployed)
        endpoint.traffic_split = {(deployed.id if k == "0" else k): v
                                  for k, v in req.traffic_split.items()}
        return Done(types.DeployModelResponse(deployed_model=deployed))

    def undeploy_model(self, request: Any) -> Done:
        req = wire(request, types.UndeployModelRequest)
        self.requests.append(req)
        endpoint = self.endpoints[req.endpoint]
        if endpoint.traffic_split.get(req.deployed_model_id) and not req.traffic_split:
            raise FailedPrecondition("the model has traffic: give the new traffic split")
        kept = [d for d in endpoint.deployed_models if d.id != req.deployed_model_id]
        assert len(kept) == len(endpoint.deployed_models) - 1, "unknown deployed model"
        del endpoint.deployed_models[:]
        endpoint.deployed_models.extend(kept)
        endpoint.traffic_split = dict(req.traffic_split) or dict(endpoint.traffic_split)
        return Done(types.UndeployModelResponse())


@pytest.fixture
def models() -> StandInModels:
    return StandInModels()


@pytest.fixture
def storage(tmp_path: Path) -> StandInStorage:
    return StandInStorage(tmp_path / "gcs")


def open_vertex(models: StandInModels, storage: StandInStorage,
                env: str = "gcp_dev") -> VertexRegistry:
    loaded = load_config(ROOT / "mlops.yaml", env=env, sets=["registry.backend=vertex"])
    reg = open_registry(loaded, model_client=models, storage_client=storage)
    assert isinstance(reg, VertexRegistry)
    return reg


@pytest.fixture
def registry(models: StandInModels, storage: StandInStorage) -> VertexRegistry:
    return open_vertex(models, storage)


def add(reg: VertexRegistry, model_dir: Path, **changes: Any) -> Any:
    args: dict[str, Any] = {"status": "Approved", "metrics": {"roc_auc": 0.81},
                            "params": {"max_depth": 5},
                            "lineage": {"pipeline_run": "r1", "git": {"commit": "C" * 40}},
                            "description": "test model"}
    return reg.register(MODEL, model_dir, **{**args, **changes})


def aliases(models: StandInModels) -> dict[str, list[str]]:
    return {m.version_id: sorted(m.version_aliases) for m in models.models[RESOURCE]}


def test_register_list_get_approve_download(registry: VertexRegistry, models: StandInModels,
                                            model_dir: Path, tmp_path: Path) -> None:
    assert registry.versions(MODEL) == []
    v1 = add(registry, model_dir)
    v2 = add(registry, model_dir, status="PendingManualApproval", metrics={"roc_auc": 0.9},
             lineage={"pipeline_run": "r2"})
    assert (v1.version, v1.status, v2.version, v2.status) == (1, "Approved", 2,
                                                              "PendingManualApproval")
    bucket = naming.bucket_name("churn-dev-111111", "churn-gcp-dev", "pipelines")
    assert re.fullmatch(rf"gs://{bucket}/models/churn-churn-classifier/\d{{8}}T\d{{6}}Z-\w{{8}}/"
                        "model/", v1.artifact_uri)
    assert v1.params == {"max_depth": 5} and v1.description == "test model"
    assert v1.created == "2026-11-01T10:00:00+00:00"
    assert [(v.version, v.status) for v in registry.versions(MODEL)] == [
        (1, "Approved"), (2, "PendingManualApproval")]
    assert registry.get(MODEL, 2) == registry.versions(MODEL)[1]
    assert production(registry, MODEL).version == 1  # type: ignore[union-attr]
    assert aliases(models) == {"1": ["default", PRODUCTION_ALIAS], "2": []}

    first, second = (r for r in models.requests if isinstance(r, types.UploadModelRequest))
    assert (first.model_id, first.parent_model) == ("churn-churn-classifier", "")
    assert (second.model_id, second.parent_model) == ("", RESOURCE)
    spec = first.model.container_spec
    assert spec.image_uri.endswith("/mlops-kit/churn:latest")
    assert (spec.predict_route, spec.health_route) == ("/invocations", "/ping")
    assert list(spec.command) == ["python", "-m", "mlops_kit.adapters.gcp.serve"]
    assert STATUS_LABEL not in first.model.labels  # status is a version label, set after
    assert models.models[RESOURCE][0].labels[STATUS_LABEL] == "approved"
    assert models.models[RESOURCE][0].labels["metric-roc_auc"] == "0_81"
    assert models.models[RESOURCE][0].labels["lineage-git-commit"] == "c" * 40

    assert registry.set_status(MODEL, 2, "Approved").status == "Approved"
    assert aliases(models) == {"1": ["default"], "2": [PRODUCTION_ALIAS]}
    assert production(registry, MODEL).version == 2  # type: ignore[union-attr]
    assert registry.set_status(MODEL, 2, "Rejected").status == "Rejected"
    assert aliases(models) == {"1": ["default", PRODUCTION_ALIAS], "2": []}
    registry.set_status(MODEL, 1, "Rejected")
    assert aliases(models) == {"1": ["default"], "2": []}
    assert production(registry, MODEL) is None

    dest = registry.download(MODEL, 1, tmp_path / "dl")
    assert (dest / "model.ubj").read_bytes() == b"booster-bytes"
    assert sorted(p.name for p in dest.rglob("*")) == ["features.json", "meta", "model.ubj"]
    registry.set_status(MODEL, 2, "Approved")
    fetched = fetch_production(registry, MODEL, tmp_path / "prod")
    assert fetched is not None and fetched.metrics == {"roc_auc": 0.9}


def test_unknown_versions_and_bad_input(registry: VertexRegistry, model_dir: Path) -> None:
    with pytest.raises(RegistryError, match=rf"'churn-classifier' is not registered .*{RESOURCE}"):
        registry.get(MODEL, 1)
    refuses_bad_input(registry, add, model_dir, MODEL)


def test_failed_upload_leaves_no_files(registry: VertexRegistry, models: StandInModels,
                                       storage: StandInStorage, model_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: Any) -> Any:
        raise InvalidArgument("container image not found")

    monkeypatch.setattr(models, "upload_model", refuse)
    with pytest.raises(RegistryError, match=r"register churn-classifier: .*image not found"):
        add(registry, model_dir)
    assert storage.list_blobs(registry.bucket) == []


def test_labels_follow_vertex_rules() -> None:
    out = labels("PendingManualApproval", {f"m{i}": i / 3 for i in range(80)},
                 {"pipeline_run": "Run/ID 7", "model_digest": "d" * 64})
    assert len(out) == 64 and out[STATUS_LABEL] == "pending"
    assert out["lineage-pipeline_run"] == "run_id_7" and len(out["lineage-model_digest"]) == 63
    assert out["metric-m1"] == "0_3333333333333333"
    assert all(re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k) and re.fullmatch(r"[a-z0-9_-]{0,63}", v)
               for k, v in out.items())


def test_backend_needs_a_gcp_environment(models: StandInModels,
                                         storage: StandInStorage) -> None:
    loaded = load_config(ROOT / "mlops.yaml", env="azure_dev", sets=["registry.backend=vertex"])
    with pytest.raises(RegistryError, match="'azure_dev' is not a gcp environment"):
        open_registry(loaded, model_client=models, storage_client=storage)
    with pytest.raises(TypeError, match="unknown VertexRegistry options"):
        VertexRegistry.from_config(loaded, model_clinet=models)


# --- the steps on this back-end ---------------------------------------------------------------


@pytest.mark.parametrize(("env", "status"), [("gcp_dev", "Approved"),
                                             ("gcp_prod", "PendingManualApproval")])
def test_register_step_on_vertex(tmp_path: Path, models: StandInModels,
                                 storage: StandInStorage, env: str, status: str) -> None:
    reg = open_vertex(models, storage, env)
    assert register_step.run(register_job(tmp_path, env, "vertex", reg)) == {
        "registered": True, "version": 1, "status": status}
    v = reg.get(MODEL, 1)
    assert v.lineage["model_digest"] == digest_dir(tmp_path / "trained")["digest"]
    assert v.lineage["curated_version"] == "c" * 64 and v.params == {"eta": 0.1}
    assert register_step.run(register_job(tmp_path, env, "vertex", reg)) == {
        "registered": False, "unchanged": "same as version 1", "already_version": 1}


def test_job_fetches_production_through_vertex(tmp_path: Path, models: StandInModels,
                                               storage: StandInStorage, model_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_kit.adapters.gcp import registry as module
    from mlops_kit.runtime import job

    monkeypatch.setattr(module, "model_client", lambda *_: models)
    monkeypatch.setattr(module, "_storage", lambda *_: storage)
    add(open_vertex(models, storage), model_dir)
    dest = tmp_path / "production"
    _, _, inputs = job._prepare("evaluate", job._arguments([
        "--config", str(ROOT / "mlops.yaml"), "--env", "gcp_dev",
        "--set", "registry.backend=vertex", "--input", f"production_model={dest}"])[0])
    assert (inputs["production_model"] / "model.ubj").read_bytes() == b"booster-bytes"


# --- release: deploy the approved version -----------------------------------------------------


def test_release_deploys_the_production_version_into_the_pool(
        tmp_path: Path, models: StandInModels, storage: StandInStorage, model_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    reg = open_vertex(models, storage)
    endpoints = StandInEndpoints(models)
    run = ["deploy", "--config", str(ROOT / "mlops.yaml"), "--env", "gcp_dev"]
    options = {"endpoints": endpoints, "model_client": models, "storage_client": storage}
    assert release.main([*run, "--require"], **options) == 1
    assert "no approved version of churn-classifier" in capsys.readouterr().err
    assert release.main(run, **options) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"model": MODEL, "version": None, "changed": False}]

    add(reg, model_dir)
    assert release.main(run, **options) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert (first["version"], first["changed"]) == (1, True)
    request = endpoints.requests[-1]
    loaded = load_config(ROOT / "mlops.yaml", env="gcp_dev")
    endpoint_id = naming.endpoint_id("churn", "gcp_dev", MODEL)
    assert request.endpoint == f"{LOCATION}/endpoints/{endpoint_id}"
    assert request.deployed_model.model == f"{RESOURCE}@1"
    assert request.deployed_model.shared_resources == (
        f"{LOCATION}/deploymentResourcePools/{naming.resource_pool('churn', 'gcp_dev', MODEL)}")
    assert dict(request.traffic_split) == {"0": 100}
    assert release.deploy(endpoints, reg, loaded, MODEL)["changed"] is False  # idempotent

    add(reg, model_dir, metrics={"roc_auc": 0.9})  # auto-approved in dev: the new production
    second = release.deploy(endpoints, reg, loaded, MODEL)
    assert (second["version"], second["undeployed"]) == (2, [first["deployed_model_id"]])
    served = endpoints.endpoints[request.endpoint]
    assert [(d.model, d.model_version_id) for d in served.deployed_models] == [(RESOURCE, "2")]
    assert dict(served.traffic_split) == {second["deployed_model_id"]: 100}


def test_release_errors_are_reported(models: StandInModels, storage: StandInStorage,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    def down(request: Any) -> Any:
        raise NotFound("endpoint")

    endpoints = StandInEndpoints(models)
    endpoints.get_endpoint = down  # type: ignore[method-assign]
    reg = open_vertex(models, storage)
    reg.register(MODEL, Path(__file__).parent, status="Approved", metrics={}, params={},
                 lineage={})
    code = release.main(["deploy", "--config", str(ROOT / "mlops.yaml"), "--env", "gcp_dev"],
                        endpoints=endpoints, model_client=models, storage_client=storage)
    assert code == 1 and "error: 404 endpoint" in capsys.readouterr().err
    assert release.main(["deploy", "--config", str(ROOT / "mlops.yaml"), "--env", "nope"],
                        endpoints=endpoints) == 2


# --- serving on Vertex: fetch the artifact folder -----------------------------------------------


def test_serve_fetches_the_artifacts(tmp_path: Path, storage: StandInStorage,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in ("m/v1/model/model.ubj", "m/v1/model/meta/f.json", "m/v1/metadata.json"):
        storage.bucket("b").blob(rel).upload_from_string("x")
    assert serve.fetch(storage, "gs://b/m/v1/model", tmp_path / "model") == 2
    assert sorted(p.relative_to(tmp_path).as_posix()
                  for p in (tmp_path / "model").rglob("*.*")) == ["model/meta/f.json",
                                                                  "model/model.ubj"]
    with pytest.raises(FileNotFoundError, match="no model files at gs://b/empty/"):
        serve.fetch(storage, "gs://b/empty/", tmp_path / "none")
    monkeypatch.delenv("AIP_STORAGE_URI", raising=False)
    assert serve.main(storage) == 2
