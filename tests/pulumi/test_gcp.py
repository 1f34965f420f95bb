"""The Google Cloud platform under Pulumi mocks: every stack file, every component, the
properties that matter (encryption, public access, scaling from config, alert thresholds,
labels, the pipeline spec's steps)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import pulumi
from mlops_pulumi.config import load_stack
from mlops_pulumi.gcp.platform import build
from mlops_pulumi.policies import violations
from tests.conftest import ROOT
from tests.pulumi.conftest import two_models
from tests.pulumi.mocks import RecordingMocks

GCP_STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.gcp_*.yaml"))
KEY = "projects/churn-kms/locations/europe-west1/keyRings/mlops/cryptoKeys/lake"


def _done(platform: Any) -> pulumi.Output[Any]:
    """An output that resolves once the last resources of the platform are registered."""
    ids = [platform.feature_store.view.id, platform.warehouse.feature_source.id]
    ids += [b.id for b in platform.identity.bindings]
    ids += [r.id for r in platform.training.requests.values()]
    ids += [s.id for s in platform.training.schedules.values()]
    ids += [m.pool.id for m in platform.serving.models.values()]
    ids += [p.id for policies in platform.alerts.policies.values() for p in policies]
    ids += [platform.cicd.trigger.id] if platform.cicd.trigger else []
    return pulumi.Output.all(*ids)


def _platform(tmp_path: Path, changes: dict[str, Any] | None = None,
              env: str = "gcp_prod") -> Any:
    return build(load_stack(env, two_models(tmp_path, changes)))


def _one(mocks: RecordingMocks, suffix: str, name: str) -> dict[str, Any]:
    return next(c.inputs for c in mocks.of_type(suffix) if c.name == name)


def _content(obj: dict[str, Any]) -> Any:
    """A BucketObject's content (a secret input: the mocks see Pulumi's secret wrapper)."""
    content = obj["content"]
    return json.loads(content["value"] if isinstance(content, dict) else content)


def test_every_gcp_environment_has_a_stack_file() -> None:
    assert GCP_STACKS == ["gcp_dev", "gcp_prod"]


@pytest.mark.parametrize("env", GCP_STACKS)
@pulumi.runtime.test
def test_stack_file_builds_a_compliant_platform(env: str, mocks: RecordingMocks) -> Any:
    assert f"mlops:environment: {env}" in (ROOT / f"Pulumi.{env}.yaml").read_text()
    platform = build(load_stack(env, ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        assert len(mocks.created) > 40
        found = [(c.type, c.name, v) for c in mocks.created for v in violations(c.type, c.inputs)]
        assert found == []
        provider = mocks.of_type("pulumi:providers:gcp")[0].inputs
        assert (provider["project"], provider["region"]) == (
            {"gcp_dev": "churn-dev-111111", "gcp_prod": "churn-prod-333333"}[env], "europe-west1")
        labelled = [c for c in mocks.created if "labels" in c.inputs and c.type.endswith(
            ("Bucket", "Dataset", "AiEndpoint", "Repository"))]
        assert labelled and all(c.inputs["labels"]["environment"] == env.replace("_", "-")
                                for c in labelled)
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_lake_buckets_are_private_versioned_and_age_out(mocks: RecordingMocks) -> Any:
    platform = build(load_stack("gcp_dev", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        buckets = {c.inputs["name"]: c.inputs for c in mocks.of_type("storage/bucket:Bucket")}
        assert sorted(buckets) == [f"churn-dev-111111-churn-gcp-dev-{z}" for z in (
            "curated", "features", "pipelines", "quarantine", "raw")]
        for bucket in buckets.values():
            assert bucket["uniformBucketLevelAccess"] is True
            assert bucket["publicAccessPrevention"] == "enforced"
            assert bucket["versioning"] == {"enabled": True}
            assert bucket["location"] == "europe-west1"
            assert "encryption" not in bucket                      # Google-managed by default
        raw = buckets["churn-dev-111111-churn-gcp-dev-raw"]["lifecycleRules"]
        assert [(r["action"].get("storageClass"), r["condition"].get("age")) for r in raw] == [
            (None, None), ("NEARLINE", 30), ("ARCHIVE", 180)]
        quarantine = buckets["churn-dev-111111-churn-gcp-dev-quarantine"]["lifecycleRules"]
        assert quarantine[-1] == {"action": {"type": "Delete"},
                                  "condition": {"age": 90, "withState": "LIVE"}}
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_cmek_reaches_every_resource_that_takes_a_key(tmp_path: Path,
                                                      mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"gcp": {"kms_key": KEY}})

    def check(_: Any) -> None:
        for bucket in mocks.of_type("storage/bucket:Bucket"):
            assert bucket.inputs["encryption"] == {"defaultKmsKeyName": KEY}
        dataset = mocks.of_type("bigquery/dataset:Dataset")[0].inputs
        assert dataset["defaultEncryptionConfiguration"] == {"kmsKeyName": KEY}
        assert mocks.of_type("artifactregistry/repository:Repository")[0].inputs[
            "kmsKeyName"] == KEY
        for kind in ("AiEndpoint", "AiMetadataStore", "AiFeatureOnlineStore"):
            assert all(c.inputs["encryptionSpec"] == {"kmsKeyName": KEY}
                       for c in mocks.of_type(f":{kind}")), kind
        request = _content(mocks.of_type("BucketObject")[0].inputs)
        assert request["encryptionSpec"] == {"kmsKeyName": KEY}
        assert [v for c in mocks.created for v in violations(c.type, c.inputs)] == []
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_bigquery_tables_read_the_zones(mocks: RecordingMocks) -> Any:
    platform = build(load_stack("gcp_dev", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        assert mocks.of_type("bigquery/dataset:Dataset")[0].inputs["datasetId"] == \
            "churn_gcp_dev"
        tables = {c.inputs["tableId"]: c.inputs for c in mocks.of_type("bigquery/table:Table")}
        curated = tables["curated_customers"]["externalDataConfiguration"]
        prefix = "gs://churn-dev-111111-churn-gcp-dev-curated/curated_customers/"
        assert curated["sourceUris"] == [f"{prefix}*.parquet"]
        assert curated["sourceFormat"] == "PARQUET"
        assert curated["hivePartitioningOptions"] == {"mode": "AUTO", "sourceUriPrefix": prefix}
        assert "hivePartitioningOptions" not in \
            tables["customer_features"]["externalDataConfiguration"]
        view = tables["customer_features_registry"]["view"]["query"]
        assert view == ("SELECT *, event_time AS feature_timestamp FROM "
                        "`churn-dev-111111.churn_gcp_dev.customer_features`")
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_feature_store_follows_the_config(tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"gcp": {"online_store_min_nodes": 2,
                                            "online_store_max_nodes": 5,
                                            "online_store_cpu_target": 40,
                                            "feature_sync_schedule": "15 * * * *"},
                                    "training": {"time_zone": "Europe/Paris"}})

    def check(_: Any) -> None:
        group = mocks.of_type("AiFeatureGroup")[0].inputs
        assert group["bigQuery"] == {"bigQuerySource": {
            "inputUri": "bq://churn-prod-333333.churn_gcp_prod.customer_features_registry"},
            "entityIdColumns": ["entity_id"]}
        features = sorted(c.inputs["name"] for c in mocks.of_type("AiFeatureGroupFeature"))
        assert "contract__month_to_month" in features and "age_band" in features
        store = mocks.of_type("AiFeatureOnlineStore")[0].inputs
        assert store["bigtable"]["autoScaling"] == {
            "minNodeCount": 2, "maxNodeCount": 5, "cpuUtilizationTarget": 40}
        view = mocks.of_type("AiFeatureOnlineStoreFeatureview")[0].inputs
        assert view["syncConfig"] == {"cron": "TZ=Europe/Paris 15 * * * *"}
        source = view["featureRegistrySource"]["featureGroups"][0]
        assert source["featureGroupId"] == "customer_features"
        assert sorted(source["featureIds"]) == features
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_each_model_gets_an_endpoint_and_an_autoscaled_pool(tmp_path: Path,
                                                            mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"gcp": {"cpu_target_percent": 55}})

    def check(_: Any) -> None:
        endpoints = {c.inputs["displayName"]: c.inputs for c in mocks.of_type("AiEndpoint")}
        assert sorted(endpoints) == ["churn-gcp-prod-churn-classifier", "churn-gcp-prod-churn-mlp"]
        assert all(e["name"].isdigit() and len(e["name"]) == 10 for e in endpoints.values())
        assert endpoints["churn-gcp-prod-churn-mlp"]["labels"]["model"] == "churn-mlp"
        pools = {c.inputs["name"]: c.inputs["dedicatedResources"]
                 for c in mocks.of_type("AiDeploymentResourcePool")}
        pool = pools["churn-gcp-prod-churn-mlp"]
        assert pool["machineSpec"] == {"machineType": "n1-standard-2"}   # from ml.m5.large
        assert (pool["minReplicaCount"], pool["maxReplicaCount"]) == (2, 10)  # prod overrides
        assert pool["autoscalingMetricSpecs"] == [{
            "metricName": "aiplatform.googleapis.com/prediction/online/cpu/utilization",
            "target": 55}]                          # step bands: gcp.cpu_target_percent
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_cpu_target_tracking_keeps_its_own_target(tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"serving": {"scaling": {
        "policy": "target_tracking", "metric": "CPUUtilization", "target_value": 70}}})

    def check(_: Any) -> None:
        pool = mocks.of_type("AiDeploymentResourcePool")[0].inputs["dedicatedResources"]
        assert pool["autoscalingMetricSpecs"][0]["target"] == 70
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_alerts_use_the_latency_target_and_notify_every_email(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {
        "serving": {"latency_p99_ms": 250},
        "monitoring": {"alert_emails": ["a@example.com", "b@example.com"]}})

    def check(_: Any) -> None:
        channels = mocks.of_type("NotificationChannel")
        assert [c.inputs["labels"] for c in channels] == [
            {"email_address": "a@example.com"}, {"email_address": "b@example.com"}]
        policies = {c.inputs["displayName"]: c.inputs for c in mocks.of_type("AlertPolicy")}
        assert len(policies) == 4
        latency = policies["churn-gcp-prod-churn-mlp-latency"]
        condition = latency["conditions"][0]["conditionThreshold"]
        assert (condition["comparison"], condition["thresholdValue"]) == ("COMPARISON_GT", 250)
        assert condition["aggregations"][0]["perSeriesAligner"] == "ALIGN_PERCENTILE_99"
        endpoint = platform.serving.models["churn-mlp"].endpoint_id
        assert f'resource.labels.endpoint_id = "{endpoint}"' in condition["filter"]
        assert "prediction/online/prediction_latencies" in condition["filter"]
        assert latency["notificationChannels"] == [
            "/mock/NotificationChannel/alerts-email-0", "/mock/NotificationChannel/alerts-email-1"]
        saturated = policies["churn-gcp-prod-churn-classifier-saturated"]["conditions"][0]
        assert saturated["conditionThreshold"]["thresholdValue"] == 10   # prod max_instances
    return _done(platform).apply(check)


def _scheduled_request(mocks: RecordingMocks, model: str) -> tuple[dict[str, Any], Any]:
    job = next(c.inputs for c in mocks.of_type("cloudscheduler/job:Job")
               if c.inputs["name"] == f"training-{model}")
    return job, json.loads(base64.b64decode(job["httpTarget"]["body"]))


@pulumi.runtime.test
def test_schedules_submit_the_compiled_pipeline_as_the_pipeline_account(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    from kfp import components

    platform = _platform(tmp_path, {"training": {"schedule": "30 2 * * 1"}})

    def check(_: Any) -> None:
        job, body = _scheduled_request(mocks, "churn-mlp")
        assert (job["schedule"], job["timeZone"], job["region"]) == (
            "30 2 * * 1", "UTC", "europe-west1")
        target = job["httpTarget"]
        assert target["uri"] == ("https://europe-west1-aiplatform.googleapis.com/v1/projects/"
                                 "churn-prod-333333/locations/europe-west1/pipelineJobs")
        assert target["oauthToken"]["serviceAccountEmail"] == \
            "churn-scheduler@churn-prod-333333.iam.gserviceaccount.com"
        assert body["serviceAccount"] == "churn-pipeline@churn-prod-333333.iam.gserviceaccount.com"
        assert body["runtimeConfig"]["gcsOutputDirectory"] == \
            "gs://churn-prod-333333-churn-gcp-prod-pipelines/runs/churn-mlp"
        spec = components.load_component_from_text(json.dumps(body["pipelineSpec"]))
        steps = platform.training.stack.pipeline.steps
        assert sorted(spec.pipeline_spec.root.dag.tasks) == sorted(s.name for s in steps)
        train = body["pipelineSpec"]["deploymentSpec"]["executors"]["exec-train"]["container"]
        assert "--model=churn-mlp" in train["args"]
        stored = next(c.inputs for c in mocks.of_type("BucketObject")
                      if c.inputs["name"] == "specs/churn-mlp/pipeline-job.json")
        assert _content(stored) == body
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_no_schedule_without_training_schedule(tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"training": {"schedule": None}})

    def check(_: Any) -> None:
        assert mocks.of_type("cloudscheduler/job:Job") == []
        assert len(mocks.of_type("BucketObject")) == 2        # the requests stay for CI
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_service_accounts_get_scoped_roles_only(tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path)

    def check(_: Any) -> None:
        accounts = sorted(c.inputs["accountId"] for c in mocks.of_type("serviceaccount/account:"
                                                                       "Account"))
        assert accounts == ["churn-build", "churn-pipeline", "churn-scheduler"]
        project_roles = sorted((c.inputs["member"].split(":")[1].split("@")[0], c.inputs["role"])
                               for c in mocks.of_type("projects/iAMMember:IAMMember"))
        assert project_roles == [
            ("churn-build", "roles/aiplatform.user"), ("churn-build", "roles/logging.logWriter"),
            ("churn-pipeline", "roles/aiplatform.user"),
            ("churn-pipeline", "roles/logging.logWriter"),
            ("churn-scheduler", "roles/aiplatform.user")]
        assert not any("admin" in r or r in ("roles/owner", "roles/editor")
                       for _, r in project_roles)
        lake = [c.inputs for c in mocks.of_type("BucketIAMMember")
                if c.inputs["member"].startswith("serviceAccount:churn-pipeline")]
        assert len(lake) == 5 and {b["role"] for b in lake} == {"roles/storage.objectAdmin"}
        repo = {c.inputs["role"]: c.inputs["repository"]
                for c in mocks.of_type("RepositoryIamMember")}
        assert repo == {"roles/artifactregistry.reader": "mlops-kit",
                        "roles/artifactregistry.writer": "mlops-kit"}
        acts_as = [c.inputs for c in mocks.of_type("serviceaccount/iAMMember:IAMMember")]
        assert {a["serviceAccountId"].rsplit("/", 1)[1] for a in acts_as} == {
            "churn-pipeline@churn-prod-333333.iam.gserviceaccount.com"}
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_push_trigger_tests_builds_and_trains_with_a_prod_approval(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"cicd": {"branch": "release"}})

    def check(_: Any) -> None:
        trigger = mocks.of_type("cloudbuild/trigger:Trigger")[0].inputs
        assert trigger["github"] == {"owner": "example-org", "name": "churn",
                                     "push": {"branch": "^release$"}}
        assert trigger["approvalConfig"] == {"approvalRequired": True}   # prod: manual
        assert trigger["serviceAccount"] == ("projects/churn-prod-333333/serviceAccounts/"
                                             "churn-build@churn-prod-333333.iam.gserviceaccount.com")
        ids = [s["id"] for s in trigger["build"]["steps"]]
        assert ids == ["test", "image", "push", "train-churn-classifier", "train-churn-mlp"]
        image = trigger["build"]["steps"][1]["args"]
        assert "europe-west1-docker.pkg.dev/churn-prod-333333/mlops-kit/churn:latest" in image
        train = trigger["build"]["steps"][-1]["args"][1]
        assert "gs://churn-prod-333333-churn-gcp-prod-pipelines/specs/churn-mlp/" \
            "pipeline-job.json" in train
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_dev_builds_without_approval_and_no_repository_no_trigger(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    dev = build(load_stack("gcp_dev", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        trigger = mocks.of_type("cloudbuild/trigger:Trigger")[0].inputs
        assert trigger["approvalConfig"] == {"approvalRequired": False}
    return _done(dev).apply(check)


@pulumi.runtime.test
def test_without_repository_there_is_no_trigger(tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"cicd": {"repository": None}})

    def check(_: Any) -> None:
        assert platform.cicd.trigger is None
        assert mocks.of_type("cloudbuild/trigger:Trigger") == []
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_every_property_reaches_the_provider_in_camel_case(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    from tests.pulumi.test_azure import _snake_keys

    platform = _platform(tmp_path, {"gcp": {"kms_key": KEY}})

    def check(_: Any) -> None:
        free_form = {"labels", "userLabels", "content"}   # user keys / a JSON document
        bad = [(c.type, p) for c in mocks.created
               for p in _snake_keys({k: v for k, v in c.inputs.items() if k not in free_form})]
        assert bad == []
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_the_program_picks_the_gcp_platform(mocks: RecordingMocks) -> Any:
    from mlops_pulumi.program import deploy

    platform = deploy(load_stack("gcp_dev", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        assert mocks.of_type("pulumi:providers:azure-native") == []
        assert len(mocks.of_type("AiEndpoint")) == 1
    return _done(platform).apply(check)
