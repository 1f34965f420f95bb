"""The HTTP/1.1 connection: uvicorn's httptools protocol with limits a hostile client cannot get
past, and answers every client can read.

- A request line over `line_bytes` gets a 414; a head (request line and headers) over
  `head_bytes`, or with more than `headers` headers, gets a 431. The parser never holds more
  than the limit plus one read.
- A head must arrive within `header_timeout_s` of its first byte, and a body within
  `body_timeout_s` of its head (else 408). An idle connection closes after the keep-alive time,
  a new one too.
- A connection closed while the client is still sending (an early 413, a refusal) is
  half-closed: the answer goes out, the rest of the request is read and dropped for up to
  `LINGER_S`, then the socket closes. Closing at once makes the kernel reset the connection,
  and clients see the reset instead of the answer.
- Each request's arrival time (its first byte) goes to the app in the scope (`arrived`), so
  latency counts time spent waiting in the server.
- At most `max_connections` connections per worker. A new one over the cap first closes the
  oldest idle connection (a keep-alive between requests, or a new one that has sent nothing),
  as nginx drains its idle keep-alives when `worker_connections` run out. With none idle it
  gets a 503 with `Retry-After` and `Connection: close`, written before any of its request is
  read, and the socket closes after `SHED_LINGER_S`. Not accepting (nginx's and HAProxy's
  last resort) would leave clients waiting in one worker's kernel backlog with nothing to read
  until they time out; uvicorn's `limit_concurrency` answers 503 only after a whole head is
  read, so clients holding half-sent heads would still take every slot.
- Refusals made before the app (400, 408 on the head, 414, 431, the 503 of the cap) are
  counted by reason (the setting that refused) in `Connections.refused`, which the app writes
  beside its metrics. They are not invocations: they never move the error rate or latency.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

TIMING = "mlops_kit.timing"  # scope["extensions"][TIMING]["arrived"]: perf_counter() seconds
CONNECTIONS = "mlops_kit.connections"  # the lifespan state's key of the worker's Connections
LINGER_S = 5.0
SHED_LINGER_S = 1.0  # a connection refused at the cap is read and dropped this long at most
RETRY_AFTER_S = 1
RESERVED_FDS = 256  # file descriptors a worker needs besides its connections


@dataclass(frozen=True)
class Limits:
    """What one request may send, and how slowly."""

    head_bytes: int = 16 * 1024
    headers: int = 100
    line_bytes: int = 8 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 512

    @property
    def max_shedding(self) -> int:
        """Refused connections left to linger at once; past this the one refused first (its
        503 long written) is closed to make room, so the newest client still reads its 503."""
        return max(16, self.max_connections // 4)

    @property
    def fds(self) -> int:
        """The file descriptors one worker may need with these limits."""
        return self.max_connections + self.max_shedding + RESERVED_FDS


class Connections:
    """One worker's connections: how many count against the cap, which are idle (oldest
    first), how many refused ones still linger, and what was refused before the app."""

    def __init__(self) -> None:
        self.open = 0
        self.idle: dict[LimitedProtocol, None] = {}  # insertion order: the oldest idle first
        self.shedding: dict[LimitedProtocol, None] = {}  # refused, lingering: oldest first
        self.refused: Counter[str] = Counter()

    def close_oldest_idle(self) -> bool:
        """Close the connection idle the longest, if any (it has nothing unread)."""
        victim = next(iter(self.idle), None)
        if victim is None:
            return False
        victim.evict()
        self.refused["idle_closed"] += 1
        return True

    def take_refused(self) -> dict[str, int]:
        """The counts by reason since the last call."""
        counts, self.refused = dict(self.refused), Counter()
        return counts


def arrived(scope: dict[str, Any]) -> float | None:
    """The request's arrival (`time.perf_counter()` seconds), if the server recorded it."""
    value = scope.get("extensions", {}).get(TIMING, {}).get("arrived")
    return float(value) if value is not None else None


def protocol_class(limits: Limits) -> type[asyncio.Protocol]:
    """The protocol uvicorn runs (its `http` setting) with these limits."""
    return type("LimitedProtocol", (LimitedProtocol,), {"limits": limits})


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the refusal is in `protocol.refusal`."""


class _Transport:
    """The connection's transport as uvicorn sees it: `close` goes through the protocol."""

    def __init__(self, real: asyncio.Transport, protocol: LimitedProtocol) -> None:
        self._real = real
        self._protocol = protocol

    def close(self) -> None:
        self._protocol.close_gracefully()

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._real.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class LimitedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with size limits, read timeouts and graceful closes."""

    limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.in_head = True  # no request, or one whose head is not all read
        self.reading = False  # a request has begun and is not all read
        self.head_seen = 0
        self.refusal: tuple[int, str, str] | None = None
        self.lingering = False
        self.gate = Connections()
        self.counted = False  # this connection holds one of the cap's places
        self.shed = False  # refused at the cap

    # --- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        super().connection_made(_Transport(transport, self))  # type: ignore[arg-type]
        self.gate = self.app_state.setdefault(CONNECTIONS, self.gate)
        gate = self.gate
        if gate.open >= self.limits.max_connections and not gate.close_oldest_idle():
            self._shed()
            return
        gate.open += 1
        self.counted = True
        gate.idle[self] = None
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._release()
        if self.shed:
            self.shed = False
            self.gate.shedding.pop(self, None)
        self.lingering = False
        self.reading = False
        super().connection_lost(exc)

    def evict(self) -> None:
        """Close this idle connection to make room for a new one."""
        self._release()
        self._close_now()

    def _release(self) -> None:
        if self.counted:
            self.counted = False
            self.gate.open -= 1
            self.gate.idle.pop(self, None)

    def _shed(self) -> None:
        """Over the cap with nothing idle: a 503 before reading, then a short linger."""
        self.shed = True
        if len(self.gate.shedding) >= self.limits.max_shedding:
            oldest = next(iter(self.gate.shedding))  # refused longest ago: its 503 is out
            self.gate.shedding.pop(oldest)
            oldest._close_now()
        self.gate.shedding[self] = None
        self.gate.refused["max_connections"] += 1
        message = (f"the server is at its {self.limits.max_connections} connections "
                   f"(serving.limits.max_connections): retry in {RETRY_AFTER_S} s")
        self._write_answer(503, message, b"retry-after: %d\r\n" % RETRY_AFTER_S)
        raw = cast(asyncio.Transport, self.raw)
        self.lingering = True
        if raw.can_write_eof():
            raw.write_eof()
        self.timer = self.loop.call_later(SHED_LINGER_S, self._close_now)

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)
        super().on_response_complete()
        closing = self.raw is None or self.raw.is_closing() or self.lingering
        if self.counted and not (queued or self.reading or closing):
            self.gate.idle[self] = None  # a keep-alive waiting for its next request

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._close_now()
        else:
            self.cycle.keep_alive = False

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # the answer is out: the rest of the request is dropped
        self.gate.idle.pop(self, None)
        self._unset_keepalive_if_required()
        if self.in_head:
            self.head_seen += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            self.refuse(400, "protocol upgrades are not supported", "bad_request")
        except httptools.HttpParserError:
            refusal, self.refusal = self.refusal, None
            self.refuse(*(refusal or (400, "invalid HTTP request", "bad_request")))
        else:
            if self.in_head and self.reading and self.head_seen > self.limits.head_bytes:
                self.refuse(431, self._head_message(), "max_header_kb")
            elif not self.reading:
                self._idle_again()

    def _idle_again(self) -> None:
        """Bytes that began no request (the CRLFs the parser skips) leave the connection idle:
        back in the idle list, its keep-alive timer armed, so it can be closed for room."""
        between = self.cycle is None or self.cycle.response_complete
        if not (self.counted and between and not self.pipeline and not self.lingering):
            return
        self.gate.idle[self] = None
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler)

    # --- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading = True
        self.scope["extensions"] = {TIMING: {"arrived": time.perf_counter()}}
        self._arm(self.limits.header_timeout_s, "request head", "header_timeout_s")

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.line_bytes:
            self._stop(414, f"the request line is over {self.limits.line_bytes:,} bytes "
                            "(serving.limits.max_line_kb)", "max_line_kb")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.limits.headers:
            self._stop(431, f"more than {self.limits.headers} headers "
                            "(serving.limits.max_headers)", "max_headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.head_bytes:
            self._stop(431, self._head_message(), "max_header_kb")
        self.in_head = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """The body's clock starts with its request's turn (a pipelined one waits unread)."""
        super()._start_asgi_task(cycle, app)
        if self.reading and not self.in_head:
            self._arm(self.limits.body_timeout_s, "request body", "")

    def on_message_complete(self) -> None:
        self._cancel()
        self.reading = False
        self.in_head = True
        self.head_seen = 0
        super().on_message_complete()

    # --- refusals and closing ------------------------------------------------------------

    def refuse(self, status: int, message: str, reason: str = "") -> None:
        """Answer `status` (unless a response is under way) and close the connection. A
        refusal before the app is counted under `reason` (the app counts its own requests)."""
        cycle = self.cycle
        if self.in_head:  # the app has no part of this request: answer unless it is busy
            answer = cycle is None or cycle.response_complete
            if reason:
                self.gate.refused[reason] += 1
        else:  # the app has this request: cut it off, and answer if it has not
            answer = not cycle.response_started
            if not cycle.response_complete:
                cycle.disconnected = True  # its receive() ends, its response is dropped
                cycle.message_event.set()
        if answer:
            self._write_answer(status, message)
        self.close_gracefully()

    def _write_answer(self, status: int, message: str, extra: bytes = b"") -> None:
        if self.raw is not None and not self.raw.is_closing():
            body = json.dumps({"error": message}).encode()
            self.raw.write(b"".join([
                STATUS_LINE[status], b"content-type: application/json\r\n", extra,
                b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]))

    def close_gracefully(self) -> None:
        """Close now if the request was read in full; else half-close and linger."""
        raw = self.raw
        if raw is None or raw.is_closing() or self.lingering:
            return
        if not self.reading:
            self._close_now()
            return
        self._cancel()
        self.lingering = True
        raw.resume_reading()
        if raw.can_write_eof():
            raw.write_eof()
        self.timer = self.loop.call_later(LINGER_S, self._close_now)

    def _close_now(self) -> None:
        self._cancel()
        if self.raw is not None and not self.raw.is_closing():
            self.raw.close()

    def _stop(self, status: int, message: str, reason: str) -> None:
        self.refusal = (status, message, reason)
        raise _Refused(message)

    def _head_message(self) -> str:
        return (f"the request head is over {self.limits.head_bytes:,} bytes "
                "(serving.limits.max_header_kb)")

    def _arm(self, seconds: float, what: str, reason: str) -> None:
        self._cancel()
        message = f"the {what} did not arrive within {seconds:g} s"
        self.timer = self.loop.call_later(seconds, self.refuse, 408, message, reason)

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
