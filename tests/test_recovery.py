"""Leftovers of killed processes are cleaned or put back by the next run, with a warning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_kit.runtime.recovery import recover
from tests.conftest import ROOT
from tests.test_lake import ingest_validate, run_day


def spawn(argv: list[str], state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLOPS_STATE_DIR": str(state),
           "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT / "src"))}
    return subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(proc: subprocess.Popen[bytes], found: object, what: str) -> None:
    """SIGKILL `proc` as soon as `found()` is true (polled), and reap it."""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if found():  # type: ignore[operator]
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.005)
        pytest.fail(f"the child ended (or timed out) before {what}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_work_folder_is_removed_by_the_next_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    loaded = ingest_validate(tmp_path, 7)
    tmp = loaded.state_dir / "tmp"
    proc = spawn(["-m", "mlops_kit.cli", "run", "--train-only", "--config", str(loaded.path)],
                 loaded.state_dir)
    kill_when(proc, lambda: tmp.is_dir() and any(tmp.iterdir()), "its work folder appeared")
    [left] = list(tmp.iterdir())
    assert left.name.startswith(f"{proc.pid}-")
    with caplog.at_level("WARNING"):
        run_day(loaded)
    assert not left.exists() and f"removed the work folder {left}" in caplog.text


def test_a_state_file_write_killed_midway_leaves_only_a_temp_file_the_next_run_removes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    loaded = ingest_validate(tmp_path, 7)
    state = loaded.state_dir
    target = state / "big.json"
    state.mkdir(parents=True)
    writer = ("from pathlib import Path; from mlops_kit.fileio import write_json_atomic; "
              f"write_json_atomic(Path({str(target)!r}), list(range(20_000_000)))")
    proc = spawn(["-c", writer], state)
    kill_when(proc, lambda: any(p.stat().st_size > 0 for p in state.glob(".big.json.*.tmp")),
              "it started writing")
    assert not target.exists()
    [tmp] = list(state.glob(".big.json.*.tmp"))
    with caplog.at_level("WARNING"):
        notes = recover(loaded)
    assert not tmp.exists() and any(f"removed the half-written file {tmp}" in n for n in notes)
    assert str(tmp) in caplog.text


def test_a_folder_replace_cut_short_is_put_back(tmp_path: Path) -> None:
    loaded = ingest_validate(tmp_path, 7)
    table = loaded.state_dir / "lake" / "raw" / "raw_x"
    old = table.with_name(f".raw_x.{dead_pid()}.abc123.old")
    old.mkdir(parents=True)
    (old / "part.parquet").write_text("kept")
    stage = table.with_name(f".raw_x.{dead_pid()}.def456.stage")
    stage.mkdir()
    live = table.with_name(f".raw_x.{os.getpid()}.fed789.stage")
    live.mkdir()
    notes = recover(loaded)
    assert (table / "part.parquet").read_text() == "kept" and not old.exists()
    assert not stage.exists() and live.exists()  # a live writer's work is left alone
    assert len(notes) == 2


def test_a_parquet_write_killed_midway_and_old_style_temps_are_cleaned(
        tmp_path: Path) -> None:
    """A writer SIGKILLed mid-write leaves a pid-named temp the next run removes; temp names
    of the old style (no pid) go once an hour old; live writers' and fresh ones stay."""
    from mlops_kit.fileio import temp_file

    loaded = ingest_validate(tmp_path, 7)
    folder = loaded.state_dir / "lake" / "features" / "t"
    folder.mkdir(parents=True)
    writer = ("import pandas as pd; from pathlib import Path; from mlops_kit.steps.base import "
              f"write_parquet; write_parquet(pd.DataFrame({{'x': range(40_000_000)}}), "
              f"Path({str(folder / 'part.parquet')!r}))")
    proc = spawn(["-c", writer], loaded.state_dir)
    kill_when(proc, lambda: any(folder.glob(f".part.parquet.{proc.pid}.*.tmp")),
              "it created its temp file")
    [killed] = list(folder.glob(".part.parquet.*.tmp"))
    fd, live = temp_file(folder / "live.json")  # this process: a live writer
    os.close(fd)
    hour_ago = time.time() - 3700
    old = [folder / ".state.json.ab12cd34.tmp", folder / "tmpk3j4h5g6.tmp",
           folder / ".download-q1w2e3r4"]
    for path in old:
        path.mkdir() if "download" in path.name else path.write_bytes(b"{")
        os.utime(path, (hour_ago, hour_ago))
    fresh = folder / ".registry.json.zx98cv76.tmp"
    fresh.write_bytes(b"{")
    notes = recover(loaded)
    assert not killed.exists() and not any(p.exists() for p in old), notes
    assert live.exists() and fresh.exists()
    assert not (folder / "part.parquet").exists() and len(notes) == 4, notes
