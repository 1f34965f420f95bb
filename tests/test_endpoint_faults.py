"""Fault drills on a live local endpoint, with real processes, signals and files: a full disk
under the workers, a worker that stops following the state, a deployer killed mid-canary, a
corrupt state file (and a worker restarting on one)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.runtime.deploy import endpoint_dir, endpoint_store
from mlops_kit.serving import acks
from tests.conftest import Trained, write_config
from tests.test_deploy import FAST, Traffic, register_copy
from tests.test_serving import call, free_port, stop

DRILL = {"serving": {"deployment": {**FAST["serving"]["deployment"], "wait_s": 3.0,
                                    "lease_s": 2.0, "ack_timeout_s": 4.0}}}


class Served:
    """A `mlops-kit serve` process (2 workers) of a test's own endpoint, its log in a file."""

    def __init__(self, loaded: LoadedConfig, config: Path, state: Path, proc: Any, port: int,
                 log: Path) -> None:
        self.loaded, self.config, self.state = loaded, config, state
        self.proc, self.port, self.log = proc, port, log

    @property
    def folder(self) -> Path:
        return endpoint_dir(self.loaded)

    def workers(self, count: int = 2, timeout: float = 60) -> list[acks.Ack]:
        """The live workers' acks, once `count` of them have written one."""
        return wait_for(lambda: (w := acks.live(self.folder / acks.FOLDER)) and len(w) >= count
                        and w, timeout, f"{count} workers did not acknowledge")

    def children(self) -> list[int]:
        """The worker processes (the supervisor's spawned children), from /proc."""
        try:
            pids = [pid for task in Path(f"/proc/{self.proc.pid}/task").iterdir()
                    for pid in (task / "children").read_text().split()]
        except OSError:
            return []
        return [int(pid) for pid in pids if b"spawn_main" in _cmdline(pid)]

    def settled(self) -> Any:
        """The endpoint state, once every worker serves its generation."""
        state = endpoint_store(self.loaded).read()
        acks.confirm(self.folder / acks.FOLDER, state.generation, 10)
        return state

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mlops_kit.cli", *args, "--config",
                               str(self.config)], env=env(self.state), capture_output=True,
                              text=True, timeout=timeout)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def env(state: Path) -> dict[str, str]:
    return {**os.environ, "MLOPS_STATE_DIR": str(state)}


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(every)


@contextmanager
def serve(trained: Trained, tmp_path: Path, changes: dict[str, Any] | None = None,
          wrap: Callable[[list[str]], list[str]] | None = None) -> Iterator[Served]:
    """Version 1 live on a fresh endpoint (its registry a copy of the trained one), served by
    `mlops-kit serve --workers 2` (through `wrap`, e.g. in a namespace)."""
    state = tmp_path / "state"
    shutil.copytree(trained.state / "registry", state / "registry")
    config = write_config(tmp_path, changes or DRILL)
    os.environ["MLOPS_STATE_DIR"] = str(state)  # monkeypatched back by conftest
    loaded = load_config(config)
    port = free_port()
    argv = [sys.executable, "-m", "mlops_kit.cli", "serve", "--config", str(config),
            "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(wrap(argv) if wrap else argv, env=env(state), stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    served = Served(loaded, config, state, proc, port, log)
    try:
        wait_for(lambda: proc.poll() is not None or _pings(port), 90, "server did not start",
                 0.2)
        assert proc.poll() is None, served.text()
        wait_for(lambda: len(served.children()) == 2
                 or len(acks.live(served.folder / acks.FOLDER)) == 2, 60, "no 2 workers")
        yield served
    finally:
        stop(proc, 30)


def _pings(port: int) -> bool:
    try:
        return call(port, "GET", "/ping")[0] == 200
    except OSError:
        return False


def versions_served(port: int, requests: int = 40) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(requests):
        status, headers, _ = call(port, "POST", "/invocations", GOOD_ROW,
                                  {"Content-Type": "text/csv"})
        out[f"{status}:{headers.get('x-mlops-model-version')}"] += 1
    return out


GOOD_ROW = b"2026-01-01T00:00:00,12,70.5,846.0,month-to-month,credit_card,fiber,1,40"


# --- 1. a full disk under the workers ----------------------------------------------------------

def _tmpfs_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


def fill(folder: Path) -> Path:
    """Write zeros into `folder` until its file system is full; the filler file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    return filler


@pytest.mark.skipif(not _tmpfs_works(), reason="unprivileged tmpfs mounts are not allowed here")
def test_full_disk_does_not_stop_workers_following_the_state(trained: Trained,
                                                            tmp_path: Path) -> None:
    """Metrics, capture and shadow logs on small tmpfs mounts filled to the last byte: the
    workers log the ENOSPC, keep following the state, and once space returns `deploy
    --version 2` moves the traffic and metrics are written again."""
    state = tmp_path / "state"
    name = "churn-churn-classifier"
    mounts = [state / "endpoints" / name / "metrics", state / "endpoints" / name / "shadow",
              state / "capture" / "churn-classifier"]
    for folder in mounts:
        folder.mkdir(parents=True)

    def in_namespace(argv: list[str]) -> list[str]:
        script = "".join(f"mount -t tmpfs -o size=256k tmpfs {shlex.quote(str(m))} && "
                         for m in mounts) + "exec " + shlex.join(argv)
        return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script]

    with serve(trained, tmp_path, wrap=in_namespace) as served:
        inside = [Path(f"/proc/{served.proc.pid}/root{m}") for m in mounts]
        v2 = register_copy(served.loaded, trained.model_dir, tmp_path)
        served.cli("shadow", "start", "--version", str(v2), "--percent", "100")
        with Traffic(served.port) as traffic:
            time.sleep(1.0)
            fillers = [fill(folder) for folder in inside]
            failed = [f"{what} failed: OSError: [Errno 28] No space left on device"
                      for what in ("metrics flush", "capture flush", "shadow log flush")]
            wait_for(lambda: all(f in served.text() for f in failed), 60,
                     "the flushes did not fail", 0.5)  # a file's last page fills first
            for filler in fillers:
                filler.unlink()
            result = served.cli("deploy", "--version", str(v2), "--strategy", "all_at_once",
                                "--set", "serving.deployment.termination_wait_s=1")
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Succeeded: version 2" in result.stdout
            time.sleep(1.0)
        assert set(traffic.statuses) == {200}
        assert versions_served(served.port) == Counter({"200:2": 40})  # all on version 2
        metrics = [json.loads(line) for path in inside[0].glob("*.jsonl")
                   for line in path.read_text().splitlines() if line.strip()]
        assert any(m["version"] == v2 for m in metrics)  # written again after space returned
        assert "Traceback" not in served.text()


# --- 2. deploy waits for every worker -----------------------------------------------------------

def test_deploy_fails_loudly_when_a_worker_does_not_follow(trained: Trained,
                                                           tmp_path: Path) -> None:
    with serve(trained, tmp_path) as served:
        v2 = register_copy(served.loaded, trained.model_dir, tmp_path)
        wait_for(lambda: _pings(served.port), 30, "not serving")
        stuck, healthy = served.children()
        served.workers()  # both have acknowledged (one not yet known is not waited for)
        os.kill(stuck, signal.SIGSTOP)  # alive, but no longer reloading the state
        try:
            result = served.cli("deploy", "--version", str(v2), "--strategy", "all_at_once")
        finally:
            os.kill(stuck, signal.SIGCONT)
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert f"pid {stuck} (serves generation" in out and f"pid {healthy}" not in out
        assert "did not confirm endpoint generation" in out and "restart `mlops-kit serve`" in out
        assert "Failed: version 2" in out
        state = endpoint_store(served.loaded).read()
        assert [(v.version, v.weight) for v in state.variants] == [(1, 1.0)]  # back on blue

        result = served.cli("deploy", "--version", str(v2), "--strategy", "all_at_once")
        assert result.returncode == 0, result.stdout + result.stderr
        generation = endpoint_store(served.loaded).read().generation
        assert all(a.generation == generation for a in served.workers())
        assert versions_served(served.port) == Counter({"200:2": 40})
        shown = served.cli("endpoint")
        assert "server workers" in shown.stdout and str(stuck) in shown.stdout


# --- 3. the deployer killed mid-canary ----------------------------------------------------------

@pytest.mark.parametrize("broken", [True, False], ids=["bad-green", "good-green"])
def test_server_ends_a_canary_whose_deployer_was_killed(trained: Trained, tmp_path: Path,
                                                        broken: bool) -> None:
    with serve(trained, tmp_path) as served:
        green = register_copy(served.loaded, trained.model_dir, tmp_path, broken=broken)
        with Traffic(served.port):
            deployer = subprocess.Popen(
                [sys.executable, "-m", "mlops_kit.cli", "deploy", "--config",
                 str(served.config), "--version", str(green)],
                env=env(served.state), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True)
            assert deployer.stdout is not None
            for line in deployer.stdout:
                if "30% on version" in line:
                    break
            deployer.send_signal(signal.SIGKILL)  # after its first shift, mid-bake
            deployer.wait(10)
            record = wait_for(lambda: (d := endpoint_store(served.loaded).read().deployments[-1])
                              and d["status"] != "InProgress" and d, 60,
                              "nobody ended the deployment")
        state = served.settled()
        assert record["by"].startswith("the server (worker pid"), record
        shown = served.cli("endpoint").stdout
        if broken:
            assert record["status"] == "RolledBack", record
            assert record["reason"].startswith("rolled back by the server: deployer gone")
            assert "error-rate alarm" in record["reason"]
            assert [v.version for v in state.variants] == [1]
            assert "rolled back by the server: deployer gone" in " ".join(shown.split())
        else:
            assert record["status"] == "Succeeded", record
            assert record["reason"].startswith("finished by the server: deployer gone")
            assert [v.version for v in state.variants] == [green]
            assert "finished by the server: deployer gone" in " ".join(shown.split())
        assert versions_served(served.port, 20) == Counter(
            {f"200:{state.variants[0].version}": 20})


# --- 4. a corrupt state file ---------------------------------------------------------------------

CORRUPT = {
    "garbled": (b"\x8f\x00{{not json", "is not UTF-8 text (byte 0)"),
    "truncated": (b'{"name": "churn-churn-classifier", "variants": [{"name": "v1", "ver',
                  "is not valid JSON"),
    "empty": (b"", "is empty (0 bytes)"),
    "wrong shape": (b'{"name": "churn-churn-classifier", "variants": {"v1": 1}}',
                    "field 'variants' is not a list"),
    "a list": (b"[1, 2]", "the top level is a JSON list"),
    "bad weight": (b'{"name": "e", "variants": [{"name": "v1", "version": 1, '
                   b'"model_dir": "/m", "weight": "all"}]}', "field 'variants[0]'"),
}


@pytest.fixture
def endpoint_on_v1(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> tuple[Path, LoadedConfig]:
    state = tmp_path / "state"
    shutil.copytree(trained.state / "registry", state / "registry")
    config = write_config(tmp_path, DRILL)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    loaded = load_config(config)
    assert CliRunner().invoke(main, ["deploy", "--config", str(config)]).exit_code == 0
    return config, loaded


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_corrupt_state_file_one_line_per_command(endpoint_on_v1: tuple[Path, LoadedConfig],
                                                 kind: str) -> None:
    config, loaded = endpoint_on_v1
    path = endpoint_store(loaded).path
    content, problem = CORRUPT[kind]
    path.write_bytes(content)
    for command in (["endpoint"], ["deploy"], ["rollback"], ["shadow", "start", "--version",
                    "1"], ["shadow", "stop"], ["shadow", "report"], ["serve", "--port", "1"]):
        result = CliRunner().invoke(main, [*command, "--config", str(config)])
        lines = result.output.strip().splitlines()
        assert result.exit_code in (1, 2), (command, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit), (command, result.exception)
        assert len(lines) == 1 and "Traceback" not in result.output, (command, result.output)
        assert lines[0].startswith(f"state error: {path}: ") and problem in lines[0], lines[0]
        assert "mlops-kit endpoint reset" in lines[0], lines[0]

    result = CliRunner().invoke(main, ["endpoint", "reset", "--config", str(config)])
    assert result.exit_code == 0, result.output
    backups = list(path.parent.glob("state.json.bad-*"))
    assert [b.read_bytes() for b in backups] == [content]
    state = endpoint_store(loaded).read()
    assert [(v.version, v.weight) for v in state.variants] == [(1, 1.0)]
    assert state.deployments[-1]["strategy"] == "reset"
    assert CliRunner().invoke(main, ["endpoint", "--config", str(config)]).exit_code == 0


def test_state_writes_are_atomic_and_leave_no_temp_files(
        endpoint_on_v1: tuple[Path, LoadedConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way (ENOSPC at fsync) leaves the old file whole and no temp."""
    _, loaded = endpoint_on_v1
    store = endpoint_store(loaded)
    before = store.path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"), store.update() as state:
        state.variants[0].weight = 0.5
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.folder.iterdir() if p.name.startswith(".state")) == [
        ".state.json.lock"]


@pytest.mark.slow  # a worker takes 2-20 s to start (and die) on a busy machine
def test_workers_restarting_on_a_corrupt_state_back_off(trained: Trained,
                                                        tmp_path: Path) -> None:
    """Workers that die at start on a corrupt state file are restarted after 0.5, 1, 2 s ...
    (not in a tight loop), with the reason logged; `endpoint reset` brings them back."""
    with serve(trained, tmp_path) as served:
        store = endpoint_store(served.loaded)
        store.path.write_bytes(b"{garbled")
        for pid in served.children():
            os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        wait_for(lambda: "(failure 3 in a row)" in served.text(), 180, "no third restart", 0.5)
        seconds = time.monotonic() - started
        log = served.text()
        restarts = re.findall(r"restarting it in ([\d.]+) s \(failure (\d+) in a row\)", log)
        assert {(float(d), int(n)) for d, n in restarts} >= {(0.5, 1), (1.0, 2), (2.0, 3)}, log
        assert all(float(d) == 0.5 * 2 ** (int(n) - 1) for d, n in restarts), restarts
        assert len(restarts) <= 2 * 3 + 1, (restarts, seconds)  # 2 seats, no tight loop
        assert f"{store.path}: is not valid JSON" in log and "mlops-kit endpoint reset" in log
        assert "Traceback" not in log, log
        reset = served.cli("endpoint", "reset")
        assert reset.returncode == 0, reset.stdout + reset.stderr
        wait_for(lambda: _pings(served.port), 40, "workers did not come back after the reset")
