"""Model Monitor's bring-your-own-container entry: `python -m mlops_kit.monitoring.job`.

A SageMaker data-quality monitoring schedule runs it in the project image, hourly or daily,
with the contract of Model Monitor's own container: the endpoint's captured traffic under
`$dataset_source`, the training baseline at `$baseline_statistics` and
`$baseline_constraints`, results to `$output_path`. It runs the same drift check as
`mlops-kit monitor --captured`, through the cloud-agnostic `monitoring.check` the Google Cloud
and Azure monitors use, and writes `constraint_violations.json` (Model Monitor's format, which
the console and `describe_monitoring_schedule` read), `statistics.json` and our `drift.json`;
with `$publish_cloudwatch_metrics` = Enabled it publishes the drift metrics the drift alarm (and
so retraining, once per change into ALARM) watches, to `$MLOPS_METRICS_SINK` (default: the
config's sink). No traffic: exit 0; traffic of which no request parses ("no usable traffic"):
the results, and exit 1 naming the skip reasons, so the execution fails visibly.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.fileio import scratch_dir, write_json_atomic
from mlops_kit.monitoring.baseline import (
    CONSTRAINTS,
    STATISTICS,
    BaselineError,
    compute_baseline,
    read_baseline,
)
from mlops_kit.monitoring.check import NO_TRAFFIC, DriftCheck, Window, check, skip_message
from mlops_kit.monitoring.drift import DriftInputError, DriftReport
from mlops_kit.monitoring.sink import drift_metrics, open_sink
from mlops_kit.serving.capture import captured_rows
from mlops_kit.steps.features import FeatureSet

REQUIRED = ("dataset_source", "output_path", "baseline_statistics", "baseline_constraints")


class JobInputError(ValueError):
    """The job cannot run on what it was given; the message says what is missing."""


def run(env: Mapping[str, str], loaded: LoadedConfig) -> DriftCheck:
    """The check of the captured traffic; without usable rows only the (empty) violations and
    the drift note are written."""
    missing = [k for k in REQUIRED if not env.get(k)]
    if missing:
        raise JobInputError(f"environment variables missing: {missing} (Model Monitor sets them)")
    out = Path(env["output_path"])
    cfg = loaded.config
    rows = captured_rows(Path(env["dataset_source"]), FeatureSet(tuple(cfg.features.declared),
                                                                 cfg.table))
    baseline = None if rows.empty else _baseline(env)
    result = check(rows, baseline, cfg, cfg.model.name, window(env))
    write_json_atomic(out / "drift.json", result.drift_document())
    write_json_atomic(out / "constraint_violations.json", violations(result.report))
    if result.report is None:
        return result
    current = compute_baseline(rows.drop(columns=["_inference_time", "_model_version"]),
                               cfg.table)
    write_json_atomic(out / "statistics.json", current.statistics)
    if env.get("publish_cloudwatch_metrics", "Disabled") == "Enabled":
        sink = env.get("MLOPS_METRICS_SINK")  # the cloud job publishes to CloudWatch
        target = loaded.with_values({"monitoring.metrics_sink": sink}) if sink else loaded
        open_sink(target).publish(drift_metrics(result.report, cfg.model.name))
    return result


def window(env: Mapping[str, str]) -> Window | None:
    """The analysis period Model Monitor names (`start_time`, `end_time`), if it does."""
    try:
        return (dt.datetime.fromisoformat(env["start_time"]),
                dt.datetime.fromisoformat(env["end_time"]))
    except (KeyError, ValueError):
        return None


def _baseline(env: Mapping[str, str]) -> Any:
    """The baseline from the two files Model Monitor mounts (their names may differ)."""
    with scratch_dir(None, "baseline") as tmp:  # in Model Monitor's container: no state folder
        shutil.copy(env["baseline_statistics"], tmp / STATISTICS)
        shutil.copy(env["baseline_constraints"], tmp / CONSTRAINTS)
        return read_baseline(tmp)


def violations(report: DriftReport | None) -> dict[str, list[dict[str, str]]]:
    """The drifted features as Model Monitor's `constraint_violations.json` (none unchecked)."""
    out: list[dict[str, str]] = []
    for feature in [] if report is None else report.features:
        for reason in feature.reasons:
            out.append({"feature_name": feature.name, "constraint_check_type": _check(reason),
                        "description": reason})
    return {"violations": out}


def _check(reason: str) -> str:
    text = reason.lower()
    if "missing" in text or text == "null":
        return "completeness_check"
    if "categor" in text or "new value" in text or text in ("domain", "unseen_label"):
        return "categorical_values_check"
    if "type" in text:
        return "data_type_check"
    return "baseline_drift_check"


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        loaded = load_config(env.get("MLOPS_CONFIG", "/opt/mlops/mlops.yaml"),
                             env=env.get("MLOPS_ENV"), model=env.get("MLOPS_MODEL"))
        result = run(env, loaded)
    except (ConfigError, JobInputError, BaselineError, DriftInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = "no traffic captured" if result.verdict == NO_TRAFFIC else result.verdict
    print(f"mlops-kit monitoring: {verdict}")
    if result.blind:
        print(f"error: {skip_message(result)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
