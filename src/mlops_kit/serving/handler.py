"""The one inference handler, in SageMaker's framework-container convention.

`model_fn`, `input_fn`, `predict_fn` and `output_fn` are what SageMaker's XGBoost and PyTorch
containers call; the local server and the cloud images call them. Batch inference loads with
`model_fn` and reads files in chunks, then checks and predicts with the same codec and model
code as `predict_fn`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_kit.models import PackagedModel, load_model
from mlops_kit.serving import codec
from mlops_kit.serving.codec import BadRequest, Payload

__all__ = ["BadRequest", "Prediction", "input_fn", "model_fn", "output_fn", "predict_fn"]


@dataclass
class Prediction:
    """Scores for a request, with what `output_fn` needs to label them."""

    scores: np.ndarray
    task: str
    classes: list[Any]
    content_type: str


def model_fn(model_dir: str | Path, threads: int | None = None) -> PackagedModel:
    """Load the packaged model (features spec + model) from `model_dir`."""
    return load_model(Path(model_dir), threads)


def input_fn(request_body: bytes | str, request_content_type: str | None) -> Payload:
    """Decode a request body (CSV, JSON or JSON Lines) into rows."""
    body = request_body.encode() if isinstance(request_body, str) else request_body
    return codec.decode(body, request_content_type)


def predict_fn(input_data: Payload, model: PackagedModel) -> Prediction:
    """Check the rows against the model's schema, compute its features, predict."""
    typed, rows = codec.columns(input_data, model.features)
    scores = model.predict_typed(typed, rows)
    return Prediction(scores, model.meta.task, model.meta.classes, input_data.content_type)


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Encode predictions as the caller accepts (CSV lines or JSON `predictions`)."""
    kind = codec.accept_type(accept, prediction.content_type)
    return codec.encode(prediction.scores, prediction.task, prediction.classes, kind)


def handle(model: PackagedModel, body: bytes, content_type: str | None,
           accept: str | None) -> tuple[bytes, str]:
    """The whole chain for one request; BadRequest for anything the caller got wrong."""
    kind = codec.accept_type(accept, codec.media_type(content_type))
    prediction = predict_fn(input_fn(body, content_type), model)
    return output_fn(prediction, kind)
