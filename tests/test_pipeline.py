"""The pipeline definition: wiring checked against each step's own signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.config import ConfigError, load_config
from mlops_kit.pipeline import load_pipeline, parse_pipeline
from mlops_kit.steps import NAMES
from tests.conftest import ROOT

PIPELINE = ROOT / "src" / "mlops_kit" / "pipelines" / "training.yaml"


def raw() -> dict[str, Any]:
    return yaml.safe_load(PIPELINE.read_text())  # type: ignore[no-any-return]


def test_training_pipeline_is_the_six_steps_in_order() -> None:
    pipeline = load_pipeline(load_config(ROOT / "mlops.yaml"))
    assert [s.name for s in pipeline.steps] == list(NAMES)
    evaluate = pipeline.step("evaluate")
    assert evaluate.upstream == {"train", "features"}
    assert evaluate.inputs["production_model"] == "registry.production"
    assert pipeline.step("ingest").outputs["raw"].publish == "raw"
    assert pipeline.step("register").cache is False
    for step in pipeline.steps:
        assert step.spec.name == step.name


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r["steps"].append({"name": "deploy"}), "no step module mlops_kit.steps.deploy"),
    (lambda r: r["steps"][1]["inputs"].update(raw="nope.raw"), "not an output of an earlier step"),
    (lambda r: r["steps"][1]["inputs"].pop("raw"), "do not match the step's channels"),
    (lambda r: r["steps"][0]["outputs"].update(extra={}), "outputs"),
    (lambda r: r["steps"].reverse(), "not an output of an earlier step"),
    (lambda r: r.update(steps=[]), "needs a 'steps' list"),
])
def test_bad_wiring_is_refused(mutate: Any, message: str) -> None:
    data = raw()
    mutate(data)
    with pytest.raises(ConfigError, match=message):
        parse_pipeline(data, Path("p.yaml"))


def test_missing_pipeline_file(tmp_path: Path) -> None:
    text = "pipeline: nowhere.yaml\n" + (ROOT / "mlops.yaml").read_text()
    (tmp_path / "mlops.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"pipeline: file .*nowhere\.yaml not found"):
        load_pipeline(load_config(tmp_path / "mlops.yaml"))
