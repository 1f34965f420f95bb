"""The HTTP server: SageMaker's container contract (`GET /ping`, `POST /invocations`) as a
bare ASGI app on uvicorn, one model per worker process.

A model that fails to load leaves the server up with `/ping` answering 503 and the reason;
bad requests get a 4xx with a message, unexpected errors a 500, and the worker keeps serving.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_kit.serving.capture import Capture
from mlops_kit.serving.codec import BadRequest, media_type
from mlops_kit.serving.handler import handle, model_fn

ENV = "MLOPS_SERVE_SETTINGS"
log = logging.getLogger("mlops_kit.serving")

Scope = dict[str, Any]


@dataclass
class ServeSettings:
    """What a worker needs; passed to worker processes as JSON in `$MLOPS_SERVE_SETTINGS`."""

    model_dir: str
    model: str = "model"
    version: str = "0"
    variant: str = "AllTraffic"
    max_payload_mb: float = 6.0
    threads: int = 1
    workers: int = 1
    capture_dir: str | None = None
    sampling_percent: float = 100.0
    capture_inputs: bool = True

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        raw = os.environ.get(ENV)
        if not raw:
            raise RuntimeError(f"${ENV} is not set: start the server with `mlops-kit serve`")
        return cls(**json.loads(raw))


class InferenceApp:
    """The ASGI application of one worker."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.limit = int(settings.max_payload_mb * 1024 * 1024)
        self.model: Any = None
        self.error: str | None = None
        try:
            self.model = model_fn(settings.model_dir, threads=settings.threads)
        except Exception as exc:  # any load failure makes /ping unhealthy, never a crash loop
            self.error = (f"model failed to load from {settings.model_dir}: "
                          f"{type(exc).__name__}: {exc}")
            log.error(self.error)
        self.capture = None
        if settings.capture_dir:
            self.capture = Capture(Path(settings.capture_dir), model=settings.model,
                                   version=settings.version, variant=settings.variant,
                                   sampling_percent=settings.sampling_percent,
                                   inputs=settings.capture_inputs)
        self.variant_header = [(b"x-amzn-invoked-production-variant", settings.variant.encode()),
                               (b"x-mlops-model-version", settings.version.encode())]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
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
                                    "MaxPayloadInMB": int(self.settings.max_payload_mb)})
        else:
            await _send(send, 404, {"error": f"no route {path}: use GET /ping or "
                                             "POST /invocations"})

    async def _ping(self, send: Any) -> None:
        if self.model is None:
            await _send(send, 503, {"status": "unhealthy", "error": self.error})
            return
        await _send(send, 200, {"status": "healthy", "model": self.settings.model,
                                "version": self.settings.version,
                                "variant": self.settings.variant})

    async def _invocations(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.model is None:
            await _send(send, 503, {"error": self.error})
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        accept = headers.get(b"accept", b"").decode("latin-1") or None
        try:
            body = await self._body(headers, receive)
            answer, answer_type = handle(self.model, body, content_type, accept)
        except BadRequest as exc:
            await _send(send, exc.status, {"error": str(exc)}, self.variant_header)
            return
        except Exception as exc:  # the worker must keep serving
            log.exception("invocation failed")
            await _send(send, 500, {"error": f"internal error: {type(exc).__name__}: {exc}"},
                        self.variant_header)
            return
        await _raw(send, 200, answer, answer_type, self.variant_header)
        if self.capture is not None:
            self.capture.record(body, media_type(content_type), answer, answer_type,
                                latency_ms=(time.perf_counter() - started) * 1e3)

    async def _body(self, headers: dict[bytes, bytes], receive: Any) -> bytes:
        length = headers.get(b"content-length")
        if length is not None and int(length) > self.limit:
            raise BadRequest(self._too_big(int(length)), 413)
        chunks, size = [], 0
        while True:
            message = await receive()
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

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.capture is not None:
                    self.capture.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _raw(send: Any, status: int, body: bytes, content_type: str,
               extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send(send: Any, status: int, doc: dict[str, Any],
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _raw(send, status, json.dumps(doc).encode(), "application/json", extra)


def create_app() -> InferenceApp:
    """The uvicorn factory each worker calls."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    return InferenceApp(ServeSettings.from_env())


def serve(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8080,
          log_level: str = "warning") -> None:
    """Run the server in the foreground until interrupted (`settings.workers` processes)."""
    import uvicorn

    os.environ[ENV] = settings.to_env()
    uvicorn.run("mlops_kit.serving.app:create_app", factory=True, host=host, port=port,
                workers=settings.workers if settings.workers > 1 else None,
                loop="auto", http="auto", lifespan="on", access_log=False,
                log_level=log_level, timeout_keep_alive=75, server_header=False,
                date_header=False)
