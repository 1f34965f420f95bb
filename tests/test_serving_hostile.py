"""The server under hostile clients, as a real process on loopback: header floods, slow
senders, over-limit bodies, fuzzed bodies, and latency measured from a request's arrival."""

from __future__ import annotations

import http.client
import json
import math
import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.config import load_config
from mlops_kit.runtime.deploy import Deployer, endpoint_dir
from mlops_kit.runtime.serving import serve_settings
from mlops_kit.serving.app import ServeSettings
from mlops_kit.serving.metrics import read_window
from mlops_kit.serving.protocol import LINGER_S
from tests.conftest import Trained, write_config
from tests.test_serving import GOOD, answering, call, free_port, invoke

TIMEOUT_S = 1.0  # the header and body timeouts of the test server
ROWS = (GOOD + "\n").encode()


@contextmanager
def spawn(settings: ServeSettings) -> Iterator[int]:
    """`serve(settings)` in its own process (one worker); yields its port once it answers."""
    port = free_port()
    code = ("import json, sys; from mlops_kit.serving.app import ServeSettings, serve; "
            "serve(ServeSettings(**json.loads(sys.argv[1])), port=int(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, settings.to_env(), str(port)],
                            env={**os.environ}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    with answering(proc, port) as ready:
        yield ready


def settings_for(trained: Trained, **changes: Any) -> ServeSettings:
    base = ServeSettings(model_dir=str(trained.model_dir), max_payload_mb=1.0,
                         header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S,
                         keep_alive_s=2.0)
    return replace(base, **changes)


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "metrics"


@pytest.fixture(scope="module")
def hostile(trained: Trained, metrics: Path) -> Iterator[int]:
    """One server for the tests that need no clean metrics window."""
    with spawn(settings_for(trained, metrics_dir=str(metrics))) as port:
        yield port


def counts(metrics: Path) -> tuple[int, int, int]:
    """Invocations, 4xx and 5xx so far, once the worker has flushed (4 times a second)."""
    time.sleep(0.6)
    window = read_window(metrics, since=0)
    return window.invocations, window.errors_4xx, window.errors_5xx


def status_of(answer: bytes) -> int | str:
    """The status of a raw HTTP answer, or `closed` if the server sent none."""
    if not answer.startswith(b"HTTP/1.1 "):
        return "closed"
    return int(answer.split(b" ", 2)[1])


def read_all(sock: socket.socket, deadline: float) -> bytes:
    """Read until the server closes the connection (or resets it, or the deadline)."""
    got = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        got += chunk
    return got


def answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


# --- 1. header floods and slow senders ----------------------------------------------------

def flood(port: int, looks: bool, results: list[Any]) -> None:
    """100 MB of one header, as fast as loopback takes it; `looks` stops at the first answer."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        chunk, sent = b"a" * 65536, 0
        try:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            while sent < 100 * 2**20 and not (looks and answered(sock)):
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        results.append(("flood", status_of(read_all(sock, time.monotonic() + 10)), sent))


def slow(port: int, head_done: bool, results: list[Any]) -> None:
    """A request sent a byte every 50 ms: in its head, or (`head_done`) in its body."""
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 1000\r\n\r\n")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            if head_done:
                sock.sendall(head)
            trickle = (head if not head_done else b"") + b"1" * 1000
            for byte in trickle:
                if answered(sock):
                    break
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass
        answer = read_all(sock, time.monotonic() + 10)
        results.append(("slow-body" if head_done else "slow-head", status_of(answer),
                        round(time.monotonic() - started, 1), answer.rsplit(b"\r\n", 1)[-1]))


def normal_client(port: int, seconds: float) -> list[tuple[int | str, float]]:
    seen: list[tuple[int | str, float]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            status: int | str = invoke(port, GOOD)[0]
        except OSError as exc:
            status = type(exc).__name__
        seen.append((status, time.perf_counter() - started))
        time.sleep(0.02)
    return seen


def test_header_floods_and_slow_senders_do_not_starve_a_normal_client(hostile: int) -> None:
    results: list[Any] = []
    clients = ([threading.Thread(target=flood, args=(hostile, i % 2 == 0, results))
                for i in range(4)]
               + [threading.Thread(target=slow, args=(hostile, i % 2 == 1, results))
                  for i in range(6)])
    for thread in clients:
        thread.start()
    seen = normal_client(hostile, 4.0)
    for thread in clients:
        thread.join(30)
    assert {status for status, _ in seen} == {200}, seen
    assert max(latency for _, latency in seen) < 2.0, seen
    floods = [r for r in results if r[0] == "flood"]
    assert len(floods) == 4 and all(r[1] in (431, "closed") for r in floods), floods
    assert sum(r[1] == 431 for r in floods) >= 2, floods  # the ones that read got the answer
    slows = [r for r in results if r[0].startswith("slow")]
    assert len(slows) == 6, slows
    for _kind, status, seconds, body in slows:
        assert status == 408 and b"did not arrive within 1 s" in body, slows
        assert seconds < TIMEOUT_S + LINGER_S + 3, slows
    assert invoke(hostile, GOOD)[0] == 200


@pytest.mark.parametrize(("request_head", "status", "message"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request line is over"),
    (b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
     431, "more than 100 headers"),
    (b"GET /ping HTTP/1.1\r\nX-A: " + b"a" * 17000 + b"\r\n\r\n", 431, "request head is over"),
    (b"GET /ping HTTP/1.1\r\nX-A: " + b"a" * 300_000, 431, "request head is over"),
    (b"BREW /ping HTCPCP/1.0\r\n\r\n", 400, "invalid HTTP request"),
])
def test_heads_over_the_limits_are_refused(hostile: int, request_head: bytes, status: int,
                                           message: str) -> None:
    with socket.create_connection(("127.0.0.1", hostile)) as sock:
        sock.sendall(request_head)
        answer = read_all(sock, time.monotonic() + TIMEOUT_S + LINGER_S + 3)
    assert status_of(answer) == status, answer[:200]
    assert message in json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert invoke(hostile, GOOD)[0] == 200


def test_keep_alive_pipelining_and_idle_connections(hostile: int) -> None:
    body = GOOD.encode()
    one = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with socket.create_connection(("127.0.0.1", hostile)) as sock:  # pipelined, then idle
        sock.sendall(one * 3)
        started = time.monotonic()
        answer = read_all(sock, started + 10)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert 1.5 < time.monotonic() - started < 5  # closed when idle for keep_alive_s (2 s)
    with socket.create_connection(("127.0.0.1", hostile)) as sock:  # a new one, never used
        started = time.monotonic()
        assert read_all(sock, started + 10) == b""
        assert 1.5 < time.monotonic() - started < 5


# --- 2. over-limit bodies -----------------------------------------------------------------

@pytest.mark.parametrize("megabytes", [2, 8, 64])
@pytest.mark.parametrize("close", [False, True])
def test_over_limit_body_413_is_read_by_http_client(hostile: int, megabytes: int,
                                                    close: bool) -> None:
    body = ROWS * (megabytes * 2**20 // len(ROWS))
    conn = http.client.HTTPConnection("127.0.0.1", hostile, timeout=30)
    headers = {"Content-Type": "text/csv", **({"Connection": "close"} if close else {})}
    try:
        conn.request("POST", "/invocations", body, headers)
        resp = conn.getresponse()
        assert resp.status == 413
        assert "serving.max_payload_mb" in json.loads(resp.read())["error"]
        assert resp.getheader("connection") == "close"
    finally:
        conn.close()
    assert invoke(hostile, GOOD)[0] == 200


def test_over_limit_body_413_is_read_by_urllib_and_chunked(hostile: int) -> None:
    body = ROWS * (16 * 2**20 // len(ROWS))
    request = urllib.request.Request(f"http://127.0.0.1:{hostile}/invocations", data=body,
                                     headers={"Content-Type": "text/csv"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413 and b"max_payload_mb" in caught.value.read()
    conn = http.client.HTTPConnection("127.0.0.1", hostile, timeout=30)
    conn.request("POST", "/invocations", iter([ROWS * 5000] * 100),
                 {"Content-Type": "text/csv"}, encode_chunked=True)
    assert conn.getresponse().status == 413
    conn.close()


def test_over_limit_body_raw_socket_reads_413_then_close(hostile: int) -> None:
    size = 50 * 2**20
    with socket.create_connection(("127.0.0.1", hostile)) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        sender = threading.Thread(target=lambda: _send_quietly(sock, b"1" * size))
        sender.start()
        answer = read_all(sock, time.monotonic() + LINGER_S + 10)
        sender.join(30)
    assert status_of(answer) == 413 and b"max_payload_mb" in answer
    assert b"connection: close" in answer.lower()


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with suppress(OSError):
        sock.sendall(data)


def test_a_body_that_never_finishes_gets_408_and_counts_as_4xx(hostile: int,
                                                              metrics: Path) -> None:
    before = counts(metrics)
    with socket.create_connection(("127.0.0.1", hostile)) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     b"Content-Length: 1000\r\n\r\n" + GOOD.encode())
        started = time.monotonic()
        answer = read_all(sock, time.monotonic() + 10)
    assert status_of(answer) == 408 and b"request body did not arrive" in answer
    assert time.monotonic() - started < TIMEOUT_S + 2
    after = counts(metrics)
    assert tuple(b - a for a, b in zip(before, after, strict=True)) == (1, 1, 0)


# --- 3. no input causes a 5xx -------------------------------------------------------------

ROW = ["2025-03-01T10:00:00", 12, 70.5, 800.1, "one-year", "credit_card", "fiber", 2, 40]
FUZZ: list[tuple[bytes | str, str]] = [
    ('[["2025-03-01T10:00:00", ' + "1" * 5000 + ', 70.5, 1, "one-year", "credit_card", '
     '"fiber", 2, 40]]', "application/json"),
    ('{"tenure_months": ' + "9" * 5000 + "}", "application/json"),
    ('{"a": 1}\n{"tenure_months": ' + "9" * 5000 + "}", "application/jsonlines"),
    ("[" * 200_000, "application/json"),
    ('{"instances": ' * 50_000, "application/json"),
    ("[NaN, Infinity, -Infinity, 1e999, -1e999, 1, 2, 3, 4]", "application/json"),
    (json.dumps([ROW]).replace("70.5", "1e999"), "application/json"),
    (json.dumps([ROW]).replace("70.5", "NaN"), "application/json"),
    (json.dumps([ROW]).replace("12", "-Infinity"), "application/json"),
    (GOOD.replace("70.5", "1" * 5000), "text/csv"),
    (GOOD.replace("70.5", "1e99999"), "text/csv"),
    (GOOD.replace("12", "9" * 400), "text/csv"),
    (b"\xc3\x28,\xff\xfe\xfd", "text/csv"),
    (b'[["\xed\xa0\x80"]]', "application/json"),
    (GOOD, "application/x-www-form-urlencoded"),
    (GOOD, "multipart/form-data; boundary=x"),
    (GOOD, "application/octet-stream"),
    ("1,2\n", "text/csv; charset=latin-1; x=" + "y" * 2000),
    ("", "application/json"),
    (" \n\t ", "application/jsonlines"),
    ("[[]]", "application/json"),
    ("[[[[1]]]]", "application/json"),
    ("[[1, 2], [1]]", "application/json"),
    (json.dumps([ROW, ROW[:3]]), "application/json"),
    (json.dumps([ROW, 5]), "application/json"),
    (json.dumps([{"tenure_months": 1}, [1, 2]]), "application/json"),
    ("[null]", "application/json"),
    ("[true, false]", "application/json"),
    ('{"instances": {}}', "application/json"),
    ('{"instances": null}', "application/json"),
    ('{"instances": [[{"a": 1}]]}', "application/json"),
    ("[{}]", "application/json"),
    (json.dumps({f"f{i}": i for i in range(20_000)}), "application/json"),
    (json.dumps([[{"x": [1]}] * 9]), "application/json"),
    (json.dumps([ROW]).replace('"one-year"', '{"a": 1}'), "application/json"),
    (json.dumps([ROW]).replace('"2025-03-01T10:00:00"', "12345"), "application/json"),
    (json.dumps([ROW]).replace('"2025-03-01T10:00:00"', '"2025-13-45T99:99:99"'),
     "application/json"),
    (json.dumps([ROW]).replace('"2025-03-01T10:00:00"', '"' + "9" * 5000 + '"'),
     "application/json"),
    (json.dumps([ROW]).replace('"one-year"', '"' + "x" * 500_000 + '"').replace("12", "abc"),
     "application/json"),
    ('"just a string"', "application/json"),
    ("1,2,3\n4,5\n\"unterminated", "text/csv"),
    ("\x00\x00\x00", "text/csv"),
    (",,,,,,,,\n", "text/csv"),
    ((GOOD + "\n") * 3 + "1,2\n", "text/csv"),
]


def test_fuzzed_bodies_get_a_4xx_never_a_5xx(trained: Trained, tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path))
    metrics = endpoint_dir(loaded) / "metrics"
    with spawn(settings_for(trained, metrics_dir=str(metrics), max_payload_mb=6.0)) as port:
        since = time.time() - 1
        answers = [invoke(port, body, content_type) for body, content_type in FUZZ]
        answers.append(invoke(port, GOOD, "text/csv", "application/" + "x" * 10_000))
        time.sleep(0.6)  # the worker flushes metrics 4 times a second
    bad = [(i, status, body[:200]) for i, (status, body) in enumerate(answers)
           if not 400 <= status < 500]
    assert not bad
    assert all(len(body) < 1000 for _, body in answers), [len(b) for _, b in answers]
    first = json.loads(answers[0][1])["error"]
    assert answers[0][0] == 400 and "an integer has more than 4300 digits" in first
    assert answers[-1][0] == 406 and "more characters" in json.loads(answers[-1][1])["error"]
    window = read_window(metrics, since=since)
    assert (window.invocations, window.errors_4xx, window.errors_5xx) == (len(answers),) * 2 + (0,)
    assert Deployer(loaded).alarm(0, since) is None  # 100 % client errors: no rollback


def test_a_huge_accept_header_is_refused_with_a_short_answer(hostile: int) -> None:
    status, _, body = call(hostile, "POST", "/invocations", GOOD.encode(),
                           {"Content-Type": "text/csv", "Accept": "x" * 2**20})
    assert status == 431 and len(body) < 200


def test_limits_come_from_the_config(trained: Trained, tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, {"serving": {"limits": {
        "max_header_kb": 32, "max_headers": 50, "header_timeout_s": 3}}}))
    limits = serve_settings(loaded, trained.model_dir, "1").limits()
    assert (limits.head_bytes, limits.headers, limits.header_timeout_s) == (32768, 50, 3.0)
    assert (limits.line_bytes, limits.body_timeout_s) == (8192, 30.0)


# --- 4. latency from the request's arrival ------------------------------------------------

def test_latency_counts_queueing_and_trips_the_alarm(trained: Trained, tmp_path: Path) -> None:
    """Eight clients at once on one worker: each request waits for the others' predictions.
    The recorded p99 must be what clients see, not the in-handler time."""
    loaded = load_config(write_config(tmp_path))
    metrics = endpoint_dir(loaded) / "metrics"
    body = ROWS * 1000
    with spawn(settings_for(trained, metrics_dir=str(metrics), max_payload_mb=6.0)) as port:
        alone = statistics.median(_timed(port, body) for _ in range(5))
        time.sleep(1.0)  # the sequential requests stay out of the window
        since = time.time()
        with ThreadPoolExecutor(8) as pool:
            seen = sorted(pool.map(lambda _: _timed(port, body), range(40)))
        time.sleep(0.6)
    client_p99 = seen[math.ceil(0.99 * len(seen)) - 1]
    window = read_window(metrics, since=int(since))
    recorded = window.percentile(99)
    assert window.invocations >= 40 - 8  # a second's boundary may split the first ones off
    assert client_p99 > 3 * alone, (alone, seen)  # the clients did queue
    assert recorded >= 0.7 * client_p99 * 1e3, (recorded, client_p99, alone)
    threshold = math.sqrt(alone * client_p99) * 1e3  # above in-handler, below what clients see
    deployer = Deployer(load_config(write_config(tmp_path, {"serving": {
        "latency_p99_ms": threshold}})))
    assert "latency alarm" in (deployer.alarm(0, since) or "")


def _timed(port: int, body: bytes) -> float:
    started = time.perf_counter()
    status, _ = invoke(port, body)
    assert status == 200
    return time.perf_counter() - started
