"""Run the pipeline: stage inputs, run each step's job, store and publish its outputs, cache.

A step is skipped (cached) when its code, its config sections, its parameters and the content
of its inputs are unchanged and its stored outputs are intact, as SageMaker step caching does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import mlops_kit
from mlops_kit.config import LoadedConfig
from mlops_kit.extras import MissingExtra
from mlops_kit.fileio import digest_dir, work_dir
from mlops_kit.pipeline import Pipeline, Step, load_pipeline
from mlops_kit.registry import fetch_production
from mlops_kit.runtime import lake
from mlops_kit.runtime.recovery import recover
from mlops_kit.runtime.targets import Target, open_target
from mlops_kit.steps.base import Job, StepError, read_json, write_json

CONFIG_SECTIONS = {
    "ingest": ("data.source", "data.schema.table"),
    "validate": ("data.schema", "data.max_bad_fraction"),
    "features": ("data.schema", "features", "model.seed"),
    "train": ("model", "features", "quality_gate.metric", "data.schema.target"),
    "evaluate": ("quality_gate", "data.schema.target"),
    "register": ("model.name", "registry"),
}


class RunFailed(Exception):
    """A step failed; the manifest and report of the run are still written."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class StepRecord:
    name: str
    status: str = "pending"
    key: str = ""
    seconds: float = 0.0
    compute_seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    target: str
    steps: list[StepRecord]
    seconds: float = 0.0
    status: str = "running"
    manifest: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)


Listener = Callable[[str, StepRecord], None]


def code_digest() -> str:
    """Content hash of the kit's own code: any change to it invalidates cached steps."""
    digest = hashlib.sha256()
    root = Path(mlops_kit.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def config_section(loaded: LoadedConfig, dotted: str) -> Any:
    node: Any = loaded.config.model_dump(mode="json", by_alias=True)
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


class Runner:
    """Executes one pipeline run against a target."""

    def __init__(self, loaded: LoadedConfig, target: Target, *, use_cache: bool = True,
                 params: dict[str, str] | None = None, listener: Listener | None = None) -> None:
        self.loaded = loaded
        self.target = target
        self.pipeline: Pipeline = load_pipeline(loaded)
        self.use_cache = use_cache
        self.params = dict(params or {})
        self.params.setdefault("ingest_date", dt.date.today().isoformat())
        self.listener = listener or (lambda event, rec: None)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self.run_id = f"{stamp}-{uuid.uuid4().hex[:6]}"
        self.run_dir = loaded.state_dir / "runs" / self.run_id
        self.cache_dir = loaded.state_dir / "cache" / target.name
        self.code = code_digest()
        self.channels: dict[str, dict[str, Any]] = {}

    def run(self) -> RunResult:
        start = time.perf_counter()
        records = [StepRecord(s.name) for s in self.pipeline.steps]
        result = RunResult(self.run_id, self.run_dir, self.target.name, records)
        recover(self.loaded)
        with work_dir(self.loaded.state_dir, self.run_id) as work:
            self._steps(records, result, work, start)
        return result

    def _steps(self, records: list[StepRecord], result: RunResult, work: Path,
               start: float) -> None:
        """Run each step in `work`; the manifest is written however the run ends."""
        try:
            for step, rec in zip(self.pipeline.steps, records, strict=True):
                self.listener("start", rec)
                try:
                    self._run_step(step, rec, work / step.name)
                except Exception as exc:
                    self._fail(rec, exc, records, result, work / step.name / "out")
                    raise RunFailed(f"step {step.name} failed: {rec.error}", result) from exc
                self.listener("end", rec)
            result.status = "succeeded"
        finally:
            result.seconds = time.perf_counter() - start
            result.manifest = self._manifest(result)
            write_json(result.manifest, self.run_dir / "manifest.json")

    def _fail(self, rec: StepRecord, exc: Exception, records: list[StepRecord],
              result: RunResult, out: Path) -> None:
        """Record a failure; keep what the step wrote (e.g. its quarantine) in the run folder,
        and an unexpected error's traceback in `<step>.log`."""
        rec.status, rec.error = "failed", str(exc)
        if out.is_dir():
            kept = self.run_dir / rec.name
            shutil.copytree(out, kept, dirs_exist_ok=True)
            rec.outputs = {ch.name: {"uri": str(ch), **_digest_dir(ch)} for ch in
                           sorted(kept.iterdir()) if ch.is_dir()}
            rec.error = rec.error.replace(str(out), str(kept))
        if not isinstance(exc, StepError | MissingExtra):
            log = self.run_dir / f"{rec.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("".join(traceback.format_exception(exc)))
            rec.error = f"{type(exc).__name__}: {exc} (traceback in {log})"
        self.listener("end", rec)
        for later in records[records.index(rec) + 1:]:
            later.status = "not run"
        result.status = "failed"

    # --- one step ---------------------------------------------------------------------------

    def _run_step(self, step: Step, rec: StepRecord, work: Path) -> None:
        t0 = time.perf_counter()
        inputs = self._resolve_inputs(step, work / "in")
        rec.inputs = {ch: {"uri": v["uri"], "digest": v["digest"]} for ch, v in inputs.items()}
        rec.key = self._key(step, inputs)
        cached = self._cached(step, rec.key) if (self.use_cache and step.cache) else None
        if cached is not None:
            rec.status, rec.summary, rec.outputs = "cached", cached["summary"], cached["outputs"]
            rec.compute_seconds = 0.0
        else:
            self._execute(step, rec, inputs, work)
        for channel, out in step.outputs.items():
            self.channels[f"{step.name}.{channel}"] = rec.outputs[channel]
            self._publish(out.publish, out.online_store, rec.outputs[channel], work / "pub")
        rec.seconds = time.perf_counter() - t0

    def _execute(self, step: Step, rec: StepRecord, inputs: dict[str, dict[str, Any]],
                 work: Path) -> None:
        in_dirs = {ch: Path(v["local"]) for ch, v in inputs.items() if v.get("local")}
        out_dirs = {ch: work / "out" / ch for ch in step.outputs}
        params = {**self.params, "run_id": self.run_id}
        services = {"registry": self.target.registry}
        job = Job(self.loaded, in_dirs, out_dirs, params, services)
        c0 = time.perf_counter()
        rec.summary = step.module.run(job)
        rec.compute_seconds = time.perf_counter() - c0
        rec.status = "ran"
        for channel, local in out_dirs.items():
            local.mkdir(parents=True, exist_ok=True)
            uri = self.target.artifacts.uri(step.name, rec.key[:16], channel)
            self.target.artifacts.put_dir(local, uri)
            rec.outputs[channel] = {"uri": uri, **_digest_dir(local)}
        if step.cache:
            write_json({"summary": rec.summary, "outputs": rec.outputs},
                       self.cache_dir / step.name / f"{rec.key}.json")

    def _resolve_inputs(self, step: Step, work: Path) -> dict[str, dict[str, Any]]:
        resolved: dict[str, dict[str, Any]] = {}
        for channel, source in step.inputs.items():
            if source == "registry.production":
                resolved[channel] = self._production_model(work / channel)
                continue
            out = self.channels[source]
            local = self._stage(out["uri"], work / channel)
            resolved[channel] = {"uri": out["uri"], "digest": out["digest"], "local": str(local)}
        return resolved

    def _stage(self, uri: str, dest: Path) -> Path:
        if self.target.is_local:
            return Path(uri)
        return self.target.artifacts.get_dir(uri, dest)

    def _production_model(self, dest: Path) -> dict[str, Any]:
        model = self.loaded.config.model.name
        current = fetch_production(self.target.registry, model, dest)
        if current is None:
            return {"uri": None, "digest": "none"}
        return {"uri": current.artifact_uri, "digest": f"{model}:{current.version}",
                "local": str(dest)}

    def _key(self, step: Step, inputs: dict[str, dict[str, Any]]) -> str:
        parts: dict[str, Any] = {
            "code": self.code,
            "config": {s: config_section(self.loaded, s)
                       for s in CONFIG_SECTIONS.get(step.name, ())},
            "inputs": {ch: v["digest"] for ch, v in inputs.items()},
        }
        if step.name == "ingest":
            parts["params"] = {"ingest_date": self.params["ingest_date"]}
            parts["source"] = lake.source_digest(self.loaded)
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def source_step_cached(self, name: str) -> bool:
        """Whether a step without inputs (ingest) would be a cache hit in this run."""
        step = self.pipeline.step(name)
        return not step.inputs and self._cached(step, self._key(step, {})) is not None

    def _cached(self, step: Step, key: str) -> dict[str, Any] | None:
        path = self.cache_dir / step.name / f"{key}.json"
        if not path.is_file():
            return None
        record = read_json(path)
        for out in record["outputs"].values():
            if self.target.artifacts.listing(out["uri"]) != {
                    f: meta["bytes"] for f, meta in out["files"].items()}:
                return None
        return dict(record)

    def _publish(self, zone: str | None, online: bool, out: dict[str, Any], work: Path) -> None:
        if online:
            local = self._stage(out["uri"], work / "online")
            latest = pd.read_parquet(local / "latest.parquet")
            self.target.online.put(self.loaded.config.features.group, latest)
        if zone:
            local = self._stage(out["uri"], work / zone)
            lake.publish(self.target, self.loaded, zone, local)

    # --- the record of the run --------------------------------------------------------------

    def _manifest(self, result: RunResult) -> dict[str, Any]:
        from mlops_kit.steps.register import git_commit, package_versions

        return {
            "run_id": result.run_id, "status": result.status, "target": result.target,
            "seconds": round(result.seconds, 3),
            "compute_seconds": round(sum(s.compute_seconds for s in result.steps), 3),
            "config": {"path": str(self.loaded.path), "digest": self.loaded.digest,
                       "env": self.loaded.env},
            "pipeline": {"name": self.pipeline.name, "path": str(self.pipeline.path)},
            "code_digest": self.code, "git": git_commit(self.loaded.root),
            "packages": package_versions(), "params": self.params,
            "steps": [s.__dict__ for s in result.steps],
        }


def _digest_dir(folder: Path) -> dict[str, Any]:
    """The channel's content hash and files, and the data version a `_dataset.json` names."""
    out = digest_dir(folder)
    dataset = folder / "_dataset.json"
    if dataset.is_file():
        out["data_version"] = read_json(dataset).get("data_version")
    return out


def run_pipeline(loaded: LoadedConfig, target: str = "local", *, use_cache: bool = True,
                 params: dict[str, str] | None = None,
                 listener: Listener | None = None) -> RunResult:
    """Run the config's pipeline on `target` and write the run's manifest and report."""
    from mlops_kit.runtime.report import write_report

    with open_target(loaded, target) as tgt:
        runner = Runner(loaded, tgt, use_cache=use_cache, params=params, listener=listener)
        try:
            result = runner.run()
        finally:
            if runner.run_dir.joinpath("manifest.json").is_file():
                write_report(runner.run_dir, loaded)
    return result


