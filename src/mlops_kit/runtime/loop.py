"""The closed loop on this machine: serve the production model, replay traffic, inject drift,
detect it against the training baseline, retrain, and deploy the new model by canary, or
change nothing when it does not pass the gate.

Every stage is the real thing: the endpoint server over HTTP, data capture, the monitor's drift
checks and metrics sink, the training pipeline with its quality gate, the guarded deployment.
"""

from __future__ import annotations

import datetime as dt
import http.client
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.config import LoadedConfig
from mlops_kit.monitoring.baseline import read_baseline
from mlops_kit.monitoring.drift import DriftReport, compute_drift
from mlops_kit.monitoring.plots import plot_drift
from mlops_kit.monitoring.sink import drift_metrics, open_sink
from mlops_kit.registry import open_registry, production
from mlops_kit.runtime.deploy import Deployer, endpoint_store
from mlops_kit.runtime.runner import RunFailed, RunResult, run_pipeline
from mlops_kit.runtime.serving import capture_root, endpoint_settings, fetch_version
from mlops_kit.serving.app import BackgroundServer
from mlops_kit.serving.capture import captured_rows
from mlops_kit.steps.base import write_json
from mlops_kit.steps.features import FeatureSet

Say = Callable[[str, str], None]


class LoopFailed(Exception):
    """The loop could not go on."""


class LoopSkipped(LoopFailed):
    """Nothing to serve yet (no approved version): not an error of the run."""


@dataclass
class Traffic:
    """What one replay sent and got back."""

    requests: int = 0
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    versions: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {"requests": self.requests, "rows": self.rows, "errors": self.errors,
                "seconds": round(self.seconds, 2),
                "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0,
                "p50_ms": round(float(np.nanpercentile(lat, 50)), 2),
                "p99_ms": round(float(np.nanpercentile(lat, 99)), 2),
                "versions": dict(self.versions)}


@dataclass
class Phase:
    name: str
    traffic: dict[str, Any]
    drift: dict[str, Any] | None = None
    plots: list[str] = field(default_factory=list)


@dataclass
class LoopResult:
    loop_id: str
    folder: Path
    events: list[dict[str, Any]]
    phases: list[Phase]
    start_version: int
    final_version: int
    outcome: str  # promoted, rolled back, unchanged, no drift


def request_csv(frame: pd.DataFrame, features: FeatureSet) -> list[str]:
    """Each row of `frame` as a request CSV line (the model's input columns, ISO times)."""
    out = frame[features.inputs].copy()
    for name in features.inputs:
        if features.schema.column(name).type == "timestamp":
            out[name] = pd.to_datetime(out[name]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out.to_csv(header=False, index=False).splitlines()


def replay(port: int, lines: list[str], rows_per_request: int, concurrency: int,
           until: threading.Event | None = None) -> Traffic:
    """POST `lines` in requests of `rows_per_request` rows from `concurrency` connections;
    with `until`, repeat them until it is set."""
    bodies = ["\n".join(lines[i:i + rows_per_request]) + "\n"
              for i in range(0, len(lines), rows_per_request)]
    traffic, lock = Traffic(), threading.Lock()

    def worker(share: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            for body in share:
                t0 = time.perf_counter()
                conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
                resp = conn.getresponse()
                resp.read()
                ms = (time.perf_counter() - t0) * 1e3
                version = resp.getheader("x-mlops-model-version") or "?"
                with lock:
                    traffic.requests += 1
                    traffic.rows += body.count("\n")
                    traffic.errors += resp.status != 200
                    traffic.latencies_ms.append(ms)
                    traffic.versions[version] = traffic.versions.get(version, 0) + 1
            if until is None or until.is_set():
                break
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, [bodies[i::concurrency] for i in range(concurrency)]))
    traffic.seconds = time.perf_counter() - start
    return traffic


class Loop:
    """Drives one pass of the loop after the first training run."""

    def __init__(self, loaded: LoadedConfig, say: Say | None = None) -> None:
        self.loaded = loaded
        self.cfg = loaded.config
        self.say = say or (lambda stage, message: None)
        self.loop_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
        self.folder = loaded.state_dir / "loops" / self.loop_id
        self.started = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self.phases: list[Phase] = []
        self.rng = np.random.default_rng(self.cfg.loop.seed)

    def event(self, stage: str, message: str) -> None:
        self.events.append({"t": round(time.monotonic() - self.started, 2), "stage": stage,
                            "message": message})
        self.say(stage, message)

    # --- the whole pass -----------------------------------------------------------------

    def run(self, first: RunResult) -> LoopResult:
        chosen = production(open_registry(self.loaded), self.cfg.model.name)
        if chosen is None:
            raise LoopSkipped("no model version is approved, so there is nothing to serve "
                              f"(approve one with `mlops-kit registry approve N`; run report "
                              f"in {first.run_dir})")
        settings = endpoint_settings(self.loaded, chosen.version, workers=1)
        start_version = self._live()
        self.event("deploy", f"endpoint serves version {start_version} (production)")
        with BackgroundServer(settings) as server:
            self.event("serve", f"endpoint up on http://127.0.0.1:{server.port}")
            steady = self._phase(server.port, "steady traffic", self._traffic(0.0))
            drifted_rows = self._traffic(self.cfg.loop.drift_shift)
            drifted = self._phase(server.port, "drifted traffic", drifted_rows)
            outcome = "no drift"
            if drifted.drift and drifted.drift["verdict"] == "drift":
                outcome = self._retrain_and_deploy(server.port, drifted_rows)
            if steady.drift and steady.drift["verdict"] == "drift":
                self.event("monitor", "warning: drift was flagged on same-distribution traffic")
            if outcome == "promoted":
                self._phase(server.port, "after promotion", drifted_rows)
        result = LoopResult(self.loop_id, self.folder, self.events, self.phases, start_version,
                            self._live(), outcome)
        self._write(result)
        return result

    def _live(self) -> int:
        live = endpoint_store(self.loaded).read().live
        return live.version if live else 0

    # --- traffic and monitoring ---------------------------------------------------------

    def _traffic(self, shift: float) -> pd.DataFrame:
        """Rows like the training data (shift 0) or drifted ones, with their labels."""
        loop = self.cfg.loop
        source = self.cfg.data.source
        if source.kind == "generator":
            from mlops_kit.datasets.churn import generate

            seed = loop.seed + (1 if shift else 0)
            return generate(loop.replay_rows, seed=seed, shift=shift, start=source.start,
                            dirty_fraction=0.0)
        rows = self._held_out()  # each row once: repeats would inflate the drift tests' power
        sample = rows.sample(min(loop.replay_rows, len(rows)), random_state=loop.seed)
        return perturb(sample.reset_index(drop=True), self.cfg.table, shift, self.rng)

    def _held_out(self) -> pd.DataFrame:
        features = self.loaded.state_dir / "artifacts" / "features"
        runs = sorted(features.glob("*/training_set/test_source.parquet"),
                      key=lambda p: p.stat().st_mtime)
        if not runs:
            raise LoopFailed(f"no held-out rows to replay under {features}")
        return pd.read_parquet(runs[-1])

    def _phase(self, port: int, name: str, rows: pd.DataFrame) -> Phase:
        model_dir, _ = fetch_version(self.loaded, self._live())
        features = FeatureSet.load(model_dir)
        since = dt.datetime.now(dt.UTC)
        loop = self.cfg.loop
        traffic = replay(port, request_csv(rows, features), loop.request_rows, loop.concurrency)
        summary = traffic.summary()
        self.event("traffic", f"{name}: {summary['requests']} requests ({summary['rows']} rows), "
                              f"{summary['errors']} errors, p99 {summary['p99_ms']} ms")
        time.sleep(0.6)  # the server flushes its capture every 0.25 s
        captured = captured_rows(capture_root(self.loaded), features, since)
        what = "captured rows"
        if captured.empty:
            self.event("monitor", f"{name}: no captured inputs (serving.capture is off, "
                                  "redacted or sampled to 0): monitoring the rows sent instead")
            captured, what = rows, "rows sent"
        phase = Phase(name, summary)
        report = self._monitor(captured[features.inputs], model_dir, name, phase)
        phase.drift = report.to_dict()
        self.phases.append(phase)
        verdict = (f"drift in {', '.join(report.drifted_features)}" if report.verdict == "drift"
                   else "no drift")
        self.event("monitor", f"{name}: {len(captured)} {what} vs the training baseline "
                              f"of version {self._live()}: {verdict}")
        return phase

    def _monitor(self, rows: pd.DataFrame, model_dir: Path, name: str,
                 phase: Phase) -> DriftReport:
        baseline = read_baseline(model_dir / "baseline")
        report = compute_drift(rows, baseline, self.cfg.monitoring)
        folder = self.folder / name.replace(" ", "_")
        phase.plots = [str(p) for p in plot_drift(report, rows, baseline, folder)]
        open_sink(self.loaded).publish(drift_metrics(report, self.cfg.model.name))
        return report

    # --- retraining and deployment ------------------------------------------------------

    def _retrain_and_deploy(self, port: int, drifted: pd.DataFrame) -> str:
        self.event("retrain", "drift past the thresholds: the training pipeline starts")
        fresh = self._retrain_config()
        before = self._live()
        try:
            day = self._ingest_date(fresh)
            self.event("retrain", f"the data is ingested as raw partition ingest_date={day}")
            result = run_pipeline(fresh, params={"ingest_date": day})
        except RunFailed as exc:
            self.event("retrain", f"retraining failed: {exc}; nothing changes")
            return "unchanged"
        evaluation = result.step("evaluate").summary
        registered = result.step("register").summary
        metric = self.cfg.quality_gate.metric
        self.event("retrain", f"run {result.run_id}: {metric} {evaluation.get(metric)}, gate "
                              f"{'passed' if evaluation.get('passed') else 'failed'}")
        candidate = production(open_registry(self.loaded), self.cfg.model.name)
        if registered.get("already_version"):
            self.event("deploy", f"the retrained model is identical to version "
                                 f"{registered['already_version']} (the source holds no new "
                                 "data): production stays as it is")
            return "unchanged"
        if not registered.get("registered") or candidate is None or candidate.version == before:
            self.event("deploy", "no new approved version: production stays as it is")
            return "unchanged"
        return self._canary(port, candidate.version, drifted)

    def _ingest_date(self, fresh: LoadedConfig) -> str:
        """The newest raw partition's date when it already holds this very source (all steps
        are then cached), else the day after it (today at the earliest): nothing is
        overwritten."""
        from mlops_kit.runtime.runner import Runner
        from mlops_kit.runtime.targets import open_target

        raw = self.loaded.state_dir / "lake" / "raw"
        days = [dt.date.fromisoformat(p.name.split("=", 1)[1])
                for p in raw.glob("*/ingest_date=*")]
        if days:
            with open_target(fresh, "local") as target:
                runner = Runner(fresh, target, params={"ingest_date": max(days).isoformat()})
                if runner.source_step_cached("ingest"):
                    return max(days).isoformat()
        newest = max([dt.date.today() - dt.timedelta(days=1), *days])
        return (newest + dt.timedelta(days=1)).isoformat()

    def _retrain_config(self) -> LoadedConfig:
        source = self.cfg.data.source
        if source.kind != "generator":
            return self.loaded  # the user's source: retraining reads whatever it holds now
        return self.loaded.with_values({"data.source.shift": self.cfg.loop.drift_shift,
                                        "data.source.seed": source.seed + 1})

    def _canary(self, port: int, version: int, drifted: pd.DataFrame) -> str:
        loop = self.cfg.loop
        cfg = self.cfg.serving.deployment.model_copy(update={
            "strategy": "canary", "wait_s": loop.bake_s, "termination_wait_s": loop.bake_s / 2,
            "alarm_period_s": min(1.0, loop.bake_s / 2), "min_invocations": 5})
        model_dir, _ = fetch_version(self.loaded, self._live())
        lines = request_csv(drifted, FeatureSet.load(model_dir))
        stop = threading.Event()
        background: dict[str, Traffic] = {}
        thread = threading.Thread(target=lambda: background.setdefault("t", replay(
            port, lines, loop.request_rows, 2, until=stop)), daemon=True)
        thread.start()
        try:
            result = Deployer(self.loaded, deployment=cfg,
                              on_event=lambda m: self.event("deploy", m)).deploy(version)
        finally:
            stop.set()
            thread.join(60)
        served = background.get("t")
        if served:
            self.event("traffic", f"during the canary: {served.requests} requests, versions "
                                  f"{served.versions}, {served.errors} errors")
        return "promoted" if result.status == "Succeeded" else "rolled back"

    def _write(self, result: LoopResult) -> None:
        from mlops_kit.runtime.loop_report import write_loop_report

        write_json({"loop_id": result.loop_id, "outcome": result.outcome,
                    "start_version": result.start_version,
                    "final_version": result.final_version, "events": result.events,
                    "phases": [p.__dict__ for p in result.phases]},
                   self.folder / "loop.json")
        write_loop_report(self.folder, self.loaded)


def perturb(frame: pd.DataFrame, schema: Any, shift: float,
            rng: np.random.Generator) -> pd.DataFrame:
    """Drifted copies of rows: numbers moved by `shift` standard deviations, and a share
    `shift / (1 + shift)` of each category column's values moved to its rarest category."""
    if shift <= 0:
        return frame
    out = frame.copy()
    for col in schema.columns:
        if col.name not in out.columns or col.name == schema.target:
            continue
        values = out[col.name]
        if col.type in ("int", "float"):
            numbers = pd.to_numeric(values, errors="coerce")
            moved = numbers + shift * float(numbers.std() or 1.0)
            if col.type == "int":
                moved = moved.round()
            if col.max is not None:
                moved = moved.clip(upper=col.max)
            out[col.name] = moved.astype(values.dtype) if col.type == "float" else moved
        elif col.type == "category" and col.categories:
            counts = values.value_counts()
            rare = min(col.categories, key=lambda c: counts.get(c, 0))
            pick = rng.random(len(out)) < shift / (1 + shift)
            out.loc[pick, col.name] = rare
    return out

