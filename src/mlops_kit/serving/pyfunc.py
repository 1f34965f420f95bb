"""Every model folder is also an MLflow model: `MLmodel` with a pyfunc flavor whose loader is
this module, a signature of the source columns the features read, an input example, and the
pip requirements to load it. `mlflow.pyfunc.load_model(folder)` and `mlflow models serve -m
folder` answer as `mlops-kit serve` does: one record per row (`score`, and for classifiers
`predicted_label`; a multiclass record has `scores` and `labels`).

The files are deterministic (a fixed `utc_time_created`, a `model_uuid` from the model's own
files), so the same training gives the same model digest; the registry keeps the real times.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit.config.model import Column
from mlops_kit.models import PackagedModel, load_model
from mlops_kit.serving import codec

MLMODEL = "MLmodel"
LOADER = __name__
CREATED = "1970-01-01 00:00:00"  # fixed: see the module docstring
EXAMPLE_ROWS = 3
# MLflow column types by schema type; an int column with missing values travels as a double.
COLUMN_TYPES = {"float": "double", "bool": "boolean", "string": "string", "category": "string",
                "timestamp": "datetime"}


class KitPyfunc:
    """The pyfunc face of a model folder: source rows in, the server's records out."""

    def __init__(self, model: PackagedModel) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = pd.DataFrame(model_input).rename(columns=self.model.features.aliases)
        meta = self.model.meta
        scores = self.model.predict_source(rows)
        return pd.DataFrame(codec.records(scores, meta.task, meta.classes))


def _load_pyfunc(path: str) -> KitPyfunc:
    """MLflow's entry point for a pyfunc flavor with a loader module."""
    return KitPyfunc(load_model(Path(path)))


def write_mlmodel(folder: Path, rows: pd.DataFrame, digest: str) -> None:
    """Add MLflow's files to the model folder `folder`; `rows` are source rows for the input
    example, `digest` the folder's digest so far (it names the MLflow model)."""
    import mlflow.pyfunc
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    model = load_model(folder)
    fs = model.features
    columns = [fs.schema.column(c) for c in fs.inputs]
    example = rows[fs.inputs].head(EXAMPLE_ROWS).reset_index(drop=True) if len(rows) else None
    outputs = _output_schema(KitPyfunc(model).predict(example)) if example is not None else None
    inputs = Schema([ColSpec(_mlflow_type(c), c.name, required=not c.nullable) for c in columns])
    signature = ModelSignature(inputs=inputs, outputs=outputs)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-mlflow-") as tmp:
        target = Path(tmp) / "model"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its integer-column hint: our schema decides types
            mlflow.pyfunc.save_model(
                target, loader_module=LOADER, signature=signature, input_example=example,
                pip_requirements=requirements(model.meta.framework, model.meta.estimator),
                mlflow_model=Model(utc_time_created=CREATED,
                                   model_uuid=uuid.uuid5(uuid.NAMESPACE_URL, digest).hex))
        for item in target.iterdir():
            shutil.move(str(item), folder / item.name)


def _mlflow_type(column: Column) -> str:
    if column.type == "int":
        return "double" if column.nullable else "long"
    return COLUMN_TYPES[column.type]


def _output_schema(answer: pd.DataFrame) -> Any:
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return infer_signature(answer).inputs


def requirements(framework: str, estimator: str) -> list[str]:
    """What loading the model needs: this kit, and the estimator's or framework's package."""
    wanted = [_pinned("mlops-kit") or "mlops-kit"]
    if framework == "pytorch":
        wanted.append(_pinned("torch") or "torch")
    if framework == "sklearn" and estimator:
        top = estimator.split(":")[0].split(".")[0]
        for dist in md.packages_distributions().get(top, []):
            pin = _pinned(dist)
            if pin and pin.split("==")[0] != "mlops-kit":
                wanted.append(pin)
    return sorted(set(wanted), key=wanted.index)


def _pinned(dist: str) -> str | None:
    try:
        return f"{dist}=={md.version(dist)}"
    except md.PackageNotFoundError:
        return None
