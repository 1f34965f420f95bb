"""One server's capacity at the latency objective, measured on loopback.

The real server (`mlops_kit.serving.app.serve`, `workers` processes) runs in a child process;
the closed-loop load generator ramps its connections 1, 2, 4, ... Each step runs for
`seconds` after a warm-up. The capacity is the highest rate of a step whose p99 meets the
objective without errors; the ramp stops at the first step that misses it, or when doubling
the connections no longer adds 5 % (the server is saturated).
"""

from __future__ import annotations

import http.client
import multiprocessing
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_kit.capacity.loadgen import LoadSpec, http_request, run_load
from mlops_kit.capacity.simulate import PlanError
from mlops_kit.serving.app import ServeSettings, serve

SATURATED = 1.05  # a step must add 5 % to the best rate so far, or the ramp stops


@dataclass
class Step:
    concurrency: int
    rps: float
    p99_ms: float | None
    errors: int

    def meets(self, objective_ms: float) -> bool:
        return self.errors == 0 and self.p99_ms is not None and self.p99_ms <= objective_ms


@dataclass
class Measurement:
    """The ramp's steps and the best rate within the objective."""

    objective_ms: float
    workers: int
    steps: list[Step] = field(default_factory=list)

    @property
    def best(self) -> Step | None:
        ok = [s for s in self.steps if s.meets(self.objective_ms)]
        return max(ok, key=lambda s: s.rps) if ok else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`serve(settings)` on 127.0.0.1 in a spawned child; stopped with SIGTERM."""

    def __init__(self, settings: ServeSettings, start_timeout_s: float = 60.0) -> None:
        self.settings, self.port, self.timeout = settings, free_port(), start_timeout_s
        self.proc: Any = multiprocessing.get_context("spawn").Process(
            target=serve, args=(settings, "127.0.0.1", self.port), daemon=False)

    def __enter__(self) -> ServerProcess:
        self.proc.start()
        deadline = time.monotonic() + self.timeout
        while not self._healthy():
            if not self.proc.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise PlanError(f"the server for {self.settings.model_dir} did not become "
                                "healthy (GET /ping): check that the model folder loads")
            time.sleep(0.1)
        return self

    def _healthy(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def measure(model_dir: str, bodies: Sequence[bytes], objective_ms: float, workers: int = 1,
            seconds: float = 3.0, warmup_s: float = 1.0, max_concurrency: int = 64,
            content_type: str = "text/csv", state: Path | None = None) -> Measurement:
    """Ramp the load on the model's server until p99 misses `objective_ms` or it saturates."""
    if not bodies:
        raise PlanError("no request bodies to measure with")
    settings = ServeSettings(model_dir=model_dir, workers=workers, threads=1)
    result = Measurement(objective_ms, workers)
    with ServerProcess(settings) as server:
        requests = [http_request("POST", "/invocations", "127.0.0.1", server.port, b,
                                 content_type) for b in bodies]
        concurrency, best = 1, 0.0
        while concurrency <= max_concurrency:
            out = run_load(LoadSpec("127.0.0.1", server.port, requests, concurrency, seconds,
                                    warmup_s), state)
            step = Step(concurrency, float(out["rps"]), out["p99_ms"], int(out["errors"]))
            result.steps.append(step)
            if not step.meets(objective_ms) or step.rps < best * SATURATED:
                break
            best, concurrency = step.rps, concurrency * 2
    return result
