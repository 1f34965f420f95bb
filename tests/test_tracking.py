"""Tracking set-up survives kills and broken stores; a tracking failure never blocks a run."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.config import load_config
from tests.conftest import ROOT, write_config

SMALL = {"data": {"source": {"rows": 600}}, "loop": {"enabled": False}}


SET_UP = "from mlops_kit.config import load_config; from mlops_kit.tracking import Tracker; " \
    "Tracker(load_config({config!r}))"


def child(config: Path, state: Path, *args: str) -> subprocess.Popen[str]:
    """A child process of the kit: `mlops-kit <args>`, or (no args) only the tracking set-up."""
    env = {**os.environ, "MLOPS_STATE_DIR": str(state), "PYTHONPATH": os.environ.get(
        "PYTHONPATH", str(ROOT / "src"))}
    env.pop("MLFLOW_TRACKING_URI", None)
    argv = ["-m", "mlops_kit.cli", *args, "--config", str(config)] if args else \
        ["-c", SET_UP.format(config=str(config))]
    return subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def schema_state(db: Path) -> tuple[str, int] | None:
    """The alembic revision a store holds right now and its number of tables (None: no
    revision yet, or the file is locked or unreadable at this instant)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            tables = con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                 ).fetchone()[0]
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return (row[0], int(tables)) if row else None


def stores(state: Path) -> list[Path]:
    return [*state.glob("mlflow.db"), *state.glob(".mlflow.db*.tmp")]


def kill_mid_migration(config: Path, state: Path, *args: str) -> None:
    """Start the child and SIGKILL it inside one of MLflow's migrations: when polling sees a
    store whose tables grew since its revision was first seen (a migration's DDL is in, its
    version stamp is not). Retried from scratch if the child moved on before the kill."""
    for _attempt in range(3):
        shutil.rmtree(state, ignore_errors=True)
        if _kill_once(child(config, state, *args), state):
            return
    pytest.fail("could not stop the child inside a migration in 3 attempts")


def _kill_once(proc: subprocess.Popen[str], state: Path) -> bool:
    first: dict[tuple[Path, str], int] = {}
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            for db in stores(state):
                seen = schema_state(db)
                if seen is None:
                    continue
                tables = first.setdefault((db, seen[0]), seen[1])
                if seen[1] > tables:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    after = schema_state(db)
                    return after is not None and after[0] == seen[0] and after[1] > tables
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return False


def finished_train_runs(state: Path) -> int:
    con = sqlite3.connect(state / "mlflow.db")
    try:
        return int(con.execute("SELECT count(*) FROM runs WHERE name = 'train' AND status = "
                               "'FINISHED'").fetchone()[0])
    finally:
        con.close()


def test_kill_during_store_set_up_then_the_next_set_up_works(tmp_path: Path) -> None:
    from mlops_kit.tracking import Tracker

    config = write_config(tmp_path, SMALL)
    loaded = load_config(config)
    kill_mid_migration(config, loaded.state_dir)
    tracker = Tracker(loaded)
    with tracker.run("train"):
        tracker.log({"a": 1}, {"m": 0.5})
    assert finished_train_runs(loaded.state_dir) == 1
    assert not list(loaded.state_dir.glob(".mlflow.db.*"))


@pytest.mark.slow
def test_first_run_killed_mid_migration_then_the_next_run_is_tracked(tmp_path: Path) -> None:
    config, state = write_config(tmp_path, SMALL), tmp_path / "state"
    kill_mid_migration(config, state, "run", "--train-only")
    proc = child(config, state, "run", "--train-only")
    _, errors = proc.communicate(timeout=300)
    assert proc.returncode == 0, errors
    assert "Traceback" not in errors and "tracking disabled" not in errors
    assert finished_train_runs(state) == 1
    assert not list(state.glob(".mlflow.db.*")) and not list((state / "tmp").iterdir())


def test_garbled_store_is_moved_aside_and_the_run_tracked(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from mlops_kit.tracking import Tracker

    loaded = load_config(write_config(tmp_path, SMALL))
    db = loaded.state_dir / "mlflow.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"SQLite format 3\x00" + b"\x17" * 3000)
    with caplog.at_level("WARNING"):
        tracker = Tracker(loaded)
        with tracker.run("train"):
            tracker.log({"a": 1}, {"m": 0.5})
    moved = list(db.parent.glob("mlflow.db.broken-*"))
    assert len(moved) == 1 and moved[0].read_bytes().startswith(b"SQLite format 3\x00\x17")
    assert str(moved[0]) in caplog.text
    assert finished_train_runs(loaded.state_dir) == 1


def test_unusable_store_warns_with_the_fix_and_training_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from mlops_kit.tracking import open_tracker

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    loaded = load_config(write_config(tmp_path, {
        **SMALL, "tracking": {"uri": f"sqlite:///{blocker}/mlflow.db"}}))
    with caplog.at_level("WARNING"):
        assert open_tracker(loaded) is None
    assert "tracking disabled for this run" in caplog.text
    assert str(blocker) in caplog.text and "tracking.uri" in caplog.text


def test_runs_left_running_by_a_dead_process_are_marked_killed(tmp_path: Path) -> None:
    import socket

    from mlflow.tracking import MlflowClient

    from mlops_kit.tracking import HOST_TAG, PID_TAG, Tracker, end_local_orphans

    loaded = load_config(write_config(tmp_path, SMALL))
    Tracker(loaded)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client = MlflowClient(tracking_uri=f"sqlite:///{loaded.state_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("churn-churn-classifier")
    assert exp is not None
    stuck = client.create_run(exp.experiment_id, tags={
        PID_TAG: str(dead.pid), HOST_TAG: socket.gethostname()}).info.run_id
    alive = client.create_run(exp.experiment_id, tags={
        PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}).info.run_id
    end_local_orphans(loaded)
    assert client.get_run(stuck).info.status == "KILLED"
    assert "process" in client.get_run(stuck).data.tags["mlops.note"]
    assert client.get_run(alive).info.status == "RUNNING"


def garble(db: Path) -> None:
    """Overwrite the store's pages in place: every connection then reads garbage."""
    with db.open("r+b") as fh:
        fh.write(b"\x17" * 8192)


def replace(db: Path) -> None:
    """Put another file in the store's place (a rename, as a clean-up script would)."""
    other = db.with_name("other.db")
    other.write_bytes(b"not a database")
    other.replace(db)


@pytest.mark.parametrize(("fault", "after_fit"), [(garble, 1), (replace, 3)],
                         ids=["garbled-after-the-first-trial", "replaced-after-the-final-fit"])
def test_a_store_failing_mid_run_warns_once_and_the_model_is_registered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        fault: Any, after_fit: int) -> None:
    """A real fault of the store during training (a hook on the kit's `fit` breaks mlflow.db
    after the n-th fit: 2 trials, then the final fit): the run succeeds, the version is
    registered, one warning names the store and the fix, the lineage says incomplete."""
    from mlops_kit.registry import open_registry
    from mlops_kit.runtime.runner import run_pipeline
    from mlops_kit.steps import train

    loaded = load_config(write_config(tmp_path, SMALL))
    db = loaded.state_dir / "mlflow.db"
    fits = []

    def fit_then_break(*args: Any, **kwargs: Any) -> Any:
        model = real_fit(*args, **kwargs)
        fits.append(1)
        if len(fits) == after_fit:
            fault(db)
        return model

    real_fit = train.fit
    monkeypatch.setattr(train, "fit", fit_then_break)
    with caplog.at_level("WARNING"):
        result = run_pipeline(loaded, params={"ingest_date": "2026-01-01"})
    assert result.status == "succeeded" and len(fits) == 3
    warned = [r.getMessage() for r in caplog.records if "tracking incomplete" in r.getMessage()]
    assert len(warned) == 1, warned
    assert str(db) in warned[0] and "failed" in warned[0] and f"mv {db}" in warned[0]
    assert result.step("train").summary["tracking"] == "incomplete"
    [version] = open_registry(loaded).versions("churn-classifier")
    assert version.lineage["tracking"] == "incomplete"
    assert "failed" in version.lineage["tracking_problem"]

    from mlops_kit.tracking import Tracker

    tracker = Tracker(loaded)  # the next set-up moves the broken store aside: tracked again
    with tracker.run("train"):
        tracker.log({"a": 1}, {"m": 0.5})
    assert tracker.problem is None and finished_train_runs(loaded.state_dir) == 1
