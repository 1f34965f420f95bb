"""The Python API (`mlops_kit.Project`) on a trained copy of the example project, and the
CLI's `--json` documents, which must be the API's `to_dict()`; tables uncut through a pipe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from mlops_kit import Project
from mlops_kit.cli import main
from mlops_kit.runtime.deploy import reset_endpoint
from tests.conftest import ROOT, Trained, write_config
from tests.test_serving import invoke, server

MODEL = "churn-classifier"
STEPS = ["ingest", "validate", "features", "train", "evaluate", "register"]


@pytest.fixture
def project(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """This test's own copy of the trained project's state: a registry with version 1."""
    state = tmp_path / "state"
    shutil.copytree(trained.state, state, ignore=shutil.ignore_patterns("serving", "endpoints"))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    return Project.load(trained.config)


def cli_json(project: Project, *args: str, code: int = 0) -> Any:
    """The one JSON document a command printed on stdout (its exit code checked)."""
    result = CliRunner().invoke(main, [*args, "--config", str(project.loaded.path), "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_import_is_light_and_project_is_exported() -> None:
    code = ("import sys, mlops_kit; heavy = {'pandas', 'xgboost', 'duckdb'} & set(sys.modules);"
            "assert not heavy, heavy; from mlops_kit import Project; print(Project.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "mlops_kit.api"


def test_validate_is_the_cli_rule_set(project: Project) -> None:
    assert project.validate() == []
    report = project.check()
    assert report.ok and set(report.environments) == set(project.config.environments)
    assert cli_json(project, "validate") == report.to_dict()


def test_validate_problems_as_json_exit_2(trained: Trained, tmp_path: Path) -> None:
    bad = Project.load(trained.config, sets=["monitoring.schedule='0 3 1 * *'"])
    problems = bad.validate()
    assert problems and all(p.field == "monitoring.schedule" for p in problems)
    result = CliRunner().invoke(main, ["validate", "--config", str(trained.config), "--json",
                                       "--set", "monitoring.schedule='0 3 1 * *'"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc == bad.check().to_dict() and doc["ok"] is False
    assert [p["text"] for p in doc["problems"]] == [str(p) for p in problems]


def test_registry_list_approve_reject(project: Project) -> None:
    registry = project.registry
    [entry] = registry.versions()
    assert entry.version.version == 1 and entry.production and entry.corrupt is None
    prod = registry.production()
    assert prod is not None and prod.version == 1
    assert cli_json(project, "registry", "list") == registry.listing().to_dict()
    assert registry.reject(1).status == "Rejected"
    assert registry.production() is None
    doc = cli_json(project, "registry", "list")
    assert doc["versions"][0]["status"] == "Rejected" and not doc["versions"][0]["production"]
    assert registry.approve(1).status == "Approved" and registry.versions()[0].production


def test_registry_list_marks_corrupt_files(project: Project) -> None:
    model = project.loaded.state_dir / "registry" / MODEL / "1" / "model.ubj"
    model.write_bytes(model.read_bytes()[:-1] + b"x")
    [entry] = project.registry.versions()
    assert entry.corrupt == "digest mismatch" and "model.ubj" in str(entry.corrupt_detail)
    doc = cli_json(project, "registry", "list")
    assert doc["versions"][0]["corrupt"] == "digest mismatch"


def test_predict_is_what_invocations_answers(project: Project, trained: Trained,
                                             tmp_path: Path) -> None:
    rows = trained.rows.drop(columns=[project.config.table.target]).head(20)
    predictions = project.predict(rows)
    assert len(predictions) == 20 and set(predictions[0]) >= {"score", "predicted_label"}
    records = json.loads(rows.to_json(orient="records", date_format="iso"))
    assert project.predict(records) == predictions
    with server(trained.model_dir, trained.config, tmp_path / "serve") as port:
        status, answer = invoke(port, json.dumps(records), "application/json",
                                "application/json")
    assert status == 200 and json.loads(answer)["predictions"] == predictions


def test_monitor_matches_cli_json(project: Project, trained: Trained, tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    trained.rows.to_csv(source, index=False)
    result = project.monitor(source, output=tmp_path / "api")
    assert result.version == 1 and result.report.rows == len(trained.rows)
    assert (tmp_path / "api" / "drift.json").is_file()
    code = 3 if result.report.verdict == "drift" else 0
    doc = cli_json(project, "monitor", "--input", str(source), "--output",
                   str(tmp_path / "api"), code=code)
    assert doc == result.to_dict()
    assert doc["verdict"] == result.report.verdict and doc["features"]


def test_monitor_needs_one_input(project: Project) -> None:
    from mlops_kit.monitoring.monitor import MonitorInputError

    with pytest.raises(MonitorInputError, match="--input PATH or --captured"):
        project.monitor()


def test_endpoint_status_matches_cli_json(project: Project) -> None:
    reset_endpoint(project.loaded)
    status = project.endpoint()
    assert [(v.version, v.weight) for v in status.state.variants] == [(1, 1.0)]
    assert status.workers == [] and status.refused == {}
    assert cli_json(project, "endpoint") == status.to_dict()


def test_query(project: Project) -> None:
    frame = project.query("SELECT count(*) AS n FROM curated_customers")
    assert isinstance(frame, pd.DataFrame) and int(frame.n[0]) > 0


def test_registry_table_through_a_pipe_is_not_cut(project: Project) -> None:
    """`mlops-kit registry list | cat` with COLUMNS=40: every column and value whole."""
    project.registry.reject(1)
    env = {**os.environ, "COLUMNS": "40", "MLOPS_STATE_DIR": str(project.loaded.state_dir)}
    out = subprocess.run([sys.executable, "-m", "mlops_kit.cli", "registry", "list",
                          "--config", str(project.loaded.path)], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    [v] = project.registry.versions()
    header = next(line for line in out.splitlines() if "version" in line)
    row = next(line for line in out.splitlines() if "Rejected" in line)
    for name in ("version", "status", "roc_auc", "data version", "git", "created",
                 "production"):
        assert name in header, out
    assert v.version.created in row and "0" * 10 in row, out
    assert "…" not in out


@pytest.mark.slow
def test_run_then_cached_run_as_json(tmp_path: Path) -> None:
    project = Project.load(write_config(tmp_path))
    first = project.run(train_only=True, ingest_date="2026-01-01")
    assert first.status == "succeeded" and first.ran == STEPS and first.cached == []
    assert first.registered_version == 1 and first.loop is None
    assert first.gate is not None and first.gate.passed and first.gate.metric == "roc_auc"
    assert first.gate.value == round(first.metrics["roc_auc"], 4)
    assert json.loads(json.dumps(first.to_dict())) == first.to_dict()
    doc = cli_json(project, "run", "--train-only", "--ingest-date", "2026-01-01")
    assert doc["steps"] == {**dict.fromkeys(STEPS[:4], "cached"), "evaluate": "ran",
                            "register": "ran"}
    assert doc["registered_version"] == 1 and doc["gate"]["passed"]
    assert doc["metrics"] == first.metrics and doc["loop"] is None
    assert Path(doc["run_dir"], "manifest.json").is_file()


def test_root_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project.load(ROOT / "mlops.yaml", env="dev")
    assert project.loaded.env == "dev" and project.config.model.name == MODEL


def doc_blocks(lang: str) -> list[str]:
    """The `lang` code blocks of docs/api.md, in order."""
    text = (ROOT / "docs" / "api.md").read_text()
    return [part.split("```", 1)[0] for part in text.split(f"```{lang}\n")[1:]]


@pytest.mark.slow
def test_docs_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Each cell of docs/api.md in a copy of the example project; its `# ...` lines are what
    the cell prints; then each shell line prints one JSON document."""
    write_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    for cell in doc_blocks("python"):
        exec(compile(cell, "docs/api.md", "exec"), scope)  # the doc's own cells
        shown = capsys.readouterr().out.splitlines()
        expected = [line[2:] for line in cell.splitlines() if line.startswith("# ")]
        if expected:
            assert shown == expected, cell
    lines = [line for block in doc_blocks("bash") for line in block.splitlines() if line]
    assert lines
    for line in lines:
        command, *args = line.split()
        assert command == "mlops-kit"
        out = subprocess.run([sys.executable, "-m", "mlops_kit.cli", *args], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        assert isinstance(json.loads(out), dict), line
