"""The Azure ML registry back-end, on a stand-in MLClient (tests/cloudsim/azureml_registry.py,
shared with the pipeline harness) that checks every Model it receives with azure-ai-ml's own
schema and REST model, stores it as the service would, and serves it back through the SDK's own
deserializer (`Model._from_rest_object`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.adapters.azure import naming
from mlops_kit.adapters.azure.registry import METADATA_PROPERTY, STATUS_TAG, AzureMLRegistry, tags
from mlops_kit.config import ConfigError, load_config
from mlops_kit.fileio import digest_dir
from mlops_kit.registry import RegistryError, fetch_production, open_registry, production
from mlops_kit.steps import register as register_step
from tests.cloudsim.azureml_registry import StandInClient
from tests.conftest import ROOT, refuses_bad_input, register_job

pytestmark = pytest.mark.filterwarnings(  # azure-ai-ml's own marshmallow 4 notices
    "ignore::marshmallow.warnings.Marshmallow4Warning")
MODEL = "churn-classifier"
REGISTRY = "churn-azure-dev-models"


@pytest.fixture
def client(tmp_path: Path) -> StandInClient:
    return StandInClient(tmp_path / "storage", REGISTRY)


@pytest.fixture
def registry(client: StandInClient) -> AzureMLRegistry:
    loaded = load_config(ROOT / "mlops.yaml", env="azure_dev",
                         sets=["registry.backend=azureml"])
    reg = open_registry(loaded, ml_client=client)
    assert isinstance(reg, AzureMLRegistry)
    return reg


def add(reg: AzureMLRegistry, model_dir: Path, **changes: Any) -> Any:
    args: dict[str, Any] = {"status": "Approved", "metrics": {"roc_auc": 0.81},
                            "params": {"max_depth": 5},
                            "lineage": {"pipeline_run": "r1", "git": {"commit": "c" * 40},
                                        "packages": {"python": "3.11"}},
                            "description": "test model"}
    return reg.register(MODEL, model_dir, **{**args, **changes})


def test_names_line_up_with_the_pulumi_program(registry: AzureMLRegistry) -> None:
    assert registry.registry == naming.registry("churn", "azure_dev") == REGISTRY
    assert registry.asset(MODEL) == "churn-churn-classifier"
    assert registry.uri(MODEL, 3) == naming.model_uri(REGISTRY, "churn", MODEL, "3")


def test_register_list_get_approve_download(registry: AzureMLRegistry, client: StandInClient,
                                            model_dir: Path, tmp_path: Path) -> None:
    assert registry.versions(MODEL) == []
    v1 = add(registry, model_dir)
    v2 = add(registry, model_dir, status="PendingManualApproval", metrics={"roc_auc": 0.9},
             lineage={"pipeline_run": "r2"})
    assert (v1.version, v1.status, v2.version, v2.status) == (1, "Approved", 2,
                                                              "PendingManualApproval")
    assert v1.artifact_uri == f"azureml://registries/{REGISTRY}/models/churn-churn-classifier/versions/1"
    assert v1.params == {"max_depth": 5} and v1.description == "test model"
    assert v1.lineage["packages"] == {"python": "3.11"} and v1.created.endswith("+00:00")
    assert [(v.version, v.status) for v in registry.versions(MODEL)] == [
        (1, "Approved"), (2, "PendingManualApproval")]
    assert registry.get(MODEL, 2) == registry.versions(MODEL)[1]
    assert production(registry, MODEL).version == 1  # type: ignore[union-attr]

    sent = client.models.received[0]
    assert (sent.type, sent.stage, sent.tags[STATUS_TAG]) == ("custom_model", "Production",
                                                              "Approved")
    assert sent.tags["metric.roc_auc"] == "0.81" and sent.tags["lineage.git.commit"] == "c" * 40
    assert "lineage.packages.python" not in sent.tags  # summary only; all of it in properties
    assert json.loads(sent.properties[METADATA_PROPERTY])["lineage"]["packages"]

    approved = registry.set_status(MODEL, 2, "Approved")
    assert approved.status == "Approved" and approved.metrics == {"roc_auc": 0.9}
    assert client.models.received[-1].stage == "Production"
    assert production(registry, MODEL).version == 2  # type: ignore[union-attr]
    assert registry.set_status(MODEL, 2, "Rejected").status == "Rejected"
    assert client.models.received[-1].stage == "Archived"
    assert production(registry, MODEL).version == 1  # type: ignore[union-attr]

    dest = registry.download(MODEL, 1, tmp_path / "dl")
    assert (dest / "model.ubj").read_bytes() == b"booster-bytes"
    assert (dest / "meta" / "features.json").read_text() == "[]"
    fetched = fetch_production(registry, MODEL, tmp_path / "prod")
    assert fetched is not None and fetched.version == 1
    assert json.loads((tmp_path / "prod" / "registry_version.json").read_text())["version"] == 1


def test_unknown_versions_and_bad_input(registry: AzureMLRegistry, model_dir: Path) -> None:
    with pytest.raises(RegistryError, match=r"'churn-classifier' is not registered .*"
                                            "churn-azure-dev-models"):
        registry.get(MODEL, 1)
    refuses_bad_input(registry, add, model_dir, MODEL)


def test_service_errors_become_registry_errors(registry: AzureMLRegistry,
                                               client: StandInClient, model_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import HttpResponseError

    add(registry, model_dir)
    client.models.wire.pop(("churn-churn-classifier", "1"))
    client.models.wire[("churn-churn-classifier", "7")] = {}  # a version someone else took

    def refuse(model: Any) -> Any:
        raise HttpResponseError(message="409 Conflict: version exists")

    monkeypatch.setattr(client.models, "create_or_update", refuse)
    monkeypatch.setattr(client.models, "list", lambda name: [])
    with pytest.raises(RegistryError, match=r"register churn-classifier: .*409 Conflict"):
        add(registry, model_dir)


def test_a_wrong_model_field_fails_the_sdk_schema(client: StandInClient, model_dir: Path) -> None:
    from azure.ai.ml.entities import Model
    from marshmallow.exceptions import ValidationError

    with pytest.raises(ValidationError, match="custom_model"):
        client.models.create_or_update(Model(name="x", version="1", type="custom",
                                             path=str(model_dir)))


def test_tags_are_clipped_and_summarised() -> None:
    out = tags("Approved", {"auc": 0.5}, {"data_version": "d" * 400, "other": "x"})
    assert out == {STATUS_TAG: "Approved", "metric.auc": "0.5",
                   "lineage.data_version": "d" * 253 + "..."}


def test_backend_must_be_known_and_match_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"registry\.backend.*'mlflow'.*'azureml'"):
        load_config(ROOT / "mlops.yaml", sets=["registry.backend=mlflow"])
    on_gcp = load_config(ROOT / "mlops.yaml", env="gcp_dev", sets=["registry.backend=azureml"])
    with pytest.raises(RegistryError, match="'gcp_dev' is not an azure environment"):
        open_registry(on_gcp)
    loaded = load_config(ROOT / "mlops.yaml", sets=["registry.backend=azureml"])
    with pytest.raises(RegistryError, match="not an azure environment"):
        open_registry(loaded)
    with pytest.raises(TypeError, match="unknown AzureMLRegistry options"):
        AzureMLRegistry.from_config(loaded, ml_clinet=None)


# --- the steps on this back-end ---------------------------------------------------------------


@pytest.mark.parametrize(("env", "status"), [("azure_dev", "Approved"),
                                             ("azure_staging", "PendingManualApproval")])
def test_register_step_on_azureml(tmp_path: Path, client: StandInClient, env: str,
                                  status: str) -> None:
    loaded = load_config(ROOT / "mlops.yaml", env=env, sets=["registry.backend=azureml"])
    reg = open_registry(loaded, ml_client=client)
    assert register_step.run(register_job(tmp_path, env, "azureml", reg)) == {
        "registered": True, "version": 1, "status": status}
    v = reg.get(MODEL, 1)
    digest = digest_dir(tmp_path / "trained")["digest"]
    assert v.lineage["model_digest"] == digest and v.lineage["pipeline_run"] == "p-1"
    assert v.lineage["data_version"] == "d" * 64
    assert v.metrics == {"roc_auc": 0.88} and v.params == {"eta": 0.1}
    assert client.models.received[0].tags["lineage.model_digest"] == digest
    assert register_step.run(register_job(tmp_path, env, "azureml", reg)) == {
        "registered": False, "unchanged": "same as version 1", "already_version": 1}


def test_job_fetches_production_through_azureml(tmp_path: Path, client: StandInClient,
                                                model_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_kit.adapters.azure import registry as module
    from mlops_kit.runtime import job

    monkeypatch.setattr(module, "_client", lambda *_: client)
    loaded = load_config(ROOT / "mlops.yaml", env="azure_dev", sets=["registry.backend=azureml"])
    add(open_registry(loaded), model_dir)
    dest = tmp_path / "production"
    _, _, inputs = job._prepare("evaluate", job._arguments([
        "--config", str(ROOT / "mlops.yaml"), "--env", "azure_dev",
        "--set", "registry.backend=azureml", "--input", f"production_model={dest}"])[0])
    assert inputs["production_model"] == dest
    assert (dest / "model.ubj").read_bytes() == b"booster-bytes"
    assert json.loads((dest / "registry_version.json").read_text())["artifact_uri"].endswith(
        "/versions/1")
