"""The Azure platform under Pulumi mocks: every stack file, every component, the properties
that matter (encryption, public access, scaling from config, alert thresholds, tags)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pulumi
from mlops_pulumi.azure.platform import build, lake_zones
from mlops_pulumi.config import load_stack
from mlops_pulumi.policies import violations
from tests.conftest import ROOT
from tests.pulumi.conftest import two_models
from tests.pulumi.mocks import RecordingMocks

AZURE_STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.azure_*.yaml"))


def _done(platform: Any) -> pulumi.Output[Any]:
    """An output that resolves once the last resources of the platform are registered."""
    ids = [platform.alerts.action_group.id, platform.feature_store.entity_version.id]
    ids += [s.id for s in platform.training.schedules.values()]
    ids += [m.autoscale.id for m in platform.serving.models.values() if m.autoscale]
    ids += [a.id for alerts in platform.alerts.alerts.values() for a in alerts]
    ids += [s.id for s in platform.monitoring.schedules.values()]
    ids += [a.id for a in platform.monitoring.alerts.values()]
    ids += [r.id for r in platform.identity.roles.values()]
    ids += [d.id for m in platform.serving.models.values() for d in m.capture.values()]
    ids += [platform.workspace.capture_retention.id]
    return pulumi.Output.all(*ids)


def test_every_azure_environment_has_a_stack_file() -> None:
    assert AZURE_STACKS == ["azure_dev", "azure_prod", "azure_staging"]


@pytest.mark.parametrize("env", AZURE_STACKS)
@pulumi.runtime.test
def test_stack_file_builds_a_compliant_platform(env: str, mocks: RecordingMocks) -> Any:
    stack_file = (ROOT / f"Pulumi.{env}.yaml").read_text()
    assert f"mlops:environment: {env}" in stack_file
    platform = build(load_stack(env, ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        assert len(mocks.created) > 30
        found = [(c.type, c.name, v) for c in mocks.created for v in violations(c.type, c.inputs)]
        assert found == []
        group = mocks.of_type("resources:ResourceGroup")[0].inputs
        assert group["tags"]["environment"] == env.replace("_", "-")
        assert mocks.of_type("pulumi:providers:azure-native")[0].inputs["subscriptionId"] \
            .startswith({"azure_dev": "1", "azure_staging": "2", "azure_prod": "3"}[env])
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_lake_is_hns_encrypted_and_private(mocks: RecordingMocks) -> Any:
    platform = build(load_stack("azure_dev", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        lake = next(c.inputs for c in mocks.of_type("storage:StorageAccount")
                    if c.name == "lake-account")
        assert lake["isHnsEnabled"] is True
        assert lake["minimumTlsVersion"] == "TLS1_2"
        assert lake["allowBlobPublicAccess"] is False
        assert lake["encryption"]["services"]["blob"]["enabled"] is True
        assert lake["encryption"]["requireInfrastructureEncryption"] is True
        containers = {c.inputs["containerName"]: c.inputs["publicAccess"]
                      for c in mocks.of_type("storage:BlobContainer")}
        assert containers == {"raw": "None", "curated": "None", "quarantine": "None",
                              "features": "None"}
        workspace_store = next(c.inputs for c in mocks.of_type("storage:StorageAccount")
                               if c.name == "ml-storage")
        assert workspace_store["isHnsEnabled"] is False
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_captured_payloads_expire_after_the_retention_days(tmp_path: Path,
                                                           mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(tmp_path, {"serving": {"capture": {"retention_days": 12}}})

    def check(_: Any) -> None:
        (policy,) = [c.inputs for c in mocks.of_type("storage:ManagementPolicy")]
        # the workspace's storage account (its `name` output; the mock names it by resource)
        assert policy["accountName"] == "ml-storage" and policy["managementPolicyName"] == (
            "default")
        (rule,) = policy["policy"]["rules"]
        assert rule["name"] == "capture-retention" and rule["enabled"] is True
        assert rule["definition"]["filters"]["prefixMatch"] == [
            "azureml-blobstore-00000000-0000-0000-0000-00000000b001/modelDataCollector/"]
        assert rule["definition"]["actions"]["baseBlob"]["delete"] == {
            "daysAfterModificationGreaterThan": 12}
    return _done(platform).apply(check)


def _two_model_platform(tmp_path: Path, changes: dict[str, Any] | None = None,
                        env: str = "azure_prod") -> Any:
    return build(load_stack(env, two_models(tmp_path, changes)))


@pulumi.runtime.test
def test_each_model_gets_endpoint_deployment_autoscale_alerts(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(tmp_path)

    def check(_: Any) -> None:
        endpoints = [c.inputs for c in mocks.of_type("OnlineEndpoint")]
        assert sorted(e["endpointName"] for e in endpoints) == [
            "churn-churn-classifier-azureprod", "churn-churn-mlp-azureprod"]
        deployments = {c.inputs["deploymentName"]: c.inputs for c in
                       mocks.of_type("OnlineDeployment")}
        assert sorted(deployments) == ["v1", "v3"]
        props = deployments["v3"]["properties"]
        assert props["instanceType"] == "Standard_DS2_v2"       # mapped from ml.m5.large
        assert props["model"] == ("azureml://registries/churn-azure-prod-models/models/"
                                  "churn-churn-classifier/versions/3")
        assert deployments["v3"]["sku"]["capacity"] == 2          # prod: min_instances 2
        assert len(mocks.of_type("monitor:AutoscaleSetting")) == 2
        assert len(mocks.of_type("monitor:MetricAlert")) == 4
        assert len(mocks.of_type("machinelearningservices:Schedule")) == 4   # train + monitor
        # Feature store and lake are shared, not per model.
        assert len(mocks.of_type("FeaturesetContainerEntity")) == 1
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_autoscale_rules_follow_the_scaling_steps(tmp_path: Path, mocks: RecordingMocks) -> Any:
    scaling = {"scale_out": [{"lower": 500, "change": 1}, {"lower": 900, "change": 3}],
               "scale_in": [{"upper": 150, "change": -1}], "cooldown_out_s": 120,
               "cooldown_in_s": 600, "evaluation_periods_out": 2, "evaluation_periods_in": 10}
    platform = _two_model_platform(tmp_path, {"serving": {"scaling": scaling}})

    def check(_: Any) -> None:
        setting = mocks.of_type("monitor:AutoscaleSetting")[0].inputs
        assert setting["targetResourceUri"].startswith("/mock/OnlineDeployment/")
        profile = setting["profiles"][0]
        assert profile["capacity"] == {"minimum": "2", "maximum": "10", "default": "2"}
        got = [(r["metricTrigger"]["operator"], r["metricTrigger"]["threshold"],
                r["scaleAction"]["direction"], r["scaleAction"]["value"],
                r["scaleAction"]["cooldown"], r["metricTrigger"]["timeWindow"])
               for r in profile["rules"]]
        assert got == [("GreaterThanOrEqual", 500, "Increase", "1", "PT2M", "PT5M"),
                       ("GreaterThanOrEqual", 900, "Increase", "3", "PT2M", "PT5M"),
                       ("LessThan", 150, "Decrease", "1", "PT10M", "PT10M")]
        trigger = profile["rules"][0]["metricTrigger"]
        assert trigger["metricName"] == "RequestsPerMinute"
        assert trigger["dividePerInstance"] is True
        assert trigger["dimensions"][0]["values"] in (["v3"], ["v1"])
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_alerts_use_the_latency_target_and_mail_the_action_group(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(
        tmp_path, {"serving": {"latency_p99_ms": 250},
                   "monitoring": {"alert_emails": ["a@example.com", "b@example.com"]}})

    def check(_: Any) -> None:
        group = mocks.of_type("monitor:ActionGroup")[0].inputs
        assert [r["emailAddress"] for r in group["emailReceivers"]] == [
            "a@example.com", "b@example.com"]
        alerts = {c.inputs["ruleName"]: c.inputs for c in mocks.of_type("monitor:MetricAlert")}
        latency = alerts["churn-azure-prod-churn-mlp-latency"]
        criterion = latency["criteria"]["allOf"][0]
        assert (criterion["metricName"], criterion["threshold"]) == ("RequestLatency_P99", 250)
        assert latency["actions"][0]["actionGroupId"] == "/mock/ActionGroup/alerts-group"
        saturated = alerts["churn-azure-prod-churn-classifier-saturated"]["criteria"]["allOf"][0]
        assert saturated["threshold"] == 10
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_training_cluster_scales_to_zero_and_schedule_runs_the_dag(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(
        tmp_path, {"training": {"schedule": "30 2 * * 1"},
                   "azure": {"training_max_nodes": 6}})

    def check(_: Any) -> None:
        cluster = mocks.of_type("machinelearningservices:Compute")[0].inputs["properties"]
        scale = cluster["properties"]["scaleSettings"]
        assert (scale["minNodeCount"], scale["maxNodeCount"]) == (0, 6)
        components = {c.name: c for c in mocks.of_type("ComponentVersion")}
        assert len(components) == 12                                 # 6 steps x 2 models
        schedule = next(c.inputs["properties"] for c in mocks.of_type("Schedule")
                        if c.inputs["name"] == "training-churn-mlp")
        assert schedule["trigger"]["expression"] == "30 2 * * 1"
        job = schedule["action"]["jobDefinition"]
        assert sorted(job["jobs"]) == sorted(s.name for s in platform.training._args.stack
                                             .pipeline.steps)
        assert job["jobs"]["train"]["componentId"] == "/mock/ComponentVersion/" \
            "training-churn-mlp-train"
        assert job["jobs"]["train"]["inputs"]["training_set"]["value"] == \
            "${{parent.jobs.features.outputs.training_set}}"
        assert job["inputs"]["production_model"]["uri"].endswith("/churn-churn-mlp/versions/1")
        assert job["settings"]["default_compute"] == "/mock/Compute/training-cluster"
        command = components["training-churn-mlp-train"].inputs["properties"]["componentSpec"][
            "command"]
        assert command.startswith("python -m mlops_kit.runtime.job train --config "
                                  "/opt/mlops/mlops.yaml --env azure_prod --model churn-mlp")
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_schedule_feeds_the_landing_folder_to_ingest_and_publishes_through_the_lake(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    import yaml

    path = two_models(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["source"] = {"kind": "csv", "path": "data/landing"}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    platform = build(load_stack("azure_prod", path))

    def check(_: Any) -> None:
        job = next(c.inputs["properties"] for c in mocks.of_type("Schedule")
                   if c.inputs["name"] == "training-churn-mlp")["action"]["jobDefinition"]
        assert job["inputs"]["source"] == {
            "jobInputType": "uri_folder", "mode": "ReadOnlyMount",
            "uri": "azureml://datastores/lake_raw/paths/landing/"}
        assert "ingest_date" not in job["inputs"]        # empty: each run ingests its day
        ingest = job["jobs"]["ingest"]
        assert ingest["inputs"]["source"]["value"] == "${{parent.inputs.source}}"
        assert ingest["outputs"]["lake_raw"] == {
            "job_output_type": "uri_folder", "mode": "ReadWriteMount",
            "uri": "azureml://datastores/lake_raw/paths/"}
        assert ingest["outputs"]["raw"] == {"job_output_type": "uri_folder"}
        assert job["jobs"]["validate"]["inputs"]["raw"]["value"] == \
            "${{parent.jobs.ingest.outputs.raw}}"
        specs = {s["display_name"]: s for s in (
            c.inputs["properties"]["componentSpec"] for c in mocks.of_type("ComponentVersion")
            if c.name.startswith("training-churn-mlp-"))}
        deterministic = sorted(n for n, s in specs.items() if s["is_deterministic"])
        assert deterministic == ["train"]
        assert "--publish raw=${{outputs.lake_raw}}/raw_customers" in specs["ingest"]["command"]
        assert "--param run_id=$AZUREML_ROOT_RUN_ID" in specs["register"]["command"]
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_an_unpinned_model_gets_an_endpoint_but_no_deployment(mocks: RecordingMocks) -> Any:
    platform = build(load_stack("azure_dev", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        assert len(mocks.of_type("OnlineEndpoint")) == 1
        assert mocks.of_type("OnlineDeployment") == []
        assert mocks.of_type("monitor:AutoscaleSetting") == []
        assert mocks.of_type("monitor:MetricAlert") == []
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_feature_store_has_the_entity_and_feature_set(mocks: RecordingMocks) -> Any:
    platform = build(load_stack("azure_dev", ROOT / "mlops.yaml"))

    def check(_: Any) -> None:
        store = next(c.inputs for c in mocks.of_type("machinelearningservices:Workspace")
                     if c.inputs["kind"] == "FeatureStore")
        assert store["featureStoreSettings"]["offlineStoreConnectionName"]
        version = mocks.of_type("FeaturestoreEntityVersion")[0].inputs
        assert version["properties"]["indexColumns"] == [
            {"columnName": "customer_id", "dataType": "String"}]
        assert mocks.of_type("FeaturesetContainerEntity")[0].inputs["name"] == \
            "customer-features"
    return _done(platform).apply(check)


FREE_FORM = {"tags", "componentSpec", "jobs", "settings", "environmentVariables"}
NAMED = {"inputs", "outputs"}          # keys are channel names; values are typed


def _snake_keys(value: Any, path: str = "") -> list[str]:
    """Keys with '_' outside free-form maps: a dict the SDK did not translate to camelCase."""
    if isinstance(value, dict):
        named = path.rsplit(".", 1)[-1] in NAMED
        found = [] if named else [f"{path}.{k}" for k in value if "_" in k]
        return found + [p for k, v in value.items() if k not in FREE_FORM
                        for p in _snake_keys(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _snake_keys(v, f"{path}[{i}]")]
    return []


@pulumi.runtime.test
def test_every_property_reaches_the_provider_in_camel_case(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(tmp_path)

    def check(_: Any) -> None:
        bad = [(c.type, p) for c in mocks.created for p in _snake_keys(c.inputs)]
        assert bad == []
    return _done(platform).apply(check)


def test_lake_zones_include_every_published_zone() -> None:
    stack = load_stack("azure_dev", ROOT / "mlops.yaml")
    assert lake_zones(stack) == ("curated", "features", "quarantine", "raw")


@pulumi.runtime.test
def test_deployments_log_request_and_response_payloads(tmp_path: Path,
                                                       mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(tmp_path, {"serving": {"capture": {"sampling_percent": 25}}})

    def check(_: Any) -> None:
        deployment = next(c.inputs for c in mocks.of_type("OnlineDeployment")
                          if c.inputs["deploymentName"] == "v3")
        collector = deployment["properties"]["dataCollector"]
        assert collector["rollingRate"] == "Hour"
        assert sorted(collector["collections"]) == ["request", "response"]
        request = collector["collections"]["request"]
        assert (request["dataCollectionMode"], request["samplingRate"]) == ("Enabled", 0.25)
        assets = {c.inputs["name"]: c for c in mocks.of_type("machinelearningservices:DataVersion")}
        asset = assets["churn-churn-classifier-azureprod-v3-request"]
        assert request["dataId"] == f"/mock/DataVersion/{asset.name}"
        assert asset.inputs["properties"]["dataUri"] == (
            "azureml://datastores/workspaceblobstore/paths/modelDataCollector/"
            "churn-churn-classifier-azureprod/v3/request")
        assert len(assets) == 4                                  # 2 collections x 2 models
        writers = [c.inputs for c in mocks.of_type("authorization:RoleAssignment")
                   if c.name.endswith("capture-writer")]
        assert {w["principalId"] for w in writers} == {
            "principal-churn-churn-classifier-azureprod", "principal-churn-churn-mlp-azureprod"}
        assert all(w["scope"] == "/mock/StorageAccount/ml-storage" and w["roleDefinitionId"]
                   .endswith("/ba92f5b4-2d11-453d-a403-e96b0029c9fe") for w in writers)
        found = [(c.type, c.name, v) for c in mocks.created for v in violations(c.type, c.inputs)]
        assert found == []
    return _done(platform).apply(check)


@pytest.mark.parametrize("capture", [{"enabled": False}, {"inputs": False},
                                     {"sampling_percent": 0}])
@pulumi.runtime.test
def test_without_request_capture_there_is_no_collector_and_no_monitor(
        tmp_path: Path, mocks: RecordingMocks, capture: dict[str, Any]) -> Any:
    platform = _two_model_platform(tmp_path, {"serving": {"capture": capture}})

    def check(_: Any) -> None:
        deployments = mocks.of_type("OnlineDeployment")
        assert len(deployments) == 2
        assert all("dataCollector" not in d.inputs["properties"] for d in deployments)
        assert mocks.of_type("machinelearningservices:DataVersion") == []
        assert sorted(c.inputs["name"] for c in mocks.of_type("machinelearningservices:Schedule")
                      ) == ["training-churn-classifier", "training-churn-mlp"]
        assert mocks.of_type("monitor:ScheduledQueryRule") == []
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_monitor_schedule_runs_the_drift_job_as_the_jobs_identity(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(
        tmp_path, {"monitoring": {"schedule": "15 */2 * * *"},
                   "training": {"time_zone": "Europe/Paris"}})

    def check(_: Any) -> None:
        schedule = next(c.inputs for c in mocks.of_type("Schedule")
                        if c.inputs["name"] == "monitor-churn-mlp")
        props = schedule["properties"]
        assert props["trigger"] == {"triggerType": "Cron", "expression": "15 */2 * * *",
                                    "timeZone": "Romance Standard Time"}   # Windows name
        training = next(c.inputs for c in mocks.of_type("Schedule")
                        if c.inputs["name"] == "training-churn-mlp")
        assert training["properties"]["trigger"]["timeZone"] == "Romance Standard Time"
        job = props["action"]["jobDefinition"]
        assert job["jobType"] == "Command"
        assert job["command"] == ("python -m mlops_kit.adapters.azure.monitor --config "
                                  "/opt/mlops/mlops.yaml --env azure_prod --model churn-mlp")
        assert job["computeId"] == "/mock/Compute/training-cluster"
        assert job["environmentId"] == "/mock/EnvironmentVersion/training-env"
        client_id = "00000000-0000-0000-0000-00000000c001"
        assert job["identity"] == {"identityType": "Managed", "clientId": client_id}
        env = job["environmentVariables"]
        assert env["AZURE_CLIENT_ID"] == client_id
        assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"].startswith("InstrumentationKey=")
        cluster = mocks.of_type("machinelearningservices:Compute")[0].inputs
        assert cluster["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [
            "/mock/UserAssignedIdentity/identity-jobs"]}
        roles = {c.name: c.inputs for c in mocks.of_type("authorization:RoleAssignment")}
        assert roles["identity-workspace"]["roleDefinitionId"].endswith(
            "/f6c7c914-8db3-469d-8ca1-694a8f32e121")           # AzureML Data Scientist
        rule = next(c.inputs for c in mocks.of_type("ScheduledQueryRule")
                    if c.inputs["ruleName"] == "churn-azure-prod-churn-mlp-drift")
        assert "starts the training pipeline once per drift episode" in rule["description"]
        assert roles["identity-registry"]["scope"] == "/mock/Registry/ml-registry"
        pull = roles["identity-acr-pull"]            # the cluster pulls its image as the identity
        assert pull["scope"] == "/mock/Registry/platform-acr"
        assert pull["roleDefinitionId"].endswith("/7f951dda-4ed3-4680-a7ca-43fe172d538d")
        assert pull["principalId"] == "00000000-0000-0000-0000-00000000a001"
        assert roles["identity-capture"]["principalId"] == "00000000-0000-0000-0000-00000000a001"
        assert roles["identity-capture"]["roleDefinitionId"].startswith(
            "/subscriptions/33333333-3333-3333-3333-333333333333/providers/")
    return _done(platform).apply(check)


@pulumi.runtime.test
def test_drift_alert_queries_the_metric_and_notifies_the_action_group(
        tmp_path: Path, mocks: RecordingMocks) -> Any:
    platform = _two_model_platform(tmp_path, {"training": {"retrain_on_drift": False}})

    def check(_: Any) -> None:
        rules = {c.inputs["ruleName"]: c.inputs for c in mocks.of_type("ScheduledQueryRule")}
        assert sorted(rules) == ["churn-azure-prod-churn-classifier-drift",
                                 "churn-azure-prod-churn-mlp-drift"]
        rule = rules["churn-azure-prod-churn-mlp-drift"]
        assert rule["scopes"] == ["/mock/Component/platform-insights"]
        assert rule["actions"]["actionGroups"] == ["/mock/ActionGroup/alerts-group"]
        [criterion] = rule["criteria"]["allOf"]
        assert 'name == "DriftedFeatures"' in criterion["query"]
        assert 'customDimensions.Model) == "churn-mlp"' in criterion["query"]
        assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
        assert "retrain by hand" in rule["description"]
        assert (rule["windowSize"], rule["evaluationFrequency"], rule["autoMitigate"]) == (
            "PT1H", "PT15M", False)
        assert rule["muteActionsDuration"] == "PT1H"     # one point: one notification, not 4
        roles = {c.name: c.inputs for c in mocks.of_type("authorization:RoleAssignment")}
        assert roles["identity-workspace"]["roleDefinitionId"].endswith(
            "/acdd72a7-3385-48ef-bd42-f606fba81ae7")           # Reader: no job submission
    return _done(platform).apply(check)


def test_a_monthly_monitoring_schedule_is_refused(tmp_path: Path) -> None:
    from mlops_pulumi.azure.monitoring import DriftMonitoring, DriftMonitoringArgs
    from mlops_pulumi.config import StackError

    path = two_models(tmp_path, {"monitoring": {"schedule": "0 3 1 * *"},
                                 "azure": {"deploy_versions": {"churn-classifier": "1"}}})
    stack = load_stack("azure_prod", path)
    with pytest.raises(StackError, match=r"monitoring\.schedule '0 3 1 \* \*'.*day of month and "
                                         r"month `\*`"):
        build(stack)
    with pytest.raises(StackError, match=r"monitoring\.schedule"):   # the component on its own
        DriftMonitoring("m", DriftMonitoringArgs(
            stack=stack, location="westeurope", resource_group="rg", workspace="ws",
            models=("churn-classifier",), cluster_id="c", environment_id="e",
            identity_client_id="i", insights_id="a", insights_connection_string="s",
            action_group_id="g", tags={}))


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Romance Standard Time", "CET"])
def test_a_time_zone_without_a_windows_name_is_refused(tmp_path: Path, zone: str) -> None:
    from mlops_pulumi.azure.training import Training, TrainingArgs
    from mlops_pulumi.config import StackError

    stack = load_stack("azure_prod", two_models(tmp_path, {"training": {"time_zone": zone}}))
    fix = r"training\.time_zone .*use UTC or one of: .*Europe/Paris"
    with pytest.raises(StackError, match=fix):
        build(stack)
    with pytest.raises(StackError, match=fix):                       # the component on its own
        Training("t", TrainingArgs(stack=stack, location="westeurope", resource_group="rg",
                                   workspace="ws", lake_account="a", zones=("raw",),
                                   registry="r", tags={}))


def test_time_zones_map_to_windows_names() -> None:
    from azure.ai.ml.constants import TimeZone

    from mlops_kit.adapters.azure.naming import WINDOWS_TIME_ZONES, windows_time_zone

    assert set(WINDOWS_TIME_ZONES.values()) <= {z.value for z in TimeZone}   # the SDK's names
    assert windows_time_zone("UTC") == "UTC"
    assert windows_time_zone("Europe/Berlin") == "W. Europe Standard Time"
    assert windows_time_zone("America/Los_Angeles") == "Pacific Standard Time"
    assert windows_time_zone("Australia/Sydney") == "AUS Eastern Standard Time"
