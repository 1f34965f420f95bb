"""A scheduled drift monitor, shared by the cloud adapters' entries
(`python -m mlops_kit.adapters.gcp.monitor`, `... .azure.monitor`): the order of one run (the
retrain before the metrics, the summary whatever happens to them) and the command line
(arguments, the window to read, the exit codes: 0 a good run, 1 a failed or blind one, 2 a bad
config). Each cloud gives a `Monitor`: where its rows, baseline and results are."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.cron import last_window
from mlops_kit.monitoring.baseline import Baseline, BaselineError
from mlops_kit.monitoring.check import METRICS_ERROR, DriftCheck, check, failure, was_drifting
from mlops_kit.monitoring.drift import DriftInputError
from mlops_kit.monitoring.sink import drift_metrics, open_sink
from mlops_kit.registry import RegistryError

Window = tuple[dt.datetime, dt.datetime]
CHECK_ERRORS: tuple[type[Exception], ...] = (RegistryError, BaselineError, DriftInputError,
                                              ValueError)


@dataclass(frozen=True)
class Monitor:
    """What one cloud gives a run: the window's rows, the served version's baseline, JSON
    results under `results` (read: None when missing or unreadable; write: the document's
    URI), the retrain submission (the run's name) and its metrics sink with its refusals."""

    rows: Callable[[Window], pd.DataFrame]
    baseline: Callable[[], Baseline]
    read_json: Callable[[str], Any]
    write_json: Callable[[str, Any], str]
    retrain: Callable[[], str]
    results: str  # the results' key prefix, e.g. "monitoring/"
    sink: str  # monitoring.metrics_sink
    sink_errors: tuple[type[Exception], ...]
    session: Any = None  # the sink's HTTP session (None: its own)

    def prefix(self, model: str, end: dt.datetime) -> str:
        """Where the results of the window ending at `end` go."""
        return f"{self.results}{model}/{end:%Y%m%dT%H%MZ}/"


def run(loaded: LoadedConfig, monitor: Monitor, window: Window) -> DriftCheck:
    """The check of `loaded.config.model` over `window`: retrain only on the change into drift
    (the previous window's summary), submit the retrain before the metrics are published, and
    write the summary whether they were or not."""
    model = loaded.config.model.name
    rows = monitor.rows(window)
    baseline = None if rows.empty else monitor.baseline()
    drifting = was_drifting(monitor.read_json(monitor.prefix(model, window[0]) + "summary.json"))
    result = check(rows, baseline, loaded.config, model, window, drifting)
    prefix = monitor.prefix(model, window[1])
    result.notes["drift"] = monitor.write_json(prefix + "drift.json", result.drift_document())
    if result.retrain:
        result.notes["pipeline_job"] = monitor.retrain()
    publish(loaded, monitor, result)
    monitor.write_json(prefix + "summary.json", result.summary())
    return result


def publish(loaded: LoadedConfig, monitor: Monitor, result: DriftCheck) -> None:
    """The drift metrics to the monitor's sink; a refusal is noted, not raised (main exits 1)."""
    if result.report is None:
        return
    try:
        sink = open_sink(loaded.with_values({"monitoring.metrics_sink": monitor.sink}),
                         session=monitor.session)
        result.notes["metrics_published"] = sink.publish(
            drift_metrics(result.report, result.model))
    except monitor.sink_errors as exc:
        result.notes[METRICS_ERROR] = str(exc)


def window_of(loaded: LoadedConfig, now: dt.datetime, minutes: int | None) -> Window:
    """The period to read: `minutes` up to now, else the schedule's latest period."""
    if minutes is not None:
        end = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        return end - dt.timedelta(minutes=minutes), end
    cfg = loaded.config
    return last_window(cfg.monitoring.schedule, now, cfg.training.time_zone)


def main(prog: str, backend: str, argv: Sequence[str] | None,
         run: Callable[[LoadedConfig, Window], DriftCheck],
         errors: tuple[type[Exception], ...], now: dt.datetime | None = None) -> int:
    """Parse the arguments, run the check of one model on the registry `backend`, print the
    summary; `errors` are the adapter's own failures (exit 1 with the message)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config", default="/opt/mlops/mlops.yaml")
    parser.add_argument("--env", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--window-minutes", type=int, default=None,
                        help="read this many minutes up to now (default: the schedule's period)")
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config, env=args.env, model=args.model,
                             sets=[f"registry.backend={backend}"])
        result = run(loaded, window_of(loaded, now or dt.datetime.now(dt.UTC),
                                       args.window_minutes))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (*errors, *CHECK_ERRORS) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.summary(), default=str))
    problem = failure(result)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problem else 0
