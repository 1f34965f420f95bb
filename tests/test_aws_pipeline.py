"""The SageMaker Pipeline definition of the DAG, read back and checked, and the job entry."""

from __future__ import annotations

import copy
import json
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.stub import Stubber

from mlops_kit.adapters.aws import online_store
from mlops_kit.adapters.aws.pipeline import (
    FAIL_STEP,
    GATE_STEP,
    PipelineSettings,
    check,
    render,
)
from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.pipeline import load_pipeline
from mlops_kit.runtime import job
from mlops_kit.steps.base import read_parquet_dir
from tests.conftest import ROOT, write_config
from tests.test_aws_online_store import featurestore

SETTINGS = PipelineSettings(
    name="churn-churn-classifier", env="dev",
    role_arn="arn:aws:iam::111111111111:role/pipeline",
    image_uri="111111111111.dkr.ecr.eu-west-1.amazonaws.com/churn:abc",
    artifacts_uri="s3://churn-artifacts-111111111111-eu-west-1/pipelines/churn-classifier",
    zone_uris={z: f"s3://churn-{z}-111111111111-eu-west-1/t" for z in
               ("raw", "curated", "quarantine", "features")},
    landing_uri="s3://churn-raw-111111111111-eu-west-1/landing/",
    kms_key_id="arn:aws:kms:eu-west-1:111111111111:key/k",
    feature_group="churn-dev-customer-features",
)


@pytest.fixture(scope="module")
def example() -> LoadedConfig:
    return load_config(ROOT / "mlops.yaml", env="dev")


@pytest.fixture(scope="module")
def definition(example: LoadedConfig) -> dict[str, Any]:
    return render(example, load_pipeline(example), SETTINGS)


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for step in definition["Steps"]:
        out[step["Name"]] = step
        for child in step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []):
            out[child["Name"]] = child
    return out


def test_definition_reads_back_without_problems(definition: dict[str, Any]) -> None:
    assert check(json.loads(json.dumps(definition))) == []


def test_every_dag_step_is_a_job_running_the_shared_step_code(
        example: LoadedConfig, definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    for step in load_pipeline(example).steps:
        rendered = steps[step.name]
        assert rendered["Type"] == ("Training" if step.spec.kind == "training" else "Processing")
        spec = rendered["Arguments"].get("AppSpecification") or \
            rendered["Arguments"]["AlgorithmSpecification"]
        assert spec["ContainerEntrypoint"] == ["python", "-m", "mlops_kit.runtime.job"]
        assert spec["ContainerArguments"][:1] == [step.name]
        assert spec["ContainerArguments"][3:5] == ["--env", "dev"]


def test_outputs_flow_by_property_reference_and_published_ones_go_to_the_lake_or_online(
        definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    features_in = steps["features"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert features_in == {"Get": "Steps.validate.ProcessingOutputConfig.Outputs['curated']"
                                  ".S3Output.S3Uri"}
    outs = {o["OutputName"]: o["S3Output"]["S3Uri"]
            for o in steps["validate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
    for name in ("curated", "quarantine", "profile"):  # this run's data, for the next steps
        assert outs[name]["Std:Join"]["Values"][1:] == [
            {"Get": "Execution.PipelineExecutionId"}, "validate", name]
    args = steps["validate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    published = [args[i + 1] for i, a in enumerate(args) if a == "--publish"]
    assert published == [f"curated={SETTINGS.zone_uris['curated']}",
                         f"quarantine={SETTINGS.zone_uris['quarantine']}"]
    args = steps["features"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    published = [args[i + 1] for i, a in enumerate(args) if a == "--publish"]
    assert published == [f"offline={SETTINGS.zone_uris['features']}",
                         "online=featurestore://churn-dev-customer-features"]
    model_in = steps["evaluate"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert model_in == {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"}
    assert "production_model" not in json.dumps(steps["evaluate"]["Arguments"]["ProcessingInputs"])


def test_only_reusable_steps_are_cached_and_only_register_carries_the_run_id(
        definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    cached = {n for n, s in steps.items() if s.get("CacheConfig", {}).get("Enabled")}
    assert cached == {"train"}  # others read a source or production, or publish to the lake
    assert "run_id" not in json.dumps(steps["features"]["Arguments"])
    assert "run_id" in json.dumps(steps["register"]["Arguments"])


def test_register_runs_only_when_the_gate_passed(definition: dict[str, Any]) -> None:
    gate = steps_by_name(definition)[GATE_STEP]
    condition = gate["Arguments"]["Conditions"][0]
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "passed"
    assert condition["RightValue"] is True
    assert [s["Name"] for s in gate["Arguments"]["IfSteps"]] == ["register"]
    assert [s["Name"] for s in gate["Arguments"]["ElseSteps"]] == [FAIL_STEP]
    assert "CacheConfig" not in gate["Arguments"]["IfSteps"][0]


def test_encryption_everywhere(definition: dict[str, Any]) -> None:
    for step in steps_by_name(definition).values():
        args = step["Arguments"]
        if step["Type"] == "Processing":
            assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"]
            assert args["ProcessingOutputConfig"]["KmsKeyId"]
        elif step["Type"] == "Training":
            assert args["ResourceConfig"]["VolumeKmsKeyId"]
            assert args["OutputDataConfig"]["KmsKeyId"]
            assert args["EnableInterContainerTrafficEncryption"] is True


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda d: d["Steps"][1]["Arguments"]["ProcessingInputs"][0]["S3Input"].update(
        S3Uri={"Get": "Steps.nope.ProcessingOutputConfig.Outputs['x'].S3Output.S3Uri"}),
     "unknown steps ['nope']"),
    (lambda d: d["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"].update(
        InstanceCount="one"), "ingest: Parameter validation failed"),
    (lambda d: d["Steps"][3]["Arguments"].pop("RoleArn"),
     'Missing required parameter in input: "RoleArn"'),
    (lambda d: d["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"].append(
        {"Get": "Parameters.Missing"}), "ingest: unknown parameter 'Missing'"),
    (lambda d: d["Steps"][0].update(DependsOn=["validate"]), "cycle among steps"),
    (lambda d: d["Steps"].append(copy.deepcopy(d["Steps"][0])), "duplicate step name 'ingest'"),
])
def test_check_finds_what_sagemaker_would_refuse(definition: dict[str, Any], mutate: Any,
                                                 problem: str) -> None:
    broken = copy.deepcopy(definition)
    mutate(broken)
    assert any(problem in p for p in check(broken)), check(broken)


def test_a_file_source_is_read_from_the_landing_prefix(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n")
    loaded = load_config(write_config(tmp_path, {"data": {"source": {"kind": "csv",
                                                                     "path": str(data)}}}))
    ingest = render(loaded, load_pipeline(loaded), SETTINGS)["Steps"][0]
    inputs = ingest["Arguments"]["ProcessingInputs"]
    assert inputs[0]["InputName"] == "source"
    assert inputs[0]["S3Input"]["S3Uri"] == {"Get": "Parameters.SourceUri"}


def test_job_entry_fetches_production_and_unpacks_model_tarballs(
        trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(trained.state))
    _, step, inputs = job._prepare("evaluate", job._arguments([
        "--config", str(trained.config), "--input", f"production_model={tmp_path / 'prod'}",
        "--input", f"model={tmp_path / 'model'}"])[0])
    assert step.name == "evaluate"
    fetched = inputs["production_model"]
    assert json.loads((fetched / "registry_version.json").read_text())["status"] == "Approved"
    packed = tmp_path / "model"
    packed.mkdir()
    with tarfile.open(packed / job.TARBALL, "w:gz") as tar:
        for path in sorted(fetched.iterdir()):
            tar.add(path, arcname=path.name)
    job.unpack_model(packed)
    assert not (packed / job.TARBALL).exists()
    assert {p.name for p in packed.iterdir()} == {p.name for p in fetched.iterdir()}


def test_job_entry_publishes_partitions_into_the_lake_table(tmp_path: Path) -> None:
    table = tmp_path / "lake" / "curated_customers"
    (table / "ingest_date=2025-01-01").mkdir(parents=True)
    (table / "ingest_date=2025-01-01" / "old.parquet").write_text("kept")
    (table / "ingest_date=2025-01-02").mkdir()
    (table / "ingest_date=2025-01-02" / "stale.parquet").write_text("replaced")
    out = tmp_path / "out"
    (out / "ingest_date=2025-01-02").mkdir(parents=True)
    (out / "ingest_date=2025-01-02" / "part-00000.parquet").write_text("new")
    job.publish(out, str(table))
    assert (table / "ingest_date=2025-01-01" / "old.parquet").read_text() == "kept"
    assert sorted(p.name for p in (table / "ingest_date=2025-01-02").iterdir()) == [
        "part-00000.parquet"]
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "part-00000.parquet").write_text("features")
    job.publish(flat, str(tmp_path / "lake" / "customer_features"))
    assert (tmp_path / "lake" / "customer_features" / "part-00000.parquet").exists()


def test_job_entry_runs_the_step_then_publishes_its_output(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw, lake = tmp_path / "raw", tmp_path / "lake" / "raw_customers"
    argv = ["ingest", "--config", str(config), "--output", f"raw={raw}",
            "--publish", f"raw={lake}"]
    assert job.main(argv) == 0
    [day] = [p.name for p in raw.iterdir() if p.name.startswith("ingest_date=")]
    assert sorted(p.name for p in (lake / day).iterdir()) == sorted(
        p.name for p in (raw / day).iterdir())
    assert job.main([*argv[:-1], "nope=/x"]) == 1  # checked before the step runs


def test_job_entry_puts_the_features_online_output_into_the_feature_group(
        trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    sent: list[dict[str, Any]] = []
    client = featurestore(sent)
    regions: list[str | None] = []
    monkeypatch.setattr(online_store, "featurestore_client",
                        lambda region: regions.append(region) or client)
    curated = next(trained.state.glob("artifacts/validate/*/curated"))
    entities = read_parquet_dir(curated)["customer_id"].nunique()
    out = tmp_path / "out"
    argv = ["features", "--config", str(trained.config), "--env", "dev",
            "--input", f"curated={curated}",
            *[a for ch in ("offline", "online", "training_set")
              for a in ("--output", f"{ch}={out / ch}")],
            "--publish", "online=featurestore://churn-dev-customer-features"]
    with Stubber(client) as stub:
        for _ in range(entities):
            stub.add_response("put_record", {})
        assert job.main(argv) == 0
        stub.assert_no_pending_responses()
    latest = pd.read_parquet(out / "online" / "latest.parquet")
    assert sorted(r["Record"][0]["ValueAsString"] for r in sent) == sorted(latest["entity_id"])
    assert {r["FeatureGroupName"] for r in sent} == {"churn-dev-customer-features"}
    assert regions == ["eu-west-1"]  # the environment's region
    assert f"{entities} records written" in capsys.readouterr().err
    with Stubber(client) as stub:  # one record fails: the job fails and says so
        stub.add_client_error("put_record", "InternalFailure", http_status_code=500)
        for _ in range(entities - 1):
            stub.add_response("put_record", {})
        assert job.main(argv) == 1
    assert f"{entities - 1} of {entities} records written, 1 failed" in capsys.readouterr().err


def test_job_entry_refuses_unknown_steps(trained: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert job.main(["deploy", "--config", str(trained.config)]) == 1
    assert "no step 'deploy'" in capsys.readouterr().err
    assert job.main([]) == 2
