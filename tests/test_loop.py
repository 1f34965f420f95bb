"""The whole loop end to end: train, serve, steady traffic (no drift), drifted traffic
(drift), retrain, canary, promote; the report tells the story."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import load_config
from mlops_kit.runtime.deploy import endpoint_store
from mlops_kit.runtime.loop import perturb
from tests.conftest import write_config

LOOP = {"loop": {"replay_rows": 400, "request_rows": 10, "concurrency": 2, "bake_s": 1.0}}


def test_mlops_kit_run_drives_the_whole_loop(tmp_path: Path) -> None:
    config = write_config(tmp_path, LOOP)
    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert res.exit_code == 0, res.output
    loaded = load_config(config)
    folder = next((loaded.state_dir / "loops").iterdir())
    doc = json.loads((folder / "loop.json").read_text())
    verdicts = {p["name"]: p["drift"]["verdict"] for p in doc["phases"]}
    assert verdicts == {"steady traffic": "ok", "drifted traffic": "drift",
                        "after promotion": "ok"}
    assert doc["outcome"] == "promoted"
    assert (doc["start_version"], doc["final_version"]) == (1, 2)
    stages = [e["stage"] for e in doc["events"]]
    assert stages.index("retrain") < stages.index("deploy", stages.index("retrain"))
    assert any("10% on version 2" in e["message"] for e in doc["events"])
    assert all(p["traffic"]["errors"] == 0 for p in doc["phases"])
    partitions = sorted((loaded.state_dir / "lake" / "raw").glob("*/ingest_date=*"))
    assert len(partitions) == 2  # the drifted data landed beside the first, not over it
    live = endpoint_store(loaded).read().live
    assert live is not None and live.version == 2
    report = (folder / "report.html").read_text()
    assert "Outcome: promoted" in report and "data:image/png;base64" in report
    metrics = (loaded.state_dir / "metrics").rglob("*.jsonl")
    assert any("DriftedFeatures" in p.read_text() for p in metrics)
    assert "loop outcome: promoted" in res.output
    watched = CliRunner().invoke(main, ["monitor", "--config", str(config), "--captured"])
    assert watched.exit_code == 3, watched.output  # drifted and steady traffic, v2's baseline
    assert "metrics published" in watched.output


def test_monitor_captured_without_traffic_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"loop": {"enabled": False}})
    assert CliRunner().invoke(main, ["run", "--config", str(config)]).exit_code == 0
    res = CliRunner().invoke(main, ["monitor", "--config", str(config), "--captured"])
    assert res.exit_code == 2 and "no captured requests" in res.output
    res = CliRunner().invoke(main, ["monitor", "--config", str(config)])
    assert res.exit_code == 2 and "one of them" in res.output


def test_loop_without_captured_inputs_monitors_the_rows_it_sent(tmp_path: Path) -> None:
    config = write_config(tmp_path, {**LOOP, "serving": {"capture": {"inputs": False}}})
    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert "monitoring the rows sent instead" in res.output
    assert "loop outcome: promoted" in res.output


def test_a_canary_that_trips_its_alarm_is_rolled_back(tmp_path: Path) -> None:
    """A latency objective nothing can meet: the retrained model's canary must roll back."""
    config = write_config(tmp_path, {**LOOP, "serving": {"latency_p99_ms": 0.001}})
    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert "rolled back: latency alarm" in res.output
    assert "loop outcome: rolled back (version 1 -> 1)" in res.output
    live = endpoint_store(load_config(config)).read().live
    assert live is not None and live.version == 1


def test_loop_is_skipped_when_nothing_is_approved(tmp_path: Path) -> None:
    config = write_config(tmp_path, {**LOOP, "registry": {"approval": "manual"}})
    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert "loop skipped: no model version is approved" in res.output


def test_train_only_and_disabled_loop_stop_after_training(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"loop": {"enabled": False}})
    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert "loop outcome" not in res.output
    assert not (load_config(config).state_dir / "loops").exists()


def test_perturb_moves_numbers_and_categories(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path))
    from mlops_kit.datasets.churn import generate

    rows = generate(2000, seed=3, dirty_fraction=0.0)
    moved = perturb(rows, loaded.config.table, 1.0, __import__("numpy").random.default_rng(0))
    assert moved["monthly_charges"].mean() > rows["monthly_charges"].mean() + 10
    assert moved["churned"].equals(rows["churned"])  # labels untouched
    share = (moved["internet_service"] == "none").mean()
    assert share > (rows["internet_service"] == "none").mean() + 0.3
    assert perturb(rows, loaded.config.table, 0.0, None) is rows  # type: ignore[arg-type]
    assert isinstance(moved, pd.DataFrame)
