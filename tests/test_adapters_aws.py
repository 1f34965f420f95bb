"""The AWS adapters against moto: naming, S3 storage, the Glue catalog, the SageMaker registry."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mlops_kit.adapters.aws import naming
from mlops_kit.adapters.aws.catalog import PARQUET_SERDE, GlueCatalog
from mlops_kit.adapters.aws.registry import (
    METADATA_PROPERTY,
    SageMakerRegistry,
    metadata_properties,
    xgboost_image,
)
from mlops_kit.adapters.aws.storage import S3Storage, ensure_bucket, split_uri
from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.registry import RegistryError, open_registry, production
from mlops_kit.runtime.ports import TableSpec

FAST = Config(retries={"max_attempts": 1})
CONFIG = """
project: demo
data:
  schema:
    columns: [{name: x, type: float}, {name: y, type: int}]
    target: y
features:
  declared: [{name: x, inputs: [x]}]
registry: {backend: sagemaker}
environments:
  az: {cloud: azure, subscription: sub-1, region: westeurope}
  dev: {cloud: aws, account: "111111111111", region: eu-west-1}
  prod: {cloud: aws, account: "333333333333", region: us-east-1}
"""
METADATA_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")



def client(service: str, region: str = "us-east-1") -> Any:
    """A boto3 client that fails fast."""
    return boto3.client(service, region_name=region, config=FAST)  # type: ignore[call-overload]


def loaded_config(tmp_path: Path, text: str = CONFIG, env: str | None = None) -> LoadedConfig:
    """A config file written to `tmp_path` and loaded."""
    (tmp_path / "mlops.yaml").write_text(text)
    return load_config(tmp_path / "mlops.yaml", env)


def tree(root: Path, content: dict[str, str]) -> Path:
    """Write `content` (relative path -> text) under `root`."""
    for rel, text in content.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# --- naming ---------------------------------------------------------------------------------


def test_names_follow_the_conventions() -> None:
    assert naming.zone_bucket("churn", "curated", "111111111111", "eu-west-1") == \
        "churn-curated-111111111111-eu-west-1"
    with pytest.raises(ValueError, match="unknown lake zone 'gold'"):
        naming.zone_bucket("churn", "gold", "111111111111", "eu-west-1")
    assert naming.artifacts_bucket("churn", "111111111111", "eu-west-1") == \
        "churn-artifacts-111111111111-eu-west-1"
    assert naming.glue_database("churn-v2-x") == "churn_v2_x"
    assert naming.model_package_group("churn", "churn-classifier") == "churn-churn-classifier"


@pytest.mark.parametrize("model", ["under_score", "trailing-", "x" * 60, "dot.ted", ""])
def test_invalid_package_group_names_are_refused(model: str) -> None:
    with pytest.raises(ValueError, match="not valid for SageMaker"):
        naming.model_package_group("churn", model)


def test_too_long_bucket_names_are_refused() -> None:
    with pytest.raises(ValueError, match="bucket name"):
        naming.artifacts_bucket("p" * 41, "111111111111", "ap-southeast-2")


def test_aws_target(tmp_path: Path) -> None:
    assert naming.aws_target(loaded_config(tmp_path)) == ("111111111111", "eu-west-1")
    assert naming.aws_target(loaded_config(tmp_path, env="prod")) == ("333333333333", "us-east-1")
    with pytest.raises(ValueError, match="'az' targets azure, not aws"):
        naming.aws_target(loaded_config(tmp_path, env="az"))
    no_envs = CONFIG.split("environments:")[0]
    assert naming.aws_target(loaded_config(tmp_path, no_envs)) == ("123456789012", "us-east-1")


# --- S3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_ensure_bucket_creates_a_locked_down_bucket(aws: None, region: str) -> None:
    s3 = client("s3", region)
    ensure_bucket(s3, "demo-artifacts", region)
    ensure_bucket(s3, "demo-artifacts", region)  # idempotent
    location = s3.get_bucket_location(Bucket="demo-artifacts")["LocationConstraint"]
    assert (location or "us-east-1") == region
    assert s3.get_bucket_versioning(Bucket="demo-artifacts")["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket="demo-artifacts")[
        "ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket="demo-artifacts")["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4


def test_ensure_bucket_with_kms(aws: None) -> None:
    s3 = client("s3")
    ensure_bucket(s3, "demo-kms", "us-east-1", kms_key_id="alias/demo")
    rule = s3.get_bucket_encryption(Bucket="demo-kms")[
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/demo"}


def test_s3_storage_round_trip_and_replace(aws: None, tmp_path: Path) -> None:
    s3 = client("s3")
    ensure_bucket(s3, "lake", "us-east-1")
    storage = S3Storage(s3, "lake", prefix="/runs/")
    uri = storage.uri("r1", "model")
    assert uri == "s3://lake/runs/r1/model"
    assert split_uri(uri) == ("lake", "runs/r1/model")
    storage.put_dir(tree(tmp_path / "v1", {"a.txt": "alpha", "sub/b.txt": "bb", "old": "x"}), uri)
    neighbour = storage.uri("r1", "model-2")
    storage.put_dir(tree(tmp_path / "n", {"keep.txt": "k"}), neighbour)
    assert storage.listing(uri) == {"a.txt": 5, "old": 1, "sub/b.txt": 2}

    storage.put_dir(tree(tmp_path / "v2", {"a.txt": "ALPHA!", "sub/c/d.txt": "ddd"}), uri)
    assert storage.listing(uri) == {"a.txt": 6, "sub/c/d.txt": 3}
    assert storage.listing(neighbour) == {"keep.txt": 1}  # a sibling prefix is untouched
    back = storage.get_dir(uri, tmp_path / "back")
    assert (back / "a.txt").read_text() == "ALPHA!"
    assert (back / "sub" / "c" / "d.txt").read_text() == "ddd"
    assert sorted(p.name for p in back.rglob("*") if p.is_file()) == ["a.txt", "d.txt"]
    assert storage.listing(storage.uri("missing")) == {}
    assert list(storage.get_dir(storage.uri("missing"), tmp_path / "none").iterdir()) == []


def test_s3_storage_refuses_dangerous_input(aws: None, tmp_path: Path) -> None:
    s3 = client("s3")
    ensure_bucket(s3, "lake", "us-east-1")
    storage = S3Storage(s3, "lake")
    with pytest.raises(ValueError, match="whole bucket"):
        storage.put_dir(tree(tmp_path / "d", {"f": "x"}), "s3://lake/")
    with pytest.raises(ValueError, match="not an S3 URI"):
        storage.listing("/local/path")
    s3.put_object(Bucket="lake", Key="p/../../escape.txt", Body=b"x")
    with pytest.raises(ValueError, match="would leave"):
        storage.get_dir("s3://lake/p", tmp_path / "dest")


# --- Glue -----------------------------------------------------------------------------------


def table(*partitions: dict[str, str], **changes: Any) -> TableSpec:
    """A partitioned Parquet test table."""
    base: dict[str, Any] = {
        "database": "demo", "name": "customers", "location": "s3://lake/tables/customers/",
        "columns": {"customer_id": "string", "tenure": "int", "charges": "double"},
        "partition_keys": {"year": "string", "month": "string"},
        "partitions": partitions, "description": "customers",
    }
    return TableSpec(**{**base, **changes})


def test_glue_table_and_partitions_round_trip(aws: None) -> None:
    glue = client("glue")
    catalog = GlueCatalog(glue)
    assert catalog.tables("demo") == []
    jan, feb = {"year": "2025", "month": "01"}, {"month": "02", "year": "2025"}
    catalog.register(table(jan, feb, jan))
    [got] = catalog.tables("demo")
    assert got == table(jan, {"year": "2025", "month": "02"})
    assert list(got.columns) == ["customer_id", "tenure", "charges"]
    raw = glue.get_table(DatabaseName="demo", Name="customers")["Table"]
    assert raw["TableType"] == "EXTERNAL_TABLE"
    assert raw["Parameters"]["classification"] == "parquet"
    assert raw["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert "Parquet" in raw["StorageDescriptor"]["InputFormat"]
    part = glue.get_partition(DatabaseName="demo", TableName="customers",
                              PartitionValues=["2025", "02"])["Partition"]
    assert part["StorageDescriptor"]["Location"] == "s3://lake/tables/customers/year=2025/month=02"


def test_glue_register_is_idempotent_and_merges(aws: None) -> None:
    glue = client("glue")
    catalog = GlueCatalog(glue)
    jan, feb, mar = ({"year": "2025", "month": m} for m in ("01", "02", "03"))
    catalog.register(table(jan, feb))
    catalog.register(table(jan, feb))
    versions = glue.get_table_versions(DatabaseName="demo", TableName="customers")
    assert len(versions["TableVersions"]) == 1  # no needless update
    catalog.register(table(feb, mar, columns={"customer_id": "string", "churned": "int"}))
    [got] = catalog.tables("demo")
    assert got.partitions == (jan, feb, mar)
    assert got.columns == {"customer_id": "string", "churned": "int"}
    with pytest.raises(ValueError, match="differ from the catalogued"):
        catalog.register(table(partition_keys={"day": "string"}))
    with pytest.raises(ValueError, match="exactly the partition keys"):
        catalog.register(table({"year": "2025"}))


def test_glue_many_partitions_are_batched(aws: None) -> None:
    catalog = GlueCatalog(client("glue"))
    days = [{"year": str(2000 + i // 12), "month": f"{i % 12 + 1:02d}"} for i in range(230)]
    catalog.register(table(*days))
    [got] = catalog.tables("demo")
    assert len(got.partitions) == 230
    assert {tuple(p.values()) for p in got.partitions} == {tuple(d.values()) for d in days}


# --- SageMaker ------------------------------------------------------------------------------


@pytest.fixture
def registry(aws: None, tmp_path: Path) -> SageMakerRegistry:
    """A SageMaker registry built from the test config (dev: eu-west-1)."""
    session = boto3.Session(region_name="eu-west-1")
    return SageMakerRegistry.from_config(loaded_config(tmp_path), session=session,
                                         client_config=FAST)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small model folder."""
    return tree(tmp_path / "model", {"xgboost-model": "booster-bytes", "meta/features.json": "[]"})


def register(reg: SageMakerRegistry, model_dir: Path, **changes: Any) -> Any:
    """Register `model_dir` as a version of `churn-classifier`."""
    args: dict[str, Any] = {"status": "Approved", "metrics": {"roc_auc": 0.81},
                            "params": {"max_depth": 5}, "lineage": {"run": "r1"},
                            "description": "test model"}
    return reg.register("churn-classifier", model_dir, **{**args, **changes})


def test_from_config_derives_names_and_creates_the_bucket(registry: SageMakerRegistry) -> None:
    assert registry.bucket == "demo-artifacts-111111111111-eu-west-1"
    assert registry.image == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    s3 = client("s3", "eu-west-1")
    assert s3.get_bucket_versioning(Bucket=registry.bucket)["Status"] == "Enabled"
    assert xgboost_image("us-east-1").startswith("683313688378.dkr.ecr.us-east-1.")
    with pytest.raises(ValueError, match=r"serving\.image"):
        xgboost_image("mars-north-1")


def test_open_registry_picks_sagemaker(aws: None, tmp_path: Path) -> None:
    text = CONFIG.replace("registry: {backend: sagemaker}",
                          "registry: {backend: sagemaker}\nserving: {image: my/image:1}")
    reg = open_registry(loaded_config(tmp_path, text, env="prod"))
    assert isinstance(reg, SageMakerRegistry)
    assert (reg.bucket, reg.image) == ("demo-artifacts-333333333333-us-east-1", "my/image:1")
    with pytest.raises(TypeError, match="unknown SageMakerRegistry options"):
        SageMakerRegistry.from_config(loaded_config(tmp_path), sesion=None)


def test_pytorch_model_needs_an_explicit_image(aws: None, tmp_path: Path) -> None:
    text = CONFIG.replace("registry:", "model: {framework: pytorch}\nregistry:")
    with pytest.raises(ValueError, match=r"'pytorch' has no default .*set serving\.image"):
        SageMakerRegistry.from_config(loaded_config(tmp_path, text), client_config=FAST)


def test_sagemaker_register_versions_status_download(registry: SageMakerRegistry,
                                                     model_dir: Path, tmp_path: Path) -> None:
    assert registry.versions("churn-classifier") == []
    v1 = register(registry, model_dir)
    v2 = register(registry, model_dir, status="PendingManualApproval",
                  metrics={"roc_auc": 0.9}, lineage={"run": "r2"})
    assert (v1.version, v2.version) == (1, 2)
    group = "demo-churn-classifier"
    assert v1.artifact_uri == f"s3://{registry.bucket}/models/{group}/1/model.tar.gz"
    assert v2.metrics == {"roc_auc": 0.9} and v2.lineage == {"run": "r2"}
    assert v1.params == {"max_depth": 5} and v1.description == "test model"
    assert v1.created.endswith("+00:00")
    listed = registry.versions("churn-classifier")
    assert [(v.version, v.status) for v in listed] == [(1, "Approved"),
                                                       (2, "PendingManualApproval")]
    assert listed[0] == registry.get("churn-classifier", 1)
    assert production(registry, "churn-classifier").version == 1  # type: ignore[union-attr]

    approved = registry.set_status("churn-classifier", 2, "Approved")
    assert approved.status == "Approved" and approved.metrics == {"roc_auc": 0.9}
    assert production(registry, "churn-classifier").version == 2  # type: ignore[union-attr]
    described = registry.sagemaker.describe_model_package(
        ModelPackageName=registry.sagemaker.list_model_packages(
            ModelPackageGroupName=group)["ModelPackageSummaryList"][-1]["ModelPackageArn"])
    assert described["CustomerMetadataProperties"]["metric.roc_auc"] == "0.9"
    spec = described["InferenceSpecification"]
    assert spec["Containers"][0]["Image"] == registry.image
    assert spec["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert spec["SupportedResponseMIMETypes"] == ["text/csv", "application/json"]

    dest = registry.download("churn-classifier", 1, tmp_path / "dl")
    assert (dest / "xgboost-model").read_text() == "booster-bytes"
    assert (dest / "meta" / "features.json").read_text() == "[]"


def test_sagemaker_errors(registry: SageMakerRegistry, model_dir: Path) -> None:
    with pytest.raises(RegistryError, match="'churn-classifier' is not registered"):
        registry.get("churn-classifier", 1)
    register(registry, model_dir)
    with pytest.raises(RegistryError, match=r"no version 4 \(versions: 1\)"):
        registry.get("churn-classifier", 4)
    with pytest.raises(RegistryError, match="allowed: PendingManualApproval, Approved, Rejected"):
        registry.set_status("churn-classifier", 1, "Live")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="allowed"):
        register(registry, model_dir, status="Deployed")
    with pytest.raises(RegistryError, match="not valid for SageMaker"):
        registry.versions("bad_name")
    with pytest.raises(RegistryError, match="does not exist"):
        register(registry, model_dir.parent / "missing")
    assert [v.version for v in registry.versions("churn-classifier")] == [1]


def test_long_metadata_survives(registry: SageMakerRegistry, model_dir: Path) -> None:
    params = {f"p{i:02d}": f"value-{i}" for i in range(80)}
    params["long"] = "x{" * 900
    lineage = {"data": {"uri": "s3://lake/" + "d" * 400, "rows": 20000}, "tags": ["a", "b"],
               "k" * 200: "long key"}
    v = register(registry, model_dir, params=params, lineage=lineage,
                 description="line one\nline two " + "z" * 2000)
    got = registry.get("churn-classifier", v.version)
    assert got.params == params and got.lineage == lineage
    assert got.description.endswith("z" * 2000)

    arn = registry.sagemaker.list_model_packages(
        ModelPackageGroupName="demo-churn-classifier")["ModelPackageSummaryList"][0]
    described = registry.sagemaker.describe_model_package(ModelPackageName=arn["ModelPackageArn"])
    props = described["CustomerMetadataProperties"]
    assert len(props) == 50
    assert all(0 < len(k) <= 128 and 0 < len(v) <= 256 for k, v in props.items())
    assert all(METADATA_CHARS.match(k) and METADATA_CHARS.match(v) for k, v in props.items())
    assert props[METADATA_PROPERTY].endswith("/models/demo-churn-classifier/1/metadata.json")
    assert props["metric.roc_auc"] == "0.81"
    assert len(described["ModelPackageDescription"]) == 1024
    assert "\n" not in described["ModelPackageDescription"]
    bucket, key = split_uri(props[METADATA_PROPERTY])
    stored = json.loads(client("s3", "eu-west-1").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert stored["params"]["long"] == "x{" * 900

    registry.set_status("churn-classifier", v.version, "Rejected")
    assert registry.get("churn-classifier", v.version).params == params


def test_metadata_properties_clip_and_order() -> None:
    props = metadata_properties({"auc": 0.5}, {"a": "v" * 300, "b{": "ok"}, {"run": "r"},
                                "s3://b/m/1/metadata.json")
    assert list(props) == [METADATA_PROPERTY, "metric.auc", "param.a", "param.b_",
                           "lineage.run"]
    assert len(props["param.a"]) == 256 and props["param.a"].endswith("...")


def test_failed_registration_leaves_nothing(registry: SageMakerRegistry, model_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                          "CreateModelPackage")

    monkeypatch.setattr(registry.sagemaker, "create_model_package", refuse)
    with pytest.raises(RegistryError, match="slow down"):
        register(registry, model_dir)
    monkeypatch.undo()
    assert registry.versions("churn-classifier") == []
    storage = S3Storage(registry.s3, registry.bucket)
    assert storage.listing(storage.uri("models")) == {}
    v1 = register(registry, model_dir)
    assert v1.version == 1 and v1.artifact_uri.endswith("/demo-churn-classifier/1/model.tar.gz")


def test_taken_artifact_folder_is_skipped(registry: SageMakerRegistry, model_dir: Path) -> None:
    registry.s3.put_object(Bucket=registry.bucket,
                           Key="models/demo-churn-classifier/1/metadata.json", Body=b"{}")
    v1 = register(registry, model_dir)
    assert v1.version == 1
    assert v1.artifact_uri.endswith("/models/demo-churn-classifier/2/model.tar.gz")
    assert v1.metrics == {"roc_auc": 0.81}


@pytest.mark.parametrize(("cron", "aws"), [
    ("0 3 * * 1", "cron(0 3 ? * 2 *)"),
    ("30 2 * * *", "cron(30 2 * * ? *)"),
    ("0 * 1 * *", "cron(0 * 1 * ? *)"),
    ("0 6 * * 1-5", "cron(0 6 ? * 2-6 *)"),
    ("0 6 * * 0,6", "cron(0 6 ? * 1,7 *)"),
    ("0 6 * * 7", "cron(0 6 ? * 1 *)"),
    ("0 6 * * MON-FRI", "cron(0 6 ? * 2-6 *)"),
    ("0 6 * * 1-7", "cron(0 6 ? * 1-7 *)"),  # Monday to Sunday: never a reversed 2-1
    ("0 6 * * 5-7", "cron(0 6 ? * 1,6,7 *)"),
    ("0 6 * * */2", "cron(0 6 ? * 1,3,5,7 *)"),
])
def test_cron_becomes_eventbridge_cron(cron: str, aws: str) -> None:
    from mlops_kit.adapters.aws.cron import aws_cron

    assert aws_cron(cron) == aws


@pytest.mark.parametrize(("cron", "problem"), [
    ("0 3 1 * 1", "cannot combine"), ("0 3 * *", "give 5 fields"),
    ("0 3 * * 9", "'9' is not within 0-7"), ("0 25 * * *", "the hour field"),
])
def test_cron_that_eventbridge_cannot_express_is_refused(cron: str, problem: str) -> None:
    from mlops_kit.adapters.aws.cron import aws_cron

    with pytest.raises(ValueError, match=problem):
        aws_cron(cron)


def test_model_monitor_takes_hourly_or_daily_schedules() -> None:
    from mlops_kit.adapters.aws.cron import monitor_cron

    assert monitor_cron("0 * * * *") == "cron(0 * ? * * *)"
    assert monitor_cron("0 4 * * *") == "cron(0 4 ? * * *)"
    for bad in ("30 * * * *", "0 4 * * 1", "0 25 * * *"):
        with pytest.raises(ValueError, match="hourly"):
            monitor_cron(bad)
