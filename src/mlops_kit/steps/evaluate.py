"""Evaluate: held-out metrics of the candidate and of the model in production, and the gate.

Both models score the same held-out source rows, each through its own packaged feature spec,
so a production model built on other features is still compared fairly. The decision and its
reasons go to `evaluation.json`; the register step refuses any candidate that did not pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit import metrics
from mlops_kit.config.model import LOWER_IS_BETTER, QualityGate
from mlops_kit.figures import pyplot, save
from mlops_kit.models import PackagedModel, load_model
from mlops_kit.steps.base import Job, StepSpec, job_main, read_json, write_json
from mlops_kit.steps.train import encode_labels

SPEC = StepSpec("evaluate", "processing", inputs=("model", "training_set"),
                outputs=("evaluation",), optional_inputs=("production_model",))


def gate(rule: QualityGate, candidate: dict[str, float],
         production: dict[str, float] | None) -> tuple[bool, list[str]]:
    """The gate decision and a reason for each check, passed or not."""
    name = rule.metric
    value = candidate.get(name, float("nan"))
    reasons = []
    ok = value == value
    if not ok:
        reasons.append(f"FAIL {name} is undefined on the held-out data")
    if ok and rule.min_value is not None:
        lower = name in LOWER_IS_BETTER
        passed = value <= rule.min_value if lower else value >= rule.min_value
        sign = "<=" if lower else ">="
        reasons.append(f"{'PASS' if passed else 'FAIL'} {name} {value:.4f} {sign} "
                       f"minimum {rule.min_value:.4f}")
        ok &= passed
    if production is None:
        reasons.append("PASS no model in production to beat")
    elif ok:
        delta = metrics.gain(name, value, production[name])
        passed = delta >= rule.min_gain
        reasons.append(f"{'PASS' if passed else 'FAIL'} {name} gain over production "
                       f"{delta:+.4f} (candidate {value:.4f}, production {production[name]:.4f}) "
                       f"needs >= {rule.min_gain:+.4f}")
        ok &= passed
    return bool(ok), reasons


def score(model: PackagedModel, rows: pd.DataFrame, target: str) -> tuple[dict[str, float],
                                                                          np.ndarray, np.ndarray]:
    """Metrics, labels and predictions of `model` on source rows."""
    y, _ = encode_labels(rows[target], model.meta.task, model.meta.classes or None)
    pred = model.predict_source(rows)
    return metrics.compute(model.meta.task, y, pred), y, pred


def run(job: Job) -> dict[str, Any]:
    cfg = job.config.config
    rows = pd.read_parquet(job.input("training_set") / "test_source.parquet")
    candidate = load_model(job.input("model"))
    cand_metrics, y, pred = score(candidate, rows, cfg.table.target)
    prod_dir = job.optional_input("production_model")
    prod_metrics, prod_version = None, None
    if prod_dir is not None:
        prod_metrics = score(load_model(prod_dir), rows, cfg.table.target)[0]
        prod_version = _version_of(prod_dir)
    passed, reasons = gate(cfg.quality_gate, cand_metrics, prod_metrics)
    out = job.output("evaluation")
    importance = _importance(candidate, rows, cfg.table.target, cfg.quality_gate.metric)
    plots = _plots(candidate.meta.task, y, pred, importance, out / "plots")
    result = {"passed": passed, "reasons": reasons, "gate": cfg.quality_gate.model_dump(),
              "metrics": cand_metrics, "production_metrics": prod_metrics,
              "production_version": prod_version, "rows": len(rows),
              "importance": importance, "plots": [p.name for p in plots]}
    write_json(result, out / "evaluation.json")
    metric = cfg.quality_gate.metric
    return {"passed": passed, metric: round(cand_metrics[metric], 4),
            "production": None if prod_metrics is None else round(prod_metrics[metric], 4)}


def _version_of(folder: Path) -> int | None:
    info = folder / "registry_version.json"
    return read_json(info).get("version") if info.is_file() else None


def _importance(model: PackagedModel, rows: pd.DataFrame, target: str,
                metric: str) -> dict[str, float]:
    """Built-in importance where the framework has it, else permutation importance."""
    built_in = model.model.importance()
    if built_in:
        return dict(sorted(built_in.items(), key=lambda kv: -kv[1]))
    sample = rows.sample(min(len(rows), 2000), random_state=0)
    y, _ = encode_labels(sample[target], model.meta.task, model.meta.classes or None)
    X = model.features.transform(sample).to_numpy(dtype="float64")
    base = metrics.compute(model.meta.task, y, model.model.predict(X))[metric]
    rng = np.random.default_rng(0)
    out = {}
    for i, name in enumerate(model.meta.columns):
        Xp = X.copy()
        Xp[:, i] = rng.permutation(Xp[:, i])
        drop = metrics.gain(metric, base, metrics.compute(model.meta.task, y,
                                                          model.model.predict(Xp))[metric])
        out[name] = max(float(drop), 0.0)
    total = sum(out.values()) or 1.0
    return dict(sorted(((k, v / total) for k, v in out.items()), key=lambda kv: -kv[1]))


def _plots(task: str, y: np.ndarray, pred: np.ndarray, importance: dict[str, float],
           folder: Path) -> list[Path]:
    from sklearn import metrics as skm

    plt = pyplot()

    folder.mkdir(parents=True, exist_ok=True)
    figs: dict[str, Any] = {}
    if task == "binary" and len(np.unique(y)) == 2:
        fig, ax = plt.subplots(figsize=(4, 3.2))
        skm.RocCurveDisplay.from_predictions(y, pred, ax=ax)
        figs["roc.png"] = fig
        fig, ax = plt.subplots(figsize=(4, 3.2))
        skm.PrecisionRecallDisplay.from_predictions(y, pred, ax=ax)
        figs["precision_recall.png"] = fig
    if task in ("binary", "multiclass"):
        label = (pred >= 0.5).astype(int) if task == "binary" else pred.argmax(axis=1)
        fig, ax = plt.subplots(figsize=(4, 3.2))
        skm.ConfusionMatrixDisplay.from_predictions(y, label, ax=ax, colorbar=False)
        figs["confusion.png"] = fig
    else:
        fig, ax = plt.subplots(figsize=(4, 3.2))
        ax.scatter(y, pred, s=3, alpha=0.4)
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        figs["actual_vs_predicted.png"] = fig
    top = list(importance.items())[:15][::-1]
    if top:
        fig, ax = plt.subplots(figsize=(5, 0.25 * len(top) + 1))
        ax.barh([k for k, _ in top], [v for _, v in top])
        ax.set_title("feature importance", fontsize=9)
        ax.tick_params(labelsize=7)
        figs["importance.png"] = fig
    return [save(fig, folder / name) for name, fig in figs.items()]


def main(argv: list[str] | None = None) -> int:
    return job_main(SPEC, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
