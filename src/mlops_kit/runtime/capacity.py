"""Glue for `plan-scaling --measure`: the model to serve, the requests to send, the vCPU rule."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit.capacity.measure import measure
from mlops_kit.capacity.plan import instance_rps, vcpus_of
from mlops_kit.capacity.simulate import PlanError
from mlops_kit.config import LoadedConfig
from mlops_kit.runtime.serving import fetch_version

DISTINCT_REQUESTS = 400


def request_bodies(loaded: LoadedConfig, model_dir: Path) -> list[bytes]:
    """Single-row CSV requests from the newest held-out split of a training run."""
    from mlops_kit.models import load_model
    from mlops_kit.runtime.loop import request_csv

    splits = sorted((loaded.state_dir / "artifacts" / "features").glob(
        "*/training_set/test_source.parquet"), key=lambda p: p.stat().st_mtime)
    if not splits:
        raise PlanError(f"no held-out rows to send under {loaded.state_dir}: run "
                        "`mlops-kit run` first")
    rows = pd.read_parquet(splits[-1]).head(DISTINCT_REQUESTS)
    lines = request_csv(rows, load_model(model_dir).features)
    return [(line + "\n").encode() for line in lines]


def measure_capacity(loaded: LoadedConfig, model_dir: Path | None = None, seconds: float = 3.0,
                     max_concurrency: int = 64) -> tuple[float, dict[str, Any]]:
    """Requests/s one instance of `serving.instance_type` serves within the objective, and
    the measurement (steps, workers, vCPUs) for the report."""
    serving = loaded.config.serving
    folder = model_dir or fetch_version(loaded)[0]
    workers = serving.workers or os.cpu_count() or 1
    vcpus = vcpus_of(serving.instance_type, serving.capacity.vcpus)
    result = measure(str(folder), request_bodies(loaded, folder), serving.latency_p99_ms,
                     workers=workers, seconds=seconds, warmup_s=min(1.0, seconds / 2),
                     max_concurrency=max_concurrency, state=loaded.state_dir)
    best = result.best
    if best is None:
        first = result.steps[0]
        raise PlanError(f"the server misses latency_p99_ms ({serving.latency_p99_ms} ms) even "
                        f"at 1 connection (p99 {first.p99_ms} ms, {first.errors} errors): raise "
                        "the objective or use a faster model")
    rps = instance_rps(best.rps, workers, vcpus)
    return rps, {"workers": workers, "vcpus": vcpus, "instance_type": serving.instance_type,
                 "best_rps": best.rps, "best_concurrency": best.concurrency,
                 "instance_rps": round(rps, 1), "steps": [asdict(s) for s in result.steps]}
