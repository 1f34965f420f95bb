"""Train: hyper-parameter search over the configured space and budget, then the final model.

Random search, deterministic under the model seed: trial 0 is the configured parameters, each
further trial samples the space. Trials are scored on the validation split with the gate's
metric; the best parameters are refit on train + validation. Every trial is an MLflow run;
a tracking failure never fails the step (`_run.json` and the lineage say `tracking`).
"""

from __future__ import annotations

import math
import shutil
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit import metrics
from mlops_kit.config.model import Choice, FloatRange, IntRange, ProjectConfig, SearchConfig
from mlops_kit.models import fit
from mlops_kit.models.base import ModelMeta
from mlops_kit.registry.base import RUN_FILE, model_digest
from mlops_kit.serving.pyfunc import write_mlmodel
from mlops_kit.steps.base import (
    LINEAGE_FILE,
    Job,
    StepError,
    StepSpec,
    job_main,
    read_json,
    read_lineage,
    write_json,
)
from mlops_kit.steps.features import LABEL
from mlops_kit.tracking import Tracker, lineage_fields, open_tracker

SPEC = StepSpec("train", "training", inputs=("training_set",), outputs=("model",))


def sample(space: SearchConfig, rng: np.random.Generator) -> dict[str, Any]:
    """One draw from the search space."""
    out: dict[str, Any] = {}
    for name, dist in space.space.items():
        if isinstance(dist, IntRange):
            out[name] = int(rng.integers(dist.int[0], dist.int[1] + 1))
        elif isinstance(dist, FloatRange) and dist.loguniform:
            lo, hi = dist.loguniform
            out[name] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        elif isinstance(dist, FloatRange) and dist.uniform:
            out[name] = float(rng.uniform(*dist.uniform))
        elif isinstance(dist, Choice):
            out[name] = dist.choice[int(rng.integers(len(dist.choice)))]
    return out


def encode_labels(y: pd.Series, task: str, classes: list[Any] | None = None
                  ) -> tuple[np.ndarray, list[Any]]:
    """Targets as model labels (class indices, or floats for regression) and the classes."""
    if task == "regression":
        return y.to_numpy(dtype="float64"), []
    classes = classes if classes is not None else sorted(y.dropna().unique().tolist())
    if task == "binary" and len(classes) != 2:
        raise StepError(f"a binary task needs exactly 2 target classes, found {classes}")
    index = {c: i for i, c in enumerate(classes)}
    unknown = set(y.unique()) - set(index)
    if unknown:
        raise StepError(f"target values {sorted(map(str, unknown))} were not seen in training")
    return y.map(index).to_numpy(dtype="int64"), classes


def matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return frame[columns].to_numpy(dtype="float64", na_value=np.nan)


def search(cfg: ProjectConfig, meta: ModelMeta, train: pd.DataFrame, val: pd.DataFrame,
           tracker: Tracker | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the trials; return the best parameters and every trial's record."""
    metric = cfg.quality_gate.metric
    rng = np.random.default_rng(cfg.model.seed)
    X, Xv = matrix(train, meta.columns), matrix(val, meta.columns)
    y, _ = encode_labels(train[LABEL], meta.task, meta.classes)
    yv, _ = encode_labels(val[LABEL], meta.task, meta.classes)
    trials: list[dict[str, Any]] = []
    for i in range(cfg.model.search.trials):
        params = {**cfg.model.params, **(sample(cfg.model.search, rng) if i else {})}
        start = time.perf_counter()
        model = fit(meta.framework, X, y, meta, params)
        scores = metrics.compute(meta.task, yv, model.predict(Xv))
        record = {"trial": i, "params": params, "metrics": scores,
                  "seconds": round(time.perf_counter() - start, 3)}
        trials.append(record)
        if tracker:
            with tracker.run(f"trial-{i}", nested=True):
                tracker.log(params, {f"val_{k}": v for k, v in scores.items()})
    best = trials[0]
    for t in trials[1:]:
        if metrics.better(metric, t["metrics"][metric], best["metrics"][metric]):
            best = t
    return best["params"], trials


def run(job: Job) -> dict[str, Any]:
    loaded = job.config
    cfg = loaded.config
    data = job.input("training_set")
    spec = read_json(data / "feature_spec.json")
    train = pd.read_parquet(data / "train.parquet")
    val = pd.read_parquet(data / "validation.parquet")
    if train.empty:
        raise StepError("the training split is empty")
    _, classes = encode_labels(pd.concat([train[LABEL], val[LABEL]]), cfg.model.task)
    meta = ModelMeta(framework=cfg.model.framework, task=cfg.model.task, columns=spec["columns"],
                     classes=classes, seed=cfg.model.seed, threads=cfg.model.threads,
                     estimator=cfg.model.estimator or "")
    wanted = job.params.get("tracking", "on") != "off"
    tracker = open_tracker(loaded) if wanted else None
    lineage = read_lineage(data)
    tags = {"data_version": str(lineage.get("data_version", "")), "config": loaded.digest[:12]}
    started = datetime.now(UTC).isoformat()
    with tracker.run("train", tags=tags) if tracker else nullcontext("") as run_id:
        best, trials = search(cfg, meta, train, val, tracker)
        meta.params = best
        both = pd.concat([train, val], ignore_index=True)
        y, _ = encode_labels(both[LABEL], meta.task, classes)
        fit_start = time.perf_counter()
        model = fit(meta.framework, matrix(both, meta.columns), y, meta, best)
        fit_seconds = round(time.perf_counter() - fit_start, 3)
        out = job.output("model")
        model.save(out)
        shutil.copy2(data / "feature_spec.json", out / "feature_spec.json")
        write_json(lineage, out / LINEAGE_FILE)
        if (data / "baseline").is_dir():  # drift baseline of the training rows (monitoring)
            shutil.copytree(data / "baseline", out / "baseline")
        # training.json is digested with the model, so it holds no timings or run ids.
        write_json({"trials": [{k: v for k, v in t.items() if k != "seconds"} for t in trials],
                    "best_params": best, "importance": model.importance()},
                   out / "training.json")
        # the folder is also an MLflow model (pyfunc), named by the digest of its files so far
        write_mlmodel(out, pd.read_parquet(data / "test_source.parquet"),
                      model_digest(out)["digest"])
        if tracker:
            tracker.log(best, {f"best_val_{k}": v for k, v in _best_metrics(trials, best).items()})
            tracker.artifacts(out, "model")
    # Written after the run ended, so it says whether every tracking call went through.
    tracking = lineage_fields(tracker, wanted)
    write_json({"mlflow_run_id": run_id, "started": started,
                "finished": datetime.now(UTC).isoformat(), "fit_seconds": fit_seconds,
                "trial_seconds": [t["seconds"] for t in trials], **tracking}, out / RUN_FILE)
    return {"trials": len(trials), "framework": meta.framework,
            **{f"val_{cfg.quality_gate.metric}": round(
                _best_metrics(trials, best)[cfg.quality_gate.metric], 4)},
            **({"tracking": "incomplete"} if tracking["tracking"] == "incomplete" else {})}


def _best_metrics(trials: list[dict[str, Any]], best: dict[str, Any]) -> dict[str, float]:
    return next(t["metrics"] for t in trials if t["params"] == best)


def main(argv: list[str] | None = None) -> int:
    return job_main(SPEC, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
