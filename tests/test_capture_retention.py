"""Local capture retention on real files: whole files older than `retention_days` go, then
the oldest beyond `max_mb`; a writer's newest file (the one it appends to) never does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mlops_kit.config import ConfigError, load_config
from mlops_kit.fileio import read_json_lines
from mlops_kit.runtime.serving import serve_settings
from mlops_kit.serving import capture as capture_module
from mlops_kit.serving.capture import Capture, Retention, enforce_retention, read_capture
from tests.conftest import ROOT

DAY = 86400.0


def put(root: Path, hour: str, name: str, size: int, age_s: float) -> Path:
    """A capture file of `size` bytes under `root/<hour>/`, last written `age_s` ago."""
    path = root / hour / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * (size - 1) + b"\n")
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


def test_files_older_than_the_retention_go_with_their_empty_folders(tmp_path: Path) -> None:
    old = put(tmp_path, "2026/01/01/00", "w1-000001.jsonl", 100, 40 * DAY)
    older = put(tmp_path, "2025/12/31/23", "w2-000001.jsonl", 100, 41 * DAY)
    kept = put(tmp_path, "2026/02/01/00", "w1-000002.jsonl", 100, 29 * DAY)
    deleted = enforce_retention(tmp_path, Retention(days=30, max_mb=1024))
    assert deleted == [older, old]
    assert kept.is_file() and not (tmp_path / "2026" / "01").exists()
    assert not (tmp_path / "2025").exists() and (tmp_path / "2026" / "02" / "01").is_dir()


def test_oldest_whole_files_go_beyond_the_size_but_never_a_file_being_written(
        tmp_path: Path) -> None:
    mb = 2**20
    oldest = put(tmp_path, "2026/03/01/10", "w1-000001.jsonl", mb // 2, 300)  # w1 sealed
    second = put(tmp_path, "2026/03/01/10", "w2-000001.jsonl", mb // 2, 200)  # w2 is writing
    third = put(tmp_path, "2026/03/01/11", "w1-000002.jsonl", mb // 2, 100)   # w1 is writing
    deleted = enforce_retention(tmp_path, Retention(days=30, max_mb=1.0))
    assert deleted == [oldest]  # 1.5 MB -> 1 MB
    assert second.is_file() and third.is_file()
    # both left are their writers' newest: kept even though still over a smaller limit
    assert enforce_retention(tmp_path, Retention(days=30, max_mb=0.25)) == []


def test_a_writers_stale_newest_file_is_not_kept_forever(tmp_path: Path) -> None:
    """A writer whose last file is over an hour old is gone (or writes a new hour's file)."""
    stale = put(tmp_path, "2026/03/01/10", "dead-000007.jsonl", 2**20, 2 * 3600)
    assert enforce_retention(tmp_path, Retention(days=30, max_mb=0.5)) == [stale]


def test_capture_rolls_files_and_stays_within_its_size(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers under load with a 0.5 MB limit (64 KB files): the folder stays near the
    limit, each writer's file in use survives every sweep, the newest records are kept."""
    monkeypatch.setattr(capture_module, "SWEEP_SECONDS", 0.0)
    limit = Retention(days=30, max_mb=0.5)
    writers = [Capture(tmp_path, model="m", version="1", variant=v, retention=limit)
               for v in ("AllTraffic", "Canary")]
    body = b'{"instances": [[1, 2, 3, 4, 5, 6, 7, 8]]}' + b" " * 400
    for batch in range(60):
        for writer in writers:
            for _ in range(40):
                writer.record(body, "application/json", b"[0.5]", "application/json",
                              latency_ms=1.0)
            writer.flush()
            assert writer.path is not None and writer.path.is_file()
        sizes = sum(p.stat().st_size for p in tmp_path.rglob("*.jsonl"))
        assert sizes <= limit.max_bytes + 2 * limit.roll_bytes, batch
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) > 2  # rolled: more than one file per writer
    assert all(f.stat().st_size <= limit.roll_bytes + 40 * 1024 for f in files)
    records = read_capture(tmp_path)
    assert 0 < len(records) < 60 * 40 * 2  # old records went
    for writer in writers:  # the last flush of each writer is all there, in its file in use
        assert writer.path is not None
        assert len(list(read_json_lines([writer.path]))) >= 40


def test_a_failing_sweep_does_not_stop_capture(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(root: Path, retention: Retention, now: float | None = None) -> list[Path]:
        raise PermissionError(13, "Permission denied", str(root))

    monkeypatch.setattr(capture_module, "enforce_retention", broken)
    writer = Capture(tmp_path, model="m", version="1")
    writer.record(b"1,2", "text/csv", b"0.5", "text/csv", latency_ms=1.0)
    writer.flush()
    assert len(read_capture(tmp_path)) == 1


def test_the_server_gets_the_retention_from_the_config() -> None:
    loaded = load_config(ROOT / "mlops.yaml", sets=["serving.capture.retention_days=7",
                                                   "serving.capture.max_mb=256"])
    settings = serve_settings(loaded, Path("model"), "1")
    assert (settings.capture_retention_days, settings.capture_max_mb) == (7, 256)


@pytest.mark.parametrize("value", ["serving.capture.retention_days=0",
                                   "serving.capture.max_mb=0.5"])
def test_out_of_range_retention_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match=value.split("=")[0]):
        load_config(ROOT / "mlops.yaml", sets=[value])
