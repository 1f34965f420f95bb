"""Rows without a target are quarantined with their reason, so training never sees them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlops_kit.cli import main
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "breast_cancer"
BLANK = [3, 100, 250]  # rows whose diagnosis is left empty


def project(tmp_path: Path) -> Path:
    """The breast-cancer CSV project with a nullable target and three rows without one."""
    spec = importlib.util.spec_from_file_location("make_csv", EXAMPLE / "make_csv.py")
    assert spec and spec.loader
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    data = maker.main(tmp_path / "data" / "breast_cancer.csv")
    frame = pd.read_csv(data).astype({"diagnosis": "Int64"})
    frame.loc[BLANK, "diagnosis"] = pd.NA
    frame.to_csv(data, index=False)
    raw = yaml.safe_load((EXAMPLE / "mlops.yaml").read_text())
    raw["model"]["search"]["trials"] = 1
    raw["model"]["params"]["n_estimators"] = 20
    target = next(c for c in raw["data"]["schema"]["columns"] if c["name"] == "diagnosis")
    del target["nullable"]  # nullable by default, as a user's first config would leave it
    config = tmp_path / "mlops.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


@pytest.mark.slow  # a training run: about 30 s alone, minutes on a busy machine
def test_rows_without_a_target_are_quarantined_and_training_runs(tmp_path: Path) -> None:
    config = project(tmp_path)
    res = CliRunner().invoke(main, ["run", "--config", str(config), "--train-only"])
    assert res.exit_code == 0, res.output
    summary = json.loads(next((tmp_path / "state").rglob("validation.json")).read_text())
    assert summary["rows_in"] == 569 == summary["valid"] + summary["quarantined"]
    assert summary["quarantined"] == 3
    reason = "diagnosis: missing target (a row without one cannot train or be scored)"
    assert summary["reasons"] == {reason: 3}
    quarantine = pd.read_parquet(next((tmp_path / "state").rglob("quarantine/**/*.parquet")))
    assert sorted(quarantine["_source_row"]) == BLANK
    assert set(quarantine["_reason"]) == {reason}
