"""Every registered version is also an MLflow model: `mlflow.pyfunc.load_model` and
`mlflow models predict` answer as `mlops-kit serve` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_kit.models import load_model
from mlops_kit.registry.base import model_digest
from mlops_kit.serving import codec
from tests.conftest import Trained
from tests.test_serving import call, server


def _served(trained: Trained, rows: pd.DataFrame) -> list[dict]:
    body = rows.to_json(orient="records", date_format="iso").encode()
    with server(None, trained.config, trained.state, "--no-capture") as port:
        status, _, answer = call(port, "POST", "/invocations", body,
                                 {"content-type": "application/json",
                                  "accept": "application/json"})
    assert status == 200, answer
    return json.loads(answer)["predictions"]


def test_a_registered_version_is_an_mlflow_pyfunc_model(trained: Trained) -> None:
    import mlflow.pyfunc

    version = trained.model_dir
    mlmodel = yaml.safe_load((version / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlops_kit.serving.pyfunc"
    assert mlmodel["saved_input_example_info"]["type"] == "dataframe"
    model = mlflow.pyfunc.load_model(str(version))
    inputs = model.metadata.get_input_schema()
    assert inputs.input_names() == load_model(version).features.inputs
    rows = trained.rows[inputs.input_names()].head(25)
    got = model.predict(rows)
    scores = load_model(version).predict_source(rows)
    assert got.to_dict(orient="records") == codec.records(scores, "binary", [0, 1])
    requirements = (version / "requirements.txt").read_text().split()
    assert any(r.startswith("mlops-kit==") for r in requirements)


def test_the_mlflow_files_keep_the_digest_deterministic(trained: Trained) -> None:
    mlmodel = yaml.safe_load((trained.model_dir / "MLmodel").read_text())
    assert mlmodel["utc_time_created"] == "1970-01-01 00:00:00"
    digest = model_digest(trained.model_dir)["files"]
    assert {"MLmodel", "input_example.json", "requirements.txt"} <= set(digest)


@pytest.mark.slow
def test_mlflow_models_predict_matches_mlops_kit_serve(trained: Trained, tmp_path: Path) -> None:
    """The MLflow CLI, as a user runs it on a registered version, against our server."""
    version = trained.model_dir
    example = json.loads((version / "serving_input_example.json").read_text())
    split = example["dataframe_split"]
    rows = trained.rows[split["columns"]].head(40)
    request = tmp_path / "input.json"
    request.write_text(json.dumps({"dataframe_split": json.loads(
        rows.to_json(orient="split", date_format="iso", index=False))}))
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "models", "predict", "-m", str(version),
         "-i", str(request), "-t", "json", "--env-manager", "local"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri()})
    assert out.returncode == 0, out.stderr[-3000:]
    predicted = json.loads(out.stdout.strip().splitlines()[-1])["predictions"]
    served = _served(trained, rows)
    by_mlflow_server = _mlflow_served(version, request.read_bytes(), tmp_path)
    for answer in (predicted, by_mlflow_server):
        assert [p["predicted_label"] for p in answer] == [s["predicted_label"] for s in served]
        np.testing.assert_allclose([p["score"] for p in answer], [s["score"] for s in served],
                                   rtol=1e-12)


def _mlflow_served(version: Path, body: bytes, tmp_path: Path) -> list[dict]:
    """`mlflow models serve` as the docs run it (the venv's bin on PATH), one request."""
    from tests.test_serving import answering, free_port

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    proc = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", str(version), "--env-manager", "local",
         "-p", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
             "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri()})
    with answering(proc, port, start_s=120):
        status, _, answer = call(port, "POST", "/invocations", body,
                                 {"content-type": "application/json"})
    assert status == 200, answer
    return json.loads(answer)["predictions"]
