"""Multiclass answers name their classes: a CSV header line, `labels` in JSON, in the order
of the model's classes (sorted at training), through the handler and batch alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_kit.config import load_config
from mlops_kit.datasets.churn import generate
from mlops_kit.models import PackagedModel, load_model
from mlops_kit.serving import handler
from mlops_kit.serving.batch import transform
from mlops_kit.serving.shadow import _scores
from tests.conftest import write_config
from tests.test_train_evaluate import train_model, training_set

CLASSES = ["month-to-month", "one-year", "two-year"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> PackagedModel:
    folder = tmp_path_factory.mktemp("multiclass")
    declared = [{"name": "tenure_months", "inputs": ["tenure_months"]},
                {"name": "total_charges", "inputs": ["total_charges"]}]
    loaded = load_config(write_config(folder, {
        "data": {"schema": {"target": "contract"}}, "features": {"declared": declared},
        "model": {"task": "multiclass", "search": {"trials": 1, "space": {}},
                  "params": {"n_estimators": 10}},
        "quality_gate": {"metric": "accuracy", "min_value": None}}))
    train_model(loaded, training_set(loaded, folder, rows=500), folder / "m")
    return load_model(folder / "m")


BODY = "12,800.5\n40,3000\n"  # tenure_months, total_charges


def invoke(model: PackagedModel, accept: str) -> str:
    prediction = handler.predict_fn(handler.input_fn(BODY.encode(), "text/csv"), model)
    return handler.output_fn(prediction, accept)[0].decode()


def test_csv_answer_starts_with_the_class_names(model: PackagedModel) -> None:
    assert model.meta.classes == CLASSES
    lines = invoke(model, "text/csv").splitlines()
    assert lines[0] == ",".join(CLASSES)
    assert len(lines) == 3 and all(len(line.split(",")) == 3 for line in lines[1:])
    assert len(_scores(("\n".join(lines) + "\n").encode())) == 2  # the shadow log reads it


def test_json_answer_names_the_class_of_each_score(model: PackagedModel) -> None:
    for rec in json.loads(invoke(model, "application/json"))["predictions"]:
        assert rec["labels"] == CLASSES
        best = max(range(3), key=lambda k: rec["scores"][k])
        assert rec["predicted_label"] == rec["labels"][best]


def test_batch_output_names_the_classes_once(model: PackagedModel, tmp_path: Path) -> None:
    rows = generate(25, seed=1)[["tenure_months", "total_charges"]]
    rows.to_csv(tmp_path / "in.csv", index=False, header=False)
    result = transform(model, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=10)
    lines = result.output.read_text().splitlines()
    assert result.rows == 25 and len(lines) == 26 and lines[0] == ",".join(CLASSES)
    assert all(line.count(",") == 2 and line[0].isdigit() for line in lines[1:])
    jsonl = transform(model, tmp_path / "in.csv", tmp_path / "out.jsonl", chunk_rows=10,
                      accept="application/json").output.read_text().splitlines()
    assert len(jsonl) == 25 and all(json.loads(x)["labels"] == CLASSES for x in jsonl)
