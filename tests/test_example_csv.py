"""A user's own CSV with only a new config (examples/breast_cancer): the whole lifecycle and
loop run; retraining on an unchanged file changes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import load_config
from mlops_kit.registry import open_registry
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "breast_cancer"


def test_breast_cancer_csv_runs_the_lifecycle_and_loop(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_csv", EXAMPLE / "make_csv.py")
    assert spec and spec.loader
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    maker.main(tmp_path / "data" / "breast_cancer.csv")
    raw = yaml.safe_load((EXAMPLE / "mlops.yaml").read_text())
    raw["model"]["search"]["trials"] = 2
    raw["loop"] = {"bake_s": 1.0}
    config = tmp_path / "mlops.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))

    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert "identical to version 1" in res.output
    assert "loop outcome: unchanged (version 1 -> 1)" in res.output
    assert "steady traffic: 113 captured rows" in res.output
    loaded = load_config(config)
    versions = open_registry(loaded).versions(loaded.config.model.name)
    assert [v.version for v in versions] == [1]
