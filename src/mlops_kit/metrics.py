"""Model quality metrics by task; which direction is better for each."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from mlops_kit.config.model import LOWER_IS_BETTER


def compute(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Every metric of `task` for true values `y` and model output `pred`."""
    if task == "binary":
        p = np.clip(pred, 1e-7, 1 - 1e-7)
        label = (p >= 0.5).astype(int)
        one_class = len(np.unique(y)) < 2
        return {
            "roc_auc": float("nan") if one_class else float(skm.roc_auc_score(y, p)),
            "pr_auc": float("nan") if one_class else float(skm.average_precision_score(y, p)),
            "accuracy": float(skm.accuracy_score(y, label)),
            "f1": float(skm.f1_score(y, label, zero_division=0)),
            "logloss": float(skm.log_loss(y, p, labels=[0, 1])),
        }
    if task == "multiclass":
        label = pred.argmax(axis=1)
        q = np.clip(pred, 1e-7, 1)  # a model's exact zeros (a forest's) kept finite, rows
        q = q / q.sum(axis=1, keepdims=True)  # still summing to one
        return {
            "accuracy": float(skm.accuracy_score(y, label)),
            "f1_macro": float(skm.f1_score(y, label, average="macro", zero_division=0)),
            "logloss": float(skm.log_loss(y, q, labels=list(range(pred.shape[1])))),
        }
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)),
    }


def better(metric: str, a: float, b: float) -> bool:
    """Whether score `a` beats `b` on `metric`."""
    return a < b if metric in LOWER_IS_BETTER else a > b


def gain(metric: str, new: float, old: float) -> float:
    """How much `new` improves on `old` (positive = better), whatever the metric's direction."""
    return old - new if metric in LOWER_IS_BETTER else new - old
