"""`mlops-kit validate` checks the config against a CSV source before any run: columns, values
and the task, exit 2 with the file and the rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

from mlops_kit.cli import main
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "breast_cancer"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    spec = importlib.util.spec_from_file_location("make_csv", EXAMPLE / "make_csv.py")
    assert spec and spec.loader
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    frame: Any = maker.load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame.rename(columns={"target": "diagnosis"}).astype(object)


def run_validate(tmp_path: Path, frame: pd.DataFrame, task: str = "binary",
                 target_max: bool = True) -> Result:
    (tmp_path / "data").mkdir(exist_ok=True)
    frame.to_csv(tmp_path / "data" / "breast_cancer.csv", index=False)
    raw = yaml.safe_load((EXAMPLE / "mlops.yaml").read_text())
    raw["model"]["task"] = task
    if not target_max:  # a first config seldom bounds its target
        raw["data"]["schema"]["columns"][-1].pop("max")
    if task == "regression":
        raw["quality_gate"]["metric"] = "rmse"
        raw["quality_gate"]["min_value"] = None
    config = tmp_path / "mlops.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return CliRunner().invoke(main, ["validate", "--config", str(config)])


def lines(res: Result) -> str:
    return " ".join(res.output.split())


def test_data_that_fits_passes(tmp_path: Path, data: pd.DataFrame) -> None:
    res = run_validate(tmp_path, data)
    assert res.exit_code == 0, res.output
    assert "ok" in res.output and "note" not in res.output


def test_missing_and_extra_columns_are_named(tmp_path: Path, data: pd.DataFrame) -> None:
    frame = data.drop(columns="mean_area").assign(notes="x")
    res = run_validate(tmp_path, frame)
    assert res.exit_code == 2
    out = lines(res)
    assert f"{tmp_path / 'data' / 'breast_cancer.csv'}: columns missing from the data: " \
           "['mean_area']" in out
    assert "columns not in data.schema.columns: ['notes']" in out


def test_bad_values_show_rows_and_exit_2(tmp_path: Path, data: pd.DataFrame) -> None:
    frame = data.copy()
    frame.loc[::2, "mean_radius"] = "abc"  # half the rows
    frame.loc[5, "mean_texture"] = "inf"
    res = run_validate(tmp_path, frame)
    assert res.exit_code == 2
    out = lines(res)
    assert "286 of 569 rows (50.3%) fail the schema, above data.max_bad_fraction 1.0%" in out
    assert "mean_radius (float): 285 values not a number: row 1 'abc', row 3 'abc', " \
           "row 5 'abc' (and 282 more)" in out
    assert "mean_texture (float): 1 value not a finite number: row 6 'inf'" in out


def test_a_few_bad_values_are_notes(tmp_path: Path, data: pd.DataFrame) -> None:
    frame = data.copy()
    frame.loc[10, "mean_radius"] = "-3"
    res = run_validate(tmp_path, frame)
    assert res.exit_code == 0, res.output
    assert "note: " in res.output
    assert "mean_radius (float): 1 value below min 0: row 11 '-3'" in lines(res)


def test_binary_target_with_three_values(tmp_path: Path, data: pd.DataFrame) -> None:
    frame = data.copy()
    frame.loc[:2, "diagnosis"] = 2
    res = run_validate(tmp_path, frame, target_max=False)
    assert res.exit_code == 2
    assert "model.task binary: the target 'diagnosis' has 3 distinct values" in lines(res)


def test_regression_target_of_strings(tmp_path: Path, data: pd.DataFrame) -> None:
    frame = data.copy()
    frame["diagnosis"] = frame["diagnosis"].map({0: "malignant", 1: "benign"})
    res = run_validate(tmp_path, frame, task="regression")
    assert res.exit_code == 2
    out = lines(res)
    assert "diagnosis (int): 569 values not a number: row 1 'malignant'" in out
    assert "model.task regression: the target 'diagnosis' has no valid values" in out
