"""Fault drills against the real local platform: one row per fault, and what was lost.

Run from the repository root:

    .venv/bin/python bench/faults.py                 # every drill (a few minutes)
    .venv/bin/python bench/faults.py --only kill     # the drills whose name contains "kill"

Each drill copies a trained project (two registered versions, two ingest days) into a fresh
folder, runs real `mlops-kit` processes and a real server on loopback, applies one fault
(SIGKILL, a corrupt state file, a full filesystem, hostile clients) and then checks what a user
would: the commands still answer with a clear error or recover, and nothing that existed before
the fault is gone. "lost" compares an inventory of the state taken before and after the fault:
every registry version folder (its files and digests), every raw lake file, and the endpoint's
settled state. The table goes to stdout and `bench/results/faults.json`; the exit status is 1 if
any row lost something. This is a drill, not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "faults.json"
CLI = [sys.executable, "-m", "mlops_kit.cli"]
MODEL = "churn-classifier"
ROW = "2025-05-23T23:34:24,64,66.25,4184.82,month-to-month,credit_card,fiber,2,70"
DAYS = ("2026-11-30", "2026-12-01")


@dataclass
class Row:
    fault: str
    happened: str
    client_errors: str
    lost: str


# --- a project and its state ----------------------------------------------------------------


class Project:
    """A project folder with its own state dir; runs the real CLI in child processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state = folder / ".mlops"
        self.env = {**os.environ, "MLOPS_STATE_DIR": str(self.state), "PYTHONUNBUFFERED": "1"}

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args, "--config", "mlops.yaml"], cwd=self.folder,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*CLI, *args, "--config", "mlops.yaml"], cwd=self.folder,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    @property
    def registry(self) -> Path:
        return self.state / "registry" / MODEL

    def endpoint_state(self) -> Path:
        return next((self.state / "endpoints").glob("*/state.json"))


def make_base(folder: Path) -> Project:
    """A small example project with two trained versions, one per ingest day."""
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    raw["data"]["source"]["rows"] = 2000
    raw["model"]["search"]["trials"] = 2
    raw["model"]["params"]["n_estimators"] = 60
    raw["quality_gate"].update(min_value=0.6, min_gain=-1.0)
    raw["serving"]["deployment"] = {"strategy": "canary", "canary_percent": 50, "wait_s": 6}
    folder.mkdir(parents=True)
    (folder / "mlops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    project = Project(folder)
    for day in DAYS:
        done = project.cli("run", "--train-only", "--ingest-date", day)
        if done.returncode:
            raise SystemExit(f"base project: run for {day} failed:\n{done.stdout}{done.stderr}")
    return project


def copy_of(base: Project, folder: Path) -> Project:
    shutil.copytree(base.folder, folder, symlinks=True)
    return Project(folder)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def inventory(project: Project) -> dict[str, str]:
    """Every registry version file and raw lake file, with its digest."""
    items: dict[str, str] = {}
    for top in (project.registry, project.state / "lake" / "raw"):
        for path in sorted(top.rglob("*")) if top.exists() else []:
            parts = path.relative_to(project.state).parts
            hidden = any(p.startswith((".", "_tmp", "tmp")) for p in parts)
            kept = top.name == "raw" or parts[2].isdigit()  # version folders, not the index
            if path.is_file() and kept and not hidden:
                items[str(path.relative_to(project.state))] = digest(path)
    return items


def lost(before: dict[str, str], after: dict[str, str]) -> str:
    gone = [k for k in before if k not in after]
    changed = [k for k in before if k in after and after[k] != before[k]]
    if not gone and not changed:
        return "nothing"
    return "; ".join(filter(None, [f"{len(gone)} files gone (e.g. {gone[0]})" if gone else "",
                                   f"{len(changed)} changed (e.g. {changed[0]})" if changed
                                   else ""]))


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """What a user saw: the exit code and the first line of the error, or `traceback`."""
    text = (done.stderr or "") + (done.stdout or "")
    if "Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        return f"exit {done.returncode}, traceback ({last[:90]})"
    first = next((line for line in done.stderr.splitlines() if line.strip()), "")
    if done.returncode == 0:
        return f"exit 0{', ' + first[:110] if first else ''}"
    first = first or next((line for line in done.stdout.splitlines() if line.strip()), "")
    return f"exit {done.returncode}: {first[:110]}"


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


# --- the server and its clients -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(project: Project, workers: int = 2, wrap: list[str] | None = None
           ) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`mlops-kit serve` on a free loopback port, until /ping answers; killed on exit."""
    port = free_port()
    cmd = [*CLI, "serve", "--config", "mlops.yaml", "--port", str(port),
           "--workers", str(workers)]
    proc = subprocess.Popen([*(wrap or []), *cmd], cwd=project.folder, env=project.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while request(port, "GET", "/ping", timeout=2)[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                output = proc.stdout.read() if proc.stdout else ""
                raise SystemExit(f"server did not start:\n{output}")
            time.sleep(0.3)
        yield port, proc
    finally:
        kill_group(proc)


def request(port: int, method: str = "POST", path: str = "/invocations", body: str = ROW,
            timeout: float = 5.0) -> tuple[int, str, float]:
    """One request: (status or 0 on a connection error, model version header, seconds)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body.encode() if method == "POST" else None,
                     headers={"Content-Type": "text/csv"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("x-mlops-model-version") or "", time.monotonic() - start
    except (OSError, http.client.HTTPException):
        return 0, "", time.monotonic() - start
    finally:
        conn.close()


class Load:
    """Normal clients sending requests in threads; counts answers by status and version."""

    def __init__(self, port: int, clients: int = 4, timeout: float = 5.0) -> None:
        self.port, self.timeout = port, timeout
        self.results: list[tuple[int, str, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(clients)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.results.append(request(self.port, timeout=self.timeout))
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def errors(self) -> str:
        bad = [r for r in self.results if r[0] != 200]
        slow = sorted(r[2] for r in self.results)
        p99 = slow[int(0.99 * (len(slow) - 1))] if slow else 0.0
        statuses = sorted({r[0] for r in bad})
        return (f"{len(bad)}/{len(self.results)} failed {statuses if bad else ''}"
                f" p99 {p99 * 1000:.0f} ms").replace("  ", " ")

    def versions_since(self, t: int) -> set[str]:
        return {r[1] for r in self.results[t:] if r[0] == 200}


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def traffic(project: Project) -> dict[int, float]:
    try:
        doc = json.loads(project.endpoint_state().read_text())
        return {int(v["version"]): float(v["weight"]) for v in doc.get("variants", [])}
    except (OSError, ValueError, KeyError, StopIteration):
        return {}


# --- the drills -----------------------------------------------------------------------------


def drill_kill_step(base: Project, work: Path) -> Row:
    """SIGKILL a training run at three points, then run again."""
    p = copy_of(base, work / "kill-step")
    before = inventory(p)
    kills = []
    for delay in (2.0, 5.0, 9.0):
        proc = p.popen("run", "--train-only", "--no-cache", "--ingest-date", "2026-12-02")
        time.sleep(delay)
        kills.append("killed" if proc.poll() is None else f"done({proc.returncode})")
        kill_group(proc)
    again = p.cli("run", "--train-only", "--no-cache", "--ingest-date", "2026-12-02")
    happened = f"{'/'.join(kills)} at 2/5/9 s; rerun {one_line(again)}"
    return Row("kill a step (run, 3 kills)", happened, "-", lost(before, inventory(p)))


def drill_kill_first_run(base: Project, work: Path) -> Row:
    """SIGKILL the very first run (tracking set-up) six times, then run to the end."""
    folder = work / "kill-first"
    folder.mkdir()
    shutil.copy(base.folder / "mlops.yaml", folder / "mlops.yaml")
    p = Project(folder)
    for delay in (0.8, 1.5, 2.2, 3.0, 4.0, 6.0):
        proc = p.popen("run", "--train-only", "--ingest-date", DAYS[0])
        time.sleep(delay)
        kill_group(proc)
    again = p.cli("run", "--train-only", "--ingest-date", DAYS[0])
    ok = again.returncode == 0
    return Row("kill the first run (6 kills)", f"rerun {one_line(again)}", "-",
               "nothing" if ok else "the project cannot run")


def drill_registry_index(base: Project, work: Path) -> Row:
    """Delete registry.json, list the registry, then run again."""
    p = copy_of(base, work / "registry-index")
    before = inventory(p)
    (p.registry / "registry.json").unlink()
    listed = p.cli("registry", "list")
    again = p.cli("run", "--train-only", "--ingest-date", "2026-12-02")
    versions = sorted(int(d.name) for d in p.registry.iterdir() if d.name.isdigit())
    happened = f"list {one_line(listed)}; run exit {again.returncode}; versions now {versions}"
    return Row("registry.json deleted", happened, "-", lost(before, inventory(p)))


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "garbled": lambda b: b"\x00{not json" + b[:40],
    "truncated": lambda b: b[: max(1, len(b) // 2)],
    "empty": lambda b: b"",
}


def drill_corrupt(base: Project, work: Path, name: str, locate: Callable[[Project], Path],
                  command: tuple[str, ...]) -> Row:
    """Corrupt one state file three ways; the command that reads it must say what to do."""
    seen = []
    lost_any = "nothing"
    for how, corrupt in CORRUPTIONS.items():
        p = copy_of(base, work / f"corrupt-{name}-{how}")
        if name == "state.json":
            p.cli("deploy", "--strategy", "all_at_once", "--version", "1")
        path = locate(p)
        path.write_bytes(corrupt(path.read_bytes()))
        before = inventory(p)  # after the corruption: the drill's own damage is not a loss
        done = p.cli(*command)
        seen.append(f"{how}: {one_line(done)}")
        after = lost(before, inventory(p))
        lost_any = after if after != "nothing" else lost_any
        unclear = ("a traceback" if "Traceback" in done.stderr + done.stdout else
                   "no word of it" if name not in done.stderr else "")
        if unclear and lost_any == "nothing":
            lost_any = f"nothing (but {unclear})"
    return Row(f"{name} corrupted ({'/'.join(CORRUPTIONS)})", " | ".join(seen), "-", lost_any)


def drill_reingest(base: Project, work: Path) -> Row:
    """Ingest day 1 again with other data: the raw data the lineage points at must stay."""
    p = copy_of(base, work / "reingest")
    before = inventory(p)
    again = p.cli("run", "--train-only", "--ingest-date", DAYS[0], "--set",
                  "data.source.seed=99")
    return Row("same-day re-ingest, other data", f"run {one_line(again)}", "-",
               lost(before, inventory(p)))


def drill_kill_worker(base: Project, work: Path) -> Row:
    """SIGKILL one of two workers under load."""
    p = copy_of(base, work / "kill-worker")
    p.cli("deploy", "--strategy", "all_at_once", "--version", "1")
    with server(p, workers=2) as (port, proc):
        with Load(port) as load:
            time.sleep(2)
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split()
            if children:
                os.kill(int(children[0]), signal.SIGKILL)
            time.sleep(4)
        ping = request(port, "GET", "/ping")[0]
    happened = f"killed worker {children[:1]}; /ping after: {ping}"
    return Row("kill a worker under load", happened, load.errors(), "nothing" if ping == 200
               else "the endpoint stopped answering")


def drill_kill_deployer(base: Project, work: Path) -> Row:
    """SIGKILL `deploy` after its first traffic shift; the endpoint must settle by itself."""
    p = copy_of(base, work / "kill-deployer")
    p.cli("deploy", "--strategy", "all_at_once", "--version", "1")
    with server(p, workers=2) as (port, _), Load(port) as load:
        deployer = p.popen("deploy", "--version", "2", "--strategy", "canary", "--wait", "6")
        shifted = wait_for(lambda: 0 < traffic(p).get(2, 0) < 1, 60)
        kill_group(deployer)
        settled = wait_for(lambda: max(traffic(p).values() or [0]) == 1.0, 60)
        final = traffic(p)
        shown = p.cli("endpoint")
    status = "settled" if settled else "left mid-canary"
    happened = (f"killed after first shift ({'yes' if shifted else 'no shift seen'}); "
                f"{status}: traffic {final}; endpoint {one_line(shown)[:60]}")
    return Row("kill the deployer mid-canary", happened, load.errors(),
               "nothing" if settled else "wrong state: canary live, nothing watching")


def drill_disk_full(base: Project, work: Path) -> Row:
    """Capture on a 1 MiB tmpfs: fill it under load, free it, then deploy version 2."""
    p = copy_of(base, work / "disk-full")
    p.cli("deploy", "--strategy", "all_at_once", "--version", "1")
    capture = p.state / "capture"
    capture.mkdir(parents=True, exist_ok=True)
    free_flag = work / "disk-full.free"
    script = (f"mount -t tmpfs -o size=1m tmpfs {capture} && "
              f"( while [ ! -e {free_flag} ]; do sleep 0.2; done; rm -rf {capture}/* ) & "
              'exec "$@"')
    wrap = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    if subprocess.run([*wrap[:5], "-c", "mount -t tmpfs tmpfs /mnt"],
                      capture_output=True).returncode:
        return Row("disk full while serving", "skipped: no unprivileged tmpfs here", "-", "-")
    with server(p, workers=2, wrap=wrap) as (port, _), Load(port) as load:
        time.sleep(8)  # capture fills the 1 MiB filesystem
        free_flag.touch()
        time.sleep(3)
        deployed = p.cli("deploy", "--version", "2", "--strategy", "all_at_once", timeout=120)
        mark = len(load.results) + 8  # answers started after deploy returned
        time.sleep(4)
        served = load.versions_since(mark)
    ok = deployed.returncode == 0 and served and all(v.endswith("2") for v in served)
    happened = f"deploy {one_line(deployed)[:50]}; served after deploy: {sorted(served)}"
    return Row("disk full while serving", happened, load.errors(),
               "nothing" if ok or deployed.returncode else "wrong state: deploy said "
               "Succeeded, traffic stayed on version 1")


def hostile_headers(port: int, stop: threading.Event, megabytes: int = 100) -> None:
    """One client sending an endless header line until the server closes it (or 100 MB)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * 65536
        for _ in range(megabytes * 16):
            if stop.is_set():
                return
            s.sendall(chunk)


def slow_sender(port: int, stop: threading.Event) -> None:
    """A client that sends its headers one byte a second."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
        for byte in b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n":
            if stop.is_set():
                return
            s.send(bytes([byte]))
            time.sleep(1.0)


def drill_hostile(base: Project, work: Path, name: str, attack: Callable[..., None],
                  count: int) -> Row:
    p = copy_of(base, work / name.replace(" ", "-"))
    p.cli("deploy", "--strategy", "all_at_once", "--version", "1")
    stop = threading.Event()
    with server(p, workers=2) as (port, _):
        attackers = [threading.Thread(target=attack, args=(port, stop), daemon=True)
                     for _ in range(count)]
        for t in attackers:
            t.start()
        with Load(port, clients=2, timeout=5.0) as load:
            time.sleep(10)
        stop.set()
        alive = request(port, "GET", "/ping")[0]
    return Row(name, f"{count} attackers for 10 s; /ping after: {alive}", load.errors(),
               "nothing" if alive == 200 else "the endpoint stopped answering")


def drill_connection_flood(base: Project, work: Path, idle: int = 3000, half: int = 600
                           ) -> Row:
    """Thousands of idle connections and hundreds holding half-sent heads on 2 workers
    (`max_connections` 256 each): normal clients get answers or a readable 503, and every
    one is answered again once the flood is gone."""
    p = copy_of(base, work / "connection-flood")
    config = yaml.safe_load((p.folder / "mlops.yaml").read_text())
    config["serving"]["limits"] = {"max_connections": 256, "header_timeout_s": 30}
    (p.folder / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    p.cli("deploy", "--strategy", "all_at_once", "--version", "1")
    with server(p, workers=2) as (port, _), contextlib.ExitStack() as flood:
        with Load(port, clients=2, timeout=5.0) as load:
            opened = open_flood(flood, port, idle, b"")
            opened += open_flood(flood, port, half, b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
            time.sleep(5)
            during = len(load.results)
        flood.close()
        after = [request(port)[0] for _ in range(20)]
    shed = sorted({r[0] for r in load.results[:during] if r[0] != 200})
    readable = all(status in (200, 503) for status, _, _ in load.results)
    return Row(f"connection flood ({idle} idle, {half} half-sent heads)",
               f"{opened} sockets opened; statuses during: 200{' + ' if shed else ''}"
               f"{shed if shed else ''}; after: {after.count(200)}/20 answered 200",
               load.errors(), "nothing" if readable and after.count(200) == 20
               else "clients saw resets or timeouts, or the server did not recover")


def open_flood(stack: contextlib.ExitStack, port: int, count: int, first: bytes) -> int:
    """Open up to `count` connections that send `first` and then nothing; how many opened."""
    opened = 0
    for _ in range(count):
        try:
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=2))
            if first:
                sock.sendall(first)
        except OSError:
            continue
        opened += 1
    return opened


def drill_big_body(base: Project, work: Path) -> Row:
    """A 200 MB body with its Content-Length: the client must read the 413."""
    p = copy_of(base, work / "big-body")
    p.cli("deploy", "--strategy", "all_at_once", "--version", "1")
    with server(p, workers=1) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", "/invocations", body=b"1" * (200 * 1024 * 1024),
                         headers={"Content-Type": "text/csv"})
            status = conn.getresponse().status
            seen = f"client read {status}"
        except OSError as exc:
            seen = f"client saw {type(exc).__name__}"
        finally:
            conn.close()
    return Row("200 MB body", seen, "-" if seen.endswith("413") else "1/1", "nothing")


def drills() -> dict[str, Callable[[Project, Path], Row]]:
    reg = lambda p: p.registry / "registry.json"  # noqa: E731
    ver = lambda p: p.registry / "2" / "version.json"  # noqa: E731
    return {
        "kill-step": drill_kill_step,
        "kill-first-run": drill_kill_first_run,
        "kill-worker": drill_kill_worker,
        "kill-deployer": drill_kill_deployer,
        "registry-index-lost": drill_registry_index,
        "corrupt-registry": lambda b, w: drill_corrupt(b, w, "registry.json", reg,
                                                       ("registry", "list")),
        "corrupt-version": lambda b, w: drill_corrupt(b, w, "version.json", ver,
                                                      ("registry", "list")),
        "corrupt-state": lambda b, w: drill_corrupt(b, w, "state.json",
                                                    Project.endpoint_state, ("endpoint",)),
        "corrupt-catalog": lambda b, w: drill_corrupt(
            b, w, "catalog.json", lambda p: p.state / "catalog.json",
            ("query", "SELECT count(*) FROM raw_customers")),
        "reingest-same-day": drill_reingest,
        "disk-full": drill_disk_full,
        "flood-headers": lambda b, w: drill_hostile(b, w, "flood 100 MB headers",
                                                    hostile_headers, 4),
        "slow-clients": lambda b, w: drill_hostile(b, w, "slow clients", slow_sender, 64),
        "connection-flood": drill_connection_flood,
        "big-body": drill_big_body,
    }


def table(rows: list[Row]) -> str:
    lines = ["| fault | what happened | errors seen by clients | lost |", "|---|---|---|---|"]
    lines += [f"| {r.fault} | {r.happened} | {r.client_errors} | {r.lost} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="Run the drills whose name contains this.")
    args = parser.parse_args(argv)
    chosen = {k: v for k, v in drills().items() if args.only in k}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mlops-faults-") as tmp:
        work = Path(tmp)
        base = make_base(work / "base")
        for name, drill in chosen.items():
            started = time.monotonic()
            try:
                row = drill(base, work)
            except Exception as exc:  # a drill that breaks is a row, not the end of the table
                row = Row(name, f"drill failed: {type(exc).__name__}: {exc}"[:200], "-", "unknown")
            print(f"{name}: {row.lost} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
            rows.append(row)
    print(table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0 if all(r.lost == "nothing" or r.lost == "-" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
