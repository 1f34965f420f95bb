"""Data capture: requests and responses as JSON Lines, in SageMaker's data-capture layout.

Each worker appends to its own file under `<root>/<YYYY>/<MM>/<DD>/<HH>/`, so there is no
locking; records are buffered and flushed at least every second and on shutdown.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit.fileio import append_lines, read_json_lines, worker_file
from mlops_kit.serving.codec import CSV, JSON, JSONL
from mlops_kit.steps.features import FeatureSet

FLUSH_SECONDS, FLUSH_RECORDS = 1.0, 500
MAX_BUFFERED = 20 * FLUSH_RECORDS  # records kept while writes fail; older ones are dropped
PREFIX = "capture"


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
                 sampling_percent: float = 100.0, inputs: bool = True) -> None:
        self.root = root
        self.meta = {"model": model, "modelVersion": version, "variant": variant}
        self.sampling = sampling_percent / 100.0
        self.inputs = inputs
        self.buffer: list[str] = []
        self.last_flush = time.monotonic()
        self.name = worker_file()
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
        """Append the buffered records to this hour's file; on a failed write (a full disk)
        they stay buffered, up to MAX_BUFFERED, and the error is raised."""
        self.last_flush = time.monotonic()
        if not self.buffer:
            return
        folder = self.root / dt.datetime.now(dt.UTC).strftime("%Y/%m/%d/%H")
        lines, self.buffer = self.buffer, []
        try:
            append_lines(folder / self.name, lines)
        except OSError:
            self.buffer, self.dropped = keep(lines + self.buffer, MAX_BUFFERED, self.dropped)
            raise


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
        self.frames: list[pd.DataFrame] = []
        self.skipped = 0
        self.reasons: dict[str, int] = {}

    def add(self, body: str | None, content_type: str | None, when: str,
            version: str | None) -> int:
        """Parse one request body; the number of rows it gave (0 when skipped)."""
        from mlops_kit.serving.codec import BadRequest

        try:
            frame = request_rows(body, content_type, self.names)
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


def request_rows(body: str | None, content_type: str | None,
                 names: Sequence[str]) -> pd.DataFrame:
    """The source rows of one request body (CSV, JSON or JSON Lines, as the server reads them),
    as text-or-value cells in `names` order; BadRequest when the body is malformed."""
    from mlops_kit.serving.codec import BadRequest, decode

    if body is None or content_type is None:
        raise BadRequest("the record has no request body or content type")
    rows = decode(body.encode(), content_type).rows
    for i, row in enumerate(rows, 1):
        if not isinstance(row, list | dict):
            raise BadRequest(f"row {i} is not a list of values or an object")
    frame = pd.DataFrame([dict(zip(names, r, strict=False)) if isinstance(r, list) else r
                          for r in rows], columns=list(names), dtype=object)
    return frame.mask(frame.isin([""]))  # an empty CSV field is a missing value
