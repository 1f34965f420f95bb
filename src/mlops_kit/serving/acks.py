"""Workers' acknowledgements: which endpoint generation each server worker serves.

Each worker writes `workers/<host>-<pid>.json` beside `state.json` (atomically, on every new
generation and at least every `HEARTBEAT_S`). A command that changes what is served waits
until every live worker acknowledges the new generation (`confirm`), so a worker that stopped
following the state makes the command fail loudly instead of reporting a change nobody serves.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops_kit.errors import MlopsKitError
from mlops_kit.fileio import temp_file

FOLDER = "workers"
HEARTBEAT_S = 1.0
REMOTE_STALE_S = 30.0  # a worker on another host counts as gone after this long unheard


class WorkersNotConfirmed(MlopsKitError):
    """Live server workers that do not serve the endpoint's new generation in time."""

    kind = "deploy error"


@dataclass
class Ack:
    pid: int
    host: str
    started: str  # the process's start time (Linux clock ticks): tells a reused pid apart
    generation: int
    heartbeat: float  # epoch seconds
    errors: int = 0  # background (I/O) errors so far
    last_error: str = ""
    dropped: int = 0  # log records dropped after failed writes

    @property
    def file_name(self) -> str:
        return f"{self.host}-{self.pid}.json"

    def alive(self) -> bool:
        """The process still runs (same host: by pid and start time; else by heartbeat)."""
        if self.host != socket.gethostname():
            return time.time() - self.heartbeat < REMOTE_STALE_S
        return process_start(self.pid) == self.started

    def describe(self) -> str:
        age = time.time() - self.heartbeat
        text = f"pid {self.pid} (serves generation {self.generation}, heartbeat {age:.1f} s ago"
        return text + (f", last error: {self.last_error})" if self.last_error else ")")


def process_start(pid: int) -> str:
    """A process's start time from /proc ('' if it does not exist; 'unknown' off Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    except OSError:
        return "unknown"
    return stat.rsplit(")", 1)[1].split()[19]


def own(generation: int, errors: int = 0, last_error: str = "", dropped: int = 0) -> Ack:
    """This process's acknowledgement of `generation`."""
    pid = os.getpid()
    return Ack(pid, socket.gethostname(), process_start(pid), generation, time.time(), errors,
               last_error[:300], dropped)


def write(folder: Path, ack: Ack) -> None:
    """Replace this worker's file atomically (no fsync: it only matters while we run)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(folder / ack.file_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(ack), fh)
        Path(tmp).replace(folder / ack.file_name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove(folder: Path, ack: Ack) -> None:
    (folder / ack.file_name).unlink(missing_ok=True)


def live(folder: Path) -> list[Ack]:
    """The acknowledgements of live workers; files of exited workers are removed."""
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            ack = Ack(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being replaced, or not ours
        if ack.alive():
            out.append(ack)
        else:
            path.unlink(missing_ok=True)
    return out


def confirm(folder: Path, generation: int, timeout: float,
            keep_alive: Callable[[], None] | None = None, poll: float = 0.1) -> int:
    """Wait until every live worker serves `generation` or newer; the number of workers.
    WorkersNotConfirmed names the ones that do not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        workers = live(folder)
        behind = [a for a in workers if a.generation < generation]
        if not behind:
            return len(workers)
        if time.monotonic() >= deadline:
            raise WorkersNotConfirmed(
                f"{len(behind)} of {len(workers)} server worker(s) did not confirm endpoint "
                f"generation {generation} within {timeout:g} s: "
                f"{'; '.join(a.describe() for a in behind)}. Their files are in {folder}; "
                "see the server's log for their errors, restart `mlops-kit serve` if a worker "
                "is stuck, then check `mlops-kit endpoint` and run the command again")
        if keep_alive is not None:
            keep_alive()
        time.sleep(poll)
