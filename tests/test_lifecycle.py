"""The whole local lifecycle end to end: both targets, caching, lineage, report, query."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import load_config
from mlops_kit.registry import open_registry, production
from mlops_kit.runtime.lake import query
from mlops_kit.runtime.runner import RunFailed, run_pipeline
from tests.conftest import write_config

STEPS = ["ingest", "validate", "features", "train", "evaluate", "register"]


def test_local_lifecycle_end_to_end(config_path: Path) -> None:
    loaded = load_config(config_path)
    first = run_pipeline(loaded, params={"ingest_date": "2026-01-01"})
    assert [s.name for s in first.steps] == STEPS
    assert all(s.status == "ran" for s in first.steps)
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    for step in manifest["steps"]:
        for out in step["outputs"].values():
            for rel, meta in out["files"].items():
                assert Path(out["uri"], rel).stat().st_size == meta["bytes"]
    report = (first.run_dir / "report.html").read_text()
    assert "Quality gate" in report and "data:image/png;base64" in report

    registry = open_registry(loaded)
    v1 = production(registry, "churn-classifier")
    assert v1 is not None and v1.version == 1 and v1.status == "Approved"
    lineage = v1.lineage
    assert lineage["data_version"] == first.step("ingest").summary["data_version"][:12] or \
        lineage["data_version"].startswith(first.step("ingest").summary["data_version"])
    assert lineage["git"]["commit"] == "0" * 40
    assert lineage["config_digest"] == loaded.digest
    assert "xgboost" in json.dumps(lineage["packages"])
    assert set(v1.metrics) >= {"roc_auc", "logloss"} and v1.params

    counts = query(loaded, "SELECT count(*) AS n FROM curated_customers")
    bad = query(loaded, 'SELECT count(*) AS n FROM "churn"."quarantine_customers"')
    assert int(counts.n[0]) + int(bad.n[0]) == 2000

    second = run_pipeline(loaded, params={"ingest_date": "2026-01-01"})
    status = {s.name: s.status for s in second.steps}
    assert status == {"ingest": "cached", "validate": "cached", "features": "cached",
                      "train": "cached", "evaluate": "ran", "register": "ran"}
    assert second.step("register").summary == {
        "registered": False, "unchanged": "same as version 1", "already_version": 1}
    assert len(registry.versions("churn-classifier")) == 1

    changed = load_config(config_path, sets=["model.params.max_depth=2"])
    third = run_pipeline(changed, params={"ingest_date": "2026-01-01"})
    status = {s.name: s.status for s in third.steps}
    assert status["features"] == "cached" and status["train"] == "ran"


def test_gate_failure_registers_nothing(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, {"quality_gate": {"min_value": 0.999}}))
    result = run_pipeline(loaded)
    assert result.step("evaluate").summary["passed"] is False
    assert result.step("register").summary == {"registered": False}
    assert open_registry(loaded).versions("churn-classifier") == []


def test_failed_step_stops_the_run_and_is_recorded(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, {"data": {"source": {"dirty_fraction": 0.2}}}))
    with pytest.raises(RunFailed, match="step validate failed") as info:
        run_pipeline(loaded)
    statuses = [s.status for s in info.value.result.steps]
    assert statuses == ["ran", "failed", "not run", "not run", "not run", "not run"]
    manifest = json.loads((info.value.result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert (info.value.result.run_dir / "report.html").is_file()
    kept = info.value.result.run_dir / "validate" / "quarantine"
    assert str(kept) in str(info.value)
    quarantined = pd.read_parquet(kept)
    counts = json.loads((kept.parent / "profile" / "validation.json").read_text())
    assert len(quarantined) == counts["quarantined"] > 0
    assert counts["rows_in"] == counts["valid"] + counts["quarantined"]
    assert quarantined["_reason"].str.len().min() > 0
    assert set(manifest["steps"][1]["outputs"]) == {"quarantine", "profile"}  # nothing curated


def test_moto_target_uses_s3_glue_and_sagemaker(config_path: Path) -> None:
    loaded = load_config(config_path)
    result = run_pipeline(loaded, target="moto")
    assert result.status == "succeeded"
    assert result.step("train").outputs["model"]["uri"].startswith("s3://")
    assert result.step("register").summary["registered"] is True
    assert all(s.status == "ran" for s in result.steps)


def test_cli_run_query_and_registry(config_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["run", "--config", str(config_path), "--ingest-date", "2026-02-01",
                               "--train-only"])
    assert res.exit_code == 0, res.output
    assert "succeeded" in res.output
    res = runner.invoke(main, ["query", "--config", str(config_path), "--format", "csv",
                               "SELECT contract, count(*) AS n FROM curated_customers "
                               "GROUP BY 1 ORDER BY 1"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "contract,n"
    res = runner.invoke(main, ["query", "--config", str(config_path), "SELECT * FROM nope"])
    assert res.exit_code == 1 and "query error" in res.output
    res = runner.invoke(main, ["registry", "reject", "--config", str(config_path), "1"])
    assert res.exit_code == 0 and "Rejected" in res.output
    res = runner.invoke(main, ["registry", "list", "--config", str(config_path)])
    assert "Rejected" in res.output
    res = runner.invoke(main, ["registry", "approve", "--config", str(config_path), "7"])
    assert res.exit_code == 1


def test_steps_run_alone_as_jobs_with_sagemaker_style_channels(config_path: Path,
                                                               tmp_path: Path) -> None:
    """`python -m mlops_kit.steps.<name>` is how cloud jobs call the very same code."""
    def job(step: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", f"mlops_kit.steps.{step}", "--config",
                               str(config_path), *args], capture_output=True, text=True,
                              check=False, timeout=300)

    ing = job("ingest", "--output", f"raw={tmp_path / 'raw'}", "--param", "ingest_date=2026-03-01")
    assert ing.returncode == 0, ing.stderr
    assert json.loads(ing.stdout)["rows"] == 2000
    val = job("validate", "--input", f"raw={tmp_path / 'raw'}",
              *[f"--output={c}={tmp_path / c}" for c in ("curated", "quarantine", "profile")])
    assert val.returncode == 0, val.stderr
    assert len(pd.read_parquet(tmp_path / "curated")) == json.loads(val.stdout)["valid"]
    bad = job("validate", "--input", "nonsense=/x")
    assert bad.returncode == 1 and "CHANNEL=DIR" in bad.stderr
    bad_cfg = subprocess.run([sys.executable, "-m", "mlops_kit.steps.ingest", "--config",
                              str(tmp_path / "missing.yaml")], capture_output=True, text=True,
                             check=False)
    assert bad_cfg.returncode == 2 and "config file not found" in bad_cfg.stderr


def test_unexpected_error_is_recorded_with_its_traceback(
        config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_kit.steps import features

    def boom(job: object) -> dict[str, object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(features, "run", boom)
    with pytest.raises(RunFailed, match="RuntimeError: disk on fire") as info:
        run_pipeline(load_config(config_path))
    log = info.value.result.run_dir / "features.log"
    assert "Traceback" in log.read_text() and "disk on fire" in log.read_text()
    assert [s.status for s in info.value.result.steps][2:4] == ["failed", "not run"]
