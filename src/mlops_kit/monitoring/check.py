"""One scheduled drift check, cloud-agnostic: logged traffic of a window against the production
version's training baseline, the result documents and whether to retrain.

The cloud adapters fetch the rows and the baseline, and carry out the decision (publish the
metrics, start the training pipeline); the AWS job (`monitoring/job.py`) leaves retraining to
the drift alarm, the Google Cloud and Azure jobs (`adapters/<cloud>/monitor.py`) submit the run
themselves, once per drift episode: only when the previous window was not drifting already.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlops_kit.config.model import ProjectConfig
from mlops_kit.monitoring.baseline import Baseline
from mlops_kit.monitoring.drift import INSUFFICIENT, DriftReport, compute_drift

NO_TRAFFIC = "no traffic"
NO_USABLE_TRAFFIC = "no usable traffic"
METRICS_ERROR = "metrics_error"   # the note an adapter leaves when publishing failed
Window = tuple[dt.datetime, dt.datetime]


@dataclass
class DriftCheck:
    """The outcome of one check: the report (None without usable rows) and the decision."""

    model: str
    window: Window | None
    rows: int
    skipped: int
    skip_reasons: dict[str, int]
    report: DriftReport | None
    retrain: bool
    reason: str
    previous_drift: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """`ok` or `drift`; without rows `no traffic`, or `no usable traffic` when requests
        were logged but none parsed (a payload change the check cannot see through)."""
        if self.report is not None:
            return self.report.verdict
        return NO_USABLE_TRAFFIC if self.skipped else NO_TRAFFIC

    @property
    def blind(self) -> bool:
        """Traffic came but none of it could be checked: the run should fail loudly."""
        return self.verdict == NO_USABLE_TRAFFIC

    def drift_document(self) -> dict[str, Any]:
        """drift.json: the full report, or the no-(usable-)traffic note (the AWS job's layout)."""
        if self.report is None:
            return {"model": self.model, "verdict": self.verdict, "rows": 0,
                    "skipped": self.skipped, "skip_reasons": self.skip_reasons}
        return {"model": self.model, **self.report.to_dict()}

    def summary(self) -> dict[str, Any]:
        """The run's summary: window, counts, verdict, decision, and what the adapter noted."""
        drifted = [] if self.report is None else self.report.drifted_features
        window = None if self.window is None else {"start": self.window[0].isoformat(),
                                                   "end": self.window[1].isoformat()}
        return {"model": self.model, "window": window,
                "rows": self.rows, "skipped": self.skipped, "skip_reasons": self.skip_reasons,
                "verdict": self.verdict, "drifted_features": drifted,
                "previous_drift": self.previous_drift,
                "retrain": self.retrain, "reason": self.reason, **self.notes}


def check(rows: pd.DataFrame, baseline: Baseline | None, cfg: ProjectConfig, model: str,
          window: Window | None, previous_drift: bool = False) -> DriftCheck:
    """Drift of `rows` (with `attrs["skipped"]`, as `RowCollector` makes them) against
    `baseline`, and the decision; `baseline` may be None only when there are no rows.
    `previous_drift`: the previous window already drifted (see `was_drifting`)."""
    skipped, reasons = int(rows.attrs.get("skipped", 0)), dict(rows.attrs.get("skip_reasons", {}))
    if rows.empty:
        reason = (f"no usable traffic: all {skipped} logged requests skipped" if skipped
                  else "no traffic in the window")
        return DriftCheck(model, window, 0, skipped, reasons, None, False, reason,
                          previous_drift)
    if baseline is None:
        raise ValueError(f"{model}: rows to check but no baseline")
    report = compute_drift(rows, baseline, cfg.monitoring, cfg.table)
    retrain, reason = decide(report, cfg, previous_drift)
    return DriftCheck(model, window, len(rows), skipped, reasons, report, retrain, reason,
                      previous_drift)


def decide(report: DriftReport, cfg: ProjectConfig,
           previous_drift: bool = False) -> tuple[bool, str]:
    """Retrain on the change into drift when `training.retrain_on_drift` is on (a window that
    drifts after a drifting one belongs to the same episode); the reason either way."""
    if report.verdict == INSUFFICIENT:
        return False, (f"insufficient data ({', '.join(report.insufficient_features)}: fewer "
                       f"than monitoring.min_rows = {cfg.monitoring.min_rows} values)")
    if report.verdict != "drift":
        return False, "no drift"
    what = ", ".join(report.drifted_features) or "model quality"
    if not cfg.training.retrain_on_drift:
        return False, f"drift ({what}); training.retrain_on_drift is false"
    if previous_drift:
        return False, (f"drift ({what}) continues from the previous window; retraining starts "
                       "once per drift episode")
    return True, f"drift ({what}), the previous window did not drift"


def was_drifting(previous_summary: Any) -> bool:
    """Whether the previous window's summary.json (parsed, or None when missing or unreadable)
    says it drifted; anything else counts as not drifting, so a failed run is retried."""
    return isinstance(previous_summary, dict) and previous_summary.get("verdict") == "drift"


def skip_message(result: DriftCheck) -> str:
    """Why a window had no usable traffic: the skip reasons, most frequent first."""
    reasons = sorted(result.skip_reasons.items(), key=lambda kv: -kv[1])
    listed = "; ".join(f"{reason} ({count})" for reason, count in reasons)
    return (f"{result.model}: {result.skipped} logged requests, none usable, so drift was not "
            f"checked (did the request payload change?): {listed}")


def failure(result: DriftCheck) -> str | None:
    """Why the run must exit non-zero although its results were written: no usable traffic,
    or drift metrics that did not reach the sink; None for a good run."""
    if result.blind:
        return skip_message(result)
    if METRICS_ERROR in result.notes:
        return f"{result.model}: drift metrics not published: {result.notes[METRICS_ERROR]}"
    return None
