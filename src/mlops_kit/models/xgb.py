"""XGBoost (hist, CPU), the default framework."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from mlops_kit.models.base import ModelMeta, write_meta

MODEL_FILE = "model.ubj"
OBJECTIVES = {"binary": "binary:logistic", "multiclass": "multi:softprob",
              "regression": "reg:squarederror"}


class XGBModel:
    """A booster plus its metadata."""

    def __init__(self, booster: xgb.Booster, meta: ModelMeta) -> None:
        self.booster = booster
        self.meta = meta

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, meta: ModelMeta,
            params: dict[str, Any]) -> XGBModel:
        p = dict(params)
        rounds = int(p.pop("n_estimators", p.pop("num_boost_round", 200)))
        p.update(objective=OBJECTIVES[meta.task], tree_method="hist", seed=meta.seed,
                 nthread=meta.threads, verbosity=0)
        if meta.task == "multiclass":
            p["num_class"] = meta.n_classes
        dtrain = xgb.DMatrix(X, label=y, feature_names=meta.columns, nthread=meta.threads)
        booster = xgb.train(p, dtrain, num_boost_round=rounds)
        return cls(booster, meta)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores for X (columns in `meta.columns` order; NaN is missing)."""
        out = np.asarray(self.booster.inplace_predict(X), dtype="float64")
        if out.ndim == 2:  # float32 class probabilities, renormalised in float64
            out /= out.sum(axis=1, keepdims=True)
        return out

    def save(self, folder: Path) -> None:
        write_meta(self.meta, folder)
        self.booster.save_model(str(folder / MODEL_FILE))

    @classmethod
    def load(cls, folder: Path, meta: ModelMeta) -> XGBModel:
        booster = xgb.Booster()
        booster.load_model(str(folder / MODEL_FILE))
        booster.set_param({"nthread": meta.threads})
        return cls(booster, meta)

    def importance(self) -> dict[str, float]:
        gain = {k: float(v) for k, v in self.booster.get_score(importance_type="total_gain").items()
                if not isinstance(v, list)}
        total = sum(gain.values()) or 1.0
        return {c: float(gain.get(c, 0.0)) / total for c in self.meta.columns}
