"""A closed-loop HTTP/1.1 load generator (for `plan-scaling --measure` and the serving
benchmark), and a trivial server.

Each of `concurrency` keep-alive connections has one request in flight: when its response is
complete, the next request goes out on the same connection (no pipelining). The client is
callback-driven `asyncio.Protocol` code on uvloop when it is installed (no task or future per
request), so one process sends tens of thousands of small requests per second. A load spec can
be split over several client processes (`procs`), each running this module.

Latency is measured per request from the write of the request to the last byte of the response.
Only requests sent and answered inside the measurement window count; the warm-up before it is
discarded. Errors are non-2xx answers, connections lost with a request in flight, and requests
without an answer after `timeout_s` (the connection is then dropped and reopened).

    python -m mlops_kit.capacity.loadgen --serve-trivial PORT   # answers `200 ok` to all
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import resource
import subprocess
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from mlops_kit.fileio import scratch_dir

HEADER_END = b"\r\n\r\n"
REPORTED_ERRORS = 5  # error samples kept per process


def http_request(method: str, path: str, host: str, port: int, body: bytes = b"",
                 content_type: str | None = None) -> bytes:
    """One raw HTTP/1.1 keep-alive request."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    if body or method in ("POST", "PUT"):
        head.append(f"Content-Length: {len(body)}")
    if content_type:
        head.append(f"Content-Type: {content_type}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class LoadSpec:
    """What to send, where, how hard and for how long."""

    host: str
    port: int
    requests: list[bytes]  # raw requests, sent in turn
    concurrency: int
    seconds: float
    warmup_s: float = 1.0
    timeout_s: float = 10.0
    procs: int = 1


@dataclass
class LoadResult:
    """Latencies (ns) of the requests answered inside the window, and what went wrong."""

    window_s: float
    latencies_ns: array = field(default_factory=lambda: array("q"))
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0

    def merge(self, other: LoadResult) -> None:
        self.latencies_ns.extend(other.latencies_ns)
        self.errors.update(other.errors)
        self.error_samples += other.error_samples[: max(0, REPORTED_ERRORS -
                                                        len(self.error_samples))]
        self.client_cpu_s += other.client_cpu_s
        self.window_s = max(self.window_s, other.window_s)

    def summary(self) -> dict[str, Any]:
        """Requests per second, latency percentiles in ms, errors, client CPU in cores."""
        lat = sorted(self.latencies_ns)
        n = len(lat)

        def pct(q: float) -> float | None:
            return round(lat[min(n - 1, int(q * n))] / 1e6, 3) if n else None

        errors = sum(self.errors.values())
        return {"requests": n, "rps": round(n / self.window_s, 1), "p50_ms": pct(0.50),
                "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
                "mean_ms": round(sum(lat) / n / 1e6, 3) if n else None,
                "errors": errors, "error_kinds": dict(self.errors),
                "error_samples": self.error_samples, "window_s": round(self.window_s, 3),
                "client_cores": round(self.client_cpu_s / self.window_s, 3)}


# --- the client -----------------------------------------------------------------------------


class _Run:
    """Shared state of one client process: the request cycle, the window and the results."""

    def __init__(self, spec: LoadSpec, offset: int, loop: asyncio.AbstractEventLoop) -> None:
        self.spec, self.loop = spec, loop
        self.next_index = offset
        self.stopping = False
        now = time.perf_counter_ns()
        self.window_start = now + int(spec.warmup_s * 1e9)
        self.window_end = self.window_start + int(spec.seconds * 1e9)
        self.result = LoadResult(window_s=spec.seconds)
        self.conns: list[_Conn] = []

    def next_request(self) -> bytes:
        reqs = self.spec.requests
        self.next_index = (self.next_index + 1) % len(reqs)
        return reqs[self.next_index]

    def record(self, sent: int, done: int) -> None:
        if sent >= self.window_start and done <= self.window_end:
            self.result.latencies_ns.append(done - sent)

    def error(self, kind: str, detail: str) -> None:
        """Count an error: in the warm-up too, since a server that fails then fails."""
        if self.stopping:
            return
        self.result.errors[kind] += 1
        if len(self.result.error_samples) < REPORTED_ERRORS:
            self.result.error_samples.append(f"{kind}: {detail}"[:300])

    def open(self) -> None:
        conn = _Conn(self)
        self.conns.append(conn)
        task = self.loop.create_connection(lambda: conn, self.spec.host, self.spec.port)
        fut = asyncio.ensure_future(task)
        fut.add_done_callback(lambda f: self._opened(conn, f))

    def _opened(self, conn: _Conn, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is None:
            return
        self.conns.remove(conn)
        self.error("connect", repr(fut.exception()))
        if not self.stopping:
            self.loop.call_later(0.05, self.open)

    def watchdog(self) -> None:
        """Drop connections whose request has waited longer than the timeout."""
        limit = time.perf_counter_ns() - int(self.spec.timeout_s * 1e9)
        for conn in list(self.conns):
            if conn.sent and conn.sent < limit and conn.transport is not None:
                self.error("timeout", f"no answer in {self.spec.timeout_s} s")
                conn.sent = 0
                conn.transport.abort()
        if not self.stopping:
            self.loop.call_later(0.25, self.watchdog)


class _Conn(asyncio.Protocol):
    """One keep-alive connection: send, read one whole response, send the next."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1  # total bytes of the response in flight, once its head is read
        self.status = 0
        self.sent = 0  # perf_counter_ns of the request in flight, 0 when idle
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.send_next()

    def send_next(self) -> None:
        assert self.transport is not None
        if self.run.stopping or self.close_after:
            self.transport.close()
            return
        self.buf.clear()
        self.need = -1
        req = self.run.next_request()
        self.sent = time.perf_counter_ns()
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0 and not self._read_head():
            return
        if self.need == 0:  # chunked: complete when the last chunk is in
            if not self.buf.endswith(b"0\r\n\r\n"):
                return
        elif len(self.buf) < self.need:
            return
        sent, done = self.sent, time.perf_counter_ns()
        self.sent = 0
        if 200 <= self.status < 300:
            self.run.record(sent, done)
        else:
            body = bytes(self.buf[self.buf.find(HEADER_END) + 4:][:200])
            self.run.error(f"http {self.status}", body.decode(errors="replace"))
        self.send_next()

    def _read_head(self) -> bool:
        end = self.buf.find(HEADER_END)
        if end < 0:
            return False
        lines = bytes(self.buf[:end]).split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        self.need = end + 4  # no body unless the head says so
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                self.need = end + 4 + int(value)
            elif name == b"transfer-encoding" and value == b"chunked":
                self.need = 0
            elif name == b"connection" and value == b"close":
                self.close_after = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self in self.run.conns:
            self.run.conns.remove(self)
        if self.sent:
            self.run.error("connection lost", repr(exc))
        if not self.run.stopping:
            self.run.open()  # keep the concurrency: a fresh connection replaces this one


async def _drive(spec: LoadSpec, offset: int) -> LoadResult:
    loop = asyncio.get_running_loop()
    run = _Run(spec, offset, loop)
    for _ in range(spec.concurrency):
        run.open()
    run.watchdog()
    await asyncio.sleep((run.window_start - time.perf_counter_ns()) / 1e9)
    cpu0 = _cpu_s()
    await asyncio.sleep((run.window_end - time.perf_counter_ns()) / 1e9)
    run.result.client_cpu_s = _cpu_s() - cpu0
    run.stopping = True
    for conn in list(run.conns):
        if conn.transport is not None:
            conn.transport.close()
    await asyncio.sleep(0.05)
    return run.result


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _event_loop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # the standard loop is slower but works
        pass


def run_here(spec: LoadSpec, offset: int = 0) -> LoadResult:
    """The load of `spec` from this process (ignores `spec.procs`)."""
    _event_loop()
    return asyncio.run(_drive(spec, offset))


def run_load(spec: LoadSpec, state: Path | None = None) -> dict[str, Any]:
    """The load of `spec` from `spec.procs` client processes; the merged summary. Their
    files go in a scratch folder under `state` (else the OS temp dir: a bench run)."""
    procs = max(1, min(spec.procs, spec.concurrency))
    shares = [spec.concurrency // procs + (i < spec.concurrency % procs) for i in range(procs)]
    with scratch_dir(state, "loadgen") as tmp:
        children = []
        for i, share in enumerate(shares):
            part = LoadSpec(**{**spec.__dict__, "concurrency": share, "procs": 1})
            src, out = tmp / f"spec{i}.pkl", tmp / f"out{i}.pkl"
            src.write_bytes(pickle.dumps((part.__dict__, i * 7919)))
            argv = [sys.executable, "-m", __name__, "--spec", str(src), "--out", str(out)]
            children.append((subprocess.Popen(argv), out))
        merged = LoadResult(window_s=spec.seconds)
        for child, out in children:
            if child.wait() != 0 or not out.is_file():
                raise RuntimeError(f"load generator process failed (exit {child.returncode})")
            merged.merge(LoadResult(**pickle.loads(out.read_bytes())))
    return {"concurrency": spec.concurrency, "client_procs": procs, **merged.summary()}


# --- the trivial server, for the client's ceiling -------------------------------------------


class _Trivial(asyncio.Protocol):
    """Answers each request (head plus Content-Length body) with a fixed `200 ok`."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(HEADER_END)
            if end < 0:
                return
            length = 0
            for line in bytes(self.buf[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[: end + 4 + length]
            self.transport.write(self.ANSWER)


async def _serve_trivial(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Trivial, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-trivial", type=int, metavar="PORT")
    parser.add_argument("--spec", type=Path, help="a pickled (LoadSpec fields, offset)")
    parser.add_argument("--out", type=Path, help="where to pickle the LoadResult fields")
    args = parser.parse_args(argv)
    if args.serve_trivial:
        _event_loop()
        asyncio.run(_serve_trivial(args.serve_trivial))
        return 0
    if not args.spec or not args.out:
        parser.error("--spec and --out go together")
    # Plain dicts cross the process boundary: this file runs as `__main__` here.
    spec, offset = pickle.loads(args.spec.read_bytes())
    result = run_here(LoadSpec(**spec), offset)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(result.__dict__))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
