"""The HTTP server as a real process on a loopback port: SageMaker's contract, every kind of
bad request, a model that fails to load, and the server still serving afterwards."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_kit.models import load_model
from mlops_kit.serving.capture import read_capture
from tests.conftest import Trained

COLUMNS = ["event_time", "tenure_months", "monthly_charges", "total_charges", "contract",
           "payment_method", "internet_service", "support_calls", "age"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(model_dir: Path | None, config: Path, state: Path, *extra: str) -> Iterator[int]:
    """`mlops-kit serve` in a subprocess (the endpoint, or one model folder); yields its port
    once it answers /ping."""
    port = free_port()
    env = {**os.environ, "MLOPS_STATE_DIR": str(state)}
    folder = ["--model-dir", str(model_dir)] if model_dir else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_kit.cli", "serve", "--config", str(config), *folder,
         "--port", str(port), "--workers", "2", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with answering(proc, port) as ready:
        yield ready


@contextmanager
def answering(proc: subprocess.Popen[str], port: int, start_s: float = 60) -> Iterator[int]:
    """Wait until the server process `proc` answers GET /ping on `port`, yield the port, then
    stop it (SIGTERM, then SIGKILL after 20 s)."""
    try:
        deadline = time.monotonic() + start_s
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                call(port, "GET", "/ping")
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield port
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str], grace_s: float = 20) -> None:
    """SIGTERM a server process, and SIGKILL it if it is still running after `grace_s`."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def invoke(port: int, body: bytes | str, content_type: str = "text/csv",
           accept: str | None = None) -> tuple[int, bytes]:
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    status, _, answer = call(port, "POST", "/invocations", data, headers)
    return status, answer


def csv_body(rows: pd.DataFrame) -> str:
    frame = rows[COLUMNS].copy()
    frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame.to_csv(index=False, header=False)


@pytest.fixture(scope="module")
def live(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    state = tmp_path_factory.mktemp("serve-state")
    with server(trained.model_dir, trained.config, state) as port:
        yield port


def test_ping_and_execution_parameters(live: int) -> None:
    status, _, body = call(live, "GET", "/ping")
    assert status == 200 and json.loads(body)["status"] == "healthy"
    status, _, body = call(live, "GET", "/execution-parameters")
    assert status == 200 and json.loads(body)["BatchStrategy"] == "MULTI_RECORD"


def test_csv_single_row_and_batch_match_in_process(live: int, trained: Trained) -> None:
    rows = trained.rows.head(100)
    expected = load_model(trained.model_dir).predict_source(rows)
    status, answer = invoke(live, csv_body(rows.head(1)))
    assert status == 200
    assert float(answer.decode()) == pytest.approx(expected[0], abs=1e-6)
    status, answer = invoke(live, csv_body(rows))
    got = np.array([float(x) for x in answer.decode().split()])
    assert status == 200 and len(got) == 100
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_json_shapes_and_accept(live: int, trained: Trained) -> None:
    rows = trained.rows.head(3)
    expected = load_model(trained.model_dir).predict_source(rows)
    records = json.loads(rows[COLUMNS].to_json(orient="records", date_format="iso"))
    for body in ({"instances": records}, records):
        status, answer = invoke(live, json.dumps(body), "application/json")
        preds = json.loads(answer)["predictions"]
        assert status == 200
        assert [p["score"] for p in preds] == pytest.approx(expected, abs=1e-6)
        assert all(p["predicted_label"] in (0, 1) for p in preds)
    status, answer = invoke(live, json.dumps(records[0]), "application/json", "text/csv")
    assert status == 200 and float(answer) == pytest.approx(expected[0], abs=1e-6)
    lines = "\n".join(json.dumps(r) for r in records)
    status, answer = invoke(live, lines, "application/jsonlines", "application/json")
    assert status == 200 and len(json.loads(answer)["predictions"]) == 3
    status, answer = invoke(live, csv_body(rows), "text/csv; charset=utf-8", "application/json")
    assert status == 200 and len(json.loads(answer)["predictions"]) == 3


GOOD = "2025-03-01T10:00:00,12,70.5,800.1,one-year,credit_card,fiber,2,40"


@pytest.mark.parametrize(("body", "content_type", "accept", "status", "message"), [
    ('2025-03-01T10:00:00,"12,70.5\n', "text/csv", None, 400, "malformed CSV"),
    ('{"instances": [', "application/json", None, 400, "malformed JSON"),
    ("1,2,3\n", "text/csv", None, 400, "row 1 has 3 values, expected 9"),
    (GOOD + ",7\n", "text/csv", None, 400, "has 10 values"),
    ('{"tenure_months": 3, "colour": "red"}', "application/json", None, 400,
     "unknown field(s) ['colour']"),
    (GOOD.replace(",12,", ",,"), "text/csv", None, 400,
     "column tenure_months: a value is required"),
    ('[["2025-03-01T10:00:00", NaN, 70.5, 1, "one-year", "credit_card", "fiber", 2, 40]]',
     "application/json", None, 400, "column tenure_months: a value is required"),
    (GOOD.replace("70.5", "abc"), "text/csv", None, 400, "'abc' is not a number"),
    (GOOD.replace("70.5", "inf"), "text/csv", None, 400, "is not a finite number"),
    (GOOD.replace(",12,", ",1.5,"), "text/csv", None, 400, "'1.5' is not a whole number"),
    (GOOD.replace("2025-03-01T10:00:00", "yesterday"), "text/csv", None, 400,
     "'yesterday' is not an ISO 8601 timestamp"),
    ("", "text/csv", None, 400, "empty request body"),
    ("\n\n", "text/csv", None, 400, "empty request body"),
    ("[]", "application/json", None, 400, "no rows"),
    ("42", "application/json", None, 400, "JSON body must be"),
    (GOOD, "image/png", None, 415, "unsupported content type 'image/png'"),
    (GOOD, "text/csv", "application/xml", 406, "accept text/csv or application/json"),
    (b"\xff\xfe", "text/csv", None, 400, "not UTF-8"),
    ('[["2025-03-01T10:00:00", 1' + "0" * 400 + ', 70.5, 1, "one-year", "credit_card", '
     '"fiber", 2, 40]]', "application/json", None, 400, "is not a finite number"),
    ("[" * 100_000 + "]" * 100_000, "application/json", None, 400, "nested too deeply"),
    ('[["\\ud800", 12, 70.5, 1, "one-year", "credit_card", "fiber", 2, 40]]',
     "application/json", None, 400, "column event_time: '\\ud800' is not valid Unicode text"),
    ('[["2025-03-01T10:00:00", 12, 70.5, 1, "\\ud800", "credit_card", "fiber", 2, 40]]',
     "application/json", None, 400, "column contract: '\\ud800' is not valid Unicode text"),
    ('[["2025-03-01T10:00:00", true, 70.5, 1, "one-year", "credit_card", "fiber", 2, 40]]',
     "application/json", None, 400, "column tenure_months: True is not a number"),
    ('[["2025-03-01T10:00:00", 12, 70.5, 1, ["a"], "credit_card", "fiber", 2, 40]]',
     "application/json", None, 400, "column contract: ['a'] is not a text value"),
    (GOOD.replace("2025-03-01T10:00:00", "now"), "text/csv", None, 400,
     "'now' is not an ISO 8601 timestamp"),
    (GOOD.replace("2025-03-01T10:00:00", "99999999999-01-01"), "text/csv", None, 400,
     "row 1, column event_time: '99999999999-01-01'"),
])
def test_bad_requests_get_a_clear_4xx(live: int, body: str | bytes, content_type: str,
                                      accept: str | None, status: int, message: str) -> None:
    got, answer = invoke(live, body, content_type, accept)
    assert got == status, answer
    assert message in json.loads(answer)["error"]
    assert invoke(live, GOOD)[0] == 200  # and the server keeps serving


def test_body_over_the_limit_is_413(live: int) -> None:
    big = (GOOD + "\n") * (6 * 1024 * 1024 // len(GOOD) + 10)
    status, answer = invoke(live, big)
    assert status == 413 and "max_payload_mb" in json.loads(answer)["error"]
    assert invoke(live, GOOD)[0] == 200


def test_routes_and_methods(live: int) -> None:
    assert call(live, "GET", "/invocations")[0] == 405
    assert call(live, "GET", "/predict")[0] == 404


def test_model_that_fails_to_load_is_unhealthy_not_a_crash(trained: Trained,
                                                           tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_meta.json").write_text("{not json")
    with server(broken, trained.config, tmp_path / "state") as port:
        status, _, body = call(port, "GET", "/ping")
        assert status == 503 and "model failed to load" in json.loads(body)["error"]
        assert invoke(port, GOOD)[0] == 503
        assert call(port, "GET", "/ping")[0] == 503  # still up, still answering


def test_requests_are_captured_with_version_and_time(trained: Trained, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with server(trained.model_dir, trained.config, state) as port:
        for _ in range(5):
            assert invoke(port, GOOD)[0] == 200
    records = read_capture(state / "capture" / "churn-classifier")
    assert len(records) == 5
    first: dict[str, Any] = records[0]
    assert first["captureData"]["endpointInput"]["data"] == GOOD
    assert first["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert float(first["captureData"]["endpointOutput"]["data"]) > 0
    assert first["eventMetadata"]["modelVersion"] == "local"
    assert first["eventMetadata"]["inferenceTime"].endswith("Z")


def test_no_capture_flag(trained: Trained, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with server(trained.model_dir, trained.config, state, "--no-capture") as port:
        assert invoke(port, GOOD)[0] == 200
    assert not (state / "capture").exists()


def test_container_entry_finds_the_model_on_sagemaker_and_azure_ml() -> None:
    from mlops_kit.serving.__main__ import model_dir

    assert model_dir({}) == "/opt/ml/model"
    assert model_dir({"SM_MODEL_DIR": "/m"}) == "/m"
    assert model_dir({"AZUREML_MODEL_DIR": "/var/azureml-app/models/x/1"}) == \
        "/var/azureml-app/models/x/1/mlops-model"
    assert model_dir({"SM_MODEL_DIR": "/m", "AZUREML_MODEL_DIR": "/a"}) == "/m"
