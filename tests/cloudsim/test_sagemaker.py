"""The SageMaker Pipeline the CDK app deploys, executed as SageMaker would: two executions on
two days' CSV deliveries, and a project whose gate nothing passes.

The definitions come from the synthesized templates (resolved as deployed), the image from the
asset the app builds (its Dockerfile and build arguments), the lake and registry from moto's
S3 and SageMaker on loopback. What is checked is what a user would find in their account
afterwards: the lake's zones, the model registry and its lineage, the online store.
"""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.cloudsim import project
from tests.cloudsim.container import Image, Sandbox, namespaces_available

cdk = pytest.importorskip("aws_cdk")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.skipif(
    not namespaces_available(), reason="needs user and mount namespaces (unshare -Urm)")]

ACCOUNT, REGION, GATE_REGION = "111111111111", "eu-west-1", "eu-central-1"
MODEL = "churn-classifier"


@dataclass
class Deployed:
    """One environment as deployed: its pipeline, buckets and feature group."""

    pipeline: Any
    buckets: dict[str, str]  # zone -> bucket name
    group: str               # model package group
    feature_group: str


@dataclass
class World:
    endpoint: str
    s3: Any
    sagemaker: Any
    online: Any
    envs: dict[str, Deployed]
    runs: dict[str, list[Any]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_harness_project(folder: Path) -> Path:
    config = project.write_project(folder)
    raw = yaml.safe_load(config.read_text())
    dev = raw["environments"]["dev"]
    raw["environments"] = {"dev": dev, "gate": {**dev, "region": GATE_REGION, "overrides": {
        "quality_gate": {"min_value": 0.999}}}}
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def synthesize(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from mlops_cdk.app import build, cdk_context

    from tests.conftest import ROOT

    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", project.COMMIT)  # as CodeBuild
    monkeypatch.delenv("MLOPS_GIT_COMMIT", raising=False)
    out = root / "cdk.out"
    app = cdk.App(context=cdk_context(ROOT), outdir=str(out))
    build(app, root)
    app.synth()
    return out


def deploy(assembly: Any, s3: Any, region: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Create what the stacks declare that the jobs use: the buckets; and read back the
    pipeline definition and the feature group."""
    buckets = {}
    for _, _, props in assembly.resources("AWS::S3::Bucket"):
        name = props["BucketName"]
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        buckets[name.split("-")[1]] = name
    (_, _, pipeline), = assembly.resources("AWS::SageMaker::Pipeline")
    (_, _, group), = assembly.resources("AWS::SageMaker::FeatureGroup")
    return buckets, {"pipeline": pipeline, "feature_group": group}


def image_of(assembly: Any, dest: Path) -> Image:
    """The project image the platform stack's Docker asset builds."""
    for path in assembly.folder.glob("*.assets.json"):
        for asset in json.loads(path.read_text()).get("dockerImages", {}).values():
            source = asset["source"]
            context = (assembly.folder / source["directory"]).resolve()
            return Image.build(context / source["dockerFile"], context, dest,
                               source.get("dockerBuildArgs", {}))
    raise AssertionError("no Docker image asset in the assembly")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.cloudsim.cfn import Assembly
    from tests.cloudsim.featurestore import FeatureStoreRuntime
    from tests.cloudsim.sagemaker import SageMakerPipeline

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    monkeypatch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("sagemaker")
    write_harness_project(root / "project")
    out = synthesize(root / "project", monkeypatch)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    for key, value in creds.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    envs: dict[str, Deployed] = {}
    groups: dict[str, tuple[str, str, set[str]]] = {}
    try:
        for env, region in (("dev", REGION), ("gate", GATE_REGION)):
            assembly = Assembly.load(out / f"assembly-churn-{env}", ACCOUNT, region)
            s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint)
            buckets, found = deploy(assembly, s3, region)
            fg = found["feature_group"]
            groups[fg["FeatureGroupName"]] = (
                fg["RecordIdentifierFeatureName"], fg["EventTimeFeatureName"],
                {f["FeatureName"] for f in fg["FeatureDefinitions"]})
            envs[env] = Deployed(found["pipeline"], buckets, f"churn-{MODEL}",
                                 fg["FeatureGroupName"])
        online = FeatureStoreRuntime(groups)
        for env, region in (("dev", REGION), ("gate", GATE_REGION)):
            assembly = Assembly.load(out / f"assembly-churn-{env}", ACCOUNT, region)
            job_env = {**creds, "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
                       "AWS_ENDPOINT_URL": endpoint,
                       "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": online.url}
            props = envs[env].pipeline
            envs[env].pipeline = SageMakerPipeline(
                json.loads(props["PipelineDefinition"]["PipelineDefinitionBody"]),
                name=props["PipelineName"],
                s3=boto3.client("s3", region_name=region, endpoint_url=endpoint),
                image=image_of(assembly, root / f"image-{env}"),
                sandbox=Sandbox(root / f"sandbox-{env}"), job_env=job_env)
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
        runs: dict[str, list[Any]] = {"dev": [], "gate": []}
        for env, days in (("dev", project.DAYS), ("gate", project.DAYS[:1])):
            for day in days:
                runs[env].append(envs[env].pipeline.start(deliver(envs[env], day, s3, root)))
        sagemaker = boto3.client("sagemaker", region_name=REGION, endpoint_url=endpoint)
        yield World(endpoint, s3, sagemaker, online, envs, runs)
    finally:
        server.stop()
        monkeypatch.undo()


def deliver(env: Deployed, day: str, s3: Any, root: Path) -> dict[str, str]:
    """Put the day's CSV under landing/<day>/ and name it, and the day, as the execution's
    parameters (what a user or a scheduler starting the pipeline passes)."""
    csv = project.day_csv(root / "deliveries" / day / "customers.csv", day)
    s3.upload_file(str(csv), env.buckets["raw"], f"landing/{day}/customers.csv")
    return {"SourceUri": f"s3://{env.buckets['raw']}/landing/{day}/", "IngestDate": day}


def lake_rows(world: World, zone: str, table: str) -> dict[str, int]:
    """Rows per partition of a lake table, read from the zone's bucket."""
    bucket = world.envs["dev"].buckets[zone]
    counts: dict[str, int] = {}
    for key in world.envs["dev"].pipeline.list_keys(bucket, f"{table}/"):
        part = next((p for p in key.split("/") if p.startswith("ingest_date=")), None)
        if part and key.endswith(".parquet"):
            body = world.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            counts[part.split("=", 1)[1]] = counts.get(part.split("=", 1)[1], 0) + \
                len(pd.read_parquet(io.BytesIO(body)))
    return counts


def versions(world: World) -> list[Any]:
    from mlops_kit.adapters.aws.registry import SageMakerRegistry

    registry = SageMakerRegistry(world.sagemaker, world.s3,
                                 bucket=world.envs["dev"].buckets["artifacts"], project="churn",
                                 image="unused")
    return registry.versions(MODEL)


# --- the executions --------------------------------------------------------------------------


def test_both_executions_succeed_and_every_step_ran(world: World) -> None:
    for run in world.runs["dev"]:
        assert run.status == "Succeeded", run.failure
        ran = {n: s.status for n, s in run.steps.items()}
        assert ran == {"ingest": "Succeeded", "validate": "Succeeded", "features": "Succeeded",
                       "train": "Succeeded", "evaluate": "Succeeded",
                       "quality-gate": "Succeeded", "register": "Succeeded",
                       "gate-failed": "NotExecuted"}, ran


def test_rows_reconcile_per_day_and_no_row_is_read_twice(world: World) -> None:
    raw = lake_rows(world, "raw", "raw_customers")
    curated = lake_rows(world, "curated", "curated_customers")
    quarantine = lake_rows(world, "quarantine", "quarantine_customers")
    assert raw == {day: project.ROWS for day in project.DAYS}  # the CSV reached ingest
    for day in project.DAYS:
        assert curated[day] + quarantine[day] == raw[day], (day, curated, quarantine)
        assert quarantine[day] > 0  # the delivery's dirty rows were caught
    for run in world.runs["dev"]:
        summary = json.loads(run.steps["validate"].output.strip().splitlines()[-1])
        assert summary["rows_in"] == project.ROWS  # this day's rows only


def test_each_execution_reads_only_its_own_outputs(world: World) -> None:
    first, second = world.runs["dev"]
    for name in ("validate", "features", "evaluate", "register"):
        for run in (first, second):
            uris = [i["S3Input"]["S3Uri"] for i in
                    run.steps[name].arguments.get("ProcessingInputs", [])]
            assert uris and all(run.id in u for u in uris), (name, uris)
    assert not any(s.cache_hit for run in world.runs["dev"] for s in run.steps.values())


def test_a_passed_gate_registers_one_version_per_execution_with_full_lineage(
        world: World) -> None:
    found = versions(world)
    assert [v.version for v in found] == [1, 2]
    for version, run, day in zip(found, world.runs["dev"], project.DAYS, strict=True):
        assert project.missing_lineage(version.lineage) == []
        assert version.lineage["pipeline_run"] == run.id
        assert version.lineage["ingest_date"] == day
    assert found[0].lineage["data_version"] != found[1].lineage["data_version"]


def test_the_features_job_fills_the_online_store(world: World) -> None:
    records = world.online.records[world.envs["dev"].feature_group]
    assert len(records) > 100
    assert all("entity_id" in r and "event_time" in r for r in records.values())


def test_a_failed_gate_registers_nothing(world: World) -> None:
    import boto3

    (run,) = world.runs["gate"]
    assert run.status == "Failed"
    assert run.failure.startswith("quality gate failed; see s3://")
    assert run.steps["register"].status == "NotExecuted"
    sagemaker = boto3.client("sagemaker", region_name=GATE_REGION, endpoint_url=world.endpoint)
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    group = world.envs["gate"].group
    packages = sagemaker.list_model_packages(ModelPackageGroupName=group)[
        "ModelPackageSummaryList"] if any(g["ModelPackageGroupName"] == group
                                         for g in groups) else []
    assert packages == []

