"""Invocation metrics per variant, as CloudWatch's `AWS/SageMaker` namespace has them:
Invocations, Invocation4XXErrors, Invocation5XXErrors and ModelLatency (here a histogram, so
percentiles merge across workers). Each worker appends one line per second and variant.

Latency counts from a request's arrival to its reply, and only for requests the server
answered (2xx, 5xx): a client's bad or slow request (4xx) never moves the latency guardrail.

Connections refused before the app (see `protocol.py`) are no invocations: they are counted by
reason in their own files, `refused/<hour>-<worker>.jsonl`, which the guardrail never reads.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlops_kit.fileio import append_lines, read_json_lines, worker_file

# Latency buckets in ms: 10 per decade from 0.01 ms to 100 s.
BOUNDS = [10 ** (k / 10) for k in range(-20, 51)]


@dataclass
class Window:
    """Counts of one variant over some span of time."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))

    def observe(self, status: int, latency_ms: float) -> None:
        self.invocations += 1
        if 400 <= status < 500:
            self.errors_4xx += 1
            return  # the client's doing: not the server's latency
        if status >= 500:
            self.errors_5xx += 1
        self.latency[bisect.bisect_left(BOUNDS, latency_ms)] += 1

    def merge(self, other: Window) -> None:
        self.invocations += other.invocations
        self.errors_4xx += other.errors_4xx
        self.errors_5xx += other.errors_5xx
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]

    @property
    def error_rate(self) -> float:
        return (self.errors_4xx + self.errors_5xx) / self.invocations if self.invocations else 0.0

    def percentile(self, q: float) -> float:
        """The q-th latency percentile (ms), as the upper bound of its bucket; NaN if empty."""
        total = sum(self.latency)
        if not total:
            return math.nan
        need, seen = q / 100 * total, 0
        for i, count in enumerate(self.latency):
            seen += count
            if seen >= need:
                return BOUNDS[min(i, len(BOUNDS) - 1)]
        return BOUNDS[-1]


MAX_PENDING = 3600  # windows (variant-seconds) kept while writes fail; older ones are dropped
REFUSED = "refused"  # the subfolder of refusals made before the app


class MetricsWriter:
    """One worker's metrics: observed per variant, flushed as one line per second. A failed
    write (a full disk) keeps the windows for the next flush, up to MAX_PENDING."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = worker_file()
        self.open: dict[tuple[int, str, int], Window] = {}
        self.refused: dict[int, Counter[str]] = {}  # second -> refusals by reason
        self.dropped = 0

    def observe(self, variant: str, version: int, status: int, latency_ms: float) -> None:
        key = (int(time.time()), variant, version)
        window = self.open.get(key)
        if window is None:
            window = self.open[key] = Window()
        window.observe(status, latency_ms)

    def refuse(self, counts: dict[str, int]) -> None:
        """Count refusals made before the app (by reason) in the current second."""
        if counts:
            self.refused.setdefault(int(time.time()), Counter()).update(counts)

    def flush(self) -> None:
        self._flush_refused()
        if not self.open:
            return
        by_hour: dict[str, dict[tuple[int, str, int], Window]] = {}
        for key, window in self.open.items():
            by_hour.setdefault(_hour(key[0]), {})[key] = window
        self.open = {}
        for hour, windows in sorted(by_hour.items()):  # one file an hour: readers skip older
            lines = [json.dumps({"t": t, "variant": v, "version": n, "invocations": w.invocations,
                                 "errors_4xx": w.errors_4xx, "errors_5xx": w.errors_5xx,
                                 "latency": w.latency}, separators=(",", ":"))
                     for (t, v, n), w in windows.items()]
            try:
                append_lines(self.folder / f"{hour}-{self.name}", lines)
            except OSError:
                self._keep([w for h, w in by_hour.items() if h >= hour])
                raise

    def _flush_refused(self) -> None:
        """One line per second with refusals; kept for the next flush if the write fails."""
        if not self.refused:
            return
        pending, self.refused = self.refused, {}
        lines = [json.dumps({"t": t, "refused": dict(c)}, separators=(",", ":"))
                 for t, c in sorted(pending.items())]
        try:
            append_lines(self.folder / REFUSED / f"{_hour(max(pending))}-{self.name}", lines)
        except OSError:
            for t, counts in pending.items():
                self.refused.setdefault(t, Counter()).update(counts)
            for t in sorted(self.refused)[:max(0, len(self.refused) - MAX_PENDING)]:
                del self.refused[t]
                self.dropped += 1
            raise

    def _keep(self, unwritten: list[dict[tuple[int, str, int], Window]]) -> None:
        """Put windows a failed write did not store back, merged with newer observations."""
        for windows in unwritten:
            for key, window in windows.items():
                if key in self.open:
                    window.merge(self.open[key])
                self.open[key] = window
        for key in sorted(self.open)[:max(0, len(self.open) - MAX_PENDING)]:
            del self.open[key]
            self.dropped += 1


def _hour(epoch: float) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(epoch))


def read_window(folder: Path, since: float, until: float | None = None,
                versions: Iterable[int] | None = None) -> Window:
    """All workers' metrics for `versions` (all if None) from `since` to `until` (epoch s)."""
    wanted = set(versions) if versions is not None else None
    total = Window()
    first = _hour(since)
    paths = [p for p in folder.glob("*.jsonl") if p.name[:10] >= first] if folder.is_dir() else []
    for rec in read_json_lines(paths):
        if rec["t"] < since or (until is not None and rec["t"] >= until):
            continue
        if wanted is not None and rec["version"] not in wanted:
            continue
        total.merge(Window(rec["invocations"], rec["errors_4xx"], rec["errors_5xx"],
                           rec["latency"]))
    return total


def read_refused(folder: Path, since: float, until: float | None = None) -> Counter[str]:
    """All workers' refusals before the app, by reason, from `since` to `until` (epoch s)."""
    total: Counter[str] = Counter()
    first, where = _hour(since), folder / REFUSED
    paths = [p for p in where.glob("*.jsonl") if p.name[:10] >= first] if where.is_dir() else []
    for rec in read_json_lines(paths):
        if rec["t"] >= since and (until is None or rec["t"] < until):
            total.update(rec["refused"])
    return total
