"""Experiment tracking in MLflow: a local SQLite store by default, any tracking URI by config."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_kit.config import LoadedConfig


def tracking_uri(loaded: LoadedConfig) -> str:
    """The configured URI, else SQLite under the state folder."""
    uri = loaded.config.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    loaded.state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{loaded.state_dir / 'mlflow.db'}"


class Tracker:
    """A thin, explicit wrapper: one parent run per training, one nested run per trial."""

    def __init__(self, loaded: LoadedConfig) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        import mlflow

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.mlflow = mlflow
        prior = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(tracking_uri(loaded))
        if prior is None:  # mlflow exports the URI; keep it from leaking into the next config
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        cfg = loaded.config
        name = cfg.tracking.experiment or f"{cfg.project}-{cfg.model.name}"
        if mlflow.get_experiment_by_name(name) is None:
            artifacts = (loaded.state_dir / "mlflow-artifacts" / name).resolve()
            with contextlib.suppress(Exception):
                mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
        mlflow.set_experiment(name)

    @contextlib.contextmanager
    def run(self, name: str, nested: bool = False, tags: dict[str, str] | None = None
            ) -> Iterator[str]:
        with self.mlflow.start_run(run_name=name, nested=nested, tags=tags or {}) as run:
            yield run.info.run_id

    def log(self, params: dict[str, Any] | None = None,
            metrics: dict[str, float] | None = None) -> None:
        if params:
            self.mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        if metrics:
            self.mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})

    def artifacts(self, folder: Path, path: str) -> None:
        self.mlflow.log_artifacts(str(folder), artifact_path=path)
