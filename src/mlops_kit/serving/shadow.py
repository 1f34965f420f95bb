"""Shadow testing: both answers to each mirrored request logged, then compared.

The report gives what a shadow test is for: how often the candidate agrees with production
(same label, or the mean absolute difference of scores) and how their latencies compare.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_kit.fileio import append_lines, read_json_lines, worker_file
from mlops_kit.serving.capture import MAX_BUFFERED, keep


def _scores(answer: bytes) -> list[list[float]]:
    """Rows of scores from an answer: CSV lines, or JSON `predictions` (score or scores)."""
    text = answer.decode()
    if text.lstrip()[:1] == "{":
        preds = json.loads(text)["predictions"]
        return [p["scores"] if "scores" in p else [p["score"]] for p in preds]
    lines = [line for line in text.split("\n") if line]
    if lines and "," in lines[0]:  # multiclass: the first line names the classes
        lines = lines[1:]
    return [[float(x) for x in line.split(",")] for line in lines]


class ShadowLog:
    """One worker's log of mirrored requests (flushed with the other background writes)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / worker_file()
        self.buffer: list[str] = []
        self.dropped = 0

    def record(self, live_version: int, live_answer: bytes, live_ms: float,
               shadow_version: int, shadow_answer: bytes, shadow_ms: float,
               error: str | None) -> None:
        live = _scores(live_answer)
        self.buffer.append(json.dumps({
            "t": time.time(), "live_version": live_version, "shadow_version": shadow_version,
            "live": live, "shadow": _scores(shadow_answer) if shadow_answer else None,
            "live_ms": round(live_ms, 3), "shadow_ms": round(shadow_ms, 3), "error": error,
        }, separators=(",", ":")))

    def flush(self) -> None:
        """Append the buffered records; on a failed write they stay buffered (bounded)."""
        lines, self.buffer = self.buffer, []
        try:
            append_lines(self.path, lines)
        except OSError:
            self.buffer, self.dropped = keep(lines + self.buffer, MAX_BUFFERED, self.dropped)
            raise


@dataclass
class ShadowReport:
    requests: int
    rows: int
    errors: int
    agreement: float  # share of rows with the same label (classifiers)
    mean_abs_diff: float
    live_p50_ms: float
    live_p99_ms: float
    shadow_p50_ms: float
    shadow_p99_ms: float
    live_version: int | None
    shadow_version: int | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: NaN (nothing to compare yet) becomes null."""
        return {k: None if isinstance(v, float) and v != v else v
                for k, v in self.__dict__.items()}


def shadow_report(folder: Path, task: str, since: float = 0.0) -> ShadowReport:
    """Compare production and shadow answers logged under `folder` since `since` (epoch s)."""
    recs = [r for r in read_json_lines(sorted(folder.glob("*.jsonl"))) if r["t"] >= since]
    pairs = [(np.array(r["live"]), np.array(r["shadow"])) for r in recs
             if r["live"] is not None and r["shadow"] is not None
             and len(r["live"]) == len(r["shadow"])]
    live = np.concatenate([a for a, _ in pairs]) if pairs else np.empty((0, 1))
    shadow = np.concatenate([b for _, b in pairs]) if pairs else np.empty((0, 1))
    if task == "regression" or not len(live):
        agreement = float("nan")
    elif live.shape[1] == 1:
        agreement = float(np.mean((live[:, 0] >= 0.5) == (shadow[:, 0] >= 0.5)))
    else:
        agreement = float(np.mean(live.argmax(axis=1) == shadow.argmax(axis=1)))
    live_ms = [r["live_ms"] for r in recs]
    shadow_ms = [r["shadow_ms"] for r in recs if r["error"] is None]
    return ShadowReport(
        requests=len(recs), rows=len(live), errors=sum(r["error"] is not None for r in recs),
        agreement=agreement,
        mean_abs_diff=float(np.mean(np.abs(live - shadow))) if len(live) else float("nan"),
        live_p50_ms=_pct(live_ms, 50), live_p99_ms=_pct(live_ms, 99),
        shadow_p50_ms=_pct(shadow_ms, 50), shadow_p99_ms=_pct(shadow_ms, 99),
        live_version=recs[-1]["live_version"] if recs else None,
        shadow_version=recs[-1]["shadow_version"] if recs else None,
    )


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")
