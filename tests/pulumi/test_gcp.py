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
MONITOR_ROLE = "projects/churn-prod-333333/roles/churn_monitor_vertex"
RETENTION_ROLE = "projects/churn-prod-333333/roles/churn_retention_rows"
TRANSFER_AGENT = "service-123456789012@gcp-sa-bigquerydatatransfer.iam.gserviceaccount.com"


def _done(platform: Any) -> pulumi.Output[Any]:
    """An output that resolves once the last resources of the platform are registered."""
    ids = [platform.feature_store.view.id, platform.warehouse.feature_source.id]
    ids += [b.id for b in platform.identity.bindings]
    ids += [r.id for r in platform.training.requests.values()]
    ids += [s.id for s in platform.training.schedules.values()]
    ids += [m.pool.id for m in platform.serving.models.values()]
    ids += [t.id for t in platform.retention.schedules.values()]
    ids += [p.id for policies in platform.alerts.policies.values() for p in policies]
    ids += [s.id for s in platform.monitoring.schedules.values()]
    ids += [a.id for a in platform.monitoring.alerts.values()]
    ids += [d.id for d in platform.monitoring.descriptors.values()]
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
        assert sorted(n.rsplit("-", 1)[1] for n in policies) == [
            "drift", "drift", "latency", "latency", "saturated", "saturated"]
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
        assert body["runtimeConfig"] == {   # no parameterValues: the spec's defaults apply
            "gcsOutputDirectory": "gs://churn-prod-333333-churn-gcp-prod-pipelines/runs/churn-mlp"}
        inputs = body["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
        assert inputs["ingest_date"]["defaultValue"] == ""   # a scheduled run ingests its day
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
        assert [j.inputs["name"] for j in mocks.of_type("cloudscheduler/job:Job")] == [
            "monitor-churn-classifier", "monitor-churn-mlp"]   # drift checks still run
        assert len(mocks.of_type("BucketObject")) == 2        # the requests stay for CI
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_service_accounts_get_scoped_roles_only(tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path)

    def check(_: Any) -> None:
        accounts = sorted(c.inputs["accountId"] for c in mocks.of_type("serviceaccount/account:"
                                                                       "Account"))
        assert accounts == ["churn-build", "churn-monitor", "churn-pipeline", "churn-retention",
                            "churn-scheduler"]
        project_roles = sorted((c.inputs["member"].split(":")[1].split("@")[0], c.inputs["role"])
                               for c in mocks.of_type("projects/iAMMember:IAMMember"))
        assert project_roles == [
            ("churn-build", "roles/aiplatform.user"), ("churn-build", "roles/logging.logWriter"),
            ("churn-monitor", MONITOR_ROLE), ("churn-monitor", "roles/bigquery.jobUser"),
            ("churn-monitor", "roles/logging.logWriter"),
            ("churn-monitor", "roles/monitoring.metricWriter"),
            ("churn-pipeline", "roles/aiplatform.user"),
            ("churn-pipeline", "roles/logging.logWriter"),
            ("churn-retention", "roles/bigquery.jobUser"),
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
        acts_as = sorted((a.inputs["member"].split(":")[1].split("@")[0],
                          a.inputs["serviceAccountId"].rsplit("/", 1)[1].split("@")[0])
                         for a in mocks.of_type("serviceaccount/iAMMember:IAMMember"))
        assert acts_as == [("churn-build", "churn-pipeline"), ("churn-monitor", "churn-pipeline"),
                           ("churn-scheduler", "churn-monitor"),
                           ("churn-scheduler", "churn-pipeline"),
                           (TRANSFER_AGENT.split("@")[0], "churn-retention")]
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
        assert ids == ["test", "image", "push", "deploy", "train-churn-classifier",
                       "train-churn-mlp"]
        image = trigger["build"]["steps"][1]["args"]
        assert "europe-west1-docker.pkg.dev/churn-prod-333333/mlops-kit/churn:latest" in image
        assert image[1:7] == ["--file", "docker/Dockerfile", "--build-arg", "CONFIG=mlops.yaml",
                              "--build-arg", "CONFIG_PATH=/opt/mlops/mlops.yaml"]
        assert image[7:9] == ["--build-arg", "EXTRAS=vertex"]   # the registry's SDK inside
        deploy = trigger["build"]["steps"][3]
        assert deploy["name"] == image[10] and deploy["entrypoint"] == "python"
        assert deploy["args"] == ["-m", "mlops_kit.adapters.gcp.release", "deploy", "--config",
                                  "/opt/mlops/mlops.yaml", "--env", "gcp_prod"]
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


@pulumi.runtime.test
def test_endpoints_log_sampled_requests_to_the_dataset(tmp_path: Path,
                                                      mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"serving": {"capture": {"sampling_percent": 25}}})

    def check(_: Any) -> None:
        endpoints = {c.inputs["displayName"]: c.inputs for c in mocks.of_type("AiEndpoint")}
        logging = endpoints["churn-gcp-prod-churn-mlp"]["predictRequestResponseLoggingConfig"]
        assert logging == {"enabled": True, "samplingRate": 0.25, "bigqueryDestination": {
            "outputUri": "bq://churn-prod-333333.churn_gcp_prod.capture_churn_mlp"}}
    return _done(platform).apply(check)


def _retention(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    """The scheduled queries by display name."""
    return {c.inputs["displayName"]: c.inputs
            for c in mocks.of_type("bigquery/dataTransferConfig:DataTransferConfig")}


@pulumi.runtime.test
def test_vertex_creates_the_capture_tables_and_a_daily_query_deletes_old_rows(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"serving": {"capture": {"retention_days": 45}}})

    def check(_: Any) -> None:
        assert not any(t.inputs.get("tableId", "").startswith("capture_")   # Vertex makes it
                       for t in mocks.of_type("bigquery/table:Table"))
        schedules = _retention(mocks)
        assert sorted(schedules) == ["churn_gcp_prod capture_churn_classifier retention",
                                     "churn_gcp_prod capture_churn_mlp retention"]
        for model in platform.serving.models:
            table = f"capture_{model.replace('-', '_')}"
            config = schedules[f"churn_gcp_prod {table} retention"]
            assert (config["dataSourceId"], config["schedule"], config["location"]) == (
                "scheduled_query", "every 24 hours", "europe-west1")
            assert "destinationDatasetId" not in config   # a script: no destination table
            query = config["params"]["query"]
            assert f"WHERE table_name = '{table}') THEN" in query
            assert f"DELETE FROM `churn-prod-333333.churn_gcp_prod.{table}`" in query
            assert "INTERVAL 45 DAY" in query
            assert config["serviceAccountName"] == (
                "churn-retention@churn-prod-333333.iam.gserviceaccount.com")
    return _done(platform).apply(check)


@pytest.mark.parametrize("days", [7, 400])
@pulumi.runtime.test
def test_the_retention_query_follows_retention_days(days: int, tmp_path: Path,
                                                    mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"serving": {"capture": {"retention_days": days}}})

    def check(_: Any) -> None:
        intervals = {c["params"]["query"].split("INTERVAL ")[1].split(" DAY")[0]
                     for c in _retention(mocks).values()}
        assert intervals == {str(days)}
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_the_retention_account_edits_only_the_dataset(tmp_path: Path,
                                                      mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path)
    member = "serviceAccount:churn-retention@churn-prod-333333.iam.gserviceaccount.com"

    def check(_: Any) -> None:
        on_project = [c.inputs for c in mocks.of_type("projects/iAMMember:IAMMember")
                      if c.inputs["member"] == member]
        assert [(b["project"], b["role"]) for b in on_project] == [
            ("churn-prod-333333", "roles/bigquery.jobUser")]
        on_datasets = [c.inputs for c in mocks.of_type("DatasetIamMember")
                       if c.inputs["member"] == member]
        assert [(b["datasetId"], b["role"]) for b in on_datasets] == [
            ("churn_gcp_prod", RETENTION_ROLE)]
        assert not any(member == c.inputs.get("member") for c in mocks.created
                       if c.type.endswith(("BucketIAMMember", "RepositoryIamMember",
                                           "serviceaccount/iAMMember:IAMMember")))
        everywhere = [c for c in mocks.created if c.inputs.get("member") == member]
        assert len(everywhere) == 2   # nothing else anywhere: no bucket, table or account
        [role] = [c.inputs for c in mocks.of_type("projects/iAMCustomRole:IAMCustomRole")
                  if c.inputs["roleId"] == "churn_retention_rows"]
        assert (role["project"], role["stage"]) == ("churn-prod-333333", "GA")
        assert role["permissions"] == [
            "bigquery.tables.get", "bigquery.tables.list", "bigquery.tables.getData",
            "bigquery.tables.updateData", "bigquery.routines.get", "bigquery.routines.list"]
        assert platform.retention.account is not None
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_the_transfer_agent_may_mint_tokens_for_the_retention_account_only(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path)

    def check(_: Any) -> None:
        agent = [c.inputs for c in mocks.created if c.inputs.get("member", "").endswith(
            "@gcp-sa-bigquerydatatransfer.iam.gserviceaccount.com")]
        assert [(b["role"], b["serviceAccountId"]) for b in agent] == [(
            "roles/iam.serviceAccountTokenCreator",
            "projects/churn-prod-333333/serviceAccounts/"
            "churn-retention@churn-prod-333333.iam.gserviceaccount.com")]
        assert agent[0]["member"] == f"serviceAccount:{TRANSFER_AGENT}"
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_capture_off_means_no_logging_and_no_drift_schedule(tmp_path: Path,
                                                            mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"serving": {"capture": {"inputs": False}}})

    def check(_: Any) -> None:
        assert {c.inputs["predictRequestResponseLoggingConfig"]["enabled"]
                for c in mocks.of_type("AiEndpoint")} == {False}
        assert _retention(mocks) == {} and platform.retention.account is None
        assert not any(c.inputs["accountId"] == "churn-retention"
                       for c in mocks.of_type("serviceaccount/account:Account"))
        assert platform.monitoring.schedules == {}
        assert len(platform.monitoring.alerts) == 2
    return _done(platform).apply(check)


def _monitor_request(mocks: RecordingMocks, model: str) -> tuple[dict[str, Any], Any]:
    job = next(c.inputs for c in mocks.of_type("cloudscheduler/job:Job")
               if c.inputs["name"] == f"monitor-{model}")
    return job, json.loads(base64.b64decode(job["httpTarget"]["body"]))


@pulumi.runtime.test
def test_drift_schedule_starts_the_monitor_as_a_custom_job(tmp_path: Path,
                                                           mocks: RecordingMocks) -> Any:
    import importlib.util

    platform = _platform(tmp_path, {"monitoring": {"schedule": "*/30 * * * *"},
                                    "gcp": {"monitoring_machine_type": "e2-standard-4"}})

    def check(_: Any) -> None:
        job, body = _monitor_request(mocks, "churn-mlp")
        assert (job["schedule"], job["timeZone"]) == ("*/30 * * * *", "UTC")
        assert job["httpTarget"]["uri"] == (
            "https://europe-west1-aiplatform.googleapis.com/v1/projects/churn-prod-333333/"
            "locations/europe-west1/customJobs")
        assert job["httpTarget"]["oauthToken"]["serviceAccountEmail"] == \
            "churn-scheduler@churn-prod-333333.iam.gserviceaccount.com"
        spec = body["jobSpec"]
        assert spec["serviceAccount"] == "churn-monitor@churn-prod-333333.iam.gserviceaccount.com"
        [pool] = spec["workerPoolSpecs"]
        assert pool["machineSpec"] == {"machineType": "e2-standard-4"}
        container = pool["containerSpec"]
        assert container["imageUri"] == \
            "europe-west1-docker.pkg.dev/churn-prod-333333/mlops-kit/churn:latest"
        module = container["command"][2]
        assert container["command"][:2] == ["python", "-m"] and importlib.util.find_spec(module)
        assert container["args"] == ["--config=/opt/mlops/mlops.yaml", "--env=gcp_prod",
                                     "--model=churn-mlp"]
        assert body["labels"]["model"] == "churn-mlp"
        assert len(platform.monitoring.schedules) == 2
    return _done(platform).apply(check)


def _monitor_bindings(mocks: RecordingMocks) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in mocks.created:
        if str(c.inputs.get("member", "")).startswith("serviceAccount:churn-monitor"):
            out.setdefault(c.type.rsplit(":", 1)[1], []).append(c.inputs)
    return out


@pulumi.runtime.test
def test_the_monitor_account_reads_logs_and_writes_only_its_prefix(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path)

    def check(_: Any) -> None:
        found = _monitor_bindings(mocks)
        [dataset] = found["DatasetIamMember"]
        assert (dataset["datasetId"], dataset["role"]) == ("churn_gcp_prod",
                                                           "roles/bigquery.dataViewer")
        buckets = {b["role"]: b for b in found["BucketIAMMember"]}
        assert set(buckets) == {"roles/storage.objectViewer", "roles/storage.objectUser"}
        objects = "projects/_/buckets/churn-prod-333333-churn-gcp-prod-pipelines/objects/"
        read = buckets["roles/storage.objectViewer"]["condition"]["expression"]
        assert f'startsWith("{objects}models/")' in read and f'"{objects}specs/")' in read
        assert 'objectListPrefix", "").startsWith("models/")' in read
        write = buckets["roles/storage.objectUser"]["condition"]["expression"]
        assert f'startsWith("{objects}monitoring/")' in write and "models/" not in write
        assert all(b["bucket"] == "churn-prod-333333-churn-gcp-prod-pipelines"
                   for b in buckets.values())
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_the_monitor_gets_a_custom_vertex_role_not_aiplatform_user(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path)

    def check(_: Any) -> None:
        [role] = [c.inputs for c in mocks.of_type("projects/iAMCustomRole:IAMCustomRole")
                  if c.inputs["roleId"].endswith("_vertex")]
        assert (role["project"], role["roleId"], role["stage"]) == (
            "churn-prod-333333", "churn_monitor_vertex", "GA")
        assert role["permissions"] == ["aiplatform.models.get", "aiplatform.models.list",
                                       "aiplatform.pipelineJobs.create"]
        roles = [b["role"] for b in _monitor_bindings(mocks)["IAMMember"] if "project" in b]
        assert MONITOR_ROLE in roles and not any(r.startswith("roles/aiplatform.") for r in roles)
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_without_retrain_on_drift_the_monitor_only_reads_vertex(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"training": {"retrain_on_drift": False}})

    def check(_: Any) -> None:
        found = _monitor_bindings(mocks)
        assert sorted(b["role"] for b in found["IAMMember"] if "project" in b) == [
            MONITOR_ROLE, "roles/bigquery.jobUser", "roles/logging.logWriter",
            "roles/monitoring.metricWriter"]
        [role] = [c for c in mocks.of_type("projects/iAMCustomRole:IAMCustomRole")
                  if c.inputs["roleId"].endswith("_vertex")]
        assert role.inputs["permissions"] == ["aiplatform.models.get", "aiplatform.models.list"]
        assert not any("serviceAccountId" in b for b in found["IAMMember"])  # not as pipeline
        policy = next(c.inputs for c in mocks.of_type("AlertPolicy")
                      if c.inputs["displayName"].endswith("-drift"))
        assert "retrain_on_drift is off" in policy["documentation"]["content"]
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_drift_alert_watches_the_monitors_metric(tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _platform(tmp_path, {"monitoring": {"alert_emails": ["a@example.com"]}})

    def check(_: Any) -> None:
        descriptors = {c.inputs["type"]: c.inputs for c in mocks.of_type("MetricDescriptor")}
        drifted = descriptors["custom.googleapis.com/churn/DriftedFeatures"]
        assert (drifted["metricKind"], drifted["valueType"]) == ("GAUGE", "DOUBLE")
        assert drifted["labels"] == [{"key": "model", "valueType": "STRING"}]
        assert [x["key"] for x in descriptors["custom.googleapis.com/churn/FeaturePSI"][
            "labels"]] == ["model", "feature"]
        policy = next(c.inputs for c in mocks.of_type("AlertPolicy")
                      if c.inputs["displayName"] == "churn-gcp-prod-churn-mlp-drift")
        condition = policy["conditions"][0]["conditionThreshold"]
        assert condition["filter"] == (
            'metric.type = "custom.googleapis.com/churn/DriftedFeatures" AND '
            'resource.type = "global" AND metric.labels.model = "churn-mlp"')
        assert (condition["comparison"], condition["thresholdValue"]) == ("COMPARISON_GT", 0)
        assert policy["notificationChannels"] == ["/mock/NotificationChannel/alerts-email-0"]
        assert policy["userLabels"]["environment"] == "gcp-prod"
    return _done(platform).apply(check)


def test_a_monthly_monitoring_schedule_is_refused(tmp_path: Path) -> None:
    from mlops_pulumi.config import StackError
    from mlops_pulumi.gcp.monitoring import DriftMonitoring, DriftMonitoringArgs, requests_logged

    stack = load_stack("gcp_prod", two_models(tmp_path, {"monitoring": {"schedule": "0 3 1 * *"}}))
    with pytest.raises(StackError, match=r"monitoring\.schedule '0 3 1 \* \*'.*day of month and "
                                         r"month `\*`"):
        build(stack)
    with pytest.raises(StackError, match=r"monitoring\.schedule"):   # the component on its own
        DriftMonitoring("m", DriftMonitoringArgs(stack=stack, channels=[], kms_key=None,
                                                 labels={}))
    off = load_stack("gcp_prod", two_models(tmp_path, {"monitoring": {"schedule": "0 3 1 * *"},
                                                       "serving": {"capture": {"inputs": False}}}))
    assert not requests_logged(off)           # no monitor runs: nothing to refuse


def test_capture_shorter_than_the_monitor_window_is_refused(tmp_path: Path,
                                                            mocks: RecordingMocks) -> None:
    from mlops_pulumi.config import StackError

    weekly = {"monitoring": {"schedule": "0 3 * * 1"},
              "serving": {"capture": {"retention_days": 6}}}
    with pytest.raises(StackError, match=r"serving\.capture\.retention_days 6"):
        build(load_stack("gcp_prod", two_models(tmp_path, weekly)))
    assert mocks.created == []   # refused before any resource, the scheduled deletes too
