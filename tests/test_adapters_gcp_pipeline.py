"""The Vertex AI pipeline spec compiled from the DAG loads back with KFP's own loader, and its
tasks, dependencies, commands, lake paths and machine follow the DAG and the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp.pipeline import machine_resources, pipeline_yaml
from mlops_kit.config import load_config
from mlops_kit.pipeline import EXTERNAL, load_pipeline
from tests.conftest import ROOT
from tests.pulumi.conftest import two_models

DAG = ROOT / "src" / "mlops_kit" / "pipelines" / "training.yaml"


def _load(path: Path, env: str, model: str = "churn-classifier") -> tuple[Any, Any, Any]:
    from kfp import components

    loaded = load_config(path, env=env, model=model)
    pipeline = load_pipeline(loaded)
    text = pipeline_yaml(loaded, pipeline, model)
    return loaded, pipeline, components.load_component_from_text(text).pipeline_spec


def _args(spec: Any, task: str) -> list[str]:
    executor = spec.root.dag.tasks[task].component_ref.name.replace("comp-", "exec-")
    return list(spec.deployment_spec["executors"][executor]["container"]["args"])


def test_spec_loads_with_kfp_and_has_one_task_per_step_wired_as_the_dag() -> None:
    _, pipeline, spec = _load(ROOT / "mlops.yaml", "gcp_dev")
    tasks = spec.root.dag.tasks
    assert sorted(tasks) == sorted(s.name for s in pipeline.steps)  # no source: no importer
    for step in pipeline.steps:
        assert set(tasks[step.name].dependent_tasks) == step.upstream, step.name
        wired = {ch: (a.task_output_artifact.producer_task,
                      a.task_output_artifact.output_artifact_key)
                 for ch, a in tasks[step.name].inputs.artifacts.items()}
        for channel, (producer, key) in wired.items():
            assert step.inputs[channel] == f"{producer}.{key}"
    assert spec.pipeline_info.name == "training-churn-classifier"
    assert spec.default_pipeline_root == \
        "gs://churn-dev-111111-churn-gcp-dev-pipelines/runs/churn-classifier"


def test_every_task_runs_the_shared_step_in_the_project_image() -> None:
    _, pipeline, spec = _load(ROOT / "mlops.yaml", "gcp_dev")
    for step in pipeline.steps:
        executor = spec.deployment_spec["executors"][f"exec-{step.name}"]["container"]
        assert executor["image"] == \
            "europe-west1-docker.pkg.dev/churn-dev-111111/mlops-kit/churn:latest"
        assert list(executor["command"]) == ["python", "-m", "mlops_kit.runtime.job"]
        args = _args(spec, step.name)
        assert args[:5] == [step.name, "--config=/opt/mlops/mlops.yaml", "--env=gcp_dev",
                            "--model=churn-classifier", "--set=registry.backend=vertex"]
        bound = {a.split("=")[1] for a in args if a.startswith("--input=")}
        assert bound == {ch for ch, src in step.inputs.items() if src not in EXTERNAL}
        assert {a.split("=")[1] for a in args if a.startswith("--output=")} == set(step.outputs)


def test_every_output_is_a_run_artifact_and_published_ones_also_go_to_the_lake() -> None:
    _, pipeline, spec = _load(ROOT / "mlops.yaml", "gcp_prod")
    for step in pipeline.steps:
        args = _args(spec, step.name)
        lake = [a for a in args if "=/gcs/" in a and not a.startswith("--publish=")]
        assert lake == [], step.name   # no step reads or writes a lake folder itself
        for channel in step.outputs:
            assert f"--output={channel}={{{{$.outputs.artifacts['{channel}'].path}}}}" in args
    assert "--publish=raw=/gcs/churn-prod-333333-churn-gcp-prod-raw/raw_customers" in \
        _args(spec, "ingest")
    assert "--input=raw={{$.inputs.artifacts['raw'].path}}" in _args(spec, "validate")
    assert [a for a in _args(spec, "features") if a.startswith("--publish=")] == [
        "--publish=offline=/gcs/churn-prod-333333-churn-gcp-prod-features/customer_features"]
    assert list(spec.root.dag.tasks["validate"].dependent_tasks) == ["ingest"]


def test_a_file_source_is_a_run_parameter_imported_for_ingest(tmp_path: Path) -> None:
    path = two_models(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["source"] = {"kind": "csv", "path": "data/landing"}
    path.write_text(yaml.safe_dump(raw))
    _, _, spec = _load(path, "gcp_dev")
    params = spec.root.input_definitions.parameters
    assert params["source_uri"].default_value.string_value == \
        "gs://churn-dev-111111-churn-gcp-dev-raw/landing/"
    importer = spec.root.dag.tasks["importer"]
    assert importer.inputs.parameters["uri"].component_input_parameter == "source_uri"
    assert not importer.caching_options.enable_cache
    assert spec.deployment_spec["executors"]["exec-importer"]["importer"]["reimport"] is True
    source = spec.root.dag.tasks["ingest"].inputs.artifacts["source"].task_output_artifact
    assert (source.producer_task, source.output_artifact_key) == ("importer", "artifact")
    assert "--input=source={{$.inputs.artifacts['source'].path}}" in _args(spec, "ingest")


def test_the_ingest_date_and_the_run_are_run_parameters() -> None:
    _, _, spec = _load(ROOT / "mlops.yaml", "gcp_dev")   # a generator source: no source_uri
    params = spec.root.input_definitions.parameters
    assert sorted(params) == ["ingest_date"]
    assert params["ingest_date"].default_value.string_value == ""  # empty: the day of the run
    ingest = spec.root.dag.tasks["ingest"]
    assert ingest.inputs.parameters["ingest_date"].component_input_parameter == "ingest_date"
    assert "--param=ingest_date={{$.inputs.parameters['ingest_date']}}" in _args(spec, "ingest")
    assert not any(a.startswith("--param=") for a in _args(spec, "validate"))
    run = spec.root.dag.tasks["register"].inputs.parameters["run_id"]
    assert run.runtime_value.constant.string_value == "{{$.pipeline_job_name}}"
    assert "--param=run_id={{$.inputs.parameters['run_id']}}" in _args(spec, "register")


def test_training_machine_caching_and_image_come_from_the_config(tmp_path: Path) -> None:
    path = two_models(tmp_path, {"gcp": {"training_machine_type": "n1-highmem-8"},
                                 "image": {"tag": "2024.06.1"}})
    _, pipeline, spec = _load(path, "gcp_dev", "churn-mlp")
    train = spec.deployment_spec["executors"]["exec-train"]["container"]
    assert (train["resources"]["resourceCpuLimit"], train["resources"]["resourceMemoryLimit"]) \
        == ("8", "52G")
    assert train["image"].endswith("/mlops-kit/churn:2024.06.1")
    assert "resources" not in spec.deployment_spec["executors"]["exec-validate"]["container"]
    cached = {name for name, t in spec.root.dag.tasks.items() if t.caching_options.enable_cache}
    assert cached == {s.name for s in pipeline.steps if s.reusable} == {"train"}
    assert "--model=churn-mlp" in _args(spec, "train")
    assert spec.pipeline_info.name == "training-churn-mlp"


def test_only_steps_that_read_this_runs_outputs_and_publish_nothing_are_reusable(
        tmp_path: Path) -> None:
    from mlops_kit.pipeline import parse_pipeline

    steps = yaml.safe_load(DAG.read_text())["steps"]
    pipeline = parse_pipeline({"steps": steps}, tmp_path / "p.yaml")
    reasons = {"ingest": "reads a source location", "validate": "publishes to the lake",
               "features": "publishes to the lake and the online store",
               "evaluate": "reads the production model", "register": "cache: false"}
    assert {s.name for s in pipeline.steps if s.reusable} == {"train"}, reasons
    steps[1]["outputs"] = {name: {} for name in steps[1]["outputs"]}      # validate publishes
    steps[4]["inputs"].pop("production_model")                            # nothing now
    steps[3]["cache"] = False
    pipeline = parse_pipeline({"steps": steps}, tmp_path / "p.yaml")
    assert {s.name for s in pipeline.steps if s.reusable} == {"validate", "evaluate"}


@pytest.mark.parametrize(("machine", "expected"), [
    ("n1-standard-4", (4, 15.0)), ("e2-highcpu-16", (16, 16.0)), ("n2-highmem-2", (2, 16.0))])
def test_machine_resources(machine: str, expected: tuple[int, float]) -> None:
    assert machine_resources(machine) == expected


def test_a_custom_machine_is_refused_with_the_field_to_fix() -> None:
    with pytest.raises(ValueError, match=r"gcp\.training_machine_type 'a2-ultragpu-1g'"):
        machine_resources("a2-ultragpu-1g")


def test_names_fit_google_cloud_limits() -> None:
    long = naming.bucket_name("churn-prod-333333", "churn-gcp-" + "x" * 60, "quarantine")
    assert len(long) == 63 and long.endswith("-quarantine")
    assert long != naming.bucket_name("churn-prod-333333", "churn-gcp-" + "x" * 61, "quarantine")
    assert naming.dataset("churn", "gcp_dev") == "churn_gcp_dev"
    ids = {naming.endpoint_id("churn", "gcp_dev", m) for m in ("a", "b", "churn-classifier")}
    assert len(ids) == 3 and all(len(i) == 10 and i[0] != "0" for i in ids)
    assert naming.service_account_id("churn", "pipeline") == "churn-pipeline"
    assert 6 <= len(naming.service_account_id("a-very-long-project-name-here", "scheduler")) <= 30
    with pytest.raises(ValueError, match="not a gcp environment"):
        naming.gcp_project(load_config(ROOT / "mlops.yaml", env="azure_dev"))


def test_vertex_scaling_maps_the_serving_config(tmp_path: Path) -> None:
    from mlops_kit.adapters.gcp.autoscale import CPU_METRIC, scaling

    cfg = load_config(ROOT / "mlops.yaml", env="gcp_prod").config
    plan = scaling(cfg.serving, cfg.gcp)
    assert (plan.min_replicas, plan.max_replicas, plan.metric, plan.target, plan.exact) == (
        2, 10, CPU_METRIC, 60, False)
    tracking = {"serving": {"min_instances": 0, "scaling": {
        "policy": "target_tracking", "metric": "CPUUtilization", "target_value": 45}}}
    cfg = load_config(two_models(tmp_path, tracking)).config
    plan = scaling(cfg.serving, cfg.gcp)
    assert (plan.min_replicas, plan.target, plan.exact) == (1, 45, True)
    too_high = cfg.serving.scaling.model_copy(update={"target_value": 700})
    with pytest.raises(ValueError, match=r"target_value 700 is a CPU percentage"):
        scaling(cfg.serving.model_copy(update={"scaling": too_high}), cfg.gcp)
