"""Model frameworks behind one interface: fit, predict, save, load, explain."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit.extras import needs
from mlops_kit.models.base import Model, ModelMeta, read_meta

__all__ = ["Model", "ModelMeta", "PackagedModel", "fit", "load_model"]

PYTORCH = "the pytorch framework (model.framework: pytorch)"


def implementation(framework: str) -> Any:
    """The class that fits and loads models of `framework` (xgboost, pytorch or sklearn)."""
    if framework == "pytorch":
        with needs(PYTORCH, "pytorch"):
            from mlops_kit.models.mlp import MLPModel

        return MLPModel
    if framework == "sklearn":
        from mlops_kit.models.estimator import EstimatorModel

        return EstimatorModel
    from mlops_kit.models.xgb import XGBModel

    return XGBModel


def fit(framework: str, X: np.ndarray, y: np.ndarray, meta: ModelMeta,
        params: dict[str, Any]) -> Model:
    """Train a model of `framework` on X, y."""
    model: Model = implementation(framework).fit(X, y, meta, params)
    return model


class PackagedModel:
    """A saved model folder: the model plus the feature spec that turns source rows into inputs."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        from mlops_kit.steps.features import FeatureSet

        self.folder = folder
        self.meta = read_meta(folder)
        if threads:
            self.meta.threads = threads
        self.features = FeatureSet.load(folder)
        self.model: Model = implementation(self.meta.framework).load(folder, self.meta)

    def predict_source(self, rows: pd.DataFrame) -> np.ndarray:
        """Predictions for source-schema rows (features computed by the packaged spec)."""
        return self.model.predict(self.features.transform(rows).to_numpy(dtype="float64"))

    def predict_typed(self, typed: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        """Predictions for typed source columns (see `features.typed_column`)."""
        return self.model.predict(self.features.matrix(typed, rows))


def load_model(folder: Path, threads: int | None = None) -> PackagedModel:
    """Load a packaged model folder written by the train step (`threads` overrides its own)."""
    return PackagedModel(folder, threads)
