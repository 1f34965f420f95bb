"""Data capture: requests and responses as JSON Lines, in SageMaker's data-capture layout.

Each writer (a model variant in one worker) appends to its own file under
`<root>/<YYYY>/<MM>/<DD>/<HH>/`, so there is no locking; records are buffered and flushed at
least every second and on shutdown. A writer starts a new file each hour and when its file
reaches 1/16 of `serving.capture.max_mb`, so retention (`enforce_retention`, run by every
writer at most once a minute) can delete whole files: older than `retention_days`, then the
oldest beyond `max_mb`, never a writer's newest file (the one it appends to).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit.fileio import append_lines, read_json_lines, worker_file
from mlops_kit.serving.codec import CSV, JSON, JSONL
from mlops_kit.steps.features import FeatureSet

FLUSH_SECONDS, FLUSH_RECORDS = 1.0, 500
MAX_BUFFERED = 20 * FLUSH_RECORDS  # records kept while writes fail; older ones are dropped
PREFIX = "capture"
SWEEP_SECONDS = 60.0  # a writer applies retention at most this often
ROLL_PARTS = 16  # a file rolls over at max_mb / ROLL_PARTS, so retention drops whole files
MIN_ROLL_BYTES = 64 * 1024
WRITING_SECONDS = 3900.0  # a writer's newest file may still be appended to within this
SEQUENCE = re.compile(r"-\d{6}$")  # `<writer>-<sequence>.jsonl`
log = logging.getLogger("mlops_kit.serving")


@dataclass(frozen=True)
class Retention:
    """How much local capture is kept (`serving.capture.retention_days` and `max_mb`)."""

    days: float = 30.0
    max_mb: float = 1024.0

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 2**20)

    @property
    def roll_bytes(self) -> int:
        return max(MIN_ROLL_BYTES, self.max_bytes // ROLL_PARTS)


def enforce_retention(root: Path, retention: Retention, now: float | None = None) -> list[Path]:
    """Delete whole capture files under `root` last written over `retention.days` ago, then the
    oldest until the rest fit in `retention.max_mb`; a writer's newest file written in the
    last hour is kept, since it may be appended to. The deleted paths, oldest first."""
    now = time.time() if now is None else now
    files = sorted(_capture_files(root))
    live = _writing(files, now)
    total = sum(size for _, _, size in files)
    cutoff = now - retention.days * 86400
    deleted = []
    for mtime, path, size in files:
        if mtime >= cutoff and total <= retention.max_bytes:
            break
        if path in live:
            continue
        path.unlink(missing_ok=True)
        total -= size
        deleted.append(path)
    _prune_folders(root, deleted)
    return deleted


def _capture_files(root: Path) -> list[tuple[float, Path, int]]:
    """(mtime, path, size) of every capture file; files that vanish meanwhile are left out."""
    out = []
    for path in root.rglob("*.jsonl"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out.append((st.st_mtime, path, st.st_size))
    return out


def _writing(files: list[tuple[float, Path, int]], now: float) -> set[Path]:
    """Each writer's newest file, if written within `WRITING_SECONDS` (`files` sorted by
    mtime). Writes go to the current hour's folder, so an older file gets no more lines."""
    newest: dict[str, Path] = {}
    for mtime, path, _ in files:
        if now - mtime <= WRITING_SECONDS:
            newest[SEQUENCE.sub("", path.stem)] = path
    return set(newest.values())


def _prune_folders(root: Path, deleted: list[Path]) -> None:
    """Remove the hour, day, month and year folders that deleting left empty."""
    for folder in sorted({p.parent for p in deleted}, reverse=True):
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty, or gone already
                break
            folder = folder.parent


def encoded(body: bytes, content_type: str) -> tuple[str, str]:
    """(data, encoding) as SageMaker writes them: CSV and JSON as text, others base64."""
    if content_type in (CSV, JSON, JSONL):
        try:
            return body.decode("utf-8"), "CSV" if content_type == CSV else "JSON"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), "BASE64"


class Capture:
    """Samples and logs invocations of one model version (one worker's writer)."""

    def __init__(self, root: Path, *, model: str, version: str, variant: str = "AllTraffic",
                 sampling_percent: float = 100.0, inputs: bool = True,
                 retention: Retention | None = None) -> None:
        self.root = root
        self.meta = {"model": model, "modelVersion": version, "variant": variant}
        self.sampling = sampling_percent / 100.0
        self.inputs = inputs
        self.retention = retention or Retention()
        self.buffer: list[str] = []
        self.last_flush = time.monotonic()
        self.last_sweep = -SWEEP_SECONDS
        self.writer = worker_file("")
        self.sequence = 0
        self.path: Path | None = None  # the file being appended to
        self.dropped = 0

    def record(self, body: bytes, content_type: str, answer: bytes, answer_type: str,
               *, latency_ms: float) -> None:
        """Log one invocation (if sampled)."""
        if self.sampling < 1.0 and random.random() >= self.sampling:
            return
        now = dt.datetime.now(dt.UTC)
        request: dict[str, Any] = {"observedContentType": content_type, "mode": "INPUT"}
        if self.inputs:
            request["data"], request["encoding"] = encoded(body, content_type)
        else:
            request["data"], request["encoding"] = "", "REDACTED"
        data, encoding = encoded(answer, answer_type)
        record = {
            "captureData": {
                "endpointInput": request,
                "endpointOutput": {"observedContentType": answer_type, "mode": "OUTPUT",
                                   "data": data, "encoding": encoding},
            },
            "eventMetadata": {"eventId": str(uuid.uuid4()),
                              "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                              "latencyMs": round(latency_ms, 3), **self.meta},
            "eventVersion": "0",
        }
        self.buffer.append(json.dumps(record, separators=(",", ":")))
        if (len(self.buffer) >= FLUSH_RECORDS
                or time.monotonic() - self.last_flush >= FLUSH_SECONDS):
            with contextlib.suppress(OSError):  # kept buffered: the worker's tick retries, logs
                self.flush()

    def flush(self) -> None:
        """Apply retention if due, then append the buffered records to this writer's file. On a
        failed write (a full disk) they stay buffered, up to MAX_BUFFERED, and the error is
        raised."""
        self.last_flush = time.monotonic()
        if self.last_flush - self.last_sweep >= SWEEP_SECONDS:
            self.last_sweep = self.last_flush
            try:
                enforce_retention(self.root, self.retention)
            except OSError:  # retention must never stop capture; the next sweep retries
                log.exception("capture retention under %s failed", self.root)
        if not self.buffer:
            return
        lines, self.buffer = self.buffer, []
        try:
            append_lines(self._file(), lines)
        except OSError:
            self.buffer, self.dropped = keep(lines + self.buffer, MAX_BUFFERED, self.dropped)
            raise

    def _file(self) -> Path:
        """This writer's file: a new one each hour and once it reaches the roll size."""
        folder = self.root / dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
        if self.path is None or self.path.parent != folder or self._size() >= \
                self.retention.roll_bytes:
            self.sequence += 1
            self.path = folder / f"{self.writer}-{self.sequence:06d}.jsonl"
        return self.path

    def _size(self) -> int:
        try:
            return self.path.stat().st_size if self.path else 0
        except FileNotFoundError:
            return 0


def keep(lines: list[str], most: int, dropped: int) -> tuple[list[str], int]:
    """The newest `most` lines, and `dropped` plus how many older ones did not fit."""
    over = max(0, len(lines) - most)
    return lines[over:], dropped + over


def read_capture(root: Path, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every captured record under `root` (optionally only those at or after `since`)."""
    out = []
    for record in read_json_lines(sorted(root.rglob("*.jsonl"))):
        if since is not None:
            when = dt.datetime.strptime(record["eventMetadata"]["inferenceTime"],
                                        "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
            if when < since:
                continue
        out.append(record)
    return out


def captured_rows(root: Path, features: FeatureSet,
                  since: dt.datetime | None = None) -> pd.DataFrame:
    """The source rows of captured requests (redacted ones left out; bodies of other types
    counted as skipped), one row per request row, with `_inference_time` and `_model_version`:
    the input of drift monitoring."""
    collector = RowCollector(features)
    for record in read_capture(root, since):
        request = record["captureData"]["endpointInput"]
        encoding = request.get("encoding")
        if encoding is None:  # inputs not logged (serving.capture.inputs: false)
            continue
        if encoding not in ("CSV", "JSON"):
            collector.skip(f"{request.get('observedContentType')} body, not CSV or JSON")
            continue
        meta = record["eventMetadata"]
        collector.add(request.get("data"), request.get("observedContentType"),
                      meta["inferenceTime"], meta.get("modelVersion"))
    return collector.frame()


MAX_REASONS = 20  # distinct skip reasons kept; the rest are counted under "other"


class RowCollector:
    """Source rows of logged request bodies, whatever logged them (SageMaker-style capture files
    locally and on AWS, Vertex AI's BigQuery log on Google Cloud). A body that cannot be parsed
    is counted in `attrs["skipped"]` with its reason in `attrs["skip_reasons"]`, never dropped
    silently."""

    def __init__(self, features: FeatureSet) -> None:
        self.names = features.inputs
        self.aliases = features.aliases
        self.frames: list[pd.DataFrame] = []
        self.skipped = 0
        self.reasons: dict[str, int] = {}

    def add(self, body: str | None, content_type: str | None, when: str,
            version: str | None) -> int:
        """Parse one request body; the number of rows it gave (0 when skipped)."""
        from mlops_kit.serving.codec import BadRequest

        try:
            frame = request_rows(body, content_type, self.names, self.aliases)
        except (BadRequest, UnicodeError) as exc:
            self.skip(str(exc))
            return 0
        frame["_inference_time"] = when
        frame["_model_version"] = version
        self.frames.append(frame)
        return len(frame)

    def skip(self, reason: str) -> None:
        """Count a request that gave no rows, under `reason`."""
        self.skipped += 1
        key = reason if reason in self.reasons or len(self.reasons) < MAX_REASONS else "other"
        self.reasons[key] = self.reasons.get(key, 0) + 1

    def frame(self) -> pd.DataFrame:
        """Every parsed row, with `attrs["skipped"]` and `attrs["skip_reasons"]`."""
        out = (pd.concat(self.frames, ignore_index=True) if self.frames else
               pd.DataFrame(columns=[*self.names, "_inference_time", "_model_version"]))
        out.attrs["skipped"] = self.skipped
        out.attrs["skip_reasons"] = dict(self.reasons)
        return out


def request_rows(body: str | None, content_type: str | None, names: Sequence[str],
                 aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The source rows of one request body (CSV, JSON or JSON Lines, as the server reads them,
    fields named by header or name: `aliases` maps header -> name), as text-or-value cells in
    `names` order; BadRequest when the body is malformed."""
    from mlops_kit.serving.codec import BadRequest, decode, named_rows

    if body is None or content_type is None:
        raise BadRequest("the record has no request body or content type")
    rows = decode(body.encode(), content_type).rows
    if rows:
        rows = named_rows(rows, names, aliases or {})
    for i, row in enumerate(rows, 1):
        if not isinstance(row, list | dict):
            raise BadRequest(f"row {i} is not a list of values or an object")
    frame = pd.DataFrame([dict(zip(names, r, strict=False)) if isinstance(r, list) else r
                          for r in rows], columns=list(names), dtype=object)
    return frame.mask(frame.isin([""]))  # an empty CSV field is a missing value
