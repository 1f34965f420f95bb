"""Model Monitor's bring-your-own-container entry: `python -m mlops_kit.monitoring.job`.

A SageMaker data-quality monitoring schedule runs it in the project image, hourly or daily,
with the contract of Model Monitor's own container: the endpoint's captured traffic under
`$dataset_source`, the training baseline at `$baseline_statistics` and
`$baseline_constraints`, results to `$output_path`. It runs the same drift check as
`mlops-kit monitor --captured` and writes `constraint_violations.json` (Model Monitor's format,
which the console and `describe_monitoring_schedule` read), `statistics.json` and our
`drift.json`; with `$publish_cloudwatch_metrics` = Enabled it publishes the drift metrics the
drift alarm (and so retraining) watches, to `$MLOPS_METRICS_SINK` (default: the config's sink).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.fileio import write_json_atomic
from mlops_kit.monitoring.baseline import (
    CONSTRAINTS,
    STATISTICS,
    BaselineError,
    compute_baseline,
    read_baseline,
)
from mlops_kit.monitoring.drift import DriftInputError, DriftReport, compute_drift
from mlops_kit.monitoring.sink import drift_metrics, open_sink
from mlops_kit.serving.capture import captured_rows
from mlops_kit.steps.features import FeatureSet

REQUIRED = ("dataset_source", "output_path", "baseline_statistics", "baseline_constraints")


class JobInputError(ValueError):
    """The job cannot run on what it was given; the message says what is missing."""


def run(env: Mapping[str, str], loaded: LoadedConfig) -> DriftReport | None:
    """The check; None (and a note in the output) when no traffic was captured."""
    missing = [k for k in REQUIRED if not env.get(k)]
    if missing:
        raise JobInputError(f"environment variables missing: {missing} (Model Monitor sets them)")
    out = Path(env["output_path"])
    cfg = loaded.config
    rows = captured_rows(Path(env["dataset_source"]), FeatureSet(tuple(cfg.features.declared),
                                                                 cfg.table))
    if rows.empty:
        write_json_atomic(out / "constraint_violations.json", {"violations": []})
        write_json_atomic(out / "drift.json", {"verdict": "no traffic", "rows": 0,
                                               "skipped": rows.attrs.get("skipped", 0)})
        return None
    report = compute_drift(rows, _baseline(env), cfg.monitoring)
    current = compute_baseline(rows.drop(columns=["_inference_time", "_model_version"]),
                               cfg.table)
    write_json_atomic(out / "statistics.json", current.statistics)
    write_json_atomic(out / "constraint_violations.json", violations(report))
    write_json_atomic(out / "drift.json", {"model": cfg.model.name, **report.to_dict()})
    if env.get("publish_cloudwatch_metrics", "Disabled") == "Enabled":
        sink = env.get("MLOPS_METRICS_SINK")  # the cloud job publishes to CloudWatch
        target = loaded.with_values({"monitoring.metrics_sink": sink}) if sink else loaded
        open_sink(target).publish(drift_metrics(report, cfg.model.name))
    return report


def _baseline(env: Mapping[str, str]) -> Any:
    """The baseline from the two files Model Monitor mounts (their names may differ)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(env["baseline_statistics"], Path(tmp) / STATISTICS)
        shutil.copy(env["baseline_constraints"], Path(tmp) / CONSTRAINTS)
        return read_baseline(Path(tmp))


def violations(report: DriftReport) -> dict[str, list[dict[str, str]]]:
    """The drifted features as Model Monitor's `constraint_violations.json`."""
    out = []
    for feature in report.features:
        for reason in feature.reasons:
            out.append({"feature_name": feature.name, "constraint_check_type": _check(reason),
                        "description": reason})
    return {"violations": out}


def _check(reason: str) -> str:
    text = reason.lower()
    if "missing" in text:
        return "completeness_check"
    if "categor" in text or "new value" in text:
        return "categorical_values_check"
    if "type" in text:
        return "data_type_check"
    return "baseline_drift_check"


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        loaded = load_config(env.get("MLOPS_CONFIG", "/opt/mlops/mlops.yaml"),
                             env=env.get("MLOPS_ENV"), model=env.get("MLOPS_MODEL"))
        report = run(env, loaded)
    except (ConfigError, JobInputError, BaselineError, DriftInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = "no traffic captured" if report is None else report.verdict
    print(f"mlops-kit monitoring: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
