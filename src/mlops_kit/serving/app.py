"""The HTTP server: SageMaker's container contract (`GET /ping`, `POST /invocations`) as a
bare ASGI app on uvicorn. Each worker process serves one model, or an endpoint's production
variants by traffic weight plus an optional shadow variant (see `endpoint.py`).

A model that fails to load leaves the server up with `/ping` answering 503 and the reason;
bad requests get a 4xx with a message, unexpected errors a 500, and the worker keeps serving.
Predictions run on one thread beside the event loop, so the loop keeps reading requests (and
their arrival times) while a model works; latency counts from a request's first byte.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import random
import resource
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_kit.errors import MlopsKitError
from mlops_kit.serving import acks
from mlops_kit.serving.capture import Capture, Retention
from mlops_kit.serving.codec import BadRequest, media_type, shorten
from mlops_kit.serving.endpoint import EndpointState, EndpointStore, Variant
from mlops_kit.serving.handler import handle, model_fn
from mlops_kit.serving.metrics import MetricsWriter
from mlops_kit.serving.protocol import CONNECTIONS, Connections, Limits, arrived, protocol_class
from mlops_kit.serving.rollout import expired, take_over
from mlops_kit.serving.shadow import ShadowLog

ENV = "MLOPS_SERVE_SETTINGS"
TICK_SECONDS = 0.25
ERROR_CHARS = 500  # an error message never echoes more of the request than this
CLOSE = (b"connection", b"close")
EXIT_STATE = 3  # a worker's exit code when the endpoint state file cannot be used
REPEAT_LOG_S = 10.0  # the same background error is logged again at most this often
RESTART_BASE_S, RESTART_MAX_S, STABLE_S = 0.5, 30.0, 10.0  # the supervisor's backoff
log = logging.getLogger("mlops_kit.serving")

Scope = dict[str, Any]


@dataclass
class ServeSettings:
    """What a worker needs; passed to worker processes as JSON in `$MLOPS_SERVE_SETTINGS`.

    With `endpoint_state` set, the worker serves that endpoint's variants (and reloads them
    when the state changes); otherwise the one model in `model_dir`.
    """

    model_dir: str = ""
    model: str = "model"
    version: str = "0"
    variant: str = "AllTraffic"
    max_payload_mb: float = 6.0
    threads: int = 1
    workers: int = 1
    capture_dir: str | None = None
    sampling_percent: float = 100.0
    capture_inputs: bool = True
    capture_retention_days: float = 30.0
    capture_max_mb: float = 1024.0
    endpoint_state: str | None = None
    metrics_dir: str | None = None
    shadow_dir: str | None = None
    max_header_kb: float = 16.0
    max_headers: int = 100
    max_line_kb: float = 8.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 75.0
    max_connections: int = 512

    def limits(self) -> Limits:
        """What one request may send, and how slowly (see `protocol.py`)."""
        return Limits(head_bytes=int(self.max_header_kb * 1024), headers=self.max_headers,
                      line_bytes=int(self.max_line_kb * 1024),
                      header_timeout_s=self.header_timeout_s,
                      body_timeout_s=self.body_timeout_s,
                      max_connections=self.max_connections)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        raw = os.environ.get(ENV)
        if not raw:
            raise RuntimeError(f"${ENV} is not set: start the server with `mlops-kit serve`")
        return cls(**json.loads(raw))


class Slot:
    """A loaded variant: its model (or why it failed to load) and its capture writer."""

    def __init__(self, variant: Variant, settings: ServeSettings) -> None:
        self.variant = variant
        self.model: Any = None
        self.error: str | None = None
        try:
            self.model = model_fn(variant.model_dir, threads=settings.threads)
        except Exception as exc:  # any load failure makes /ping unhealthy, never a crash loop
            self.error = (f"model failed to load from {variant.model_dir}: "
                          f"{type(exc).__name__}: {exc}")
            log.error(self.error)
        self.label = str(variant.version) if variant.version else settings.version
        self.capture = None
        if settings.capture_dir:
            self.capture = Capture(Path(settings.capture_dir), model=settings.model,
                                   version=self.label, variant=variant.name,
                                   sampling_percent=settings.sampling_percent,
                                   inputs=settings.capture_inputs,
                                   retention=Retention(settings.capture_retention_days,
                                                       settings.capture_max_mb))
        self.headers = [(b"x-amzn-invoked-production-variant", variant.name.encode()),
                        (b"x-mlops-model-version", self.label.encode())]


class InferenceApp:
    """The ASGI application of one worker."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.limit = int(settings.max_payload_mb * 1024 * 1024)
        self.store = (EndpointStore(Path(settings.endpoint_state), settings.model)
                      if settings.endpoint_state else None)
        self.metrics = MetricsWriter(Path(settings.metrics_dir)) if settings.metrics_dir else None
        self.shadow_log = ShadowLog(Path(settings.shadow_dir)) if settings.shadow_dir else None
        self.slots: dict[str, Slot] = {}
        self.weights: list[tuple[float, Slot]] = []
        self.shadow: tuple[float, Slot] | None = None
        self.seen: tuple[int, int, int] | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.state: EndpointState | None = None
        self.errors = ErrorLog()
        self.acked: tuple[int, float] | None = None  # (generation, when) last acknowledged
        self.guardian: threading.Thread | None = None
        self.connections = Connections()  # replaced by the server's at startup
        self.shed_logged = -REPEAT_LOG_S
        self.reload()

    # --- variants ---------------------------------------------------------------------------

    def reload(self) -> None:
        """(Re)build the variant table from the endpoint state, loading new versions once."""
        if self.store is None:
            if not self.slots:
                only = Variant(self.settings.variant, 0, self.settings.model_dir)
                self.slots[only.name] = Slot(only, self.settings)
                self.weights = [(1.0, self.slots[only.name])]
            return
        seen = self.store.version()
        if seen == self.seen:
            return
        state = self.store.read()  # StateFileError: the caller keeps the current variants
        self.weights = [(v.weight, self._slot(v)) for v in state.variants if v.weight > 0]
        self.shadow = (state.shadow.weight, self._slot(state.shadow)) if state.shadow else None
        self.seen, self.state = seen, state

    def _slot(self, variant: Variant) -> Slot:
        key = f"{variant.name}:{variant.version}:{variant.model_dir}"
        if key not in self.slots:
            self.slots[key] = Slot(variant, self.settings)
        return self.slots[key]

    def route(self) -> Slot | None:
        """A production variant, picked at random by weight (SageMaker's traffic split)."""
        if len(self.weights) == 1:
            return self.weights[0][1]
        total = sum(w for w, _ in self.weights)
        pick = random.random() * total
        for weight, slot in self.weights:
            pick -= weight
            if pick < 0:
                return slot
        return self.weights[-1][1] if self.weights else None

    # --- HTTP -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                await _send(send, 405, {"error": "use POST /invocations"})
                return
            await self._invocations(scope, receive, send)
        elif path == "/ping":
            await self._ping(send)
        elif path == "/execution-parameters":
            await _send(send, 200, {"MaxConcurrentTransforms": self.settings.workers,
                                    "BatchStrategy": "MULTI_RECORD",
                                    "MaxPayloadInMB": max(1, int(self.settings.max_payload_mb))})
        else:
            await _send(send, 404, {"error": f"no route {path}: use GET /ping or "
                                             "POST /invocations"})

    async def _ping(self, send: Any) -> None:
        slots = [slot for _, slot in self.weights]
        broken = [s.error or "" for s in slots if s.model is None]
        if not slots or broken:
            await _send(send, 503, {"status": "unhealthy",
                                    "error": "; ".join(broken) or "no variant has traffic"})
            return
        await _send(send, 200, {"status": "healthy", "model": self.settings.model,
                                "variants": [{"name": s.variant.name,
                                              "version": s.label,
                                              "weight": w} for w, s in self.weights]})

    async def _invocations(self, scope: Scope, receive: Any, send: Any) -> None:
        started = arrived(scope) or time.perf_counter()
        slot = self.route()
        if slot is None or slot.model is None:
            error = slot.error if slot else "no variant has traffic"
            await _send(send, 503, {"error": error}, [*(slot.headers if slot else []), CLOSE])
            self._observe(slot, 503, started)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        accept = headers.get(b"accept", b"").decode("latin-1") or None
        try:
            body = await self._body(headers, receive)
        except BadRequest as exc:  # the body is not all read: close once the client is done
            await self._refuse(send, slot, exc, started, [*slot.headers, CLOSE])
            return
        try:
            answer, answer_type = await self._predict(slot, body, content_type, accept)
        except BadRequest as exc:
            await self._refuse(send, slot, exc, started, slot.headers)
            return
        except Exception as exc:  # the worker must keep serving
            log.exception("invocation failed")
            await _send(send, 500, {"error": f"internal error: {type(exc).__name__}: {exc}"},
                        slot.headers)
            self._observe(slot, 500, started)
            return
        await _raw(send, 200, answer, answer_type, slot.headers)
        latency = self._observe(slot, 200, started)
        if slot.capture is not None:
            slot.capture.record(body, media_type(content_type), answer, answer_type,
                                latency_ms=latency)
        if self.shadow is not None and random.random() < self.shadow[0]:
            await self._mirror(self.shadow[1], slot, body, content_type, answer, latency)

    async def _predict(self, slot: Slot, body: bytes, content_type: str,
                       accept: str | None) -> tuple[bytes, str]:
        """`handle` on the prediction thread: the event loop keeps serving meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, handle, slot.model, body, content_type,
                                          accept)

    async def _refuse(self, send: Any, slot: Slot, exc: BadRequest, started: float,
                      headers: list[tuple[bytes, bytes]]) -> None:
        await _send(send, exc.status, {"error": str(exc)}, headers)
        self._observe(slot, exc.status, started)

    def _observe(self, slot: Slot | None, status: int, started: float) -> float:
        """Record one request; its latency (ms) counts from its arrival to the reply."""
        latency = (time.perf_counter() - started) * 1e3
        if self.metrics is not None and slot is not None:
            self.metrics.observe(slot.variant.name, slot.variant.version, status, latency)
        return latency

    async def _mirror(self, shadow: Slot, live: Slot, body: bytes, content_type: str,
                      answer: bytes, latency: float) -> None:
        """Send the request to the shadow variant too; log both answers, never reply."""
        started = time.perf_counter()
        try:
            if shadow.model is None:
                raise RuntimeError(shadow.error)
            mirrored, _ = await self._predict(shadow, body, content_type, "text/csv")
            error = None
        except Exception as exc:  # a failing shadow never affects the caller
            mirrored, error = b"", f"{type(exc).__name__}: {exc}"
        if self.shadow_log is not None:
            self.shadow_log.record(live.variant.version, answer, latency,
                                   shadow.variant.version, mirrored,
                                   (time.perf_counter() - started) * 1e3, error)

    async def _body(self, headers: dict[bytes, bytes], receive: Any) -> bytes:
        length = _content_length(headers.get(b"content-length"))
        if length is not None and length > self.limit:
            raise BadRequest(self._too_big(length), 413)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("the request body did not arrive in full: the client closed "
                                 "the connection, or it was too slow", 408)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise BadRequest(self._too_big(size), 413)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _too_big(self, size: int) -> str:
        return (f"request body of {size} bytes is over the {self.settings.max_payload_mb:g} MB "
                "limit (serving.max_payload_mb): split it, or use `mlops-kit batch`")

    # --- background: state reload, flushing, acknowledgement, deployments -----------------

    def tick(self) -> None:
        """Reload the endpoint state if it changed; flush metrics, capture and shadow logs;
        acknowledge the generation served; take over a deployment whose deployer is gone.
        Each part's failure (a bad state file, a full disk) is logged and retried next tick."""
        self.errors.guard("endpoint state reload (keeping the current variants)", self.reload)
        self._count_refused()
        if self.metrics is not None:
            self.errors.guard("metrics flush", self.metrics.flush)
        if self.shadow_log is not None:
            self.errors.guard("shadow log flush", self.shadow_log.flush)
        for slot in list(self.slots.values()):
            if slot.capture is not None:
                self.errors.guard("capture flush", slot.capture.flush)
        self.errors.guard("worker acknowledgement", self._acknowledge)
        self.errors.guard("deployment watch", self._watch)

    def _count_refused(self) -> None:
        """Move the protocol's refusals to the metrics; warn (at most every REPEAT_LOG_S)
        while the connection cap turns clients away."""
        refused = self.connections.take_refused()
        if self.metrics is not None:
            self.metrics.refuse(refused)
        shed = refused.get("max_connections", 0)
        if shed and time.monotonic() - self.shed_logged >= REPEAT_LOG_S:
            log.warning("%d connection(s) refused with 503: the worker is at its %d connections "
                        "(serving.limits.max_connections)", shed, self.settings.max_connections)
            self.shed_logged = time.monotonic()

    @property
    def generation(self) -> int:
        return self.state.generation if self.state is not None else 0

    @property
    def dropped(self) -> int:
        """Log records dropped after writes kept failing (bounded buffers)."""
        writers = [self.metrics, self.shadow_log, *(s.capture for s in self.slots.values())]
        return sum(w.dropped for w in writers if w is not None)

    def _acknowledge(self, force: bool = False) -> None:
        """Write this worker's ack file: on a new generation, else every HEARTBEAT_S."""
        if self.store is None:
            return
        if (not force and self.acked is not None and self.acked[0] == self.generation
                and time.monotonic() - self.acked[1] < acks.HEARTBEAT_S):
            return
        acks.write(self.store.folder / acks.FOLDER,
                   acks.own(self.generation, self.errors.count, self.errors.last,
                            self.dropped))
        self.acked = (self.generation, time.monotonic())

    def _watch(self) -> None:
        """Finish or roll back a deployment whose deployer's lease ran out (one worker wins
        the lease; it runs the rest of the deployment in a thread)."""
        if (self.store is None or self.state is None
                or (self.guardian is not None and self.guardian.is_alive())
                or expired(self.state, time.time()) is None):
            return
        rollout = take_over(self.store, f"the server (worker pid {os.getpid()})",
                            on_event=lambda message: log.warning("deployment: %s", message))
        if rollout is None:
            return
        log.warning("deployment %s: its deployer is gone (%s); this worker finishes it",
                    rollout.id, rollout.takeover)
        self.guardian = threading.Thread(target=self._resume, args=(rollout,),
                                         name="mlops-deployment", daemon=True)
        self.guardian.start()

    def _resume(self, rollout: Any) -> None:
        try:
            status, reason = rollout.resume()
            log.warning("deployment %s: %s (%s)", rollout.id, status, reason)
        except Exception:  # the lease runs out again and another worker retries
            log.exception("deployment %s: taking it over failed", rollout.id)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
            except Exception:  # tick guards each part; this keeps the task alive regardless
                log.exception("background tick failed")

    async def _lifespan(self, scope: Scope, receive: Any, send: Any) -> None:
        task = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # the server's protocols find the same object in the lifespan state
                self.connections = scope.get("state", {}).setdefault(CONNECTIONS,
                                                                     self.connections)
                self.errors.guard("worker acknowledgement", lambda: self._acknowledge(True))
                task = asyncio.get_running_loop().create_task(self._ticker())
                if _READY is not None:
                    _READY.set()  # the supervisor: this worker got through its start
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if task is not None:
                    task.cancel()
                self.tick()
                if self.store is not None:
                    acks.remove(self.store.folder / acks.FOLDER, acks.own(self.generation))
                await send({"type": "lifespan.shutdown.complete"})
                return


class ErrorLog:
    """Background errors of one worker: every one counted, the first of a kind logged at
    once, repeats at most every REPEAT_LOG_S with how many there were."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""
        self.logged: dict[str, tuple[float, int]] = {}  # kind -> (last logged, repeats since)

    def guard(self, what: str, action: Any) -> None:
        """Run `action`; log (never raise) what it raised."""
        try:
            action()
        except Exception as exc:
            self.report(what, exc)

    def report(self, what: str, exc: Exception) -> None:
        self.count += 1
        self.last = f"{what}: {type(exc).__name__}: {exc}"
        kind = f"{what}:{type(exc).__name__}:{getattr(exc, 'errno', '')}"
        when, repeats = self.logged.get(kind, (-REPEAT_LOG_S, 0))
        if time.monotonic() - when < REPEAT_LOG_S:
            self.logged[kind] = (when, repeats + 1)
            return
        more = f" (and {repeats} more like it in the last {REPEAT_LOG_S:g} s)" if repeats else ""
        log.error("%s failed: %s: %s%s", what, type(exc).__name__, exc, more)
        self.logged[kind] = (time.monotonic(), 0)


async def _raw(send: Any, status: int, body: bytes, content_type: str,
               extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send(send: Any, status: int, doc: dict[str, Any],
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    if "error" in doc:
        doc = {**doc, "error": shorten(str(doc["error"]), ERROR_CHARS)}
    await _raw(send, status, json.dumps(doc).encode(), "application/json", extra)


def _content_length(value: bytes | None) -> int | None:
    """The declared body size; BadRequest if it is not a whole number."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Content-Length {shorten(repr(value.decode('latin-1')))} is not a "
                         "number of bytes") from None


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """The uvicorn settings every server uses: the limited HTTP protocol, no WebSockets."""
    return {"http": protocol_class(settings.limits()), "ws": "none", "lifespan": "on",
            "timeout_keep_alive": settings.keep_alive_s, "access_log": False,
            "server_header": False, "date_header": False}


def create_app() -> InferenceApp:
    """The uvicorn factory each worker calls."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    try:
        return InferenceApp(ServeSettings.from_env())
    except MlopsKitError as exc:  # e.g. a corrupt state file: one line, then the backoff
        log.error("%s: %s", exc.kind, exc)
        raise SystemExit(EXIT_STATE) from None


def serve(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8080,
          log_level: str = "warning") -> None:
    """Run the server in the foreground until interrupted (`settings.workers` processes).

    Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections
    evenly (one shared socket lets the least busy worker take most keep-alive connections);
    the supervisor restarts a worker that dies.
    """
    os.environ[ENV] = settings.to_env()
    ensure_fds(settings.limits().fds, settings.max_connections)
    if settings.workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        _run_worker(host, port, log_level, settings.workers <= 1)
        return
    _listener(host, port).close()  # fail fast (port taken) before any worker starts
    Supervisor(settings.workers, host, port, log_level, settings.endpoint_state).run()


class ServeLimitError(MlopsKitError):
    """A serving limit the machine cannot honour."""

    kind = "config error"
    exit_code = 2


def ensure_fds(needed: int, max_connections: int) -> None:
    """Raise this process's open-file limit (inherited by its workers) to `needed`, as far as
    the hard limit allows (nginx's `worker_rlimit_nofile`); ServeLimitError if it is short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ServeLimitError(
            f"serving.limits.max_connections is {max_connections}: a worker may need {needed} "
            f"file descriptors, but this machine allows {hard} per process (ulimit -Hn): lower "
            "max_connections or raise the limit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _listener(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


_READY: Any = None  # in a supervised worker: the Event its app sets once started


def _run_worker(host: str, port: int, log_level: str, single: bool = False,
                ready: Any = None) -> None:
    """One worker process: uvicorn on its own socket (the app built by `create_app`)."""
    import uvicorn

    global _READY
    _READY = ready

    config = uvicorn.Config("mlops_kit.serving.app:create_app", factory=True, host=host,
                            port=port, log_level=log_level,
                            **uvicorn_options(ServeSettings.from_env()))
    server = uvicorn.Server(config)
    if single:
        server.run()
        return
    sock = _listener(host, port)
    sock.listen(2048)
    server.run(sockets=[sock])


@dataclass
class _Seat:
    """One worker's place: its process, when it started, its quick failures in a row."""

    proc: Any = None
    ready: Any = None  # set by the worker once its app started
    started: float = 0.0
    failures: int = 0
    due: float = 0.0  # when to start the next process (monotonic)


class Supervisor:
    """Starts the worker processes, restarts any that die (with exponential backoff while
    they keep dying before or soon after their start, saying why), stops them all on
    SIGINT/SIGTERM."""

    def __init__(self, workers: int, host: str, port: int, log_level: str,
                 state: str | None = None) -> None:
        self.args = (host, port, log_level)
        self.context = multiprocessing.get_context("spawn")
        self.seats = [_Seat() for _ in range(workers)]
        self.state = state
        self.stop = threading.Event()

    @property
    def procs(self) -> list[Any]:
        return [seat.proc for seat in self.seats if seat.proc is not None]

    def _start(self, seat: _Seat) -> None:
        seat.ready = self.context.Event()
        seat.proc = self.context.Process(target=_run_worker,
                                         args=(*self.args, False, seat.ready), daemon=False)
        seat.proc.start()
        seat.started = time.monotonic()

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        for seat in self.seats:
            self._start(seat)
        while not self.stop.wait(0.1):
            for seat in self.seats:
                self._check(seat)
        for proc in self.procs:
            proc.terminate()  # SIGTERM: each worker drains and flushes its logs
        for proc in self.procs:
            proc.join(20)
            if proc.is_alive():
                proc.kill()

    def _check(self, seat: _Seat) -> None:
        """Restart a seat's worker when due; schedule it (with backoff) when it died."""
        now = time.monotonic()
        if seat.proc is None:
            if now >= seat.due and not self.stop.is_set():
                self._start(seat)
            return
        if seat.proc.is_alive() or self.stop.is_set():
            return
        lived = now - seat.started
        young = not seat.ready.is_set() or lived < STABLE_S  # died starting, or soon after
        seat.failures = seat.failures + 1 if young else 1
        delay = min(RESTART_MAX_S, RESTART_BASE_S * 2 ** (seat.failures - 1))
        log.error("worker %s exited with %s after %.1f s%s: restarting it in %.1f s "
                  "(failure %d in a row)", seat.proc.pid, seat.proc.exitcode, lived,
                  self._why(seat.proc.exitcode), delay, seat.failures)
        seat.proc, seat.due = None, now + delay

    def _why(self, exitcode: int | None) -> str:
        if exitcode != EXIT_STATE or not self.state:
            return ""
        try:
            EndpointStore(Path(self.state), "").read()
        except MlopsKitError as exc:
            return f" ({exc})"
        return " (the endpoint state could not be used)"


class BackgroundServer:
    """The server in a thread of this process (one worker): for the local loop and tests."""

    def __init__(self, settings: ServeSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        ensure_fds(settings.limits().fds, settings.max_connections)
        self.config = uvicorn.Config(InferenceApp(settings), host=host, port=port,
                                     log_level="warning", **uvicorn_options(settings))
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="mlops-serve", daemon=True)

    @property
    def port(self) -> int:
        sock = self.server.servers[0].sockets[0]
        return int(sock.getsockname()[1])

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
