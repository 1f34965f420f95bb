"""`mlops-kit init`: the files per cloud, configs that validate, `--from` on awkward data,
the committed example, the generated project's own tests and the README's commands."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config.model import CLOUD_NAME

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "churn"
BIN = Path(sys.executable).parent
ENVS = {"aws": ["dev", "staging", "prod"], "azure": ["azure_dev", "azure_prod"],
        "gcp": ["gcp_dev", "gcp_prod"]}
CLOUD_FILES = {"aws": ["cdk.json", "package.json"],
               "azure": ["Pulumi.yaml", "infra/__main__.py", "Pulumi.azure_dev.yaml",
                         "Pulumi.azure_prod.yaml"],
               "gcp": ["Pulumi.yaml", "infra/__main__.py", "Pulumi.gcp_dev.yaml",
                       "Pulumi.gcp_prod.yaml"]}
ALWAYS = ["mlops.yaml", "Dockerfile", "pyproject.toml", "README.md", ".gitignore",
          ".copier-answers.yml", ".mlops-kit-init.json", "tests/test_project.py",
          ".github/workflows/mlops.yml"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`mlops-kit ARGS` as a user runs it: the installed command, stdin not a terminal."""
    return subprocess.run([str(BIN / "mlops-kit"), *args], cwd=cwd, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        str(ROOT / p) for p in ("src", "cdk", "pulumi")), "PATH": f"{BIN}:{os.environ['PATH']}"}


def init(dest: Path, *args: str) -> Path:
    result = CliRunner().invoke(main, ["init", str(dest), "--defaults", *args])
    assert result.exit_code == 0, result.output
    return dest


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


CLOUD_SETS = [["aws"], ["azure"], ["gcp"], ["aws", "azure", "gcp"]]


@pytest.mark.parametrize("clouds", CLOUD_SETS, ids="+".join)
def test_files_per_cloud(tmp_path: Path, clouds: list[str]) -> None:
    flags = [f for c in clouds for f in ("--cloud", c)]
    project = init(tmp_path / "my-proj", *flags)
    got = tree(project)
    want = {*ALWAYS, "src/my_proj/__init__.py", *(f for c in clouds for f in CLOUD_FILES[c])}
    assert got == want
    cfg = yaml.safe_load((project / "mlops.yaml").read_text())
    assert "pipeline" not in cfg  # the kit's DAG is the default
    assert list(cfg["environments"]) == [e for c in clouds for e in ENVS[c]]
    for env in (e for c in ("azure", "gcp") if c in clouds for e in ENVS[c]):
        stack = yaml.safe_load((project / f"Pulumi.{env}.yaml").read_text())
        assert stack == {"config": {"mlops:environment": env}}
    deps = (project / "pyproject.toml").read_text()
    assert f'"mlops-kit[{",".join(clouds)}]==' in deps


def test_deploy_files_point_at_the_kit(tmp_path: Path) -> None:
    project = init(tmp_path / "proj", "--cloud", "aws", "--cloud", "gcp")
    cdk = yaml.safe_load((project / "cdk.json").read_text())
    root = yaml.safe_load((ROOT / "cdk.json").read_text())
    assert cdk["app"] == "python -m mlops_cdk" and cdk["output"] == "cdk.out"
    assert cdk["context"] == root["context"]  # the same feature flags as the kit's own
    pins = [json.loads((p / "package.json").read_text())["devDependencies"]
            for p in (project, ROOT)]
    assert pins[0] == pins[1]  # the CDK CLI the kit is tested with
    assert yaml.safe_load((project / "Pulumi.yaml").read_text())["main"] == "infra/"
    assert (project / "infra/__main__.py").read_text() == (
        "from mlops_pulumi.main import main\n\nmain()\n")
    docker = (project / "Dockerfile").read_text()
    assert "exec python -m mlops_kit.serving serve" in docker
    assert "MLOPS_CONFIG=${CONFIG_PATH}" in docker and "ARG GIT_COMMIT" in docker


def test_every_environment_validates(tmp_path: Path) -> None:
    project = init(tmp_path / "all-clouds", "--cloud", "aws", "--cloud", "azure",
                   "--cloud", "gcp")
    result = cli("validate", cwd=project)
    assert result.returncode == 0, result.stderr
    for env in (e for envs in ENVS.values() for e in envs):
        result = cli("validate", "--env", env, cwd=project)
        assert result.returncode == 0, (env, result.stderr)
        assert f"environments checked: {env} " in result.stdout


def test_placeholders_are_marked_and_listed(tmp_path: Path) -> None:
    project = init(tmp_path / "proj", "--cloud", "aws")
    text = (project / "mlops.yaml").read_text()
    assert text.count("# placeholder: replace it") == 3
    assert "`000000000000` of dev" in (project / "README.md").read_text()
    real = init(tmp_path / "real", "--cloud", "aws", "--aws-account", "123412341234")
    assert '"123412341234"\n' in (real / "mlops.yaml").read_text()
    assert "`000000000000`" not in (real / "README.md").read_text()


def test_the_example_is_what_init_renders(tmp_path: Path) -> None:
    answers = yaml.safe_load((EXAMPLE / ".copier-answers.yml").read_text())
    flags = [f for c in answers["clouds"] for f in ("--cloud", c)]
    fresh = init(tmp_path / "churn", *flags, "--ci", answers["ci"])
    ours = tree(EXAMPLE) - {p for p in tree(EXAMPLE) if "__pycache__" in p}
    assert tree(fresh) == ours
    for name in sorted(ours):
        assert (fresh / name).read_text() == (EXAMPLE / name).read_text(), name


def test_a_folder_that_is_not_empty_needs_force(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("init", str(tmp_path), "--defaults")
    assert result.returncode == 2
    assert "not empty" in result.stderr and "--force" in result.stderr
    assert cli("init", str(tmp_path), "--defaults", "--force").returncode == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_without_a_terminal_or_defaults_it_fails_fast(tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "proj"))  # stdin is /dev/null: nobody can answer
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--defaults" in result.stderr
    assert not (tmp_path / "proj").exists()


def test_the_template_checks_project_names_by_the_kit_rule() -> None:
    template = yaml.safe_load(files("mlops_kit.project").joinpath(
        "template/copier.yml").read_text())
    assert f"regex_search('{CLOUD_NAME}')" in template["project"]["validator"]


def test_a_bad_project_name_with_from_is_one_line(tmp_path: Path) -> None:
    pd.DataFrame({"x": range(20), "y": [0, 1] * 10}).to_csv(tmp_path / "d.csv", index=False)
    result = cli("init", str(tmp_path / "proj"), "--from", str(tmp_path / "d.csv"),
                 "--target", "y", "--project", "Bad_Name", "--defaults")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--project 'Bad_Name'" in result.stderr


def test_a_bad_answer_names_the_question(tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "proj"), "--defaults", "--aws-account", "12")
    assert result.returncode == 2 and "aws_account" in result.stderr
    assert "Traceback" not in result.stderr


# --- init --from ----------------------------------------------------------------------------


def _frame(shape: str, rows: int = 400) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=rows)
    frame = pd.DataFrame({"a/b (mg)": x.round(3), "2nd value": rng.integers(0, 9, rows),
                          "Größe": rng.choice(["s", "m", "l"], rows)})
    if shape == "regression":
        frame["price"] = (3 * x + rng.normal(size=rows)).round(2)
        return frame, "price"
    if shape == "multiclass":
        frame["kind"] = np.where(x > 0.5, "cat", np.where(x < -0.5, "dog", "bird"))
        return frame, "kind"
    if shape == "timestamp":
        frame["event_date"] = pd.date_range("2024-01-01", periods=rows, freq="h").astype(str)
        frame["churned"] = (x > 0).astype(int)
        return frame, "churned"
    frame.loc[::7, "a/b (mg)"] = np.nan  # missing values, in a feature and in the target
    frame["label"] = (x > 0).astype(float)
    frame.loc[::50, "label"] = np.nan
    return frame, "label"


SHAPES = ["regression", "multiclass", "timestamp", "missing"]


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_init_from_data_validates_and_trains(tmp_path: Path, shape: str) -> None:
    frame, target = _frame(shape)
    project = tmp_path / "proj"
    (project / "data").mkdir(parents=True)
    frame.to_csv(project / "data" / "train.csv", index=False)
    result = cli("init", str(project), "--from", str(project / "data" / "train.csv"),
                 "--target", target, "--defaults", "--force")
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load((project / "mlops.yaml").read_text())
    assert cfg["data"]["source"]["path"] == "data/train.csv"  # inside: relative
    assert list(cfg["environments"]) == ENVS["aws"]
    for args in (["validate"], ["validate", "--env", "prod"],
                 ["run", "--train-only", "--set", "model.search.trials=1"]):
        result = cli(*args, cwd=project)
        assert result.returncode == 0, (args, result.stdout, result.stderr)


def test_data_outside_the_project_is_referenced_absolutely(tmp_path: Path) -> None:
    frame, target = _frame("regression")
    frame.to_csv(tmp_path / "prices.csv", index=False)
    project = init(tmp_path / "proj", "--from", str(tmp_path / "prices.csv"), "--target",
                   target)
    cfg = yaml.safe_load((project / "mlops.yaml").read_text())
    assert cfg["data"]["source"]["path"] == str(tmp_path / "prices.csv")
    assert cfg["project"] == "proj" and cfg["model"]["task"] == "regression"
    assert not (project / "prices.csv").exists()  # referenced, not copied


@pytest.mark.slow
@pytest.mark.parametrize("source", ["example", "from"])
def test_the_generated_projects_tests_pass(tmp_path: Path, source: str) -> None:
    args: list[str] = []
    if source == "from":
        frame, target = _frame("multiclass")
        frame.to_csv(tmp_path / "animals.csv", index=False)
        args = ["--from", str(tmp_path / "animals.csv"), "--target", target]
    project = init(tmp_path / "proj", *args)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, timeout=600,
                            env=_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


# --- the README's commands ------------------------------------------------------------------


def readme_commands() -> list[str]:
    """The shell block of README.md's "Start a project" section, one command a line."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Start a project", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines()
            if line.strip()]


def on_a_terminal(line: str, cwd: Path, timeout: float = 120.0) -> tuple[int, str]:
    """Run `line` on a pseudo-terminal, pressing Enter whenever it waits for input (a user
    taking every default). Returns the exit code and what the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(line, shell=True, cwd=cwd, env={**_env(), "TERM": "xterm"},
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.3)[0]:
            with contextlib.suppress(OSError):
                chunks.append(os.read(master, 65536))
        else:
            os.write(master, b"\r")
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    if proc.poll() is None:  # still waiting after the timeout: a hang, reported as a failure
        proc.kill()
    return proc.wait(5), b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_init_asks_and_renders(tmp_path: Path) -> None:
    code, shown = on_a_terminal(f"mlops-kit init {tmp_path / 'asked'}", tmp_path)
    assert code == 0, shown
    assert "AWS account id" in shown and "CI system" in shown  # the questions were asked
    assert tree(tmp_path / "asked") == tree(init(tmp_path / "flags" / "asked"))


@pytest.mark.slow
def test_the_readme_start_runs_as_written(tmp_path: Path) -> None:
    commands = readme_commands()
    assert commands[0] == "pip install mlops-kit"  # the one line not run: no network here
    frame, _ = _frame("regression")
    frame.rename(columns={"price": "y"}).to_csv(tmp_path / "data.csv", index=False)
    cwd = tmp_path
    for line in commands[1:]:
        if line.startswith("cd "):
            cwd = cwd / line[3:]
            continue
        if line.startswith("mlops-kit init"):  # it asks: a user at a terminal takes defaults
            code, shown = on_a_terminal(line, cwd)
            assert code == 0, (line, shown)
            continue
        result = subprocess.run(line, shell=True, cwd=cwd, capture_output=True, text=True,
                                timeout=600, env=_env(), stdin=subprocess.DEVNULL)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
