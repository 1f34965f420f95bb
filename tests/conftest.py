"""Shared fixtures: a small copy of the example project in a temp folder, isolated state."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops_kit.config import LoadedConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
# The CDK runs on Node through jsii: quiet, offline, caches in ignored folders (as `make` sets).
for _var, _value in {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
                     "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
                     "CDK_DISABLE_CLI_TELEMETRY": "true",
                     "JSII_RUNTIME_PACKAGE_CACHE_ROOT": str(ROOT / ".cache" / "jsii")}.items():
    os.environ.setdefault(_var, _value)


def write_config(folder: Path, changes: dict[str, Any] | None = None) -> Path:
    """The example config, made small (2,000 rows, 2 trials), with `changes` merged in."""
    from mlops_kit.config import deep_merge

    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    raw = deep_merge(raw, {"data": {"source": {"rows": 2000}},
                           "model": {"search": {"trials": 2}, "params": {"n_estimators": 60}},
                           "quality_gate": {"min_value": 0.6}})
    raw["image"] = {"dockerfile": str(ROOT / "docker" / "Dockerfile")}
    raw = deep_merge(raw, changes or {})
    model = (changes or {}).get("model", {})
    if "params" in model:  # a framework's hyper-parameters replace, never merge
        raw["model"]["params"] = model["params"]
    if "space" in model.get("search", {}):
        raw["model"]["search"]["space"] = model["search"]["space"]
    source = (changes or {}).get("data", {}).get("source", {})
    if source.get("kind", "generator") != "generator":
        raw["data"]["source"] = source
    path = folder / "mlops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake credentials and region, no user AWS config, every AWS call served by moto."""
    from moto import mock_aws

    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_GIT_COMMIT", "0" * 40)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def loaded(config_path: Path) -> LoadedConfig:
    return load_config(config_path)


@dataclass(frozen=True)
class Trained:
    """A model trained once per test session on the small example project."""

    config: Path
    state: Path
    model_dir: Path
    rows: pd.DataFrame  # held-out source rows (the test split), target included


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from mlops_kit.runtime.runner import run_pipeline

    folder = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLOPS_STATE_DIR", str(folder / "state"))
        env.setenv("MLOPS_GIT_COMMIT", "0" * 40)
        config = write_config(folder)
        run_pipeline(load_config(config), params={"ingest_date": "2026-01-01"})
    state = folder / "state"
    split = next(state.glob("artifacts/features/*/training_set"))
    rows = pd.read_parquet(split / "test_source.parquet")
    return Trained(config, state, state / "registry" / "churn-classifier" / "1", rows)


def register_job(tmp_path: Path, env: str, backend: str, registry: Any) -> Any:
    """A register step job on `backend`: a trained model folder and a passed evaluation."""
    from mlops_kit.steps.base import Job

    loaded = load_config(ROOT / "mlops.yaml", env=env, sets=[f"registry.backend={backend}"])
    model = tmp_path / "trained"
    model.mkdir(exist_ok=True)
    (model / "model.ubj").write_bytes(b"w")
    (model / "training.json").write_text(json.dumps({"best_params": {"eta": 0.1},
                                                     "mlflow_run_id": "run-9"}))
    (model / "_lineage.json").write_text(json.dumps({"data_version": "d" * 64,
                                                     "curated_version": "c" * 64}))
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir(exist_ok=True)
    (evaluation / "evaluation.json").write_text(json.dumps(
        {"passed": True, "reasons": ["PASS roc_auc"], "metrics": {"roc_auc": 0.88}}))
    return Job(loaded, {"model": model, "evaluation": evaluation},
               {"registration": tmp_path / "out"}, {"run_id": "p-1"}, {"registry": registry})


def refuses_bad_input(registry: Any, add: Any, model_dir: Path, model: str) -> None:
    """What every cloud registry must refuse once `model` has one version (`add` registers)."""
    from mlops_kit.registry import RegistryError

    add(registry, model_dir)
    with pytest.raises(RegistryError, match=r"no version 4 \(versions: 1\)"):
        registry.get(model, 4)
    with pytest.raises(RegistryError, match=r"no version 4"):
        registry.download(model, 4, model_dir.parent / "dl")
    with pytest.raises(RegistryError, match="allowed: PendingManualApproval, Approved"):
        registry.set_status(model, 1, "Live")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="allowed"):
        add(registry, model_dir, status="Deployed")
    with pytest.raises(RegistryError, match="does not exist"):
        add(registry, model_dir.parent / "missing")
    assert [v.version for v in registry.versions(model)] == [1]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small model folder (a booster and a nested file) for the registry tests."""
    folder = tmp_path / "model"
    (folder / "meta").mkdir(parents=True)
    (folder / "model.ubj").write_bytes(b"booster-bytes")
    (folder / "meta" / "features.json").write_text("[]")
    return folder
