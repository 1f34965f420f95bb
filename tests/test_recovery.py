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
    endpoint, models = loaded.state_dir / "endpoints" / "e", loaded.state_dir / "serving/models/m"
    endpoint.mkdir(parents=True)
    models.mkdir(parents=True)
    (endpoint / "state.json").write_text("{}")  # the file the old temp was to replace
    old = [endpoint / ".state.json.ab12cd34.tmp", folder / "tmpk3j4h5g6.tmp",
           models / ".download-q1w2e3r4"]
    for path in old:
        path.mkdir() if "download" in path.name else path.write_bytes(b"{")
        os.utime(path, (hour_ago, hour_ago))
    fresh = folder / ".registry.json.zx98cv76.tmp"
    fresh.write_bytes(b"{")
    notes = recover(loaded)
    assert not killed.exists() and not any(p.exists() for p in old), notes
    assert live.exists() and fresh.exists()
    assert not (folder / "part.parquet").exists() and len(notes) == 4, notes


def age(path: Path, seconds: float = 7200) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


OLD_NAMES = ("tmpabcdefgh.tmp", ".notes.abcdefgh.tmp")


def test_old_style_temps_are_removed_only_in_the_kits_folders(tmp_path: Path) -> None:
    """The state folder may be $HOME or /tmp: a 2 h old `tmpabcdefgh.tmp` (mkstemp's name)
    or `.notes.abcdefgh.tmp` outside the kit's folders, or a `.<name>.*.tmp` whose <name> is
    not beside it, is someone else's and stays; the same names where the kit wrote them go."""
    loaded = ingest_validate(tmp_path, 7)
    state = loaded.state_dir
    theirs = [state, state / "mine", state / "cache"]  # not kit folders (cache/<t>/<step> is)
    for folder in theirs:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "notes").write_text("mine")
    lake, endpoint = state / "lake" / "raw" / "raw_x" / "ingest_date=2026-01-01", \
        state / "endpoints" / "e"
    for folder in (lake, endpoint):
        folder.mkdir(parents=True)
    (endpoint / "notes").write_text("the file the temp was to replace")
    lonely = state / "registry" / "m" / ".registry.json.abcdefgh.tmp"  # no registry.json
    lonely.parent.mkdir(parents=True)
    kept = [folder / name for folder in theirs for name in OLD_NAMES] + [lonely]
    gone = [lake / "tmpabcdefgh.tmp", endpoint / ".notes.abcdefgh.tmp"]
    for path in kept + gone:
        path.write_text("x")
        age(path)
    notes = recover(loaded)
    assert all(p.exists() for p in kept), notes
    assert not any(p.exists() for p in gone) and len(notes) == 2, notes


def test_an_old_download_folder_with_a_file_growing_inside_is_kept(tmp_path: Path) -> None:
    """A file growing in a folder does not change the folder's mtime: the newest mtime of
    anything inside is what says it is untouched."""
    loaded = ingest_validate(tmp_path, 7)
    download = loaded.state_dir / "serving" / "models" / "m" / ".download-xxxxxxxx"
    (download / "model").mkdir(parents=True)
    (download / "model" / "weights.bin").write_bytes(b"still coming")
    age(download / "model")
    age(download)
    assert recover(loaded) == [] and (download / "model" / "weights.bin").exists()


def test_a_symlink_named_like_an_old_temp_is_not_followed(tmp_path: Path) -> None:
    loaded = ingest_validate(tmp_path, 7)
    models = loaded.state_dir / "serving" / "models" / "m"
    lake = loaded.state_dir / "lake" / "raw" / "raw_x"
    models.mkdir(parents=True)
    lake.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious").write_text("keep")
    links = [models / ".download-xxxxxxxx", lake / "tmpabcdefgh.tmp"]
    links[0].symlink_to(target, target_is_directory=True)
    links[1].symlink_to(target / "precious")
    for link in links:
        age(link)
    notes = recover(loaded)
    assert notes == [] and all(link.is_symlink() for link in links), notes
    assert (target / "precious").read_text() == "keep"


def test_an_old_temp_folder_not_removed_is_not_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rmtree(ignore_errors=True) may remove nothing (permissions, a busy mount): say so only
    if the folder is gone."""
    import mlops_kit.runtime.recovery as recovery

    loaded = ingest_validate(tmp_path, 7)
    download = loaded.state_dir / "serving" / "models" / "m" / ".download-xxxxxxxx"
    download.mkdir(parents=True)
    age(download)
    monkeypatch.setattr(recovery.shutil, "rmtree", lambda *a, **k: None)
    assert recover(loaded) == [] and download.is_dir()
