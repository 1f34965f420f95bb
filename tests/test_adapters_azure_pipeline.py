"""The Azure ML pipeline job rendered from the DAG loads with azure-ai-ml's own loader, and the
REST jobs a Schedule submits are what that SDK would send for the same YAML."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.adapters.azure import naming
from mlops_kit.adapters.azure.pipeline import command, pipeline_job, rest_jobs
from mlops_kit.config import load_config
from mlops_kit.pipeline import load_pipeline
from tests.conftest import ROOT

MODEL_URI = "azureml://registries/reg/models/churn-churn-classifier/versions/3"


def _load(tmp_path: Path, production: str | None) -> tuple[Any, Any, Any]:
    from azure.ai.ml import load_job

    loaded = load_config(ROOT / "mlops.yaml", env="azure_dev")
    pipeline = load_pipeline(loaded)
    spec = pipeline_job(loaded, pipeline, "churn-classifier", "train-cluster",
                        "acr.azurecr.io/mlops-kit:1", production)
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = load_job(path)
    return loaded, pipeline, job


@pytest.mark.parametrize("production", [None, MODEL_URI])
def test_job_loads_and_its_rest_form_matches_ours(tmp_path: Path, production: str | None) -> None:
    loaded, pipeline, job = _load(tmp_path, production)
    assert list(job.jobs) == [s.name for s in pipeline.steps]
    rest = job._to_rest_object().as_dict()["properties"]
    ours = rest_jobs(loaded, pipeline, {s.name: "id" for s in pipeline.steps},
                     production is not None)
    for name, theirs in rest["jobs"].items():
        theirs = {k: v for k, v in theirs.items() if k not in ("_source", "componentId")}
        mine = {k: v for k, v in ours[name].items() if k != "componentId"}
        assert theirs == mine, name
    assert rest["settings"]["default_compute"] == "train-cluster"
    assert bool(rest.get("inputs")) is (production is not None)


def test_bindings_follow_the_dag(tmp_path: Path) -> None:
    _, pipeline, job = _load(tmp_path, MODEL_URI)
    for step in pipeline.steps:
        for channel, source in step.inputs.items():
            bound = str(job.jobs[step.name].inputs[channel]._data)
            if source == "registry.production":
                assert bound == "${{parent.inputs.production_model}}"
            else:
                src_step, _, out = source.partition(".")
                assert bound == f"${{{{parent.jobs.{src_step}.outputs.{out}}}}}"


def test_published_outputs_land_in_their_lake_datastore(tmp_path: Path) -> None:
    loaded, _, job = _load(tmp_path, None)
    curated = job.jobs["validate"].outputs["curated"]
    assert curated.path == "azureml://datastores/lake_curated/paths/curated_customers/"
    assert naming.lake_table(loaded.config, "features") == "customer_features"
    assert job.jobs["train"].outputs["model"].path is None


def test_lake_table_names_match_the_local_lake() -> None:
    from mlops_kit.runtime.lake import ZONES, table_name

    loaded = load_config(ROOT / "mlops.yaml")
    assert all(naming.lake_table(loaded.config, z) == table_name(loaded, z) for z in ZONES)


def test_command_runs_the_step_through_the_job_entry_with_optional_inputs_guarded() -> None:
    loaded = load_config(ROOT / "mlops.yaml", env="azure_dev")
    evaluate = load_pipeline(loaded).step("evaluate")
    text = command(evaluate, loaded, "churn-classifier")
    assert text.startswith("python -m mlops_kit.runtime.job evaluate --config "
                           "/opt/mlops/mlops.yaml "
                           "--env azure_dev --model churn-classifier "
                           "--set registry.backend=azureml ")
    assert "$[[--input production_model=${{inputs.production_model}}]]" in text
    assert "--output evaluation=${{outputs.evaluation}}" in text
