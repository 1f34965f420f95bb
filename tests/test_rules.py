"""Each config rule (`adapters/rules.py`, `adapters/<cloud>/rules.py`) with a config it passes
and one it refuses, and `mlops-kit validate` running them for every environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from mlops_kit.adapters import rules
from mlops_kit.adapters.aws import rules as aws
from mlops_kit.adapters.azure import rules as azure
from mlops_kit.adapters.checks import check
from mlops_kit.adapters.gcp import rules as gcp
from mlops_kit.cli import main
from mlops_kit.config import LoadedConfig, deep_merge, load_config
from tests.conftest import ROOT

PIPELINE = ROOT / "src" / "mlops_kit" / "pipelines" / "training.yaml"


def config(tmp: Path, changes: dict[str, Any] | None = None, pipeline: str | None = None,
           name: str = "mlops.yaml") -> Path:
    """The example config with `changes` deep-merged (and its pipeline file, or `pipeline`)."""
    raw = deep_merge(yaml.safe_load((ROOT / "mlops.yaml").read_text()), changes or {})
    if "models" in (changes or {}):
        raw.pop("model")
    if pipeline is not None:
        (tmp / "pipeline.yaml").write_text(pipeline)
        raw["pipeline"] = str(tmp / "pipeline.yaml")
    raw["image"] = {"dockerfile": str(ROOT / "docker" / "Dockerfile")}
    path = tmp / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def loaded(tmp: Path, env: str, changes: dict[str, Any] | None = None,
           pipeline: str | None = None) -> LoadedConfig:
    return load_config(config(tmp, changes, pipeline), env=env)


def fields(problems: list[rules.Problem]) -> list[str]:
    return [p.field for p in problems]


def two_models(*names: str) -> dict[str, Any]:
    model = yaml.safe_load((ROOT / "mlops.yaml").read_text())["model"]
    return {"models": [{**model, "name": n} for n in names]}


def test_the_example_passes_every_rule_of_every_environment() -> None:
    report = check(ROOT / "mlops.yaml")
    assert report.problems == [] and report.skipped == []


def test_a_problem_is_one_line_naming_the_file_the_field_and_the_environment(
        tmp_path: Path) -> None:
    found = aws.monitor_schedule(loaded(tmp_path, "dev", {"monitoring": {"schedule": "0 3 * * 1"}}))
    assert len(found) == 1
    text = str(found[0])
    assert text.startswith(f"{tmp_path / 'mlops.yaml'}: monitoring.schedule '0 3 * * 1': ")
    assert text.endswith("(environment dev)") and "\n" not in text
    assert "set monitoring.schedule to one of them" in text  # the fix


# --- rules of several clouds ------------------------------------------------------------------


def test_pipeline_file(tmp_path: Path) -> None:
    assert rules.pipeline_file(loaded(tmp_path, "dev")) == []
    broken = PIPELINE.read_text().replace("- name: features", "- name: featurs")
    found = rules.pipeline_file(loaded(tmp_path, "dev", pipeline=broken))
    assert [str(p) for p in found] == [
        f"{tmp_path / 'pipeline.yaml'}: steps[2]: no step module mlops_kit.steps.featurs"]


def test_time_zone(tmp_path: Path) -> None:
    assert rules.time_zone(loaded(tmp_path, "gcp_dev", {"training": {"time_zone": "Asia/Tokyo"}})) \
        == []
    found = rules.time_zone(loaded(tmp_path, "gcp_dev", {"training": {"time_zone": "Mars/Base"}}))
    assert fields(found) == ["training.time_zone"]
    assert "not an IANA time zone" in found[0].message


def test_weekly_monitor_schedule(tmp_path: Path) -> None:
    weekly = {"monitoring": {"schedule": "30 2 * * 1-5"}}
    assert rules.weekly_monitor_schedule(loaded(tmp_path, "gcp_dev", weekly)) == []
    monthly = {"monitoring": {"schedule": "0 3 1 * *"}}
    found = rules.weekly_monitor_schedule(loaded(tmp_path, "gcp_dev", monthly))
    assert fields(found) == ["monitoring.schedule"]
    assert "day of month and month `*`" in found[0].message
    no_monitor = deep_merge(monthly, {"serving": {"capture": {"sampling_percent": 0}}})
    assert rules.weekly_monitor_schedule(loaded(tmp_path, "gcp_dev", no_monitor)) == []


def test_capture_retention(tmp_path: Path) -> None:
    mondays = {"monitoring": {"schedule": "0 3 * * 1"},
               "serving": {"capture": {"retention_days": 7}}}
    assert rules.capture_retention(loaded(tmp_path, "gcp_dev", mondays)) == []
    short = deep_merge(mondays, {"serving": {"capture": {"retention_days": 6}}})
    found = rules.capture_retention(loaded(tmp_path, "azure_dev", short))
    assert fields(found) == ["serving.capture.retention_days"]
    assert "window of 7 days" in found[0].message and "keep at least 7 days" in found[0].message
    weekdays = deep_merge(short, {"monitoring": {"schedule": "0 3 * * 1-5"}})  # Fri -> Mon: 3
    assert rules.capture_retention(loaded(tmp_path, "gcp_dev", weekdays)) == []
    off = deep_merge(short, {"serving": {"capture": {"enabled": False}}})
    assert rules.capture_retention(loaded(tmp_path, "gcp_dev", off)) == []
    assert "serving.capture.retention_days" in fields(
        check(config(tmp_path, short), env="gcp_dev").problems)


# --- AWS --------------------------------------------------------------------------------------


def test_aws_buckets(tmp_path: Path) -> None:
    assert aws.buckets(loaded(tmp_path, "dev")) == []
    found = aws.buckets(loaded(tmp_path, "dev", {"project": "churn-prediction-platform-x-y"}))
    assert fields(found) == ["project"]
    assert "S3 bucket name" in found[0].message and "shorten the project name" in found[0].message


def test_aws_package_groups(tmp_path: Path) -> None:
    long = "m" * 41
    assert aws.package_groups(loaded(tmp_path, "dev", two_models("ab", long))) == []
    changes = {"project": "churn-prediction-platf", **two_models("short", long)}
    found = aws.package_groups(loaded(tmp_path, "dev", changes))
    assert fields(found) == ["models[1].name"]
    assert "not valid for SageMaker" in found[0].message


def test_aws_training_schedule(tmp_path: Path) -> None:
    assert aws.training_schedule(loaded(tmp_path, "dev", {"training": {"schedule": None}})) == []
    found = aws.training_schedule(loaded(tmp_path, "dev", {"training": {"schedule": "0 3 1 * 1"}}))
    assert fields(found) == ["training.schedule"]
    assert "cannot combine a day of the month with a day of the week" in found[0].message


def test_aws_schedule_time_zone(tmp_path: Path) -> None:
    off = {"training": {"schedule": None, "time_zone": "Mars/Base"}}
    assert aws.schedule_time_zone(loaded(tmp_path, "dev", off)) == []
    mars = {"training": {"time_zone": "Mars/Base"}}
    found = aws.schedule_time_zone(loaded(tmp_path, "dev", mars))
    assert fields(found) == ["training.time_zone"]


def test_aws_monitor_schedule(tmp_path: Path) -> None:
    daily = {"monitoring": {"schedule": "0 4 * * *"}}
    assert aws.monitor_schedule(loaded(tmp_path, "dev", daily)) == []
    found = aws.monitor_schedule(loaded(tmp_path, "dev", {"monitoring": {"schedule": "0 3 1 * *"}}))
    assert fields(found) == ["monitoring.schedule"]
    assert "hourly" in found[0].message


def test_aws_lake_zones(tmp_path: Path) -> None:
    assert aws.lake_zones(loaded(tmp_path, "dev")) == []
    gold = PIPELINE.read_text().replace("offline: {publish: features}", "offline: {publish: gold}")
    found = aws.lake_zones(loaded(tmp_path, "dev", pipeline=gold))
    assert [str(p) for p in found] == [
        f"{tmp_path / 'pipeline.yaml'}: steps[2] (features): outputs.offline.publish 'gold': the "
        "AWS lake has a bucket per zone raw, curated, quarantine, features; publish to one of them"]
    assert aws.pipeline_definition(loaded(tmp_path, "dev", pipeline=gold)) == []  # not rendered


def test_aws_pipeline_definition(tmp_path: Path) -> None:
    assert aws.pipeline_definition(loaded(tmp_path, "dev", two_models("ab", "cd"))) == []
    # a step listed twice loads (its inputs are earlier outputs) but SageMaker names steps once
    twice = PIPELINE.read_text().replace(
        "  - name: features\n", "  - name: validate\n    inputs: {raw: ingest.raw}\n"
        "    outputs: {curated: {}, quarantine: {}, profile: {}}\n  - name: features\n", 1)
    one = loaded(tmp_path, "dev", pipeline=twice)
    assert rules.pipeline_file(one) == []
    found = aws.pipeline_definition(one)
    assert fields(found) == ["training"]
    assert "pipeline definition of churn-classifier would be refused" in found[0].message
    assert "duplicate step name 'validate'" in found[0].message


def test_aws_shared_targets(tmp_path: Path) -> None:
    assert aws.shared_targets(loaded(tmp_path, "dev")) == []
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())["environments"]
    found = aws.shared_targets(loaded(tmp_path, "dev", {"environments": {"qa": raw["dev"]}}))
    assert fields(found) == ["environments"]
    assert "dev and qa are on the same AWS account and region" in found[0].message
    assert found[0].env is None  # a problem of the file, reported once


def test_aws_feature_group_names_never_end_in_a_hyphen() -> None:
    from mlops_kit.adapters.aws.naming import feature_group

    assert feature_group("churn", "dev_eu", "customer_features") == "churn-dev-eu-customer-features"
    name = feature_group("p" * 30, "e" * 32, "features")    # the 64th character is a '-'
    assert len(name) == 63 and not name.endswith("-")


# --- Azure ------------------------------------------------------------------------------------


def test_azure_schedule_time_zone(tmp_path: Path) -> None:
    assert azure.schedule_time_zone(loaded(tmp_path, "azure_dev", {
        "training": {"time_zone": "Europe/Paris"}})) == []
    found = azure.schedule_time_zone(loaded(tmp_path, "azure_dev", {
        "training": {"time_zone": "Asia/Kolkata"}}))
    assert fields(found) == ["training.time_zone"]
    assert "use UTC or one of" in found[0].message


def test_azure_workspace_names(tmp_path: Path) -> None:
    assert azure.workspace_names(loaded(tmp_path, "azure_staging")) == []
    found = azure.workspace_names(loaded(tmp_path, "azure_staging", {
        "project": "churn-prediction-platform"}))
    assert fields(found) == ["project"]
    assert "'churn-prediction-platform-azure-staging-ws'" in found[0].message
    assert "3-33" in found[0].message


def test_azure_deployment_instance_type(tmp_path: Path) -> None:
    odd = {"serving": {"instance_type": "ml.inf2.xlarge"}}
    assert azure.deployment_instance_type(loaded(tmp_path, "azure_dev", odd)) == []  # none pinned
    pinned = deep_merge(odd, {"azure": {"deploy_versions": {"churn-classifier": "3"}}})
    found = azure.deployment_instance_type(loaded(tmp_path, "azure_dev", pinned))
    assert fields(found) == ["serving.instance_type"]
    assert "set azure.instance_type" in found[0].message
    chosen = deep_merge(pinned, {"azure": {"instance_type": "Standard_F4s_v2"}})
    assert azure.deployment_instance_type(loaded(tmp_path, "azure_dev", chosen)) == []


def test_azure_global_names(tmp_path: Path) -> None:
    assert azure.global_names(loaded(tmp_path, "azure_dev")) == []
    found = azure.global_names(loaded(tmp_path, "azure_dev", {"project": "customerchurnpredict"}))
    assert set(fields(found)) == {"environments"}
    what = " ".join(p.message for p in found)
    for name in ("lake storage account", "workspace storage account", "key vault"):
        assert f"environments azure_dev, azure_staging and azure_prod: the same Azure {name}" \
            in what
    assert "container registry" not in what  # 50 characters: the environments still differ


def test_azure_endpoint_names(tmp_path: Path) -> None:
    assert azure.endpoint_names(loaded(tmp_path, "azure_dev")) == []
    envs = yaml.safe_load((ROOT / "mlops.yaml").read_text())["environments"]
    twins = {"environments": {"azure_eu_west_a": envs["azure_dev"],
                              "azure_eu_west_b": envs["azure_dev"]}}
    found = azure.endpoint_names(loaded(tmp_path, "azure_dev", twins))
    assert [p.message for p in found] == [
        "the Azure online endpoint name 'churn-churn-classifier-azureeuwe' in westeurope would "
        "serve churn-classifier in azure_eu_west_a and churn-classifier in azure_eu_west_b; "
        "shorten the project or the model names"]
    other_region = {"environments": {"azure_eu_west_b": {**envs["azure_dev"], "region": "eastus"}}}
    assert azure.endpoint_names(loaded(tmp_path, "azure_dev", deep_merge(twins, other_region))) \
        == []


# --- Google Cloud -----------------------------------------------------------------------------


def test_gcp_training_machine(tmp_path: Path) -> None:
    assert gcp.training_machine(loaded(tmp_path, "gcp_dev", {
        "gcp": {"training_machine_type": "e2-highmem-8"}})) == []
    found = gcp.training_machine(loaded(tmp_path, "gcp_dev", {
        "gcp": {"training_machine_type": "a2-ultragpu-1g"}}))
    assert fields(found) == ["gcp.training_machine_type"]
    assert "expected a predefined type" in found[0].message


def test_gcp_machine_sizes_and_the_monitoring_machine(tmp_path: Path) -> None:
    for field, value in (("training_machine_type", "n1-standard-3"),
                         ("training_machine_type", "zz9-standard-4"),
                         ("monitoring_machine_type", "banana")):
        found = gcp.training_machine(loaded(tmp_path, "gcp_dev", {"gcp": {field: value}}))
        assert fields(found) == [f"gcp.{field}"], value
    assert "1, 2, 4, 8" in gcp.training_machine(loaded(tmp_path, "gcp_dev", {
        "gcp": {"training_machine_type": "n1-standard-3"}}))[0].message
    found = gcp.serving_machine(loaded(tmp_path, "gcp_dev", {"gcp": {"machine_type": "foo-bar"}}))
    assert fields(found) == ["gcp.machine_type"]


def test_azure_vm_sizes(tmp_path: Path) -> None:
    sized = {"azure": {"instance_type": "Standard_F4s_v2", "training_vm_size": "Standard_E4s_v3"}}
    assert azure.vm_sizes(loaded(tmp_path, "azure_dev", sized)) == []
    bad = {"azure": {"instance_type": "Banana", "training_vm_size": "standard_ds3_v2"}}
    found = azure.vm_sizes(loaded(tmp_path, "azure_dev", bad))
    assert fields(found) == ["azure.instance_type", "azure.training_vm_size"]


def test_cicd_stages_are_distinct_and_not_the_home_environment(tmp_path: Path) -> None:
    for stages, said in ((["staging", "staging"], "listed twice"),
                         (["dev", "staging"], "the environment the pipelines run in")):
        result = CliRunner().invoke(main, ["validate", "--config", str(
            config(tmp_path, {"cicd": {"stages": stages}}))])
        assert result.exit_code == 2, stages
        assert f"cicd.stages: '{stages[0]}' is" in result.output and said in result.output
        assert "got {" not in result.output  # the field's line, not the whole config echoed


def test_every_cron_field_is_range_checked(tmp_path: Path) -> None:
    for field, value in (("training.schedule", "0 25 * * *"), ("training.schedule", "0 3 32 * *"),
                         ("training.schedule", "0 3 * 13 *"), ("training.schedule", "a b c d e"),
                         ("gcp.feature_sync_schedule", "0 99 * * *")):
        result = CliRunner().invoke(main, ["validate", "--config", str(config(tmp_path)),
                                           "--set", f"{field}={value}"])
        assert result.exit_code == 2, value
        assert field in result.output and "field" in result.output, result.output


def test_gcp_serving_machine(tmp_path: Path) -> None:
    odd = {"serving": {"instance_type": "ml.inf2.xlarge"}}
    found = gcp.serving_machine(loaded(tmp_path, "gcp_dev", odd))
    assert fields(found) == ["serving.instance_type"]
    assert "set gcp.machine_type" in found[0].message
    chosen = deep_merge(odd, {"gcp": {"machine_type": "n1-standard-8"}})
    assert gcp.serving_machine(loaded(tmp_path, "gcp_dev", chosen)) == []


def test_gcp_cpu_target(tmp_path: Path) -> None:
    def tracking(target: float) -> dict[str, Any]:
        return {"serving": {"scaling": {"policy": "target_tracking", "metric": "CPUUtilization",
                                        "target_value": target}}}

    assert gcp.cpu_target(loaded(tmp_path, "gcp_dev", tracking(70))) == []
    found = gcp.cpu_target(loaded(tmp_path, "gcp_dev", tracking(150)))
    assert fields(found) == ["serving.scaling.target_value"]
    assert "within 1..100" in found[0].message


def test_gcp_feature_store_ids(tmp_path: Path) -> None:
    assert gcp.feature_store_ids(loaded(tmp_path, "gcp_dev", {
        "features": {"group": "f" * 53}})) == []
    found = gcp.feature_store_ids(loaded(tmp_path, "gcp_dev", {"features": {"group": "f" * 54}}))
    assert fields(found) == ["features.group"]
    assert "at most 53 characters" in found[0].message


def test_gcp_model_ids(tmp_path: Path) -> None:
    a, b = "m" * 40 + "a", "m" * 40 + "b"
    assert gcp.model_ids(loaded(tmp_path, "gcp_dev", two_models(a, b))) == []
    found = gcp.model_ids(loaded(tmp_path, "gcp_dev", {"project": "p" * 30, **two_models(a, b)}))
    assert [p.message.split(": the same ")[1].split(" ")[0:2] for p in found] == [
        ["Vertex", "model"], ["deployment", "resource"]]
    assert found[0].message.startswith(f"models {a} and {b}")


def test_gcp_shared_projects(tmp_path: Path) -> None:
    assert gcp.shared_projects(loaded(tmp_path, "gcp_dev")) == []
    same = {"environments": {"gcp_prod": {"project": "churn-dev-111111"}}}
    found = gcp.shared_projects(loaded(tmp_path, "gcp_dev", same))
    assert fields(found) == ["environments"]
    assert "gcp_dev and gcp_prod are in the same Google Cloud project" in found[0].message


# --- mlops-kit validate -----------------------------------------------------------------------


def test_validate_checks_every_environment_with_its_overrides(tmp_path: Path) -> None:
    """An override that only one environment applies is checked in that environment."""
    path = config(tmp_path, {"environments": {"gcp_prod": {"overrides": {
        "gcp": {"training_machine_type": "custom-8"}}}}})
    res = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert lines == [f"config error: {path}: gcp.training_machine_type 'custom-8': expected a "
                     "predefined type such as n1-standard-4 or e2-highmem-8 (environment "
                     "gcp_prod)"]
    ok = CliRunner().invoke(main, ["validate", "--config", str(path), "--env", "gcp_dev"])
    assert ok.exit_code == 0, ok.output
    assert "environments checked: gcp_dev (gcp europe-west1)" in ok.output


def test_validate_prints_a_broken_pipeline_file_as_one_line(tmp_path: Path) -> None:
    broken = PIPELINE.read_text().replace("- name: features", "- name: featurs")
    path = config(tmp_path, pipeline=broken)
    res = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert res.exit_code == 2
    assert res.output == (f"config error: {tmp_path / 'pipeline.yaml'}: steps[2]: no step module "
                          "mlops_kit.steps.featurs\n")


def test_validate_applies_set_to_every_environment(tmp_path: Path) -> None:
    path = config(tmp_path)
    res = CliRunner().invoke(main, ["validate", "--config", str(path),
                                    "--set", "monitoring.schedule=0 3 * * 1"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert [line.rsplit("(environment ", 1)[1] for line in lines] == [
        "dev)", "staging)", "prod)"]   # Model Monitor: hourly or daily; weekly is fine elsewhere


def test_rules_import_no_cloud_sdk_and_validate_runs_without_botocore(tmp_path: Path) -> None:
    """The rules are pure: no CDK/Node, kfp, Pulumi or cloud SDK. Without botocore the
    SageMaker request check is skipped, and `validate` says so."""
    code = ("import sys; import mlops_kit.adapters.checks; "
            "print(sorted(m for m in ('aws_cdk', 'jsii', 'kfp', 'pulumi', 'azure.ai.ml', "
            "'google.cloud.aiplatform', 'boto3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    blocked = ("import sys; sys.modules['botocore'] = None; from mlops_kit.cli import main; "
               "main()")
    res = subprocess.run([sys.executable, "-c", blocked, "validate", "--config",
                          str(config(tmp_path))], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "not checked: aws pipeline definition: needs botocore" in res.stdout
