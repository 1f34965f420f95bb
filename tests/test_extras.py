"""The core runs the local lifecycle with no cloud SDK; a missing extra is one line naming it.

The CLI runs in a subprocess whose `sitecustomize` hides the optional SDKs from the import
system, as if only `pip install mlops-kit` had run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from mlops_kit.extras import OPTIONAL, MissingExtra, needs, require
from tests.conftest import ROOT, write_config

BIN = Path(sys.executable).parent
# What `pip install mlops-kit` lacks. google.protobuf and google.auth come with the core's
# mlflow-skinny, so only Google Cloud's own packages are hidden.
HIDDEN = ("boto3", "botocore", "moto", "torch", "aws_cdk", "constructs", "cdk_nag", "pulumi",
          "pulumi_azure_native", "pulumi_gcp", "azure", "kfp", "google.cloud", "google.api_core")
SITECUSTOMIZE = f'''
import sys

HIDDEN = {HIDDEN!r}


class Hide:
    """Every HIDDEN package (and what is inside it) is not installed."""

    def find_spec(self, name, path=None, target=None):
        for hidden in HIDDEN:
            if name == hidden or name.startswith(hidden + "."):
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Hide())
'''
ONE_LINE = re.compile(r"missing extra: .+ needs \S+: pip install 'mlops-kit\[(?P<extra>[\w-]+)\]'")


@pytest.fixture
def core_env(tmp_path: Path) -> dict[str, str]:
    """Environment variables for a subprocess that sees only the core's dependencies."""
    hide = tmp_path / "core_only"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = [str(hide), str(ROOT / "src"), str(ROOT / "cdk"), str(ROOT / "pulumi")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "NO_COLOR": "1",
            "COLUMNS": "200", "MLOPS_STATE_DIR": str(tmp_path / "state")}


def run(env: dict[str, str], *args: str, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


def assert_one_line(res: subprocess.CompletedProcess[str], extra: str) -> None:
    """Exit 2, and stderr is one line naming `pip install 'mlops-kit[extra]'`, no traceback."""
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    match = ONE_LINE.fullmatch(lines[0])
    assert match and match["extra"] == extra, lines[0]


def test_the_hider_hides(core_env: dict[str, str]) -> None:
    res = run(core_env, sys.executable, "-c", "import boto3")
    assert "No module named 'boto3'" in res.stderr
    res = run(core_env, sys.executable, "-c", "import google.protobuf, mlflow, pandas")
    assert res.returncode == 0, res.stderr


def test_validate_and_train_only_need_no_cloud_sdk(core_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    res = run(core_env, str(BIN / "mlops-kit"), "validate", "--config", config)
    assert res.returncode == 0, res.stdout + res.stderr
    assert ("not checked: aws pipeline definition: needs botocore: "
            "pip install 'mlops-kit[aws]'") in res.stdout
    res = run(core_env, str(BIN / "mlops-kit"), "run", "--train-only", "--config", config)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "state" / "registry").is_dir()


def test_the_moto_target_names_local_aws(core_env: dict[str, str], tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    res = run(core_env, str(BIN / "mlops-kit"), "run", "--target", "moto", "--config", config)
    assert_one_line(res, "local-aws")


def test_a_pytorch_model_names_pytorch(core_env: dict[str, str], tmp_path: Path) -> None:
    config = str(write_config(tmp_path, {"model": {"framework": "pytorch",
                                                   "params": {"epochs": 1},
                                                   "search": {"trials": 1, "space": {}}}}))
    res = run(core_env, str(BIN / "mlops-kit"), "run", "--train-only", "--config", config)
    assert res.returncode == 1, res.stdout + res.stderr
    assert ("step train failed: the pytorch framework (model.framework: pytorch) needs torch: "
            "pip install 'mlops-kit[pytorch]'") in res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert not list((tmp_path / "state" / "runs").glob("*/train.log"))  # no traceback kept


def test_the_cdk_app_names_aws(core_env: dict[str, str], tmp_path: Path) -> None:
    res = run(core_env, sys.executable, "-m", "mlops_cdk", cwd=tmp_path)
    assert_one_line(res, "aws")


def test_the_pulumi_package_names_azure(core_env: dict[str, str]) -> None:
    res = run(core_env, sys.executable, "-c", "import mlops_pulumi")
    assert_one_line(res, "azure")


def test_the_pulumi_program_ends_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `pulumi up` a RunError prints its message only; here pulumi-gcp is missing."""
    import pulumi
    from mlops_pulumi.config import load_stack
    from mlops_pulumi.program import deploy

    for name in [m for m in sys.modules if m.startswith("mlops_pulumi.gcp")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pulumi_gcp", None)
    with pytest.raises(pulumi.RunError) as caught:
        deploy(load_stack("gcp_dev", ROOT / "mlops.yaml"))
    assert str(caught.value) == ("missing extra: the Pulumi program for gcp needs pulumi_gcp: "
                                 "pip install 'mlops-kit[gcp]'")


def test_require_names_the_extra_that_fits_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ModuleNotFoundError
    with pytest.raises(MissingExtra) as caught:
        require("boto3", "the moto target", "local-aws")
    assert str(caught.value) == "the moto target needs boto3: pip install 'mlops-kit[local-aws]'"
    assert caught.value.exit_code == 2
    with pytest.raises(MissingExtra, match=r"mlops-kit\[aws\]"):
        require("boto3", "the sagemaker registry")
    with pytest.raises(ValueError, match="not in extra 'pytorch'"):
        require("boto3", "x", "pytorch")
    with pytest.raises(ValueError, match="not an optional SDK"):
        require("jmespath", "x")


def test_needs_rewrites_only_an_optional_sdk() -> None:
    vertex = r"needs google.cloud.aiplatform: .*\[vertex\]'$"
    with pytest.raises(MissingExtra, match=vertex), needs("the vertex registry"):
        raise ModuleNotFoundError("No module named 'google.cloud'", name="google.cloud")
    with pytest.raises(ModuleNotFoundError, match="jmespath"), needs("the sagemaker registry"):
        raise ModuleNotFoundError("No module named 'jmespath'", name="jmespath")


def test_a_broken_sdk_is_not_called_missing(core_env: dict[str, str]) -> None:
    """boto3 installed but one of its own modules missing: the real error, not MissingExtra."""
    code = ("import sys; sys.modules['jmespath'] = None; sys.modules.pop('boto3', None)\n"
            "from mlops_kit.extras import require; require('boto3', 'x')")
    env = {**core_env, "PYTHONPATH": core_env["PYTHONPATH"].split(os.pathsep, 1)[1]}
    res = run(env, sys.executable, "-c", code)
    assert res.returncode == 1 and "ModuleNotFoundError" in res.stderr, res.stderr
    assert "jmespath" in res.stderr and "missing extra" not in res.stderr


def test_the_map_covers_every_optional_dependency() -> None:
    """Each requirement of each extra is in OPTIONAL under that extra, and the reverse."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    declared = {(_name(req), extra) for extra, reqs in extras.items() if extra != "dev"
                for req in reqs if not req.startswith("mlops-kit[")}
    mapped = {(dist, extra) for dist, names in OPTIONAL.values() for extra in names}
    assert declared == mapped - {("cfn-lint", "dev")}
    assert "cfn-lint" in {_name(r) for r in extras["dev"]}
    included = re.findall(r"[\w-]+", extras["dev"][0].removeprefix("mlops-kit"))
    assert sorted(included) == sorted(e for e in extras if e not in ("dev", "azureml", "vertex"))


def _name(requirement: str) -> str:
    return Requirement(requirement).name
