"""The registry through the CLI on a real trained project: a lost or corrupt index, a model
retrained unchanged, and digests checked on every load (cache and registry copies)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlops_kit.cli import main
from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.registry import open_registry
from mlops_kit.registry.base import CorruptVersionError
from mlops_kit.runtime.serving import endpoint_settings, fetch_version
from tests.conftest import Trained

MODEL = "churn-classifier"


@pytest.fixture
def project(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    """This test's own copy of the trained project's state: a registry with version 1."""
    state = tmp_path / "state"
    shutil.copytree(trained.state, state, ignore=shutil.ignore_patterns("serving", "endpoints"))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    return load_config(trained.config)


def cli(loaded: LoadedConfig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(loaded.path)])


def one_line_error(result: Result, *parts: str) -> str:
    """The error a command printed: one line, no traceback, naming each of `parts`."""
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def index(loaded: LoadedConfig) -> Path:
    return loaded.state_dir / "registry" / MODEL / "registry.json"


def test_lost_index_is_refused_then_repaired(project: LoadedConfig) -> None:
    folder = index(project).parent
    index(project).unlink()
    one_line_error(cli(project, "registry", "list"), f"{index(project)}: is missing",
                   "version folders 1 exist", "mlops-kit registry repair")
    run = cli(project, "run", "--train-only")
    assert run.exit_code == 1 and "registry.json: is missing" in run.output
    assert (folder / "1" / "model.ubj").is_file() and not (folder / "2").exists()
    repaired = cli(project, "registry", "repair")
    assert repaired.exit_code == 0, repaired.output
    assert "is missing" in repaired.output and "1 version(s) (1)" in repaired.output
    listed = cli(project, "registry", "list")
    assert listed.exit_code == 0 and "Approved" in listed.output and "*" in listed.output


@pytest.mark.parametrize("content", [b"", b'{"model": "churn-classifier", "versi', b"[]",
                                     b"\x00\x00\x00"])
def test_corrupt_index_is_one_line_for_every_command(project: LoadedConfig,
                                                     content: bytes) -> None:
    index(project).write_bytes(content)
    for args in (["registry", "list"], ["registry", "approve", "1"], ["deploy"]):
        one_line_error(cli(project, *args), str(index(project)), "mlops-kit registry repair")
    assert cli(project, "registry", "repair").exit_code == 0
    assert cli(project, "registry", "list").exit_code == 0


def test_corrupt_version_json_is_named(project: LoadedConfig) -> None:
    version_json = index(project).parent / "1" / "version.json"
    version_json.write_bytes(b'{"model": ')
    index(project).unlink()
    repaired = cli(project, "registry", "repair")
    line = one_line_error(repaired, f"{version_json}: is not valid JSON",
                          "version 1 is left out of the index")
    assert line.startswith("not repaired: ")
    assert (version_json.parent / "model.ubj").is_file()


def test_a_corrupt_version_json_is_warned_of_and_rewritten(project: LoadedConfig) -> None:
    """The index is intact, so listing works; the damaged copy it would be rebuilt from is
    named, and repair rewrites it from the index."""
    version_json = index(project).parent / "1" / "version.json"
    version_json.write_bytes(b"")
    listed = cli(project, "registry", "list")
    assert listed.exit_code == 0, listed.output
    assert f"warning: {version_json}: " in listed.output and "registry repair" in listed.output
    assert cli(project, "registry", "repair").exit_code == 0
    assert json.loads(version_json.read_text())["version"] == 1
    assert "warning" not in cli(project, "registry", "list").output


def test_retraining_the_same_model_makes_no_new_version(project: LoadedConfig) -> None:
    """Same data, config and seed, trained again: the timings differ, the model does not."""
    run = cli(project, "run", "--train-only", "--no-cache", "--ingest-date", "2026-01-01")
    assert run.exit_code == 0, run.output
    assert "same as version 1" in run.output
    assert [v.version for v in open_registry(project).versions(MODEL)] == [1]


def truncate(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def test_a_truncated_cached_copy_is_fetched_again(project: LoadedConfig,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    cached, version = fetch_version(project, 1)
    size = (cached / "model.ubj").stat().st_size
    truncate(cached / "model.ubj")
    with caplog.at_level(logging.WARNING, "mlops_kit.registry"):
        again, _ = fetch_version(project, 1)
    assert again == cached and (cached / "model.ubj").stat().st_size == size
    assert f"{cached}/model.ubj: {size // 2} bytes, expected {size}" in caplog.text
    assert version.digest and version.files["model.ubj"]["bytes"] == size


def test_serve_checks_the_copies_its_workers_load(project: LoadedConfig) -> None:
    endpoint_settings(project, capture=False)  # the first start puts version 1 live
    cached = project.state_dir / "serving" / "models" / MODEL / "1"
    size = (cached / "model.ubj").stat().st_size
    truncate(cached / "model.ubj")
    endpoint_settings(project, capture=False)  # a restart over an endpoint that is live
    assert (cached / "model.ubj").stat().st_size == size


def test_a_corrupt_registry_copy_is_refused_and_never_production(
        project: LoadedConfig) -> None:
    stored = index(project).parent / "1" / "model.ubj"
    fetch_version(project, 1)
    truncate(project.state_dir / "serving" / "models" / MODEL / "1" / "model.ubj")
    truncate(stored)
    with pytest.raises(CorruptVersionError, match=f"^{stored}: .* bytes, expected"):
        fetch_version(project, 1)
    listed = cli(project, "registry", "list")
    assert listed.exit_code == 0
    assert "corrupt" in listed.stdout and "*" not in listed.stdout
    assert listed.stderr.startswith(f"corrupt: version 1: {stored}: ")
    one_line_error(cli(project, "deploy", "--version", "1"), f"registry error: {stored}: ",
                   "digest mismatch", "mlops-kit registry reject 1")
    serve = subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli", "serve", "--config", str(project.path),
         "--port", "1"], env={**os.environ}, capture_output=True, text=True, timeout=120)
    assert serve.returncode == 1 and "Traceback" not in serve.stderr
    assert f"{stored}: " in serve.stderr and "digest mismatch" in serve.stderr
