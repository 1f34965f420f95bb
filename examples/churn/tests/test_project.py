"""The project's own checks: the config validates and a small training run passes."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_kit.cli import main

CONFIG = str(Path(__file__).resolve().parents[1] / "mlops.yaml")


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))  # keep .mlops/ clean


def test_config_validates() -> None:
    result = CliRunner().invoke(main, ["validate", "--config", CONFIG])
    assert result.exit_code == 0, result.output


def test_trains_on_a_small_sample() -> None:
    small = ["--set", "data.source.rows=2000", "--set", "model.search.trials=1"]
    result = CliRunner().invoke(main, ["run", "--config", CONFIG, "--train-only", *small])
    assert result.exit_code == 0, result.output
    assert "register" in result.output
