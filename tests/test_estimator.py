"""`model.framework: sklearn`: any scikit-learn-API estimator, named by import path — a
scikit-learn Pipeline, LightGBM, and a class in the project's own package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.models import load_model
from mlops_kit.registry import open_registry, production
from mlops_kit.steps import evaluate
from mlops_kit.steps.base import Job
from tests.conftest import write_config
from tests.test_train_evaluate import train_model, training_set

TEAM_MODEL = '''\
"""The team's own models."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


class CentroidClassifier(ClassifierMixin, BaseEstimator):
    """Class probabilities from the distances to each class's mean (scaled inputs)."""

    def __init__(self, temperature=1.0):
        self.temperature = temperature

    def fit(self, X, y):
        X = np.asarray(X, dtype="float64")
        self.fill_ = np.nan_to_num(np.nanmean(X, axis=0))
        self.scale_ = np.nanstd(X, axis=0) + 1e-9
        Z = self._scaled(X)
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([Z[y == c].mean(axis=0) for c in self.classes_])
        return self

    def _scaled(self, X):
        X = np.asarray(X, dtype="float64")
        return (np.where(np.isnan(X), self.fill_, X) - self.fill_) / self.scale_

    def predict_proba(self, X):
        d = ((self._scaled(X)[:, None, :] - self.centroids_[None]) ** 2).mean(axis=2)
        e = np.exp(-(d - d.min(axis=1, keepdims=True)) / self.temperature)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def pipeline():
    """Imputation and scaling fitted with the model, in one scikit-learn Pipeline."""
    return Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()),
                     ("clf", LogisticRegression(max_iter=500))])
'''

MODELS = {
    "pipeline": {"estimator": "teamkit.models:pipeline", "params": {"clf__C": 0.5},
                 "search": {"trials": 2, "space": {"clf__C": {"loguniform": [0.05, 5.0]}}}},
    "lightgbm": {"estimator": "lightgbm:LGBMClassifier",
                 "params": {"n_estimators": 40, "verbose": -1},
                 "search": {"trials": 2, "space": {"num_leaves": {"int": [7, 31]}}}},
    "custom": {"estimator": "teamkit.models.CentroidClassifier", "params": {},
               "search": {"trials": 2, "space": {"temperature": {"uniform": [0.5, 2.0]}}}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose `src/teamkit` holds the team's estimators (not installed)."""
    root = tmp_path_factory.mktemp("team")
    (root / "src" / "teamkit").mkdir(parents=True)
    (root / "src" / "teamkit" / "__init__.py").write_text("")
    (root / "src" / "teamkit" / "models.py").write_text(TEAM_MODEL)
    return root


def sklearn_config(folder: Path, kind: str, extra: dict | None = None) -> Path:
    model = {"framework": "sklearn", **MODELS[kind]}
    return write_config(folder, {"model": model, **(extra or {})})


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_each_estimator_trains_predicts_and_saves(kind: str, project: Path,
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "src").symlink_to(project / "src")
    loaded = load_config(sklearn_config(folder, kind))
    ts = training_set(loaded, tmp_path)
    summary = train_model(loaded, ts, tmp_path / "m")
    assert summary["framework"] == "sklearn" and summary["val_roc_auc"] > 0.6
    model = load_model(tmp_path / "m")
    assert model.meta.estimator == MODELS[kind]["estimator"]
    rows = pd.read_parquet(ts / "test_source.parquet")
    scores = model.predict_source(rows)
    assert scores.shape == (len(rows),) and ((scores >= 0) & (scores <= 1)).all()
    again = load_model(tmp_path / "m").predict_source(rows)
    np.testing.assert_array_equal(scores, again)
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert len(record["trials"]) == 2
    drawn = record["trials"][1]["params"]
    assert set(drawn) >= set(MODELS[kind]["search"]["space"])


def test_seed_and_threads_fill_unset_parameters(project: Path, tmp_path: Path) -> None:
    from mlops_kit.models.base import ModelMeta
    from mlops_kit.models.estimator import build

    meta = ModelMeta("sklearn", "binary", ["a"], [0, 1], seed=11, threads=3,
                     estimator="lightgbm:LGBMClassifier")
    est = build(meta, {"n_estimators": 5})
    assert (est.random_state, est.n_jobs, est.n_estimators) == (11, 3, 5)
    assert build(meta, {"random_state": 4}).random_state == 4


@pytest.mark.parametrize(("task", "target", "metric", "estimator", "params"), [
    ("multiclass", "contract", "accuracy", "sklearn.ensemble:RandomForestClassifier",
     {"n_estimators": 30}),
    ("regression", "monthly_charges", "rmse", "sklearn.ensemble:HistGradientBoostingRegressor",
     {"max_iter": 40})])
def test_other_tasks_pass_the_gate(tmp_path: Path, task: str, target: str, metric: str,
                                   estimator: str, params: dict) -> None:
    declared = [{"name": c, "inputs": [c]}
                for c in ("tenure_months", "support_calls", "total_charges")]
    loaded = load_config(write_config(tmp_path, {
        "data": {"schema": {"target": target}}, "features": {"declared": declared},
        "model": {"task": task, "framework": "sklearn", "estimator": estimator,
                  "params": params, "search": {"trials": 1, "space": {}}},
        "quality_gate": {"metric": metric, "min_value": None}}))
    ts = training_set(loaded, tmp_path)
    train_model(loaded, ts, tmp_path / "m")
    evaluate.run(Job(loaded, {"model": tmp_path / "m", "training_set": ts},
                     {"evaluation": tmp_path / "ev"}))
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["passed"] and metric in ev["metrics"]
    assert set(ev["importance"]) == {"tenure_months", "support_calls", "total_charges"}
    if task == "regression":
        assert ev["metrics"]["r2"] > 0.5
    else:
        scores = load_model(tmp_path / "m").predict_source(
            pd.read_parquet(ts / "test_source.parquet"))
        np.testing.assert_allclose(scores.sum(axis=1), 1.0)


@pytest.mark.parametrize(("model", "expected"), [
    ({"framework": "sklearn", "estimator": None}, "framework sklearn needs model.estimator"),
    ({"framework": "sklearn", "estimator": "not a path!"}, "is not an import path"),
    ({"framework": "sklearn", "estimator": "nosuchpkg.models:Thing"},
     "cannot import 'nosuchpkg.models:Thing'"),
    ({"framework": "sklearn", "estimator": "sklearn.linear_model:NoSuchModel"},
     "has no 'NoSuchModel'"),
    ({"framework": "sklearn", "estimator": "sklearn.linear_model:Ridge"},
     "has no predict_proba"),
    ({"framework": "sklearn", "estimator": "sklearn.linear_model:LogisticRegression",
      "params": {"max_iters": 3}}, "model.params: got {'max_iters': 3}: sklearn.linear_model:"
                                   "LogisticRegression has no parameter(s) ['max_iters'] (did you "
                                   "mean 'max_iter'?)"),
    ({"framework": "sklearn", "estimator": "sklearn.linear_model:LogisticRegression",
      "search": {"trials": 2, "space": {"CC": {"uniform": [0.1, 1]}}}},
     "model.search: got {'trials': 2, 'space': {'CC': {'uniform': [0.1, 1]}}}: "
     "sklearn.linear_model:LogisticRegression has no parameter(s) ['CC']"),
    ({"framework": "sklearn", "estimator": "json:dumps"}, "'json:dumps'() failed"),
    ({"framework": "sklearn", "estimator": "collections:OrderedDict"},
     "needs the scikit-learn estimator API"),
    ({"estimator": "sklearn.linear_model:LogisticRegression"},
     "model.estimator is for framework sklearn"),
])
def test_config_errors_name_the_field_and_the_fix(model: dict, expected: str,
                                                  tmp_path: Path) -> None:
    path = write_config(tmp_path, {"model": {"params": {}, "search": {"space": {}}, **model}})
    text = path.read_text()
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "model" in message and expected in message, message
    assert text == path.read_text()


@pytest.mark.slow
def test_the_loop_with_the_teams_estimator(project: Path, tmp_path: Path) -> None:
    """train, gate, register, serve (real workers), monitor, retrain, canary: the team's class."""
    (tmp_path / "src").symlink_to(project / "src")
    config = sklearn_config(tmp_path, "custom", {"loop": {
        "replay_rows": 400, "request_rows": 10, "concurrency": 2, "bake_s": 1.0}})
    res = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert "loop outcome: promoted" in res.output
    loaded: LoadedConfig = load_config(config)
    live = production(open_registry(loaded), loaded.config.model.name)
    assert live is not None and live.version == 2
    folder = next((loaded.state_dir / "loops").iterdir())
    doc = json.loads((folder / "loop.json").read_text())
    assert all(p["traffic"]["errors"] == 0 for p in doc["phases"])
