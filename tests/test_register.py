"""Register: lineage recorded, approval per environment, never a model below the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_kit.config import load_config
from mlops_kit.fileio import digest_dir
from mlops_kit.registry.base import RUN_FILE
from mlops_kit.registry.local import LocalRegistry
from mlops_kit.steps import register
from mlops_kit.steps.base import Job, StepError
from tests.conftest import ROOT


def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.ubj").write_bytes(b"weights")
    (folder / "training.json").write_text(json.dumps({"best_params": {"max_depth": 4},
                                                      "mlflow_run_id": "r1"}))
    (folder / "_lineage.json").write_text(json.dumps({
        "data_version": "d" * 64, "curated_version": "c" * 64, "ingest_date": "2026-01-01"}))
    return folder


def evaluation(tmp_path: Path, passed: bool) -> Path:
    folder = tmp_path / "evaluation"
    folder.mkdir(exist_ok=True)
    (folder / "evaluation.json").write_text(json.dumps({
        "passed": passed, "reasons": ["PASS x" if passed else "FAIL x"],
        "metrics": {"roc_auc": 0.9}}))
    return folder


def job(tmp_path: Path, passed: bool, env: str | None = None,
        registry: LocalRegistry | None = None) -> Job:
    loaded = load_config(ROOT / "mlops.yaml", env=env)
    return Job(loaded, {"model": model_dir(tmp_path) if not (tmp_path / "model").exists()
                        else tmp_path / "model", "evaluation": evaluation(tmp_path, passed)},
               {"registration": tmp_path / "out"}, {"run_id": "run-1"},
               {"registry": registry or LocalRegistry(tmp_path / "reg")})


def test_registers_with_full_lineage(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    summary = register.run(job(tmp_path, True, registry=reg))
    assert summary == {"registered": True, "version": 1, "status": "Approved"}
    v = reg.get("churn-classifier", 1)
    assert v.lineage["data_version"] == "d" * 64 and v.lineage["curated_version"] == "c" * 64
    assert v.lineage["ingest_date"] == "2026-01-01"
    assert v.lineage["model_digest"] == digest_dir(tmp_path / "model")["digest"]
    assert v.lineage["git"] == {"commit": "0" * 40, "dirty": False}
    assert v.lineage["mlflow_run_id"] == "r1" and v.lineage["pipeline_run"] == "run-1"
    assert {"python", "pandas", "xgboost-cpu"} <= set(v.lineage["packages"])
    assert v.params == {"max_depth": 4} and v.metrics == {"roc_auc": 0.9}
    assert (Path(v.artifact_uri.removeprefix("file://")) / "model.ubj").read_bytes() == b"weights"


def test_prod_environment_needs_manual_approval(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    assert register.run(job(tmp_path, True, env="prod", registry=reg))["status"] == \
        "PendingManualApproval"


def test_failed_gate_is_never_registered(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    assert register.run(job(tmp_path, False, registry=reg)) == {"registered": False}
    assert reg.versions("churn-classifier") == []
    out = json.loads((tmp_path / "out" / "registration.json").read_text())
    assert out == {"registered": False, "reasons": ["FAIL x"]}


def test_same_model_is_not_registered_twice(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    register.run(job(tmp_path, True, registry=reg))
    assert register.run(job(tmp_path, True, registry=reg)) == {
        "registered": False, "unchanged": "same as version 1", "already_version": 1}


def test_a_retrained_identical_model_is_unchanged(tmp_path: Path) -> None:
    """Timings and run ids live in the run file, outside the digest: the same model trained
    again (new seconds, new MLflow run) is version 1, whose lineage stays its own run's."""
    reg = LocalRegistry(tmp_path / "reg")
    model = model_dir(tmp_path)
    (model / RUN_FILE).write_text(json.dumps({"mlflow_run_id": "first", "fit_seconds": 1.5}))
    assert register.run(job(tmp_path, True, registry=reg))["version"] == 1
    assert reg.get("churn-classifier", 1).lineage["mlflow_run_id"] == "first"
    (model / RUN_FILE).write_text(json.dumps({"mlflow_run_id": "second", "fit_seconds": 0.2}))
    again = job(tmp_path, True, registry=reg)
    again.params["run_id"] = "run-2"
    assert register.run(again)["unchanged"] == "same as version 1"
    out = json.loads((tmp_path / "out" / "registration.json").read_text())
    assert out["reasons"] == ["unchanged: same as version 1"] and out["already"]["version"] == 1
    assert out["lineage"]["mlflow_run_id"] == "second" and out["lineage"]["pipeline_run"] == "run-2"
    assert out["lineage"]["model_digest"] == reg.get("churn-classifier", 1).digest
    assert [v.lineage["pipeline_run"] for v in reg.versions("churn-classifier")] == ["run-1"]


def test_no_registry_service_is_an_error(tmp_path: Path) -> None:
    j = job(tmp_path, True)
    j.services = {}
    with pytest.raises(StepError, match="no model registry"):
        register.run(j)


def test_git_commit_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_GIT_COMMIT")
    assert register.git_commit(tmp_path) == {"commit": None, "dirty": None}
