"""Model Monitor's bring-your-own-container job: captured traffic in, Model Monitor's result
files out, the same drift verdicts as `mlops-kit monitor`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.config import load_config
from mlops_kit.datasets import churn
from mlops_kit.monitoring import job
from mlops_kit.runtime.serving import fetch_version
from mlops_kit.serving.capture import Capture
from mlops_kit.steps.features import FeatureSet


def capture(root: Path, config: Path, shift: float, rows: int = 600) -> None:
    """`rows` requests' worth of captured CSV traffic, in the columns a request carries."""
    cfg = load_config(config).config
    inputs = FeatureSet(tuple(cfg.features.declared), cfg.table).inputs
    frame = churn.generate(rows, seed=3, shift=shift, start="2025-06-01", dirty_fraction=0.0)
    frame = frame[inputs].copy()
    frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    writer = Capture(root, model="churn-classifier", version="1")
    for start in range(0, rows, 20):
        body = frame.iloc[start:start + 20].to_csv(header=False, index=False).encode()
        writer.record(body, "text/csv", b"0.5\n" * 20, "text/csv", latency_ms=1.0)
    writer.flush()


def environment(trained: Any, tmp_path: Path, shift: float, monkeypatch: Any) -> dict[str, str]:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(trained.state))
    folder, _ = fetch_version(load_config(trained.config))
    source = tmp_path / f"endpoint-{shift}"
    capture(source, trained.config, shift)
    return {"dataset_source": str(source), "output_path": str(tmp_path / f"out-{shift}"),
            "baseline_statistics": str(folder / "baseline" / "statistics.json"),
            "baseline_constraints": str(folder / "baseline" / "constraints.json"),
            "publish_cloudwatch_metrics": "Disabled", "MLOPS_CONFIG": str(trained.config)}


@pytest.mark.parametrize(("shift", "verdict"), [(0.0, "ok"), (2.0, "drift")])
def test_job_writes_model_monitor_results(trained: Any, tmp_path: Path, monkeypatch: Any,
                                         shift: float, verdict: str) -> None:
    env = environment(trained, tmp_path, shift, monkeypatch)
    assert job.main(env) == 0
    out = Path(env["output_path"])
    drift = json.loads((out / "drift.json").read_text())
    assert drift["verdict"] == verdict and drift["rows"] == 600
    found = json.loads((out / "constraint_violations.json").read_text())["violations"]
    assert bool(found) == (verdict == "drift")
    for v in found:
        assert v["feature_name"] in drift["drifted_features"]
        assert v["constraint_check_type"] in {"baseline_drift_check", "completeness_check",
                                              "categorical_values_check", "data_type_check"}
    stats = json.loads((out / "statistics.json").read_text())
    assert stats["dataset"]["item_count"] == 600


def test_job_publishes_metrics_when_enabled(trained: Any, tmp_path: Path,
                                            monkeypatch: Any) -> None:
    env = environment(trained, tmp_path, 2.0, monkeypatch)
    assert job.main({**env, "publish_cloudwatch_metrics": "Enabled"}) == 0
    metrics = (trained.state / "metrics" / "churn.jsonl").read_text().splitlines()
    assert any(json.loads(m)["name"] == "DriftedFeatures" and json.loads(m)["value"] >= 1
               for m in metrics)


def test_job_without_traffic_or_inputs(trained: Any, tmp_path: Path, monkeypatch: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    env = environment(trained, tmp_path, 0.0, monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert job.main({**env, "dataset_source": str(empty)}) == 0
    assert "no traffic captured" in capsys.readouterr().out
    assert json.loads((Path(env["output_path"]) / "constraint_violations.json").read_text()) == {
        "violations": []}
    assert job.main({k: v for k, v in env.items() if k != "baseline_statistics"}) == 2
    assert "baseline_statistics" in capsys.readouterr().err


def test_job_with_no_usable_traffic_fails_naming_the_reasons(
        trained: Any, tmp_path: Path, monkeypatch: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = environment(trained, tmp_path, 0.0, monkeypatch)
    changed = tmp_path / "changed"               # the client sends another payload now
    writer = Capture(changed, model="churn-classifier", version="1")
    for _ in range(4):
        writer.record(b'{"features": [3, 20.5', "application/json", b"0.5", "text/csv",
                      latency_ms=1.0)
    writer.record(b"\x93NUMPY", "application/x-npy", b"0.5", "text/csv", latency_ms=1.0)
    writer.flush()
    env = {**env, "dataset_source": str(changed), "start_time": "2026-11-10T13:00:00Z",
           "end_time": "2026-11-10T14:00:00Z"}
    assert job.main(env) == 1
    out, err = capsys.readouterr()
    assert "no usable traffic" in out
    assert "5 logged requests, none usable" in err and "malformed JSON" in err
    assert "application/x-npy body, not CSV or JSON" in err
    drift = json.loads((Path(env["output_path"]) / "drift.json").read_text())
    assert (drift["verdict"], drift["rows"], drift["skipped"]) == ("no usable traffic", 0, 5)
    assert json.loads((Path(env["output_path"]) / "constraint_violations.json").read_text()) == {
        "violations": []}


def test_job_reads_model_monitors_window() -> None:
    assert job.window({"start_time": "2026-11-10T13:00:00Z",
                       "end_time": "2026-11-10T14:00:00Z"}) == (
        dt.datetime(2026, 11, 10, 13, tzinfo=dt.UTC), dt.datetime(2026, 11, 10, 14, tzinfo=dt.UTC))
    assert job.window({"end_time": "2026-11-10T14:00:00Z"}) is None
