"""Train (search, determinism, both frameworks, every task) and evaluate (the gate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.config.model import QualityGate, SearchConfig
from mlops_kit.datasets.churn import generate
from mlops_kit.models import load_model
from mlops_kit.registry.base import RUN_FILE, model_digest
from mlops_kit.steps import evaluate, features, train, validate
from mlops_kit.steps.base import Job, write_parquet
from tests.conftest import write_config


def training_set(loaded: LoadedConfig, folder: Path, rows: int = 2000) -> Path:
    raw = generate(rows, seed=5, dirty_fraction=0.0)
    raw.insert(0, "_source_row", range(len(raw)))
    write_parquet(validate.validate(raw, loaded.config.table).valid,
                  folder / "curated" / "d=1" / "p.parquet")
    outs = {c: folder / c for c in ("offline", "online", "training_set")}
    features.run(Job(loaded, {"curated": folder / "curated"}, outs))
    return folder / "training_set"


def train_model(loaded: LoadedConfig, ts: Path, out: Path) -> dict[str, object]:
    return train.run(Job(loaded, {"training_set": ts}, {"model": out}, {"tracking": "off"}))


def test_search_space_sampling_is_seeded() -> None:
    space = SearchConfig.model_validate({"trials": 3, "space": {
        "d": {"int": [2, 4]}, "lr": {"loguniform": [0.01, 0.1]}, "k": {"choice": ["a", "b"]}}})
    a = [train.sample(space, np.random.default_rng(1)) for _ in range(3)]
    b = [train.sample(space, np.random.default_rng(1)) for _ in range(3)]
    assert a == b
    assert 2 <= a[0]["d"] <= 4 and 0.01 <= a[0]["lr"] <= 0.1 and a[0]["k"] in ("a", "b")


def test_training_is_deterministic_and_tracked(loaded: LoadedConfig, tmp_path: Path) -> None:
    ts = training_set(loaded, tmp_path)
    train_model(loaded, ts, tmp_path / "m1")
    summary = train.run(Job(loaded, {"training_set": ts}, {"model": tmp_path / "m2"}))
    rows = pd.read_parquet(ts / "test_source.parquet")
    p1 = load_model(tmp_path / "m1").predict_source(rows)
    p2 = load_model(tmp_path / "m2").predict_source(rows)
    np.testing.assert_array_equal(p1, p2)
    record = json.loads((tmp_path / "m2" / "training.json").read_text())
    assert len(record["trials"]) == summary["trials"] == 2
    run = json.loads((tmp_path / "m2" / RUN_FILE).read_text())
    assert run["mlflow_run_id"] and len(run["trial_seconds"]) == 2 and run["fit_seconds"] > 0
    assert run["mlflow_run_id"] != json.loads((tmp_path / "m1" / RUN_FILE).read_text())[
        "mlflow_run_id"]
    # same data, config and seed: the same model digest (timings are not in the digested files)
    assert model_digest(tmp_path / "m1") == model_digest(tmp_path / "m2")
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 3  # the parent and one per trial


def test_best_trial_is_chosen(loaded: LoadedConfig, tmp_path: Path) -> None:
    ts = training_set(loaded, tmp_path)
    train_model(loaded, ts, tmp_path / "m")
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    best = max(record["trials"], key=lambda t: t["metrics"]["roc_auc"])
    assert record["best_params"] == best["params"]


def test_pytorch_mlp_same_interface(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, {"model": {
        "framework": "pytorch",
        "params": {"epochs": 6, "hidden_sizes": [16], "learning_rate": 0.01},
        "search": {"trials": 1, "space": {}}}}))
    ts = training_set(loaded, tmp_path)
    train_model(loaded, ts, tmp_path / "m")
    rows = pd.read_parquet(ts / "test_source.parquet")
    model = load_model(tmp_path / "m")
    p = model.predict_source(rows)
    assert model.meta.framework == "pytorch" and p.shape == (len(rows),)
    assert ((p >= 0) & (p <= 1)).all()
    summary = evaluate.run(Job(loaded, {"model": tmp_path / "m", "training_set": ts},
                               {"evaluation": tmp_path / "ev"}))
    assert summary["roc_auc"] > 0.7
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert sum(ev["importance"].values()) == pytest.approx(1.0)  # permutation importance


@pytest.mark.parametrize(("task", "target", "metric"), [
    ("multiclass", "contract", "accuracy"), ("regression", "monthly_charges", "rmse")])
def test_other_tasks(tmp_path: Path, task: str, target: str, metric: str) -> None:
    declared = [{"name": "tenure_months", "inputs": ["tenure_months"]},
                {"name": "support_calls", "inputs": ["support_calls"]},
                {"name": "total_charges", "inputs": ["total_charges"]}]
    loaded = load_config(write_config(tmp_path, {
        "data": {"schema": {"target": target}}, "features": {"declared": declared},
        "model": {"task": task, "search": {"trials": 1, "space": {}}},
        "quality_gate": {"metric": metric, "min_value": None}}))
    ts = training_set(loaded, tmp_path)
    train_model(loaded, ts, tmp_path / "m")
    evaluate.run(Job(loaded, {"model": tmp_path / "m", "training_set": ts},
                     {"evaluation": tmp_path / "ev"}))
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["passed"] and metric in ev["metrics"]
    if task == "regression":
        assert ev["metrics"]["r2"] > 0.5  # total_charges ~ charges * tenure


def test_gate_rules() -> None:
    rule = QualityGate(metric="roc_auc", min_value=0.8, min_gain=0.01)
    assert evaluate.gate(rule, {"roc_auc": 0.85}, None)[0]
    ok, reasons = evaluate.gate(rule, {"roc_auc": 0.79}, None)
    assert not ok and reasons[0].startswith("FAIL roc_auc 0.7900 >= minimum 0.8000")
    assert not evaluate.gate(rule, {"roc_auc": 0.85}, {"roc_auc": 0.845})[0]
    assert evaluate.gate(rule, {"roc_auc": 0.86}, {"roc_auc": 0.845})[0]
    assert not evaluate.gate(rule, {"roc_auc": float("nan")}, None)[0]
    lower = QualityGate(metric="logloss", min_value=0.5, min_gain=0.0)
    assert evaluate.gate(lower, {"logloss": 0.4}, {"logloss": 0.45})[0]
    assert not evaluate.gate(lower, {"logloss": 0.46}, {"logloss": 0.45})[0]


def test_evaluate_compares_with_production(loaded: LoadedConfig, tmp_path: Path) -> None:
    ts = training_set(loaded, tmp_path)
    train_model(loaded, ts, tmp_path / "m")
    evaluate.run(Job(loaded, {"model": tmp_path / "m", "training_set": ts,
                              "production_model": tmp_path / "m"},
                     {"evaluation": tmp_path / "ev"}))
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["production_metrics"] == ev["metrics"]
    assert any("gain over production +0.0000" in r for r in ev["reasons"])
    assert {"roc.png", "confusion.png", "importance.png"} <= set(ev["plots"])
