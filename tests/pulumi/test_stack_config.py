"""Stack files name an mlops.yaml environment; anything else is a clear error, never a fallback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops_kit.config import load_config
from mlops_kit.config.instances import azure_instance_type, gcp_machine_type
from mlops_pulumi.config import StackError, load_stack
from tests.conftest import ROOT
from tests.pulumi.conftest import two_models


def test_import_pulumi_is_the_sdk_not_the_program_folder() -> None:
    code = "import pulumi, mlops_pulumi; print(pulumi.__file__, mlops_pulumi.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT / "pulumi")}).stdout
    sdk, program = out.split()
    assert "site-packages" in sdk
    assert Path(program).parent == ROOT / "pulumi" / "mlops_pulumi"


@pytest.mark.parametrize("path", sorted(ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_file_names_its_environment_only(path: Path) -> None:
    import yaml

    stack = path.name.split(".")[1]
    assert yaml.safe_load(path.read_text()) == {"config": {"mlops:environment": stack}}
    assert load_stack(stack, ROOT / "mlops.yaml").environment.cloud in ("azure", "gcp")


def test_a_stack_without_environment_is_an_error() -> None:
    with pytest.raises(StackError, match="pulumi config set mlops:environment"):
        load_stack(None, ROOT / "mlops.yaml")


def test_an_unknown_environment_is_an_error_not_dev() -> None:
    with pytest.raises(StackError, match=r"azure_qa: no such environment"):
        load_stack("azure_qa", ROOT / "mlops.yaml")


def test_an_aws_environment_is_refused() -> None:
    with pytest.raises(StackError, match=r"'prod' targets aws.*use the CDK app"):
        load_stack("prod", ROOT / "mlops.yaml")


def test_instance_types_map_or_come_from_the_environment(tmp_path: Path) -> None:
    config = load_config(ROOT / "mlops.yaml", env="azure_dev").config
    assert (azure_instance_type(config), gcp_machine_type(config)) == (
        "Standard_DS2_v2", "n1-standard-2")
    path = two_models(tmp_path, {"serving": {"instance_type": "ml.inf2.xlarge"}})
    odd = load_config(path).config
    with pytest.raises(ValueError, match=r"set azure\.instance_type"):
        azure_instance_type(odd)
    pinned = odd.model_copy(update={"azure": odd.azure.model_copy(
        update={"instance_type": "Standard_F4s_v2"})})
    assert azure_instance_type(pinned) == "Standard_F4s_v2"


def test_deploy_versions_must_name_a_model(tmp_path: Path) -> None:
    from mlops_kit.config import ConfigError

    path = two_models(tmp_path, {"azure": {"deploy_versions": {"no-such-model": "1"}}})
    with pytest.raises(ConfigError, match=r"azure.deploy_versions: no model\(s\) \['no-such"):
        load_config(path)


def test_platform_settings_are_validated(tmp_path: Path) -> None:
    from mlops_kit.config import ConfigError

    with pytest.raises(ConfigError, match=r"platform\.training_schedule"):
        load_config(two_models(tmp_path, {"platform": {"training_schedule": "daily"}}))
    with pytest.raises(ConfigError, match=r"platform\.alert_emails"):
        load_config(two_models(tmp_path, {"platform": {"alert_emails": ["not-an-email"]}}))
