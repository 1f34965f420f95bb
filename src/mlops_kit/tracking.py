"""Experiment tracking in MLflow: a local SQLite store by default, any tracking URI by config.

The local store is set up atomically: a new `mlflow.db` is created and migrated in a temp file
beside it and renamed into place, under a lock, so a kill mid-migration leaves no half-migrated
store. A store found half-migrated (or not a database) is upgraded on a copy, or moved aside
with a timestamped name. Tracking never blocks training: if the store cannot be opened, the run
goes on untracked with a warning naming the file and the fix (`open_tracker`); a store that
fails during the run leaves the rest of the run untracked, with one such warning (`Tracker`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mlops_kit.config import LoadedConfig
from mlops_kit.fileio import file_lock, fsync_dir, pid_alive, stale_temp, temp_sibling

log = logging.getLogger(__name__)
PID_TAG, HOST_TAG, NOTE_TAG = "mlops.pid", "mlops.host", "mlops.note"
T = TypeVar("T")


def local_db(loaded: LoadedConfig) -> Path | None:
    """The kit's own SQLite store, or None when a tracking URI is configured."""
    if loaded.config.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return loaded.state_dir / "mlflow.db"


def tracking_uri(loaded: LoadedConfig) -> str:
    """The configured URI, else SQLite under the state folder."""
    db = local_db(loaded)
    if db is None:
        return str(loaded.config.tracking.uri or os.environ["MLFLOW_TRACKING_URI"])
    loaded.state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


# --- the local store ------------------------------------------------------------------------

def schema_problem(db: Path) -> str | None:
    """What keeps `db` from being a fully migrated MLflow store (None: nothing)."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return f"not a usable MLflow database ({exc})"
    head = _get_latest_schema_revision()
    found = rows[0][0] if rows else None
    return None if found == head else f"schema version {found}, not MLflow's {head} " \
        "(a migration that did not finish, or an older MLflow)"


def prepare_store(db: Path) -> None:
    """Make `db` a fully migrated store: built in a temp sibling and renamed in, under a lock;
    an unusable one is upgraded on a copy, or moved aside (a warning names where)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(db.with_name(db.name + ".lock")):
        for left in db.parent.glob(f".{db.name}.*"):
            if stale_temp(left):  # a store a killed process was building
                left.unlink(missing_ok=True)
        if db.is_file() and db.stat().st_size > 0:
            problem = schema_problem(db)
            if problem is None:
                return
            try:
                _build(db, source=db)
                log.warning("%s: %s; upgraded it to MLflow's schema", db, problem)
                return
            except Exception:  # any failure: keep the file aside, start a new store
                moved = _move_aside(db)
                log.warning("%s: %s, and it cannot be upgraded: moved it aside to %s and "
                            "started a new tracking store (its runs stay readable with "
                            "`mlflow ui --backend-store-uri sqlite:///%s`)", db, problem,
                            moved, moved)
        _build(db, source=None)


def _build(db: Path, source: Path | None) -> None:
    """Create (or copy `source` and migrate) the store in a temp file, then rename it to `db`."""
    import sqlalchemy
    from mlflow.store.db.utils import _all_tables_exist, _initialize_tables, _upgrade_db

    tmp = temp_sibling(db, "tmp")
    try:
        if source is not None:
            shutil.copy2(source, tmp)
        engine = sqlalchemy.create_engine(f"sqlite:///{tmp}")
        try:
            if _all_tables_exist(engine):
                _upgrade_db(engine)
            else:
                _initialize_tables(engine)
        finally:
            engine.dispose()
        _forget_engine(db)
        tmp.replace(db)
        fsync_dir(db.parent)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + "-journal").unlink(missing_ok=True)


def _move_aside(db: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    moved = db.with_name(f"{db.name}.broken-{stamp}")
    _forget_engine(db)
    db.replace(moved)
    for extra in ("-journal", "-wal", "-shm"):
        side = db.with_name(db.name + extra)
        if side.exists():
            side.replace(moved.with_name(moved.name + extra))
    return moved


def _forget_engine(db: Path) -> None:
    """Drop MLflow's cached engine of `db` so no pooled connection keeps the old file."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engines: dict[str, Any] = getattr(SqlAlchemyStore, "_engine_map", {})
    engine = engines.pop(f"sqlite:///{db}", None)
    if engine is not None:
        engine.dispose()


# --- runs left RUNNING by a killed process --------------------------------------------------

def end_orphan_runs(client: Any, experiment_ids: list[str]) -> list[str]:
    """Mark KILLED the RUNNING runs whose process (tagged pid on this host) is gone."""
    host = socket.gethostname()
    ended = []
    for run in client.search_runs(experiment_ids, "attributes.status = 'RUNNING'",
                                  max_results=1000):
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        client.set_tag(run.info.run_id, NOTE_TAG,
                       f"marked KILLED by a later run: its process {pid} was gone")
        client.set_terminated(run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
    if ended:
        log.warning("tracking: marked %d run(s) KILLED whose process had died: %s",
                    len(ended), ", ".join(ended))
    return ended


def has_orphan_runs(db: Path) -> bool:
    """Whether the local store holds RUNNING runs tagged with a dead pid (cheap, no mlflow)."""
    if not db.is_file() or db.stat().st_size == 0:
        return False
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE r.status = 'RUNNING' AND t.key = ?", (PID_TAG,)).fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False
    return any(v.isdigit() and not pid_alive(int(v)) for (v,) in rows)


def end_local_orphans(loaded: LoadedConfig) -> None:
    """End the local store's runs whose process died (a no-op without any)."""
    db = local_db(loaded)
    if db is None or not has_orphan_runs(db):
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    ids = [e.experiment_id for e in client.search_experiments()]
    end_orphan_runs(client, ids)


# --- the tracker ----------------------------------------------------------------------------

class Tracker:
    """A thin, explicit wrapper: one parent run per training, one nested run per trial.

    Every call after set-up fails soft: the first error (a store deleted, garbled, locked or on
    a full disk) is logged once as a warning naming the store and the fix, kept in `problem`,
    and every later call is skipped, so training finishes and its lineage says `tracking:
    incomplete` (`lineage_fields`). A run left RUNNING is ended by the next run."""

    def __init__(self, loaded: LoadedConfig) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        import mlflow

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.mlflow = mlflow
        self.db = local_db(loaded)
        if self.db is not None:
            prepare_store(self.db)
        prior = os.environ.get("MLFLOW_TRACKING_URI")
        self.uri = tracking_uri(loaded)
        mlflow.set_tracking_uri(self.uri)
        if prior is None:  # mlflow exports the URI; keep it from leaking into the next config
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        cfg = loaded.config
        name = cfg.tracking.experiment or f"{cfg.project}-{cfg.model.name}"
        if mlflow.get_experiment_by_name(name) is None:
            artifacts = (loaded.state_dir / "mlflow-artifacts" / name).resolve()
            with contextlib.suppress(Exception):
                mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
        self.experiment_id = mlflow.set_experiment(name).experiment_id
        self.client = mlflow.tracking.MlflowClient(self.uri)
        end_orphan_runs(self.client, [self.experiment_id])
        self.problem: str | None = None
        self._runs: list[str] = []

    @contextlib.contextmanager
    def run(self, name: str, nested: bool = False, tags: dict[str, str] | None = None
            ) -> Iterator[str]:
        """A run (nested under the current one if `nested`) for the block; its id, or "" when
        tracking has failed. An error in the block ends the run FAILED and goes on up."""
        run_id = self._call(f"starting the run '{name}'", self._start, name, nested, tags)
        if run_id is None:
            yield ""
            return
        self._runs.append(run_id)
        status = "FAILED"
        try:
            yield run_id
            status = "FINISHED"
        finally:
            self._runs.pop()
            self._call(f"ending the run '{name}'", self.client.set_terminated, run_id, status)

    def _start(self, name: str, nested: bool, tags: dict[str, str] | None) -> str:
        from mlflow.tracking.context.registry import resolve_tags

        owner = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
        parent = {"mlflow.parentRunId": self._runs[-1]} if nested and self._runs else {}
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags=resolve_tags({**owner, **parent, **(tags or {})}))
        return str(run.info.run_id)

    def log(self, params: dict[str, Any] | None = None,
            metrics: dict[str, float] | None = None) -> None:
        """Log params and metrics (NaN metrics left out) to the current run."""
        from mlflow.entities import Metric, Param

        if not self._runs:
            return
        now = int(time.time() * 1000)
        self._call("logging params and metrics", self.client.log_batch, self._runs[-1],
                   metrics=[Metric(k, v, now, 0) for k, v in (metrics or {}).items() if v == v],
                   params=[Param(k, str(v)[:500]) for k, v in (params or {}).items()])

    def artifacts(self, folder: Path, path: str) -> None:
        """Copy `folder` into the current run's artifacts under `path`."""
        if self._runs:
            self._call("logging the model's files", self.client.log_artifacts, self._runs[-1],
                       str(folder), path)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """`fn(...)`, or None once tracking has failed; the first failure is warned of."""
        if self.problem is not None:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # any failure of the store: this run goes on untracked
            self.problem = f"{what} failed ({_first_line(exc)})"
            log.warning("tracking incomplete for this run: %s: %s. Training goes on and the "
                        "model is registered as usual, its lineage saying `tracking: "
                        "incomplete`. %s", self.db or self.uri, self.problem, self._fix())
            return None

    def _fix(self) -> str:
        if self.db is None:
            return "Check that the tracking store is reachable and writable, or set tracking.uri"
        return (f"Free disk space and make {self.db} writable, stop any process holding it "
                f"locked, or move it aside (`mv {self.db} {self.db}.old`; the next run starts a "
                "new store, and a garbled one is moved aside by itself)")


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("(sqlite3.")), lines[0] if lines
                  else "")
    return f"{type(exc).__name__}: {detail}"[:300]


def lineage_fields(tracker: Tracker | None, wanted: bool) -> dict[str, str]:
    """What a model's lineage says of its tracking: `tracking` is complete, incomplete (with
    `tracking_problem`) or off."""
    if not wanted:
        return {"tracking": "off"}
    if tracker is None:
        return {"tracking": "incomplete", "tracking_problem": "the tracking store could not be "
                "opened (the run's warning names it)"}
    if tracker.problem is not None:
        return {"tracking": "incomplete", "tracking_problem": tracker.problem}
    return {"tracking": "complete"}


def open_tracker(loaded: LoadedConfig) -> Tracker | None:
    """A Tracker, or None with a warning naming the store and the fix: a tracking failure
    never blocks training (the model, its lineage and the run manifest do not need MLflow)."""
    try:
        return Tracker(loaded)
    except Exception as exc:  # any failure of the store, reported as one line
        where = local_db(loaded) or loaded.config.tracking.uri or "$MLFLOW_TRACKING_URI"
        log.warning("tracking disabled for this run: %s: %s: %s. Fix or remove that store "
                    "(a local mlflow.db is rebuilt when missing), or set tracking.uri; "
                    "training goes on untracked", where, type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "")
        return None
