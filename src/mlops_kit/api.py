"""The Python API: one project (a config plus its state) for notebooks, scripts and the CLI.

    from mlops_kit import Project
    project = Project.load("mlops.yaml")
    result = project.run(train_only=True)
    project.predict([{"tenure_months": 3, ...}])

Every result is a dataclass with `to_dict()` (plain JSON types): what `--json` prints.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_kit.config import LoadedConfig, load_config

if TYPE_CHECKING:
    import pandas as pd

    from mlops_kit.adapters.rules import Problem
    from mlops_kit.config.model import ProjectConfig
    from mlops_kit.monitoring.monitor import MonitorResult
    from mlops_kit.registry import ModelVersion
    from mlops_kit.runtime.loop import LoopResult
    from mlops_kit.runtime.runner import Listener
    from mlops_kit.runtime.runner import RunResult as PipelineRun
    from mlops_kit.serving.acks import Ack
    from mlops_kit.serving.endpoint import EndpointState

Say = Callable[[str, str], None]
REFUSED_SHOWN_S = 3600  # `endpoint` counts refused connections of the last hour


@dataclass
class Validation:
    """What `validate` found: problems (each a cloud or file refusal), notes and rules skipped."""

    path: str
    problems: list[Problem]
    notes: list[str]
    skipped: list[str]
    environments: dict[str, str]  # checked environment -> "cloud region"

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok,
                "problems": [{**asdict(p), "text": str(p)} for p in self.problems],
                "notes": self.notes, "skipped": self.skipped,
                "environments": self.environments}


@dataclass
class Gate:
    """The quality gate's decision on the run's candidate."""

    passed: bool
    metric: str
    value: float | None
    production: float | None  # the production version's value on the same rows, if any
    reasons: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """One `run`: its steps (ran or cached), the gate, the registered version, the metrics
    and, locally, the loop's outcome (`loop`, or why it was skipped)."""

    run_id: str
    status: str
    target: str
    run_dir: Path
    seconds: float
    steps: dict[str, str]  # step -> ran | cached | failed | ...
    gate: Gate | None
    registered_version: int | None  # the new version, or the unchanged one it equals
    metrics: dict[str, float]
    pipeline: PipelineRun = field(repr=False)
    loop: LoopResult | None = None
    loop_skipped: str | None = None

    @property
    def ran(self) -> list[str]:
        return [s for s, status in self.steps.items() if status == "ran"]

    @property
    def cached(self) -> list[str]:
        return [s for s, status in self.steps.items() if status == "cached"]

    def to_dict(self) -> dict[str, Any]:
        loop = self.loop
        return {"run_id": self.run_id, "status": self.status, "target": self.target,
                "run_dir": str(self.run_dir), "seconds": round(self.seconds, 3),
                "steps": self.steps, "ran": self.ran, "cached": self.cached,
                "gate": asdict(self.gate) if self.gate else None,
                "registered_version": self.registered_version, "metrics": self.metrics,
                "loop": None if loop is None else {
                    "outcome": loop.outcome, "start_version": loop.start_version,
                    "final_version": loop.final_version, "folder": str(loop.folder)},
                "loop_skipped": self.loop_skipped}


@dataclass
class VersionEntry:
    """A registry version as `registry list` shows it; `corrupt` is the digest failure."""

    version: ModelVersion
    production: bool
    corrupt: str | None = None  # the short reason ("digest mismatch"), None: files check out
    corrupt_detail: str | None = None  # the file and what is wrong with it

    def to_dict(self) -> dict[str, Any]:
        return {**self.version.to_dict(), "production": self.production,
                "corrupt": self.corrupt, "corrupt_detail": self.corrupt_detail}


@dataclass
class Listing:
    """Every version of the model, with the registry's warnings (damaged records, folders
    missing from the index)."""

    model: str
    metric: str
    versions: list[VersionEntry]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "metric": self.metric,
                "versions": [v.to_dict() for v in self.versions], "warnings": self.warnings}


@dataclass
class EndpointStatus:
    """The local endpoint: its state, the live server workers, refused connections."""

    state: EndpointState
    workers: list[Ack]
    refused: dict[str, int]  # reason -> connections refused before the app, last hour

    def to_dict(self) -> dict[str, Any]:
        return {**self.state.to_dict(), "workers": [asdict(a) for a in self.workers],
                "refused_last_hour": self.refused}


class Registry:
    """The model registry of a project's config (local, MLflow or a cloud's)."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.model = loaded.config.model.name

    def listing(self) -> Listing:
        """Every version, local copies checked against their digests (a corrupt version is
        never production), and the registry's warnings."""
        from mlops_kit.registry import open_registry, production
        from mlops_kit.registry.local import LocalRegistry

        reg = open_registry(self.loaded)
        versions, current = reg.versions(self.model), production(reg, self.model)
        local = reg if isinstance(reg, LocalRegistry) else None  # clouds check on download
        entries = []
        for v in versions:
            bad = local.verify(v) if local else None
            entries.append(VersionEntry(
                v, bool(current and current.version == v.version),
                bad.reason if bad else None,
                f"{bad.where(local.path(v))}: {bad.what}" if bad and local else None))
        warnings = [str(d) for d in local.damaged_records(self.model)] if local else []
        unindexed = local.unindexed(self.model) if local else []
        if unindexed:
            warnings.append(f"version folders {', '.join(map(str, unindexed))} are not in the "
                            "index (a register was interrupted): `mlops-kit registry repair` "
                            "adds them")
        return Listing(self.model, self.loaded.config.quality_gate.metric, entries, warnings)

    def versions(self) -> list[VersionEntry]:
        return self.listing().versions

    def production(self) -> ModelVersion | None:
        """The newest approved version, or None."""
        from mlops_kit.registry import open_registry, production

        return production(open_registry(self.loaded), self.model)

    def approve(self, version: int) -> ModelVersion:
        return self._set(version, "Approved")

    def reject(self, version: int) -> ModelVersion:
        return self._set(version, "Rejected")

    def _set(self, version: int, status: str) -> ModelVersion:
        from mlops_kit.registry import open_registry

        return open_registry(self.loaded).set_status(self.model, version, status)  # type: ignore[arg-type]


class Project:
    """A project: its loaded config (with an environment's overrides and `sets`) and state."""

    def __init__(self, loaded: LoadedConfig, sets: Sequence[str] = ()) -> None:
        self.loaded = loaded
        self.sets = tuple(sets)

    @classmethod
    def load(cls, path: str | Path = "mlops.yaml", *, env: str | None = None,
             sets: Iterable[str] = (), model: str | None = None) -> Project:
        """Load and check the config; ConfigError (one message) when it cannot be used."""
        sets = tuple(sets)
        return cls(load_config(path, env=env, sets=list(sets), model=model), sets)

    @property
    def config(self) -> ProjectConfig:
        return self.loaded.config

    @property
    def registry(self) -> Registry:
        return Registry(self.loaded)

    def check(self) -> Validation:
        """Every rule `mlops-kit validate` runs: the file, the pipeline, the data source and
        each environment (or this project's) against its cloud's rules."""
        from mlops_kit.adapters.checks import check

        report = check(self.loaded.path, env=self.loaded.env, sets=self.sets)
        envs = {k: f"{v.cloud} {v.region}" for k, v in self.config.environments.items()
                if self.loaded.env in (None, k)}
        return Validation(str(self.loaded.path), report.problems, report.notes,
                          report.skipped, envs)

    def validate(self) -> list[Problem]:
        """The problems `check` finds (empty: the config passes)."""
        return self.check().problems

    def run(self, target: str = "local", *, train_only: bool = False, no_cache: bool = False,
            ingest_date: str | None = None, listener: Listener | None = None,
            trained: Callable[[PipelineRun], None] | None = None,
            say: Say | None = None) -> RunResult:
        """The training pipeline, then (locally, unless `train_only` or the loop is off) the
        loop. RunFailed when a step fails; LoopFailed, DeployError or RegistryError when the
        loop stops. `listener` sees each step, `trained` the finished pipeline (before the
        loop), `say` each loop message."""
        from mlops_kit.runtime.loop import Loop, LoopSkipped
        from mlops_kit.runtime.runner import run_pipeline

        params = {"ingest_date": ingest_date} if ingest_date else {}
        pipeline = run_pipeline(self.loaded, target, use_cache=not no_cache, params=params,
                                listener=listener)
        if trained:
            trained(pipeline)
        result = run_result(pipeline, self.config.quality_gate.metric)
        if not self.loops(target, train_only):
            return result
        try:
            result.loop = Loop(self.loaded, say=say).run(pipeline)
        except LoopSkipped as exc:
            result.loop_skipped = str(exc)
        return result

    def loops(self, target: str = "local", train_only: bool = False) -> bool:
        """Whether `run` goes on to the loop after training: locally, with `loop.enabled`."""
        return not train_only and target == "local" and self.config.loop.enabled

    def predict(self, rows: pd.DataFrame | Sequence[dict[str, Any]],
                version: int | None = None) -> list[dict[str, Any]]:
        """What POST /invocations answers for `rows` (source rows, as a JSON request), from
        `version` (default production): one JSON object per row. BadRequest for bad rows."""
        import pandas as pd

        from mlops_kit.runtime.serving import fetch_version
        from mlops_kit.serving.handler import handle, model_fn

        body = (rows.to_json(orient="records", date_format="iso")
                if isinstance(rows, pd.DataFrame) else json.dumps(list(rows), default=str))
        model = model_fn(fetch_version(self.loaded, version)[0])
        answer, _ = handle(model, body.encode(), "application/json", "application/json")
        predictions: list[dict[str, Any]] = json.loads(answer)["predictions"]
        return predictions

    def monitor(self, input_path: str | Path | None = None, *, captured: bool = False,
                since_minutes: float | None = None, version: int | None = None,
                output: str | Path | None = None) -> MonitorResult:
        """Drift of source rows (a file, or the endpoint's captured requests) against a
        version's baseline (default production); MonitorInputError for bad input."""
        from mlops_kit.monitoring.monitor import MonitorInputError
        from mlops_kit.monitoring.monitor import monitor as run_monitor

        if captured == (input_path is not None):
            raise MonitorInputError("give --input PATH or --captured (one of them)")
        path = (self._captured_to_file(version, since_minutes) if captured
                else Path(str(input_path)))
        return run_monitor(self.loaded, path, version, Path(output) if output else None)

    def _captured_to_file(self, version: int | None, since_minutes: float | None) -> Path:
        """The captured requests as a Parquet file under the state folder."""
        from mlops_kit.monitoring.monitor import MonitorInputError
        from mlops_kit.runtime.serving import capture_root, fetch_version
        from mlops_kit.serving.capture import captured_rows
        from mlops_kit.steps.features import FeatureSet

        folder, _ = fetch_version(self.loaded, version)
        features = FeatureSet.load(folder)
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=since_minutes)
                 if since_minutes else None)
        root = capture_root(self.loaded)
        rows = captured_rows(root, features, since)
        if rows.empty:
            raise MonitorInputError(f"no captured requests in {root}"
                                    + (f" in the last {since_minutes:g} minutes" if since
                                       else "") + ": serve traffic first, or pass --input")
        out = self.loaded.state_dir / "monitoring" / "captured.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        rows[features.inputs].astype("string").to_parquet(out)
        return out

    def endpoint(self) -> EndpointStatus:
        """The local endpoint's variants, traffic, shadow, deployments, workers and the
        connections refused before the app in the last hour."""
        from mlops_kit.runtime.deploy import endpoint_store
        from mlops_kit.serving import acks
        from mlops_kit.serving.metrics import read_refused

        store = endpoint_store(self.loaded)
        return EndpointStatus(store.read(), acks.live(store.folder / acks.FOLDER),
                              read_refused(store.folder / "metrics",
                                           since=time.time() - REFUSED_SHOWN_S))

    def query(self, sql: str, dialect: str = "athena") -> pd.DataFrame:
        """The lake's tables queried with SQL (Athena/Trino SQL is translated for DuckDB)."""
        from mlops_kit.runtime.lake import query

        return query(self.loaded, sql, dialect)


def run_result(pipeline: PipelineRun, metric: str) -> RunResult:
    """The typed summary of a pipeline run (gate and metrics from its evaluation)."""
    steps = {s.name: s.status for s in pipeline.steps}
    summary = next((s.summary for s in pipeline.steps if s.name == "evaluate"), {})
    evaluation = _evaluation(pipeline) or {}
    gate = None
    if "passed" in summary:
        gate = Gate(bool(summary["passed"]), metric, summary.get(metric),
                    summary.get("production"), list(evaluation.get("reasons") or []))
    register = next((s.summary for s in pipeline.steps if s.name == "register"), {})
    version = register.get("version", register.get("already_version"))
    return RunResult(pipeline.run_id, pipeline.status, pipeline.target, pipeline.run_dir,
                     pipeline.seconds, steps, gate, version,
                     dict(evaluation.get("metrics") or {}), pipeline)


def _evaluation(pipeline: PipelineRun) -> dict[str, Any] | None:
    """The evaluate step's evaluation.json, if it ran and wrote a local file."""
    step = next((s for s in pipeline.steps if s.name == "evaluate"), None)
    uri = (step.outputs.get("evaluation") or {}).get("uri") if step else None
    path = Path(uri) / "evaluation.json" if uri else None
    if path is None or not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc
