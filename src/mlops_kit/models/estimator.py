"""Any estimator with the scikit-learn API (`model.framework: sklearn`).

`model.estimator` names a class, or a function returning an unfitted estimator (a scikit-learn
`Pipeline`, say), by import path. The kit builds it with no arguments, applies `params` (and
each trial's draw) with `set_params` (`step__param` reaches into a pipeline), fills
`random_state` from `model.seed` (in a pipeline's steps too) and the estimator's own `n_jobs` /
`thread_count` from `model.threads` where they are unset, and fits it on a DataFrame of the
feature columns, the target as class indices (0..k-1) for classification. Classifiers need
`predict_proba`. The fitted estimator is saved with joblib, so serving needs the same packages
as training (the project's image holds them)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.errors import did_you_mean
from mlops_kit.models.base import ModelMeta, write_meta
from mlops_kit.plugins import import_object

FILE = "estimator.joblib"
SEED_PARAMS = ("random_state", "random_seed")
THREAD_PARAMS = ("n_jobs", "thread_count")


def prototype(ref: str, root: Path | None = None) -> Any:
    """An unfitted estimator from `ref` (ValueError when `ref` does not give one)."""
    made = import_object(ref, root)
    if not callable(made):
        raise ValueError(f"{ref!r} is a {type(made).__name__}, not a class or a function")
    try:
        est = made()
    except Exception as exc:  # the team's constructor: any failure is a config problem
        raise ValueError(f"{ref!r}() failed: {type(exc).__name__}: {exc}; the estimator must "
                         "build with no arguments (give values in model.params)") from None
    missing = [m for m in ("fit", "predict", "get_params", "set_params") if not hasattr(est, m)]
    if missing:
        raise ValueError(f"{ref!r} gives a {type(est).__name__} without {missing}: it needs the "
                         "scikit-learn estimator API (subclass sklearn.base.BaseEstimator)")
    return est


def check_estimator(ref: str, task: str, root: Path | None) -> None:
    """ValueError unless `ref` gives an estimator for `task`."""
    est = prototype(ref, root)
    if task != "regression" and not hasattr(est, "predict_proba"):
        raise ValueError(f"{ref!r} has no predict_proba: a {task} model must give class "
                         "probabilities (a classifier, or a pipeline ending in one)")


def check_params(ref: str, names: list[str], root: Path | None) -> None:
    """ValueError unless the estimator `ref` gives takes every parameter in `names`."""
    est = prototype(ref, root)
    known = est.get_params(deep=True)
    unknown = sorted(n for n in set(names) - set(known) if not _open_ended(est, known, n))
    if unknown:
        raise ValueError(f"{ref} has no parameter(s) {unknown}{did_you_mean(unknown, known)}; "
                         f"its parameters: {sorted(known)}")


def _open_ended(est: Any, params: dict[str, Any], name: str) -> bool:
    """Whether `name` is for an estimator whose constructor takes `**kwargs` (LightGBM's,
    XGBoost's): those accept parameters that `get_params()` does not list."""
    owner, _, _ = name.rpartition("__")
    target = params.get(owner) if owner else est
    if target is None or not hasattr(target, "get_params"):
        return False
    try:
        signature = inspect.signature(type(target).__init__)
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def build(meta: ModelMeta, params: dict[str, Any]) -> Any:
    """The estimator for one fit: params set, seed and threads filled where unset."""
    est = prototype(meta.estimator)
    current = est.get_params(deep=True)
    fill: dict[str, Any] = {}
    for key, value in current.items():
        leaf = key.rsplit("__", 1)[-1]
        if value is None and key not in params:
            if leaf in SEED_PARAMS:
                fill[key] = meta.seed
            elif key in THREAD_PARAMS:  # the estimator's own, not a pipeline step's
                fill[key] = meta.threads
    est.set_params(**{**fill, **params})
    return est


class EstimatorModel:
    """A fitted scikit-learn-API estimator plus its metadata."""

    def __init__(self, estimator: Any, meta: ModelMeta) -> None:
        self.estimator = estimator
        self.meta = meta

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, meta: ModelMeta,
            params: dict[str, Any]) -> EstimatorModel:
        est = build(meta, params)
        est.fit(pd.DataFrame(X, columns=meta.columns), y)
        return cls(est, meta)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(class 1), class probabilities or values, as the other frameworks give them."""
        frame = pd.DataFrame(X, columns=self.meta.columns)
        if self.meta.task == "regression":
            return np.asarray(self.estimator.predict(frame), dtype="float64").reshape(-1)
        proba = _in_classes(self.estimator, np.asarray(self.estimator.predict_proba(frame),
                                                       dtype="float64"), self.meta.n_classes)
        if self.meta.task == "binary":
            return proba[:, 1]
        return proba / proba.sum(axis=1, keepdims=True)

    def save(self, folder: Path) -> None:
        import joblib

        write_meta(self.meta, folder)
        joblib.dump(self.estimator, folder / FILE)

    @classmethod
    def load(cls, folder: Path, meta: ModelMeta) -> EstimatorModel:
        import joblib

        path = folder / FILE
        try:
            est = joblib.load(path)
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"{path}: the estimator {meta.estimator} needs module {exc.name!r}, which this "
                "environment lacks: install the project's package (`pip install -e .`) and its "
                "dependencies where the model is loaded") from None
        threads = {k: meta.threads for k in THREAD_PARAMS if k in est.get_params(deep=False)}
        if threads:
            est.set_params(**threads)
        return cls(est, meta)

    def importance(self) -> dict[str, float]:
        """`feature_importances_` or |coef_| of the estimator (or a pipeline's last step)."""
        values = _raw_importance(self.estimator)
        if values is None or len(values) != len(self.meta.columns):
            return {}
        total = float(np.sum(values)) or 1.0
        return {c: float(v) / total for c, v in zip(self.meta.columns, values, strict=True)}


def _in_classes(est: Any, proba: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities with one column per class index, when a fit saw fewer classes."""
    seen = getattr(est, "classes_", None)
    if seen is None or proba.shape[1] == n_classes:
        return proba
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(seen, dtype="int64")] = proba
    return out


def _raw_importance(est: Any) -> np.ndarray | None:
    last = est.steps[-1][1] if hasattr(est, "steps") else est
    if getattr(last, "feature_importances_", None) is not None:
        return np.abs(np.asarray(last.feature_importances_, dtype="float64"))
    coef = getattr(last, "coef_", None)
    if coef is None:
        return None
    coef = np.abs(np.asarray(coef, dtype="float64"))
    return coef.mean(axis=0) if coef.ndim == 2 else coef
