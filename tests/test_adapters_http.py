"""The metrics sinks' sessions retry throttling and server errors (POST included) before the
monitor gives up: a local HTTP server answers each POST from a script of status codes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from google.auth.credentials import AnonymousCredentials

from mlops_kit.adapters import http
from mlops_kit.adapters.azure import appinsights
from mlops_kit.adapters.gcp import cloudmonitoring


class Scripted(BaseHTTPRequestHandler):
    """Answers the n-th POST with `script[n]` (200 once the script is used up)."""

    script: ClassVar[list[int]] = []
    seen: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = self.script[len(self.seen)] if len(self.seen) < len(self.script) else 200
        self.seen.append(status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, type[Scripted]]]:
    monkeypatch.setattr(http, "BACKOFF_S", 0.0)   # the same retries, without the sleeps
    handler = type("Handler", (Scripted,), {"script": [], "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/post", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("session", [
    lambda: cloudmonitoring._session(AnonymousCredentials()), appinsights._session],
    ids=["cloud_monitoring", "app_insights"])
def test_throttling_and_server_errors_are_retried(server: Any, session: Any) -> None:
    url, handler = server
    handler.script = [429, 503, 500]
    answer = session().post(url, json={"x": 1}, timeout=5)
    assert answer.status_code == 200 and handler.seen == [429, 503, 500, 200]


@pytest.mark.parametrize("session", [
    lambda: cloudmonitoring._session(AnonymousCredentials()), appinsights._session],
    ids=["cloud_monitoring", "app_insights"])
def test_a_refusal_is_not_retried(server: Any, session: Any) -> None:
    url, handler = server
    handler.script = [400]
    assert session().post(url, json={"x": 1}, timeout=5).status_code == 400
    assert handler.seen == [400]


def test_app_insights_also_retries_its_throttling_codes(server: Any) -> None:
    url, handler = server
    handler.script = [439, 408]
    assert appinsights._session().post(url, json=[], timeout=5).status_code == 200
    assert handler.seen == [439, 408, 200]


def test_retries_are_bounded_then_the_answer_reaches_the_sink(server: Any) -> None:
    url, handler = server
    handler.script = [503] * 10
    assert appinsights._session().post(url, json=[], timeout=5).status_code == 503
    assert len(handler.seen) == 1 + http.ATTEMPTS


def test_an_unreachable_sink_is_a_metrics_error() -> None:
    import requests

    from mlops_kit.monitoring.sink import Metric

    class Down:
        def post(self, *args: Any, **kwargs: Any) -> Any:
            raise requests.ConnectionError("connection refused")

    metric = [Metric("DriftedFeatures", 1.0, {"Model": "m"})]
    with pytest.raises(cloudmonitoring.MetricsError, match="unreachable: connection refused"):
        cloudmonitoring.CloudMonitoringSink(Down(), "p-1", "churn").publish(metric)
    with pytest.raises(appinsights.MetricsError, match="unreachable: connection refused"):
        appinsights.AppInsightsSink(Down(), "InstrumentationKey=k", "churn").publish(metric)
