"""The Azure ML pipeline job rendered from the DAG loads with azure-ai-ml's own loader, and the
REST jobs a Schedule submits are what that SDK would send for the same YAML."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.adapters.azure import naming
from mlops_kit.adapters.azure.pipeline import (
    RUN_ID,
    command,
    pipeline_job,
    rest_inputs,
    rest_jobs,
    source_uri,
)
from mlops_kit.config import load_config
from mlops_kit.pipeline import load_pipeline
from tests.conftest import ROOT

MODEL_URI = "azureml://registries/reg/models/churn-churn-classifier/versions/3"


def _csv_config(tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    raw["data"]["source"] = {"kind": "csv", "path": "data/landing"}
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _load(tmp_path: Path, production: str | None,
          config: Path = ROOT / "mlops.yaml") -> tuple[Any, Any, Any]:
    from azure.ai.ml import load_job

    loaded = load_config(config, env="azure_dev")
    pipeline = load_pipeline(loaded)
    spec = pipeline_job(loaded, pipeline, "churn-classifier", "train-cluster",
                        "acr.azurecr.io/mlops-kit:1", production)
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = load_job(path)
    return loaded, pipeline, job


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w.title() for w in rest)


@pytest.mark.parametrize(("production", "csv"), [(None, False), (MODEL_URI, False),
                                                 (None, True), (MODEL_URI, True)])
def test_job_loads_and_its_rest_form_matches_ours(tmp_path: Path, production: str | None,
                                                  csv: bool) -> None:
    config = _csv_config(tmp_path) if csv else ROOT / "mlops.yaml"
    loaded, pipeline, job = _load(tmp_path, production, config)
    assert list(job.jobs) == [s.name for s in pipeline.steps]
    rest = job._to_rest_object().as_dict()["properties"]
    ours = rest_jobs(loaded, pipeline, {s.name: "id" for s in pipeline.steps},
                     production is not None)
    for name, theirs in rest["jobs"].items():
        theirs = {k: v for k, v in theirs.items() if k not in ("_source", "componentId")}
        mine = {k: v for k, v in ours[name].items() if k != "componentId"}
        assert theirs == mine, name
    assert rest["settings"]["default_compute"] == "train-cluster"
    mine_inputs = {name: {_camel(k): v for k, v in spec.items()}
                   for name, spec in rest_inputs(loaded, pipeline, production).items()}
    assert (rest.get("inputs") or {}) == mine_inputs      # the empty ingest_date left out
    assert ("source" in mine_inputs) is csv and ("production_model" in mine_inputs) is \
        (production is not None)


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


def test_outputs_are_per_job_and_published_ones_also_go_to_their_lake_table(
        tmp_path: Path) -> None:
    loaded, pipeline, job = _load(tmp_path, None)
    for step in pipeline.steps:
        outputs = job.jobs[step.name].outputs
        assert all(outputs[ch].path is None for ch in step.outputs), step.name
        zones = sorted({o.publish for o in step.outputs.values() if o.publish})
        assert sorted(k for k in outputs if k not in step.outputs) == [f"lake_{z}" for z in zones]
        for zone in zones:
            lake = outputs[f"lake_{zone}"]
            assert (lake.path, lake.mode) == (f"azureml://datastores/lake_{zone}/paths/",
                                              "rw_mount")
    text = job.jobs["validate"].component.command
    assert "--output curated=${{outputs.curated}}" in text
    assert "--publish curated=${{outputs.lake_curated}}/curated_customers" in text
    assert "--publish quarantine=${{outputs.lake_quarantine}}/quarantine_customers" in text
    assert "--publish offline=${{outputs.lake_features}}/customer_features" in \
        job.jobs["features"].component.command
    assert naming.lake_table(loaded.config, "features") == "customer_features"


def test_source_and_date_reach_ingest(tmp_path: Path) -> None:
    _, _, job = _load(tmp_path, None, _csv_config(tmp_path))
    ingest = job.jobs["ingest"]
    assert job.inputs["source"].path == source_uri() == \
        "azureml://datastores/lake_raw/paths/landing/"
    assert job.inputs["source"].mode == "ro_mount"
    assert str(ingest.inputs["source"]._data) == "${{parent.inputs.source}}"
    assert str(ingest.inputs["ingest_date"]._data) == "${{parent.inputs.ingest_date}}"
    text = ingest.component.command
    assert "$[[--input source=${{inputs.source}}]]" in text
    assert "$[[--param ingest_date=${{inputs.ingest_date}}]]" in text
    _, _, generated = _load(tmp_path, None)           # a generated source reads no folder
    assert "source" not in generated.jobs["ingest"].inputs
    assert "source" not in (generated.inputs or {})


def test_register_records_the_pipeline_job_and_only_train_is_reused(tmp_path: Path) -> None:
    _, pipeline, job = _load(tmp_path, MODEL_URI)
    assert f"--param run_id={RUN_ID}" in job.jobs["register"].component.command
    assert RUN_ID == "$AZUREML_ROOT_RUN_ID"
    reused = {s.name: job.jobs[s.name].component.is_deterministic for s in pipeline.steps}
    assert reused == {s.name: s.reusable for s in pipeline.steps}
    assert [n for n, r in reused.items() if r] == ["train"]


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
