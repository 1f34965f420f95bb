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
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

TIMING = "mlops_kit.timing"  # scope["extensions"][TIMING]["arrived"]: perf_counter() seconds
LINGER_S = 5.0


@dataclass(frozen=True)
class Limits:
    """What one request may send, and how slowly."""

    head_bytes: int = 16 * 1024
    headers: int = 100
    line_bytes: int = 8 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0


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
        self.refusal: tuple[int, str] | None = None
        self.lingering = False

    # --- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        super().connection_made(_Transport(transport, self))  # type: ignore[arg-type]
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self.lingering = False
        self.reading = False
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._close_now()
        else:
            self.cycle.keep_alive = False

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return  # the answer is out: the rest of the request is dropped
        self._unset_keepalive_if_required()
        if self.in_head:
            self.head_seen += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            self.refuse(400, "protocol upgrades are not supported")
        except httptools.HttpParserError:
            refusal, self.refusal = self.refusal, None
            self.refuse(*(refusal or (400, "invalid HTTP request")))
        else:
            if self.in_head and self.reading and self.head_seen > self.limits.head_bytes:
                self.refuse(431, self._head_message())

    # --- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading = True
        self.scope["extensions"] = {TIMING: {"arrived": time.perf_counter()}}
        self._arm(self.limits.header_timeout_s, "request head")

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.line_bytes:
            self._stop(414, f"the request line is over {self.limits.line_bytes:,} bytes "
                            "(serving.limits.max_line_kb)")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self.limits.headers:
            self._stop(431, f"more than {self.limits.headers} headers "
                            "(serving.limits.max_headers)")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.head_bytes:
            self._stop(431, self._head_message())
        self.in_head = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """The body's clock starts with its request's turn (a pipelined one waits unread)."""
        super()._start_asgi_task(cycle, app)
        if self.reading and not self.in_head:
            self._arm(self.limits.body_timeout_s, "request body")

    def on_message_complete(self) -> None:
        self._cancel()
        self.reading = False
        self.in_head = True
        self.head_seen = 0
        super().on_message_complete()

    # --- refusals and closing ------------------------------------------------------------

    def refuse(self, status: int, message: str) -> None:
        """Answer `status` (unless a response is under way) and close the connection."""
        cycle = self.cycle
        if self.in_head:  # the app has no part of this request: answer unless it is busy
            answer = cycle is None or cycle.response_complete
        else:  # the app has this request: cut it off, and answer if it has not
            answer = not cycle.response_started
            if not cycle.response_complete:
                cycle.disconnected = True  # its receive() ends, its response is dropped
                cycle.message_event.set()
        if answer and self.raw is not None and not self.raw.is_closing():
            body = json.dumps({"error": message}).encode()
            self.raw.write(b"".join([
                STATUS_LINE[status], b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]))
        self.close_gracefully()

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

    def _stop(self, status: int, message: str) -> None:
        self.refusal = (status, message)
        raise _Refused(message)

    def _head_message(self) -> str:
        return (f"the request head is over {self.limits.head_bytes:,} bytes "
                "(serving.limits.max_header_kb)")

    def _arm(self, seconds: float, what: str) -> None:
        self._cancel()
        message = f"the {what} did not arrive within {seconds:g} s"
        self.timer = self.loop.call_later(seconds, self.refuse, 408, message)

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
