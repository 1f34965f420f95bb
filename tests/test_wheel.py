"""The wheel carries what a project needs: built once, installed in a venv of its own (no
repository on the path), then used from a folder outside the repository as a project would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # builds and installs the wheel, synthesizes the CDK app


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    project: Path

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run([str(self.python), *argv], cwd=self.project, capture_output=True,
                              text=True, env={**clean, **env}, timeout=600, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp), str(ROOT)],
                   check=True, capture_output=True)
    wheel, = tmp.glob("mlops_kit-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # the deps only
    project = tmp / "project"
    project.mkdir()
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    raw["image"] = {"dockerfile": "Dockerfile"}
    (project / "mlops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.copy(ROOT / "docker" / "Dockerfile", project / "Dockerfile")
    (project / "pyproject.toml").write_text('[project]\nname = "churn"\nversion = "0.1.0"\n')
    yield Installed(wheel, python, project)


def test_the_wheel_holds_the_three_packages_the_dag_and_py_typed(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"mlops_kit", "mlops_cdk", "mlops_pulumi"}
    for package in tops:
        assert f"{package}/py.typed" in names
    assert {"mlops_kit/pipelines/training.yaml", "mlops_cdk/__main__.py",
            "mlops_pulumi/main.py"} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


def test_the_dag_loads_from_the_installed_package(installed: Installed) -> None:
    done = installed.run("-c", "import mlops_kit; from mlops_kit.config import load_config; "
                         "from mlops_kit.pipeline import load_pipeline; "
                         "p = load_pipeline(load_config('mlops.yaml')); "
                         "print(mlops_kit.__file__); print(p.path); "
                         "print(' '.join(s.name for s in p.steps))")
    assert done.returncode == 0, done.stderr
    module, dag, steps = done.stdout.splitlines()
    site = str(installed.python.parents[1])
    assert module.startswith(site) and dag.startswith(site), done.stdout
    assert steps == "ingest validate features train evaluate register"


def test_validate_passes_outside_the_repository(installed: Installed) -> None:
    done = installed.run("-m", "mlops_kit.cli", "validate", "--env", "dev")
    assert done.returncode == 0, done.stdout + done.stderr


def test_validate_names_a_missing_dockerfile_and_the_fix(installed: Installed) -> None:
    moved = installed.project / "Dockerfile"
    moved.rename(moved.with_suffix(".bak"))
    try:
        done = installed.run("-m", "mlops_kit.cli", "validate", "--env", "dev")
    finally:
        moved.with_suffix(".bak").rename(moved)
    assert done.returncode == 2
    assert f"image.dockerfile: {moved} not found" in " ".join(done.stdout.split() +
                                                              done.stderr.split())


def test_the_installed_cdk_app_synthesizes_the_project(installed: Installed) -> None:
    out = installed.project / "cdk.out"
    flags = json.loads((ROOT / "cdk.json").read_text())["context"]  # what the CLI would pass
    done = installed.run("-m", "mlops_cdk", CDK_OUTDIR=str(out),
                         CDK_CONTEXT_JSON=json.dumps({**flags, "env": "dev"}))
    assert done.returncode == 0, done.stderr[-4000:]
    templates = sorted(p.name for p in out.rglob("*.template.json"))
    assert "churndevplatform" in "".join(templates).replace("-", "").lower(), templates
    assets = next(out.rglob("*platform*.assets.json"))
    image, = json.loads(assets.read_text())["dockerImages"].values()
    assert image["source"]["dockerFile"] == "Dockerfile"
    staged = out / next(out.rglob("asset.*")).relative_to(out)
    assert {p.name for p in staged.iterdir()} >= {"Dockerfile", "mlops.yaml", "pyproject.toml"}
