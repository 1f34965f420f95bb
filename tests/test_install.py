"""The kit as a team gets it: the built wheel in a clean venv, no repository on the path.

One wheel build per module; a venv in a temp folder gets the wheel (`--no-deps`) and a `.pth`
line naming this environment's site-packages for the dependencies (no network in tests; a
path line in a `.pth` file does not run that folder's own `.pth` files, so this checkout's
editable install is not on the path: `test_the_kit_comes_from_the_wheel` proves it). Then, in
empty folders: `mlops-kit init --from` on CSVs of several shapes, `validate`, `run
--train-only`, a prediction from `mlops-kit serve`, the README's `npx cdk` command (synth),
cdk.json's app run without the CLI, the generated Pulumi program under mocks and the
generated project's own tests.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.test_cdk_cli import offline

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Venv:
    folder: Path

    @property
    def bin(self) -> Path:
        return self.folder / "bin"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a user's shell has (from `base`, default this one): the venv first
        on PATH, no PYTHONPATH and none of the variables the test session sets for the kit
        (MLOPS_STATE_DIR, MLFLOW_...)."""
        env = {k: v for k, v in (base or dict(os.environ)).items()
               if k not in {"PYTHONPATH", "VIRTUAL_ENV"}
               and not k.startswith(("MLOPS_", "MLFLOW_"))}
        return env | {"PATH": f"{self.bin}{os.pathsep}{env['PATH']}",
                      "VIRTUAL_ENV": str(self.folder)}

    def run(self, *args: str | Path, cwd: Path, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(a) for a in args], cwd=cwd, env=env or self.env(),
                             capture_output=True, text=True, timeout=timeout, check=False)
        assert out.returncode == 0, (f"{' '.join(map(str, args))} in {cwd}: exit "
                                     f"{out.returncode}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
        return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """The wheel of this checkout, installed into a new venv."""
    work = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(work / "dist"), str(ROOT)], check=True, timeout=600)
    wheel = next((work / "dist").glob("mlops_kit-*.whl"))
    folder = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=600)
    site = Path(subprocess.run(
        [str(folder / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
         "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Venv(folder)


def test_the_kit_comes_from_the_wheel(venv: Venv, tmp_path: Path) -> None:
    code = ("import mlops_kit, mlops_cdk, mlops_pulumi, importlib.resources as r; "
            "print(mlops_kit.__file__, mlops_cdk.__file__, mlops_pulumi.__file__); "
            "print((r.files('mlops_kit') / 'pipelines' / 'training.yaml').is_file())")
    out = venv.run(venv.bin / "python", "-c", code, cwd=tmp_path).stdout.split()
    assert all(str(venv.folder) in p for p in out[:3]), out
    assert out[3] == "True"


# --- the data sets: each a shape a real CSV has -------------------------------------------

def _regression(rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, str]:
    dose = rng.uniform(0, 50, rows)
    frame = pd.DataFrame({
        "a/b (mg)": dose.round(3),
        "2nd value": rng.integers(0, 100, rows),
        "Größe": rng.normal(170, 10, rows).round(1),
        "batch.code": rng.choice(["x-1", "y-2", "z-3"], rows),
        "yield (kg)": (3 * dose + rng.normal(0, 5, rows)).round(2),
    })
    return frame, "yield (kg)"


def _multiclass(rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, str]:
    species = rng.choice(["setosa", "versicolor", "virginica"], rows)
    length = np.select([species == "setosa", species == "versicolor"], [1.5, 4.3], 5.6)
    petal = (length + rng.normal(0, 0.3, rows)).round(2)
    frame = pd.DataFrame({"petal length": petal, "sepal-width": rng.normal(3, 0.4, rows).round(2),
                          "species": species})
    frame.loc[rng.random(rows) < 0.05, "sepal-width"] = np.nan  # missing values
    return frame, "species"


def _events(rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, str]:
    start = pd.Timestamp("2026-01-01")
    tenure = rng.integers(0, 60, rows)
    frame = pd.DataFrame({
        "customer id": [f"c{i:06d}" for i in range(rows)],
        "signup time": [str(start + pd.Timedelta(minutes=int(m)))
                        for m in rng.integers(0, 300_000, rows)],
        "tenure": tenure, "plan": rng.choice(["basic", "pro"], rows),
        "churned": (rng.random(rows) < 1 / (1 + np.exp(tenure / 20 - 1))).astype(int),
    })
    return frame, "churned"


SHAPES = {"regression": _regression, "multiclass": _multiclass, "events": _events}


@dataclass(frozen=True)
class Project:
    folder: Path
    frame: pd.DataFrame
    target: str
    seconds: float  # empty folder to a trained, registered model


@pytest.fixture(scope="module")
def projects(venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """Each shape: a CSV, `init --from` into an empty folder, validate, run --train-only."""
    made = {}
    for shape, make in SHAPES.items():
        base = tmp_path_factory.mktemp(shape)
        frame, target = make(2_000, np.random.default_rng(7))
        (base / "data").mkdir()
        frame.to_csv(base / "data" / f"{shape}.csv", index=False)
        folder = base / "project"
        start = time.perf_counter()
        venv.run("mlops-kit", "init", folder, "--from", base / "data" / f"{shape}.csv",
                 "--target", target, "--cloud", "aws", "--cloud", "azure", "--cloud", "gcp",
                 "--defaults", cwd=base)
        venv.run("mlops-kit", "validate", cwd=folder)
        venv.run("mlops-kit", "run", "--train-only", cwd=folder)
        made[shape] = Project(folder, frame, target, time.perf_counter() - start)
    return made


def test_init_validate_and_train_each_shape(projects: dict[str, Project], venv: Venv) -> None:
    for shape, project in projects.items():
        listed = venv.run("mlops-kit", "registry", "list", "--json", cwd=project.folder).stdout
        versions = json.loads(listed)["versions"]
        assert [v["version"] for v in versions] == [1], (shape, listed)
        print(f"{shape}: empty folder to a trained model in {project.seconds:.1f} s")


def test_an_update_from_the_wheel_finds_the_project_current(
        projects: dict[str, Project], venv: Venv) -> None:
    out = venv.run("mlops-kit", "init", "--update", ".", cwd=projects["events"].folder).stdout
    assert "already at mlops-kit" in out, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(projects: dict[str, Project], venv: Venv) -> Iterator[tuple[Project, int]]:
    project = projects["regression"]
    port = _free_port()
    server = subprocess.Popen(["mlops-kit", "serve", "--port", str(port), "--no-capture"],
                              cwd=project.folder, env=venv.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, server.communicate()[0]
                time.sleep(0.2)
        yield project, port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_served_prediction_reads_the_csv_headers(served: tuple[Project, int]) -> None:
    project, port = served
    rows = project.frame.drop(columns=[project.target]).head(3).to_dict("records")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=json.dumps({"instances": rows}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())
    assert len(body["predictions"]) == 3  # a regression answer: {"score": ...} per row
    truth = project.frame[project.target].head(3).to_numpy()
    values = np.array([p["score"] for p in body["predictions"]], dtype=float)
    assert np.all(np.abs(values - truth) < 0.5 * np.abs(truth).max() + 30), (values, truth)


def test_the_generated_readmes_cdk_command_selects_the_dev_stacks(
        projects: dict[str, Project], venv: Venv, tmp_path: Path) -> None:
    """The README's `npm install` and `npx cdk deploy -c env=dev 'project-dev/*'`, with
    `synth` for `deploy` (no account here): the pinned CLI runs cdk.json's app from the venv."""
    project = projects["events"]
    readme = (project.folder / "README.md").read_text()
    deploy = next(line for line in readme.splitlines() if line.startswith("npx cdk deploy"))
    argv = shlex.split(deploy)
    assert "npm install" in readme and argv[:2] == ["npx", "cdk"]
    (project.folder / "node_modules").symlink_to(ROOT / "node_modules")  # `npm install`, offline
    pattern = argv[-1]
    listed = venv.run("npx", "cdk", "list", "--no-notices", *argv[3:], cwd=project.folder,
                      env=venv.env(offline(tmp_path))).stdout.splitlines()
    assert len(listed) == 2 and all(fnmatch.fnmatch(line.split()[0], pattern)
                                    for line in listed), listed  # platform + the model
    venv.run("npx", "cdk", "synth", "--no-notices", "--quiet", *argv[3:], cwd=project.folder,
             env=venv.env(offline(tmp_path)), timeout=900)
    templates = sorted(p.name for p in (project.folder / "cdk.out").rglob("*.template.json"))
    assert len(templates) == 2 and any("platform" in t for t in templates), templates


def test_the_generated_cdk_app_synthesizes_without_the_cli(
        projects: dict[str, Project], venv: Venv, tmp_path: Path) -> None:
    """cdk.json's app run as the CLI runs it: its context (the feature flags) and `env` in
    CDK_CONTEXT_JSON, the templates written to CDK_OUTDIR."""
    project = projects["multiclass"]
    cdk = json.loads((project.folder / "cdk.json").read_text())
    env = venv.env(offline(tmp_path)) | {
        "CDK_OUTDIR": str(tmp_path / "out"),
        "CDK_CONTEXT_JSON": json.dumps(cdk["context"] | {"env": "dev"})}
    venv.run(*shlex.split(cdk["app"]), cwd=project.folder, env=env, timeout=900)
    stacks = [a for m in (tmp_path / "out").rglob("manifest.json")  # the Stage's assembly too
              for a in json.loads(m.read_text())["artifacts"].values()
              if a["type"] == "aws:cloudformation:stack"]
    assert {s["environment"] for s in stacks} == {"aws://000000000000/eu-west-1"}
    assert sorted(s["displayName"] for s in stacks) == [
        "project-dev/platform", "project-dev/project-model"]


DRIVER = """
import json, os, runpy, sys
sys.path.insert(0, sys.argv[1])  # the mocks module only
import pulumi
from mocks import MOCKS

@pulumi.runtime.test
def program():
    runpy.run_path("infra", run_name="__main__")

program()
print(json.dumps(sorted({c.type for c in MOCKS.created})))
"""


@pytest.mark.parametrize("stack", ["azure_dev", "gcp_dev"])
def test_the_generated_pulumi_program_runs_under_mocks(projects: dict[str, Project], venv: Venv,
                                                       tmp_path: Path, stack: str) -> None:
    import yaml

    project = projects["multiclass"]
    settings = yaml.safe_load((project.folder / "Pulumi.yaml").read_text())
    assert settings["main"].rstrip("/") == "infra"
    config = yaml.safe_load((project.folder / f"Pulumi.{stack}.yaml").read_text())["config"]
    shutil.copy(ROOT / "tests" / "pulumi" / "mocks.py", tmp_path / "mocks.py")
    (tmp_path / "driver.py").write_text(DRIVER)
    env = venv.env() | {"PULUMI_CONFIG": json.dumps(config)}
    out = venv.run(venv.bin / "python", tmp_path / "driver.py", tmp_path,
                   cwd=project.folder, env=env)
    types = json.loads(out.stdout.strip().splitlines()[-1])
    wanted = "machinelearningservices:OnlineEndpoint" if stack.startswith("azure") else \
        "vertex/aiEndpoint:AiEndpoint"
    assert any(t.endswith(wanted) for t in types), types


def test_the_generated_projects_own_tests_pass(projects: dict[str, Project], venv: Venv) -> None:
    project = projects["events"]
    venv.run(venv.bin / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
             cwd=project.folder)
