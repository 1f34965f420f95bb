"""One rule set, checked once: for each config a cloud would refuse, `mlops-kit validate`
refuses it, and the CDK app (`cdk synth`) or the Pulumi program (`pulumi up`) refuses it with
the same line, before it builds anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

cdk = pytest.importorskip("aws_cdk")
pulumi = pytest.importorskip("pulumi")
from mlops_cdk.app import build  # noqa: E402

import tests.pulumi.mocks  # noqa: E402, F401  (mocks before the program is imported)
from mlops_kit.cli import main  # noqa: E402
from mlops_kit.config import ConfigError, deep_merge  # noqa: E402
from mlops_pulumi.config import StackError, load_stack  # noqa: E402
from mlops_pulumi.program import deploy  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.test_cdk import project  # noqa: E402

EXAMPLE = yaml.safe_load((ROOT / "mlops.yaml").read_text())
PIPELINE = (ROOT / "src" / "mlops_kit" / "pipelines" / "training.yaml").read_text()
MODEL = EXAMPLE["model"]
ENVS = EXAMPLE["environments"]


@dataclass(frozen=True)
class Case:
    """A config the clouds refuse: the change to the example, and where it is refused."""

    changes: dict[str, Any]
    refused_by: tuple[str, ...]          # environments whose deploy refuses it
    field: str                           # the field every refusal names
    pipeline: str | None = None          # a pipeline file in place of the example's
    models: list[str] = field(default_factory=list)


TWICE = PIPELINE.replace("  - name: features\n", "  - name: validate\n    inputs: {raw: ingest.raw}"
                         "\n    outputs: {curated: {}, quarantine: {}, profile: {}}\n"
                         "  - name: features\n", 1)
CASES = {
    "monthly-monitoring-schedule": Case({"monitoring": {"schedule": "0 3 1 * *"}},
                                        ("dev", "azure_dev", "gcp_dev"), "monitoring.schedule"),
    "unknown-time-zone": Case({"training": {"time_zone": "Mars/Base"}},
                              ("dev", "azure_dev", "gcp_dev"), "training.time_zone"),
    "broken-pipeline-file": Case({}, ("dev", "azure_dev", "gcp_dev"), "steps[2]",
                                 pipeline=PIPELINE.replace("- name: features", "- name: featurs")),
    "step-listed-twice": Case({}, ("dev",), "training", pipeline=TWICE),
    "unknown-lake-zone": Case({}, ("dev",), "outputs.offline.publish", pipeline=PIPELINE.replace(
        "offline: {publish: features}", "offline: {publish: gold}")),
    "bucket-names": Case({"project": "churn-prediction-platform-x-y"}, ("dev",), "project"),
    "package-group": Case({"project": "churn-prediction-platf"}, ("dev",), "models[1].name",
                          models=["short", "m" * 41]),
    "eventbridge-cron": Case({"training": {"schedule": "0 3 1 * 1"}}, ("dev",),
                             "training.schedule"),
    "cron-out-of-range": Case({"training": {"schedule": "0 25 * * *"}},
                              ("dev", "azure_dev", "gcp_dev"), "training.schedule"),
    "cicd-stage-twice": Case({"cicd": {"stages": ["staging", "staging"]}}, ("dev",),
                             "cicd.stages"),
    "gcp-machine-size": Case({"gcp": {"training_machine_type": "n1-standard-3"}}, ("gcp_dev",),
                             "gcp.training_machine_type"),
    "azure-vm-size": Case({"azure": {"training_vm_size": "Banana"}}, ("azure_dev",),
                          "azure.training_vm_size"),
    "shared-aws-target": Case({"environments": {"qa": ENVS["dev"]}}, ("dev",),
                              "same AWS account and region"),
    "no-windows-time-zone": Case({"training": {"time_zone": "Asia/Kolkata"}}, ("azure_dev",),
                                 "training.time_zone"),
    "workspace-name": Case({"project": "churn-prediction-platform"}, ("azure_dev",),
                           "Azure ML workspace name"),
    "unmapped-instance-type": Case({"serving": {"instance_type": "ml.inf2.xlarge"},
                                    "azure": {"deploy_versions": {"churn-classifier": "3"}}},
                                   ("azure_dev", "gcp_dev"), "serving.instance_type"),
    "azure-global-names": Case({"project": "customerchurnpredict"}, ("azure_dev",),
                               "the same Azure lake storage account name"),
    "azure-endpoint-names": Case({"environments": {"azure_eu_west_a": ENVS["azure_dev"],
                                                   "azure_eu_west_b": ENVS["azure_dev"]}},
                                 ("azure_dev",), "online endpoint name"),
    "training-machine": Case({"gcp": {"training_machine_type": "custom-8"}}, ("gcp_dev",),
                             "gcp.training_machine_type"),
    "cpu-target": Case({"serving": {"scaling": {"policy": "target_tracking",
                                                "metric": "CPUUtilization",
                                                "target_value": 150}}},
                       ("gcp_dev",), "serving.scaling.target_value"),
    "online-store-id": Case({"features": {"group": "f" * 54}}, ("gcp_dev",), "features.group"),
    "vertex-model-ids": Case({"project": "p" * 30}, ("gcp_dev",), "the same Vertex model id",
                             models=["m" * 40 + "a", "m" * 40 + "b"]),
    "shared-gcp-project": Case({"environments": {"gcp_prod": {"project": "churn-dev-111111"}}},
                               ("gcp_dev",), "same Google Cloud project"),
}


def write(root: Path, case: Case) -> Path:
    """The example config with the case's change, in a copy of the repository's layout."""
    raw = deep_merge(EXAMPLE, case.changes)
    if case.models:
        raw.pop("model")
        raw["models"] = [{**MODEL, "name": name} for name in case.models]
    if case.pipeline is not None:
        (root / "case-pipeline.yaml").write_text(case.pipeline)
        raw["pipeline"] = "case-pipeline.yaml"
    path = root / "mlops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def refusal(root: Path, env: str) -> str:
    """The error the environment's deploy stops with (before building anything)."""
    if ENVS[env]["cloud"] == "aws":
        with pytest.raises(ConfigError) as cdk_error:
            build(cdk.App(context={"env": env}, outdir=str(root / f"cdk.out-{env}")), root)
        return str(cdk_error.value)
    with pytest.raises(StackError) as pulumi_error:
        deploy(load_stack(env, root / "mlops.yaml"))
    return str(pulumi_error.value)


@pytest.mark.parametrize("name", CASES)
def test_validate_refuses_what_the_deploy_refuses_with_the_same_line(
        name: str, tmp_path: Path) -> None:
    case = CASES[name]
    path = write(project(tmp_path), case)
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert result.exit_code == 2, result.output
    printed = result.output.splitlines()
    assert all(line.startswith("config error: ") for line in printed), printed
    validated = {line.removeprefix("config error: ") for line in printed}
    for env in case.refused_by:
        # an error in the shared config says which environment's overrides it was read with
        lines = [line.removesuffix(f" (after environment '{env}' overrides)")
                 for line in refusal(tmp_path, env).splitlines()]
        assert lines, env
        assert set(lines) <= validated, (env, lines, validated)
        assert any(case.field in line for line in lines), (env, lines)


@pytest.mark.parametrize("env", ["azure_dev", "gcp_dev"])
@pulumi.runtime.test
def test_the_unchanged_example_passes_validate_and_the_pulumi_program(
        env: str, tmp_path: Path) -> Any:
    """The case configs differ from one the tools accept only by their change."""
    path = write(project(tmp_path), Case({}, (), ""))
    result = CliRunner().invoke(main, ["validate", "--config", str(path), "--env", env])
    assert result.exit_code == 0, result.output
    platform = deploy(load_stack(env, path))
    return platform.serving.models["churn-classifier"].endpoint.id
