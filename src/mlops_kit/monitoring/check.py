"""One scheduled drift check, cloud-agnostic: logged traffic of a window against the production
version's training baseline, the result documents and whether to retrain.

The cloud adapters fetch the rows and the baseline, and carry out the decision (publish the
metrics, start the training pipeline); the AWS job (`monitoring/job.py`) leaves retraining to
the drift alarm, Google Cloud's job (`adapters/gcp/monitor.py`) submits the run itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlops_kit.config.model import ProjectConfig
from mlops_kit.monitoring.baseline import Baseline
from mlops_kit.monitoring.drift import DriftReport, compute_drift

NO_TRAFFIC = "no traffic"


@dataclass
class DriftCheck:
    """The outcome of one check: the report (None without traffic) and the retrain decision."""

    model: str
    window: tuple[dt.datetime, dt.datetime]
    rows: int
    skipped: int
    skip_reasons: dict[str, int]
    report: DriftReport | None
    retrain: bool
    reason: str
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return NO_TRAFFIC if self.report is None else self.report.verdict

    def drift_document(self) -> dict[str, Any]:
        """drift.json: the full report, or the no-traffic note (the AWS job's layout)."""
        if self.report is None:
            return {"model": self.model, "verdict": NO_TRAFFIC, "rows": 0,
                    "skipped": self.skipped, "skip_reasons": self.skip_reasons}
        return {"model": self.model, **self.report.to_dict()}

    def summary(self) -> dict[str, Any]:
        """The run's summary: window, counts, verdict, decision, and what the adapter noted."""
        drifted = [] if self.report is None else self.report.drifted_features
        return {"model": self.model, "window": {"start": self.window[0].isoformat(),
                                                "end": self.window[1].isoformat()},
                "rows": self.rows, "skipped": self.skipped, "skip_reasons": self.skip_reasons,
                "verdict": self.verdict, "drifted_features": drifted,
                "retrain": self.retrain, "reason": self.reason, **self.notes}


def check(rows: pd.DataFrame, baseline: Baseline | None, cfg: ProjectConfig, model: str,
          window: tuple[dt.datetime, dt.datetime]) -> DriftCheck:
    """Drift of `rows` (with `attrs["skipped"]`, as `RowCollector` makes them) against
    `baseline`, and the decision; `baseline` may be None only when there are no rows."""
    skipped, reasons = int(rows.attrs.get("skipped", 0)), dict(rows.attrs.get("skip_reasons", {}))
    if rows.empty:
        return DriftCheck(model, window, 0, skipped, reasons, None, False,
                          "no traffic in the window")
    if baseline is None:
        raise ValueError(f"{model}: rows to check but no baseline")
    report = compute_drift(rows, baseline, cfg.monitoring)
    retrain, reason = decide(report, cfg)
    return DriftCheck(model, window, len(rows), skipped, reasons, report, retrain, reason)


def decide(report: DriftReport, cfg: ProjectConfig) -> tuple[bool, str]:
    """Retrain on drift when `training.retrain_on_drift` is on; the reason either way."""
    if report.verdict != "drift":
        return False, "no drift"
    what = ", ".join(report.drifted_features) or "model quality"
    if not cfg.training.retrain_on_drift:
        return False, f"drift ({what}); training.retrain_on_drift is false"
    return True, f"drift ({what})"
