"""The CDK app, synthesized once for every environment of a two-model project: cdk-nag,
cfn-lint, and the properties that matter (encryption, scaling, guardrails, IAM, pipelines)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

NODE_MAJOR = 20


def _require_node() -> None:
    """aws-cdk-lib runs on Node.js through jsii: without `node`, importing it raises
    FileNotFoundError, which importorskip does not catch. Fail with the fix rather than skip:
    every CI definition we generate has Node, so a skip there would pass a build that checked
    no AWS stack."""
    node = shutil.which("node")
    found = subprocess.run([node, "--version"], capture_output=True, text=True,
                           check=False).stdout.strip() if node else ""
    if not found or int(found.lstrip("v").split(".")[0]) < NODE_MAJOR:
        pytest.fail(f"tests/test_cdk.py needs Node.js >= {NODE_MAJOR} on PATH (aws-cdk-lib runs "
                    f"on it through jsii); found {found or 'no node'}. Install Node.js "
                    f"{NODE_MAJOR} (https://nodejs.org), or leave the CDK tests out with "
                    "--ignore=tests/test_cdk.py", pytrace=False)


_require_node()
cdk = pytest.importorskip("aws_cdk")
from aws_cdk import Stack, Stage  # noqa: E402
from aws_cdk.assertions import Annotations, Match, Template  # noqa: E402
from mlops_cdk.app import build, cdk_context  # noqa: E402

from mlops_kit.adapters.aws.pipeline import check  # noqa: E402
from mlops_kit.config import ConfigError, load_config  # noqa: E402
from mlops_kit.pipeline import load_pipeline  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

PACKAGE = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/churn-churn-classifier/3"
MODELS = ("churn-classifier", "churn-mlp")
BASELINE = "s3://churn-artifacts-111111111111-eu-west-1/models/churn-churn-classifier/3/baseline/"
DATA_URL = "s3://churn-artifacts-111111111111-eu-west-1/models/churn-churn-classifier/3/model.tar.gz"


def project(tmp: Path, changes: dict[str, Any] | None = None) -> Path:
    """A copy of the repository's layout whose config lists two models."""
    for name in ("src", "cdk", "docker", "pyproject.toml", "README.md", "cdk.json"):
        (tmp / name).symlink_to(ROOT / name)
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    first = raw.pop("model")
    raw["models"] = [first, {**first, "name": "churn-mlp", "framework": "pytorch",
                             "params": {"epochs": 5}, "search": {"trials": 1}}]
    for key, value in (changes or {}).items():
        raw[key] = value
    (tmp / "mlops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return tmp


def synth(root: Path, **context: Any) -> list[Stage]:
    app = cdk.App(context={**cdk_context(ROOT), **context}, outdir=str(root / "cdk.out"))
    stages = build(app, root)
    app.synth()
    return stages


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stack]]:
    root = project(tmp_path_factory.mktemp("cdk"))
    releases = root / "releases.json"
    releases.write_text(json.dumps({
        "dev": {"churn-classifier": {"package_arn": PACKAGE, "baseline_uri": BASELINE,
                                     "shadow_package_arn": PACKAGE[:-1] + "4"}},
        "prod": {"churn-classifier": {"package_arn": PACKAGE, "baseline_uri": BASELINE,
                                      "model_data_url": DATA_URL}}}))
    stages = synth(root, releases=str(releases))
    yield {s.stack_name: s for stage in stages for s in stage.node.children
           if isinstance(s, Stack)}


def template(app: dict[str, Stack], name: str) -> Template:
    return Template.from_stack(app[name])


def resources(t: Template, kind: str) -> dict[str, Any]:
    return t.find_resources(kind)


# --- the app as a whole -----------------------------------------------------------------------


def test_a_stage_per_aws_environment_and_a_stack_per_model(app: dict[str, Stack]) -> None:
    expected = {f"churn-{env}-{part}" for env in ("dev", "staging", "prod")
                for part in ("platform", *MODELS)} | {"churn-cicd"}
    assert set(app) == expected
    assert app["churn-prod-platform"].account == "333333333333"
    assert app["churn-prod-platform"].region == "eu-west-1"


def test_no_unacknowledged_cdk_nag_findings_and_every_acknowledgement_has_a_reason(
        app: dict[str, Stack]) -> None:
    for name, stack in app.items():
        errors = Annotations.from_stack(stack).find_error(
            "*", Match.string_like_regexp("AwsSolutions-.*"))
        warnings = Annotations.from_stack(stack).find_warning(
            "*", Match.string_like_regexp("AwsSolutions-.*"))
        assert errors == [] and warnings == [], (name, errors[:3], warnings[:3])
    acknowledged = [item for stack in app.values()
                    for item in suppressions(Template.from_stack(stack).to_json())]
    assert acknowledged
    for item in acknowledged:
        assert len(item["reason"]) > 40, item
        if item["id"] == "AwsSolutions-IAM5":
            assert item.get("applies_to"), item  # never a blanket acknowledgement
        else:
            assert item["id"] == "AwsSolutions-CB3", item
    projects = resources(template(app, "churn-cicd"), "AWS::CodeBuild::Project").values()
    privileged = sorted(p["Properties"]["Name"] for p in projects
                        if p["Properties"]["Environment"]["PrivilegedMode"])
    assert privileged == ["churn-deploy-dev", "churn-deploy-prod", "churn-deploy-staging"]


def suppressions(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield from node.get("rules_to_suppress", [])
        for key, value in node.items():
            if key != "rules_to_suppress":
                yield from suppressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from suppressions(item)


def test_cfn_lint_finds_no_errors_in_any_template(app: dict[str, Stack]) -> None:
    from cfnlint.api import lint

    for name, stack in app.items():
        body = json.dumps(Template.from_stack(stack).to_json())
        matches = lint(body, regions=[stack.region])
        errors = [m for m in matches if m.rule.id.startswith("E")]
        assert errors == [], (name, [str(m) for m in errors[:5]])


def test_templates_stay_within_cloudformation_limits(app: dict[str, Stack]) -> None:
    for name, stack in app.items():
        body = json.dumps(Template.from_stack(stack).to_json())
        assert len(body) < 1_000_000, name
        assert len(json.loads(body)["Resources"]) < 500, name
    models = [len(Template.from_stack(app[f"churn-dev-{m}"]).to_json()["Resources"])
              for m in MODELS]
    assert models[0] > 0 and models[1] > 0


def test_nothing_account_specific_is_hard_coded_in_the_app() -> None:
    for path in (ROOT / "cdk").rglob("*.py"):
        assert not re.search(r"\b\d{12}\b", path.read_text()), path


def test_unknown_or_non_aws_environment_is_a_clear_error(tmp_path: Path) -> None:
    root = project(tmp_path)
    with pytest.raises(ConfigError, match=r"environments\.qa: no such environment"):
        build(cdk.App(context={"env": "qa"}, outdir=str(tmp_path / "o")), root)
    raw = yaml.safe_load((root / "mlops.yaml").read_text())
    raw["environments"]["qa"] = dict(raw["environments"]["dev"])
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "mlops.yaml").write_text(yaml.safe_dump(raw))
    for name in ("src", "cdk", "docker", "pyproject.toml", "README.md", "cdk.json"):
        (shared / name).symlink_to(ROOT / name)
    with pytest.raises(ConfigError, match="dev and qa are on the same AWS account and region"):
        build(cdk.App(outdir=str(tmp_path / "o3")), shared)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="releases file"):
        build(cdk.App(context={"env": "dev", "releases": str(bad)},
                      outdir=str(tmp_path / "o2")), root)


# --- data lake and feature store ------------------------------------------------------------


def test_buckets_are_encrypted_versioned_private_tls_only_and_logged(
        app: dict[str, Stack]) -> None:
    t = template(app, "churn-dev-platform")
    buckets = resources(t, "AWS::S3::Bucket")
    names = {b["Properties"]["BucketName"] for b in buckets.values()}
    assert {f"churn-{z}-111111111111-eu-west-1" for z in
            ("raw", "curated", "quarantine", "features", "artifacts", "access-logs")} <= names
    for logical, bucket in buckets.items():
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        logs = "access-logs" in props["BucketName"]
        assert algorithm == ("AES256" if logs else "aws:kms"), logical
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        if not logs:
            assert "LoggingConfiguration" in props, logical
    policies = json.dumps(resources(t, "AWS::S3::BucketPolicy"))
    assert policies.count('"aws:SecureTransport": "false"') >= 6
    raw = next(b for b in buckets.values() if "-raw-" in b["Properties"]["BucketName"])
    tiers = json.dumps(raw["Properties"]["LifecycleConfiguration"])
    assert '"TransitionInDays": 30' in tiers and '"TransitionInDays": 180' in tiers
    quarantine = next(b for b in buckets.values()
                      if "-quarantine-" in b["Properties"]["BucketName"])
    assert '"ExpirationInDays": 90' in json.dumps(quarantine["Properties"])
    t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_glue_tables_follow_the_schema_and_the_ingest_partitions(app: dict[str, Stack]) -> None:
    t = template(app, "churn-dev-platform")
    tables = {r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
              for r in resources(t, "AWS::Glue::Table").values()}
    assert set(tables) == {"raw_customers", "curated_customers", "quarantine_customers",
                           "customer_features"}
    curated = tables["curated_customers"]
    columns = {c["Name"]: c["Type"] for c in curated["StorageDescriptor"]["Columns"]}
    assert columns["tenure_months"] == "bigint" and columns["event_time"] == "timestamp"
    assert curated["PartitionKeys"] == [{"Name": "ingest_date", "Type": "string"}]
    assert curated["Parameters"]["projection.enabled"] == "true"
    assert "_reason" in {c["Name"] for c in
                         tables["quarantine_customers"]["StorageDescriptor"]["Columns"]}


def test_athena_workgroup_enforces_encrypted_results_and_a_scan_limit(
        app: dict[str, Stack]) -> None:
    t = template(app, "churn-dev-platform")
    t.has_resource_properties("AWS::Athena::WorkGroup", {"WorkGroupConfiguration": {
        "EnforceWorkGroupConfiguration": True,
        "BytesScannedCutoffPerQuery": 10 * 1024**3,
        "ResultConfiguration": {"EncryptionConfiguration": {"EncryptionOption": "SSE_KMS"}}}})
    assert len(resources(t, "AWS::Athena::NamedQuery")) == 2


def test_feature_group_has_online_and_offline_stores_under_kms(app: dict[str, Stack]) -> None:
    t = template(app, "churn-dev-platform")
    group = next(iter(resources(t, "AWS::SageMaker::FeatureGroup").values()))["Properties"]
    assert group["FeatureGroupName"] == "churn-dev-customer-features"
    assert group["RecordIdentifierFeatureName"] == "entity_id"
    assert group["OnlineStoreConfig"]["EnableOnlineStore"] is True
    assert "KmsKeyId" in group["OnlineStoreConfig"]["SecurityConfig"]
    assert "KmsKeyId" in group["OfflineStoreConfig"]["S3StorageConfig"]
    names = {d["FeatureName"] for d in group["FeatureDefinitions"]}
    assert {"contract__month_to_month", "age_band", "event_time"} <= names


# --- training pipeline --------------------------------------------------------------------


def pipeline_definition(t: Template) -> dict[str, Any]:
    """The PipelineDefinitionBody, deploy-time values replaced by placeholders."""
    body = next(iter(resources(t, "AWS::SageMaker::Pipeline").values()))[
        "Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    if isinstance(body, dict):
        body = "".join(part if isinstance(part, str) else "arn:aws:x:eu-west-1:1:deploy-time"
                       for part in body["Fn::Join"][1])
    return json.loads(body)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_has_a_checked_pipeline_from_the_dag(app: dict[str, Stack],
                                                        model: str) -> None:
    t = template(app, f"churn-dev-{model}")
    definition = pipeline_definition(t)
    assert check(definition) == []
    loaded = load_config(ROOT / "mlops.yaml", env="dev")
    dag = [s.name for s in load_pipeline(loaded).steps]
    top = [s["Name"] for s in definition["Steps"]]
    assert top == [*dag[:-1], "quality-gate"]
    args = json.dumps(definition)
    assert f'"--model", "{model}"' in args
    group = next(iter(resources(template(app, "churn-dev-platform"),
                                "AWS::SageMaker::FeatureGroup").values()))["Properties"]
    assert f'"online=featurestore://{group["FeatureGroupName"]}"' in args
    t.has_resource_properties("AWS::SageMaker::ModelPackageGroup",
                              {"ModelPackageGroupName": f"churn-{model}"})


def test_schedule_and_drift_alarm_start_the_pipeline(app: dict[str, Stack]) -> None:
    t = template(app, "churn-dev-churn-classifier")
    rules = [r["Properties"] for r in resources(t, "AWS::Events::Rule").values()]
    scheduled = [s["Properties"] for s in resources(t, "AWS::Scheduler::Schedule").values()]
    assert [(s["ScheduleExpression"], s["ScheduleExpressionTimezone"]) for s in scheduled] == [
        ("cron(0 3 ? * 2 *)", "UTC")]
    assert ":pipeline/churn-churn-classifier" in json.dumps(scheduled[0]["Target"]["Arn"])
    drift = next(r for r in rules if "EventPattern" in r)
    assert drift["EventPattern"]["detail-type"] == ["CloudWatch Alarm State Change"]
    assert drift["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
    assert ":pipeline/churn-churn-classifier" in json.dumps(drift["Targets"][0]["Arn"])
    t.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "DriftedFeatures", "Namespace": "churn", "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold"})


def test_later_environments_forward_drift_to_the_home_pipeline(app: dict[str, Stack]) -> None:
    prod = template(app, "churn-prod-churn-classifier")
    rules = [r["Properties"] for r in resources(prod, "AWS::Events::Rule").values()]
    forward = next(r for r in rules if "EventPattern" in r)
    target = forward["Targets"][0]
    assert ":events:eu-west-1:111111111111:event-bus/default" in json.dumps(target["Arn"])
    assert "RoleArn" in target  # a cross-account bus target needs a role
    assert forward["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
    assert ":pipeline/" not in json.dumps(rules)  # prod's own versions are not served
    home = template(app, "churn-dev-churn-classifier")
    retrain = next(r["Properties"] for r in resources(home, "AWS::Events::Rule").values()
                   if "EventPattern" in r["Properties"])
    sources = json.dumps(retrain["EventPattern"]["resources"])
    for env, account in (("staging", "222222222222"), ("prod", "333333333333")):
        assert (f":cloudwatch:eu-west-1:{account}:alarm:churn-{env}-churn-classifier-drift"
                in sources)
    assert ":pipeline/churn-churn-classifier" in json.dumps(retrain["Targets"][0]["Arn"])
    policies = [r["Properties"] for r in resources(template(app, "churn-dev-platform"),
                                                   "AWS::Events::EventBusPolicy").values()]
    assert sorted(p["Statement"]["Principal"]["AWS"] for p in policies) == [
        f"arn:aws:iam::{a}:root" for a in ("222222222222", "333333333333")]
    assert {p["Statement"]["Action"] for p in policies} == {"events:PutEvents"}
    assert sorted(p["StatementId"][:12] for p in policies) == ["222222222222", "333333333333"]
    assert not resources(template(app, "churn-prod-platform"), "AWS::Events::EventBusPolicy")


def test_job_role_is_scoped_to_the_project(app: dict[str, Stack]) -> None:
    t = template(app, "churn-dev-platform")
    statements = [s for p in resources(t, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    registry = next(s for s in statements if s.get("Sid") == "Registry")
    assert all("churn-" in json.dumps(r) for r in registry["Resource"])
    passing = next(s for s in statements if s.get("Sid") == "PassItself")
    assert passing["Condition"] == {"StringEquals": {
        "iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert any(s["Action"] == "kms:CreateGrant" and s["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"}} for s in statements)
    online = next(s for s in statements if s.get("Sid") == "OnlineFeatures")
    assert online["Action"] == "sagemaker:PutRecord"
    assert online["Resource"] == (  # this feature group only
        "arn:aws:sagemaker:eu-west-1:111111111111:feature-group/churn-dev-customer-features")
    key = next(iter(resources(t, "AWS::KMS::Key")))
    assert any("kms:Decrypt" in s["Action"] and s["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
               for s in job_role_statements(t))  # Feature Store's data plane needs it
    metrics = next(s for s in statements if s.get("Sid") == "Metrics")
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "churn"}}
    for s in statements:
        assert s["Resource"] != "*" or s.get("Condition") or s["Action"] in (
            "ecr:GetAuthorizationToken", ["ecr:GetAuthorizationToken"]), s


def job_role_statements(t: Template) -> list[dict[str, Any]]:
    role = next(k for k in resources(t, "AWS::IAM::Role") if k.startswith("JobRole"))
    return [s for p in resources(t, "AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


# --- serving ------------------------------------------------------------------------------


def test_no_endpoint_until_a_version_is_approved(app: dict[str, Stack]) -> None:
    assert resources(template(app, "churn-staging-churn-classifier"),
                     "AWS::SageMaker::Endpoint") == {}
    assert resources(template(app, "churn-dev-churn-mlp"), "AWS::SageMaker::Endpoint") == {}


def test_endpoint_serves_the_approved_package_with_guardrails_and_capture(
        app: dict[str, Stack]) -> None:
    template(app, "churn-dev-churn-classifier").has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": {"ModelPackageName": PACKAGE},
                                  "EnableNetworkIsolation": True})
    t = template(app, "churn-prod-churn-classifier")  # another account: own image, home files
    container = next(iter(resources(t, "AWS::SageMaker::Model").values()))[
        "Properties"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == DATA_URL and "333333333333" in json.dumps(
        container["Image"])
    assert container["Environment"] == {"MLOPS_MODEL_NAME": "churn-classifier",
                                        "MLOPS_MODEL_VERSION": "3"}
    config = next(iter(resources(t, "AWS::SageMaker::EndpointConfig").values()))["Properties"]
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert "KmsKeyId" in config
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"]
    assert "KmsKeyId" in capture
    endpoint = next(iter(resources(t, "AWS::SageMaker::Endpoint").values()))["Properties"]
    assert endpoint["EndpointName"] == "churn-churn-classifier"
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert policy["TrafficRoutingConfiguration"]["CanarySize"] == {
        "Type": "CAPACITY_PERCENT", "Value": 10}
    rollback = [a["AlarmName"] for a in
                endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert rollback == ["churn-churn-classifier-error-rate", "churn-churn-classifier-latency-p99"]
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in
              resources(t, "AWS::CloudWatch::Alarm").values() if "AlarmName" in a["Properties"]}
    assert set(rollback) <= set(alarms)
    assert alarms["churn-churn-classifier-latency-p99"]["Threshold"] == 100_000
    assert alarms["churn-churn-classifier-latency-p99"]["ExtendedStatistic"] == "p99"
    assert alarms["churn-churn-classifier-latency-p99"]["Period"] == 60  # metrics per minute
    assert endpoint["RetainAllVariantProperties"] is True  # a release keeps the scaled count
    assert endpoint["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DataCaptureConfig"}]


def test_data_quality_schedule_runs_the_kit_against_the_training_baseline(
        app: dict[str, Stack]) -> None:
    t = template(app, "churn-prod-churn-classifier")
    job = next(iter(resources(t, "AWS::SageMaker::DataQualityJobDefinition").values()))[
        "Properties"]
    spec = job["DataQualityAppSpecification"]
    assert spec["ContainerEntrypoint"] == ["python", "-m", "mlops_kit.monitoring.job"]
    assert spec["Environment"]["MLOPS_METRICS_SINK"] == "cloudwatch"
    assert spec["Environment"]["MLOPS_MODEL"] == "churn-classifier"
    assert job["DataQualityBaselineConfig"]["ConstraintsResource"]["S3Uri"] == \
        BASELINE + "constraints.json"
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == \
        "churn-churn-classifier"
    assert "KmsKeyId" in job["DataQualityJobOutputConfig"]
    assert "VolumeKmsKeyId" in job["JobResources"]["ClusterConfig"]
    t.has_resource_properties("AWS::SageMaker::MonitoringSchedule", {
        "MonitoringScheduleConfig": {
            "MonitoringType": "DataQuality",
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"}}})


def test_a_release_may_shadow_test_another_version(app: dict[str, Stack]) -> None:
    dev = template(app, "churn-dev-churn-classifier")
    config = next(iter(resources(dev, "AWS::SageMaker::EndpointConfig").values()))["Properties"]
    shadow = config["ShadowProductionVariants"]
    assert [v["VariantName"] for v in shadow] == ["Shadow"]
    assert shadow[0]["InitialVariantWeight"] == 0.2  # serving.deployment.shadow_percent
    models = [m["Properties"]["PrimaryContainer"]["ModelPackageName"]
              for m in resources(dev, "AWS::SageMaker::Model").values()]
    assert sorted(models) == [PACKAGE, PACKAGE[:-1] + "4"]
    prod = template(app, "churn-prod-churn-classifier")
    config = next(iter(resources(prod, "AWS::SageMaker::EndpointConfig").values()))["Properties"]
    assert "ShadowProductionVariants" not in config


def test_cross_account_endpoint_reads_the_home_registry(app: dict[str, Stack]) -> None:
    prod = json.dumps(template(app, "churn-prod-churn-classifier").to_json())
    assert "churn-artifacts-111111111111-eu-west-1/models/churn-churn-classifier/*" in prod
    assert "alias/churn-dev" in prod
    monitor = json.dumps(template(app, "churn-prod-platform").to_json())  # the job role
    assert "churn-artifacts-111111111111-eu-west-1/models/*" in monitor
    home = template(app, "churn-dev-churn-classifier")
    group = next(iter(resources(home, "AWS::SageMaker::ModelPackageGroup").values()))
    principals = json.dumps(group["Properties"]["ModelPackageGroupPolicy"])
    assert "222222222222" in principals and "333333333333" in principals


def test_step_scaling_follows_the_config(app: dict[str, Stack]) -> None:
    t = template(app, "churn-prod-churn-classifier")
    t.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {
        "MinCapacity": 2, "MaxCapacity": 10, "ServiceNamespace": "sagemaker",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "ResourceId": "endpoint/churn-churn-classifier/variant/AllTraffic"})
    policies = [p["Properties"] for p in
                resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    assert {p["PolicyType"] for p in policies} == {"StepScaling"}
    configs = {p["StepScalingPolicyConfiguration"]["Cooldown"]:
               p["StepScalingPolicyConfiguration"] for p in policies}
    assert set(configs) == {60, 300}
    out = configs[60]
    assert out["AdjustmentType"] == "ChangeInCapacity"
    assert [(s.get("MetricIntervalLowerBound"), s.get("MetricIntervalUpperBound"),
             s["ScalingAdjustment"]) for s in out["StepAdjustments"]] == [
        (0, 600, 1), (600, None, 2)]
    assert [s["ScalingAdjustment"] for s in configs[300]["StepAdjustments"]] == [-1]
    alarms = [a["Properties"] for a in resources(t, "AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("MetricName") == "InvocationsPerInstance"]
    by_threshold = {a["Threshold"]: a for a in alarms}
    assert set(by_threshold) == {600, 200}
    assert by_threshold[600]["EvaluationPeriods"] == 1
    assert by_threshold[200]["EvaluationPeriods"] == 5
    assert by_threshold[600]["Statistic"] == "Sum"


def test_planned_alarm_shape_scale_in_after_removal_and_scale_out_trend(tmp_path: Path) -> None:
    serving = yaml.safe_load((ROOT / "mlops.yaml").read_text())["serving"]
    serving["scaling"] = {**serving["scaling"], "evaluation_periods_in": 10,
                          "datapoints_to_alarm_in": 8, "scale_in_metric": "after_removal",
                          "scale_out_trend_minutes": 2.5}
    alarms = scaling_alarms(tmp_path, serving)
    scale_in = next(a for a in alarms if a.get("Threshold") == 200)
    assert (scale_in["EvaluationPeriods"], scale_in["DatapointsToAlarm"]) == (10, 8)
    expression = next(m["Expression"] for m in scale_in["Metrics"] if "Expression" in m)
    assert "n * p / (n - p)" in expression
    scale_out = next(a for a in alarms if a.get("Threshold") == 600)
    expression = next(m["Expression"] for m in scale_out["Metrics"] if "Expression" in m)
    assert "m * (1 + 2.5 * IF(DIFF(inv) > 0, DIFF(inv), 0) / inv)" in expression


def served_model(tmp_path: Path, serving: dict[str, Any]) -> Template:
    """dev's first model stack, served, with `serving` in place of the example's."""
    root = project(tmp_path, {"serving": serving})
    releases = tmp_path / "r.json"
    releases.write_text(json.dumps({"dev": {"churn-classifier": {"package_arn": PACKAGE}}}))
    stages = synth(root, env="dev", releases=str(releases))
    return Template.from_stack(next(s for s in stages[0].node.children if isinstance(s, Stack)
                                    and s.stack_name == "churn-dev-churn-classifier"))


def scaling_alarms(tmp_path: Path, serving: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["Properties"] for a in served_model(tmp_path, serving).find_resources(
        "AWS::CloudWatch::Alarm").values()]


def test_planned_floors_become_scheduled_actions(tmp_path: Path) -> None:
    serving = yaml.safe_load((ROOT / "mlops.yaml").read_text())["serving"]
    serving["scaling"] = {**serving["scaling"], "schedule_time_zone": "Europe/Paris",
                          "scheduled": [{"cron": "55 7 * * 1-5", "min_instances": 3},
                                        {"cron": "0 20 * * *", "min_instances": 2}]}
    target = next(iter(served_model(tmp_path, serving).find_resources(
        "AWS::ApplicationAutoScaling::ScalableTarget").values()))["Properties"]
    actions = sorted(target["ScheduledActions"], key=lambda a: a["Schedule"])
    assert [(a["Schedule"], a["ScalableTargetAction"], a["Timezone"]) for a in actions] == [
        ("cron(0 20 * * ? *)", {"MinCapacity": 2}, "Europe/Paris"),
        ("cron(55 7 ? * 2-6 *)", {"MinCapacity": 3}, "Europe/Paris")]


def test_target_tracking_when_chosen(tmp_path: Path) -> None:
    serving = yaml.safe_load((ROOT / "mlops.yaml").read_text())["serving"]
    serving["scaling"] = {"policy": "target_tracking", "target_value": 900}
    served_model(tmp_path, serving).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 900, "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}})


def test_dashboard_shows_traffic_latency_errors_instances_and_drift(
        app: dict[str, Stack]) -> None:
    t = template(app, "churn-prod-churn-classifier")
    body = json.dumps(next(iter(resources(t, "AWS::CloudWatch::Dashboard").values())))
    for needle in ("Invocations", "ModelLatency", "Invocation5XXErrors", "Instances",
                   "DriftedFeatures", "ModelQuality"):
        assert needle in body, needle


# --- delivery -----------------------------------------------------------------------------


def test_delivery_pipelines_stages_and_approval_trigger(app: dict[str, Stack]) -> None:
    t = template(app, "churn-cicd")
    pipelines = {p["Properties"]["Name"]: p["Properties"] for p in
                 resources(t, "AWS::CodePipeline::Pipeline").values()}
    assert set(pipelines) == {"churn-delivery", "churn-release"}
    for p in pipelines.values():
        assert p["PipelineType"] == "V2"
    delivery = [s["Name"] for s in pipelines["churn-delivery"]["Stages"]]
    assert delivery == ["Source", "Test", "Deploy-dev", "Train"]
    release = pipelines["churn-release"]["Stages"]
    assert [s["Name"] for s in release] == ["Source", "Release-staging", "Release-prod"]
    prod_actions = [a["Name"] for a in release[2]["Actions"]]
    assert prod_actions == ["Approve", "Deploy", "Smoke"]
    assert "Approve" not in [a["Name"] for a in release[1]["Actions"]]
    source = pipelines["churn-delivery"]["Stages"][0]["Actions"][0]["Configuration"]
    assert source["FullRepositoryId"] == "example-org/churn" and source["BranchName"] == "main"
    t.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelApprovalStatus": ["Approved"],
                   "ModelPackageGroupName": [{"prefix": "churn-"}]}}})
    builds = json.dumps(resources(t, "AWS::CodeBuild::Project"))
    for command in ("make test", "make synth", "-c env=staging -c releases=releases.json",
                    "release smoke --env prod"):
        assert command in builds, command


def test_codecommit_as_the_source_of_both_pipelines(tmp_path: Path) -> None:
    cicd = {**yaml.safe_load((ROOT / "mlops.yaml").read_text())["cicd"], "source": "codecommit"}
    stages = synth(project(tmp_path, {"cicd": cicd}), env="dev")
    stack = next(s for stage in stages for s in stage.node.children
                 if isinstance(s, Stack) and s.stack_name == "churn-cicd")
    sources = [p["Properties"]["Stages"][0]["Actions"][0] for p in Template.from_stack(
        stack).find_resources("AWS::CodePipeline::Pipeline").values()]
    assert [(a["ActionTypeId"]["Provider"], a["Configuration"]["RepositoryName"],
             a["Configuration"]["PollForSourceChanges"]) for a in sources] == [
        ("CodeCommit", "churn", False), ("CodeCommit", "churn", False)]
