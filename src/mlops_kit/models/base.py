"""What every model framework provides, and the metadata saved beside each model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

META_FILE = "model_meta.json"


@dataclass
class ModelMeta:
    """Task, framework, input columns and classes: enough to use the model without the config."""

    framework: str
    task: str
    columns: list[str]
    classes: list[Any] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    threads: int = 2
    estimator: str = ""  # the import path of a `sklearn` framework model's estimator

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def write_meta(meta: ModelMeta, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META_FILE).write_text(json.dumps(asdict(meta), indent=2, default=str))


def read_meta(folder: Path) -> ModelMeta:
    path = folder / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a model folder (no {META_FILE})")
    return ModelMeta(**json.loads(path.read_text()))


class Model(Protocol):
    """A trained model. `predict` returns P(class 1) for binary, a probability matrix for
    multiclass and values for regression."""

    meta: ModelMeta

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...

    def importance(self) -> dict[str, float]:
        """Feature name -> importance (empty when the framework has none built in)."""
        ...
