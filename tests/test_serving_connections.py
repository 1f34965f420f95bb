"""The connection cap and the refusals made before the app, on a real server on loopback:
floods of idle and half-sent connections, and each refusal counted by reason in the metrics."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import load_config
from mlops_kit.runtime.deploy import Deployer, endpoint_dir
from mlops_kit.runtime.serving import serve_settings
from mlops_kit.serving.metrics import read_refused, read_window
from tests.conftest import Trained, write_config
from tests.test_serving import GOOD, call, free_port
from tests.test_serving_hostile import TIMEOUT_S, read_all, settings_for, spawn, status_of

CAP = 20
HALF = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"


def sockets(stack: ExitStack, port: int, count: int, first: bytes = b"") -> list[socket.socket]:
    """`count` connections, each having sent `first` (nothing if empty)."""
    opened = []
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        if first:
            sock.sendall(first)
        opened.append(sock)
        time.sleep(0.01)  # accepted in order: "oldest" means something
    return opened


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(max(wait, 0.01))
    try:
        return sock.recv(1) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except ConnectionResetError:
        return True


def refused(metrics: Path) -> dict[str, int]:
    time.sleep(0.6)  # the worker flushes 4 times a second
    return dict(read_refused(metrics, since=0))


@pytest.fixture()
def capped(trained: Trained, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    metrics = tmp_path / "metrics"
    settings = settings_for(trained, metrics_dir=str(metrics), max_connections=CAP,
                            header_timeout_s=30.0)
    with spawn(settings) as port:
        yield port, metrics


def test_half_sent_heads_over_the_cap_get_a_readable_503_and_the_server_recovers(
        capped: tuple[int, Path]) -> None:
    port, metrics = capped
    with ExitStack() as stack:
        holding = sockets(stack, port, CAP, HALF)
        time.sleep(0.3)
        extra = sockets(stack, port, 5, HALF)
        answers = [read_all(sock, time.monotonic() + 5) for sock in extra]
        status, headers, body = call(port, "POST", "/invocations", GOOD.encode(),
                                     {"Content-Type": "text/csv"})
        assert not any(closed_by_server(sock, 0) for sock in holding)
    for answer in answers:
        assert status_of(answer) == 503, answer[:200]
        head = answer.lower()
        assert b"retry-after: 1\r\n" in head and b"connection: close\r\n" in head
    assert (status, headers["retry-after"], headers["connection"]) == (503, "1", "close")
    assert "serving.limits.max_connections" in json.loads(body)["error"]
    deadline = time.monotonic() + 5  # the holders are gone: their places free up
    while (status := call(port, "POST", "/invocations", GOOD.encode(),
                          {"Content-Type": "text/csv"})[0]) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert refused(metrics).get("max_connections", 0) >= 6
    window = read_window(metrics, since=0)
    assert window.errors_5xx == 0 and window.errors_4xx == 0  # the 503s are no invocations


def test_idle_connections_over_the_cap_close_oldest_first(capped: tuple[int, Path]) -> None:
    port, metrics = capped
    with ExitStack() as stack:
        idle = sockets(stack, port, CAP + 5)
        time.sleep(0.3)
        assert [closed_by_server(sock, 0.5) for sock in idle[:5]] == [True] * 5
        assert not any(closed_by_server(sock, 0) for sock in idle[5:])
        for _ in range(3):  # a normal client gets in (the first closes another idle one)
            assert call(port, "POST", "/invocations", GOOD.encode(),
                        {"Content-Type": "text/csv"})[0] == 200
        assert closed_by_server(idle[5], 0.5) and not closed_by_server(idle[-1], 0)
    counts = refused(metrics)
    assert counts.get("idle_closed", 0) >= 6 and "max_connections" not in counts, counts


def test_connections_sending_only_blank_lines_stay_idle(capped: tuple[int, Path]) -> None:
    """The parser skips CRLFs before a request: such bytes must not take a place for good."""
    port, _ = capped
    with ExitStack() as stack:
        blank = sockets(stack, port, CAP, b"\r\n")
        time.sleep(0.3)
        assert call(port, "POST", "/invocations", GOOD.encode(),
                    {"Content-Type": "text/csv"})[0] == 200  # the oldest blank one made room
        assert closed_by_server(blank[0], 0.5)


HOSTILE = {
    "max_line_kb": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "max_headers": b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101))
    + b"\r\n",
    "max_header_kb": b"GET /ping HTTP/1.1\r\nX-A: " + b"a" * 300_000,
    "bad_request": b"BREW /ping HTCPCP/1.0\r\n\r\n",
    "header_timeout_s": HALF,
}


def test_refusals_before_the_app_are_counted_by_reason_not_as_errors(
        trained: Trained, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    loaded = load_config(config)
    metrics = endpoint_dir(loaded) / "metrics"
    since = time.time() - 1
    with spawn(settings_for(trained, metrics_dir=str(metrics), max_connections=2)) as port:
        statuses = {}
        for reason, request in HOSTILE.items():
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                statuses[reason] = status_of(read_all(sock, time.monotonic() + TIMEOUT_S + 7))
        with ExitStack() as stack:  # two half-sent heads fill the cap: a third is shed
            sockets(stack, port, 2, HALF)
            time.sleep(0.2)
            (shed,) = sockets(stack, port, 1, HALF)
            statuses["max_connections"] = status_of(read_all(shed, time.monotonic() + 5))
            time.sleep(TIMEOUT_S + 0.5)  # the two holders time out too
        counts = refused(metrics)
    assert statuses == {"max_line_kb": 414, "max_headers": 431, "max_header_kb": 431,
                        "bad_request": 400, "header_timeout_s": 408, "max_connections": 503}
    assert counts == {**dict.fromkeys(HOSTILE, 1), "header_timeout_s": 3,
                      "max_connections": 1}, counts
    window = read_window(metrics, since=since)
    assert (window.invocations, window.errors_4xx, window.errors_5xx) == (0, 0, 0)
    assert Deployer(loaded).alarm(0, since) is None
    shown = CliRunner().invoke(main, ["endpoint", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert ("refused before the app in the last hour (by limit): bad_request 1, "
            "header_timeout_s 3, max_connections 1, max_header_kb 1, max_headers 1, "
            "max_line_kb 1") in shown.output


def test_max_connections_comes_from_the_config_and_nonsense_is_refused(
        trained: Trained, tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, {"serving": {"limits": {
        "max_connections": 64}}}))
    assert serve_settings(loaded, trained.model_dir, "1").limits().max_connections == 64
    assert serve_settings(load_config(write_config(tmp_path)), trained.model_dir,
                          "1").limits().fds <= 1024  # the default fits the usual `ulimit -n`
    for nonsense in (0, -5, 10**7, "many"):
        config = write_config(tmp_path, {"serving": {"limits": {"max_connections": nonsense}}})
        result = CliRunner().invoke(main, ["validate", "--config", str(config)])
        assert result.exit_code == 2 and "max_connections" in result.output, result.output


def _limited(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_serve_raises_the_fd_limit_or_refuses_with_the_field(trained: Trained,
                                                             tmp_path: Path) -> None:
    config = write_config(tmp_path)
    short = subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli", "serve", "--config", str(config),
         "--model-dir", str(trained.model_dir), "--port", str(free_port()), "--workers", "1"],
        env={**os.environ, "MLOPS_STATE_DIR": str(tmp_path / "state")}, capture_output=True,
        text=True, timeout=60, preexec_fn=_limited(100, 300))
    assert short.returncode == 2, short.stdout + short.stderr
    assert ("config error: serving.limits.max_connections is 512: a worker may need 896 file "
            "descriptors, but this machine allows 300 per process") in short.stderr
    assert "Traceback" not in short.stderr
    raised = subprocess.run(
        [sys.executable, "-c", "import resource; from mlops_kit.serving.app import ensure_fds; "
         "ensure_fds(896, 512); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"],
        capture_output=True, text=True, timeout=60, preexec_fn=_limited(100, 2000))
    assert raised.stdout.strip() == "896", raised.stderr
