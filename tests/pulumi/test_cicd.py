"""The committed Azure CI/CD workflow is what the generator writes now, and it gates prod."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import yaml

from mlops_pulumi.azure import cicd
from tests.conftest import ROOT
from tests.pulumi.conftest import two_models


def test_committed_workflow_is_up_to_date() -> None:
    assert (ROOT / cicd.OUTPUT).read_text() == cicd.render(ROOT / "mlops.yaml"), (
        "regenerate: PYTHONPATH=pulumi python -m mlops_pulumi.azure.cicd")


def test_test_train_then_each_environment_in_order() -> None:
    flow = cicd.workflow(ROOT / "mlops.yaml")
    assert flow["on"] == {"push": {"branches": ["main"]}}
    order = ["test", "train", "deploy-azure-dev", "deploy-azure-staging", "deploy-azure-prod"]
    assert list(flow["jobs"]) == order
    for before, job in pairwise(order):
        assert flow["jobs"][job]["needs"] == before
    prod = flow["jobs"]["deploy-azure-prod"]
    assert prod["environment"] == "azure_prod"
    builds = [s["run"] for s in prod["steps"] if s.get("name") == "image for azure_prod"]
    assert builds == ["az acr build --registry churnazureprodacr --image mlops-kit:latest "
                      "--file docker/Dockerfile --build-arg CONFIG=mlops.yaml "
                      "--build-arg CONFIG_PATH=/opt/mlops/mlops.yaml --build-arg EXTRAS=azureml "
                      "--build-arg GIT_COMMIT=${{ github.sha }} ."]
    train = [s.get("name") for s in flow["jobs"]["train"]["steps"]]
    assert train.index("image for azure_dev") < train.index("train churn-classifier")
    assert prod["steps"][-1]["with"] == {"command": "up", "stack-name": "azure_prod",
                                         "work-dir": "."}
    assert cicd.gated(ROOT / "mlops.yaml") == ["azure_staging", "azure_prod"]


def test_every_model_is_trained(tmp_path: Path) -> None:
    flow = cicd.workflow(two_models(tmp_path))
    names = [s.get("name") for s in flow["jobs"]["train"]["steps"]]
    assert "train churn-classifier" in names and "train churn-mlp" in names
    assert yaml.safe_load(cicd.render(two_models(tmp_path)).split("\n", 2)[2])["jobs"]
