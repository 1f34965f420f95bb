"""Benchmark of model serving: `mlops-kit serve` against MLServer on the same XGBoost model.

Run from the repository root:

    .venv/bin/python bench/serving.py             # 1, 8, 32, 64 connections, 5 s a point
    .venv/bin/python bench/serving.py --quick     # 2 s a point
    .venv/bin/python bench/serving.py --load 60   # 60 s at 64 connections against ours only

The model comes from the kit's own lifecycle (`mlops-kit run` on `mlops.yaml` in a temp state
dir). Both servers run as child processes on loopback with the same number of worker processes
(`--workers`, MLServer's `parallel_workers`); MLServer lives in its own venv under
`bench/.venvs/mlserver`, built on first use. Ours gets source rows as `text/csv` and computes
the features itself; MLServer gets the finished feature vectors as V2 inference-protocol JSON.
Load comes from `bench/loadgen.py` (closed loop, keep-alive connections, another process), whose
ceiling is measured against a trivial server first. Client and servers share the machine's
cores, so every figure includes the client's CPU. Results go to `bench/results/serving.json`.
The exit status is 1 if a goal is missed, a server fails or the servers disagree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import pickle
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import LoadSpec, http_request, run_load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serving.json"
MLSERVER_VENV = ROOT / "bench" / ".venvs" / "mlserver"
# uvloop 0.22 breaks MLServer's worker pool. mlserver-xgboost asks for `xgboost`, whose Linux
# wheel pulls in the CUDA NCCL library: it is installed without dependencies, beside the same
# CPU-only xgboost as ours, so both servers run one XGBoost build.
MLSERVER_PINS = ("mlserver==1.7.1", "uvloop==0.21.0", "scikit-learn")
MLSERVER_RUNTIME = "mlserver-xgboost==1.7.1"
MODEL = "churn-classifier"
CONCURRENCIES = (1, 8, 32, 64)
MODES = {"single": 1, "batch": 100}  # rows per request
DISTINCT_REQUESTS = 400  # request bodies per mode, sent in turn
TOLERANCE = 1e-5
GOAL_RATIO = 2.0
START_TIMEOUT_S = 120.0


# --- set-up: MLServer's venv, the model, the requests -----------------------------------------


def mlserver_venv() -> Path:
    """MLServer's python, installing the venv first if it is missing or out of date."""
    xgb_pin = f"xgboost-cpu=={metadata.version('xgboost-cpu')}"
    wanted = " ".join([*MLSERVER_PINS, xgb_pin, MLSERVER_RUNTIME])
    python, stamp = MLSERVER_VENV / "bin" / "python", MLSERVER_VENV / ".bench-installed"
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    print(f"  building MLServer's venv in {MLSERVER_VENV.relative_to(ROOT)} (once)", flush=True)
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *MLSERVER_PINS, xgb_pin], check=True)
    subprocess.run([*pip, "--no-deps", MLSERVER_RUNTIME], check=True)
    stamp.write_text(wanted)
    return python


def train_model(state: Path) -> Path:
    """Run the kit's lifecycle into `state` (unless done already); the registered model folder."""
    folder = state / "registry" / MODEL / "1"
    if (folder / "model.ubj").is_file():
        return folder
    state.mkdir(parents=True, exist_ok=True)
    config = state / "mlops.yaml"
    config.write_text((ROOT / "mlops.yaml").read_text())
    env = {**os.environ, "MLOPS_STATE_DIR": str(state)}
    out = subprocess.run([*kit_command(), "run", "--config", str(config)], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0 or not folder.is_dir():
        raise SystemExit(f"mlops-kit run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return folder


def kit_command() -> list[str]:
    script = Path(sys.executable).with_name("mlops-kit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlops_kit.cli"]


@dataclass
class Mode:
    """The requests of one mode: the same rows as CSV source rows and as V2 feature vectors."""

    name: str
    rows: int  # per request
    csv: list[bytes]
    v2: list[bytes]
    features: list[np.ndarray]  # what MLServer gets, in process


def build_modes(folder: Path, state: Path) -> tuple[dict[str, Mode], dict[str, Any]]:
    """Request bodies from the test split's source rows, for every mode."""
    import pandas as pd

    from mlops_kit.models import load_model

    source = sorted(state.glob("artifacts/features/*/training_set/test_source.parquet"))
    frame = pd.read_parquet(source[-1])
    fs = load_model(folder).features
    X = fs.transform(frame).to_numpy(dtype="float64")
    # V2 JSON has no NaN, so rows with a missing feature go to neither server.
    keep = ~np.isnan(X).any(axis=1)
    frame, X = frame[keep].reset_index(drop=True), X[keep]
    info = {"test_rows": len(keep), "rows_without_missing": int(keep.sum()),
            "csv_columns": fs.inputs, "feature_columns": fs.columns}
    modes = {}
    for name, rows in MODES.items():
        starts = [(i * rows) % (len(X) - rows + 1) for i in range(DISTINCT_REQUESTS)]
        parts = [(frame.iloc[s:s + rows], X[s:s + rows]) for s in starts]
        csv = [f[fs.inputs].to_csv(header=False, index=False).encode() for f, _ in parts]
        v2 = [json.dumps({"inputs": [{"name": "input-0", "shape": list(x.shape),
                                      "datatype": "FP64", "data": x.ravel().tolist()}]}).encode()
              for _, x in parts]
        modes[name] = Mode(name, rows, csv, v2, [x for _, x in parts])
    return modes, info


# --- the servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server in a child process (its own session), its probe and its inference endpoint."""

    name: str
    argv: list[str]
    port: int
    health: str
    path: str
    content_type: str
    body: Callable[[Mode, int], bytes]  # request body i of a mode
    parse: Callable[[bytes], np.ndarray]  # predictions from a response body
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> float:
        """Seconds until the health probe answers 200; raises if the server dies or hangs."""
        assert self.proc is not None
        start = time.perf_counter()
        while time.perf_counter() - start < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if self.get(self.health)[0] == 200:
                    return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT_S} s:\n{self.tail()}")

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def predict(self, body: bytes) -> np.ndarray:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", self.path, body, {"Content-Type": self.content_type})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {resp.status}: {data[:300]!r}")
        return self.parse(data)

    def requests(self, mode: Mode) -> list[bytes]:
        return [http_request("POST", self.path, "127.0.0.1", self.port, self.body(mode, i),
                             self.content_type) for i in range(len(mode.csv))]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the session this server leads, and only it
        try:  # MLServer 1.7.1 can hang in its shutdown after a load: it is killed then
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])


def server_env(omp_default: bool) -> dict[str, str]:
    """The environment of both servers. XGBoost's scikit-learn wrapper in MLServer uses every
    core per worker process unless OpenMP is told otherwise: with 2 workers on 2 cores, the
    spinning threads cut its throughput about tenfold. Ours sets one thread per worker itself.
    """
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    return env if omp_default else {**env, "OMP_NUM_THREADS": "1"}


def ours(model_dir: Path, workers: int, env: dict[str, str], tmp: Path) -> Server:
    """`mlops-kit serve`: SageMaker's contract, CSV source rows in, one prediction a line out."""
    port = free_port()
    argv = [*kit_command(), "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers)]
    return Server("ours", argv, port, "/ping", "/invocations", "text/csv",
                  lambda mode, i: mode.csv[i],
                  lambda data: np.array([float(x) for x in data.decode().split()]),
                  tmp / "ours.log", env)


def mlserver(python: Path, model_dir: Path, workers: int, env: dict[str, str],
             tmp: Path) -> Server:
    """MLServer with mlserver-xgboost: V2 JSON feature vectors in, FP32 predictions out."""
    home = tmp / "mlserver"
    home.mkdir()
    shutil.copy(model_dir / "model.ubj", home / "model.ubj")
    port = free_port()
    # `debug: false` turns off its per-request access log, which ours does not write either.
    settings = {"host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
                "metrics_port": free_port(), "parallel_workers": workers, "debug": False}
    (home / "settings.json").write_text(json.dumps(settings))
    (home / "model-settings.json").write_text(json.dumps({
        "name": MODEL, "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": "./model.ubj", "version": "1"}}))
    argv = [str(python.with_name("mlserver")), "start", str(home)]
    return Server("mlserver", argv, port, f"/v2/models/{MODEL}/ready",
                  f"/v2/models/{MODEL}/infer", "application/json",
                  lambda mode, i: mode.v2[i],
                  lambda data: np.asarray(json.loads(data)["outputs"][0]["data"], "float64"),
                  tmp / "mlserver.log", env, cwd=home)


def serve_available() -> bool:
    out = subprocess.run([*kit_command(), "serve", "--help"], capture_output=True)
    return out.returncode == 0


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


def check_agreement(servers: list[Server], modes: dict[str, Mode], folder: Path,
                    sample: int = 20) -> dict[str, Any]:
    """Each server's predictions on `sample` requests per mode against in-process XGBoost."""
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(folder / "model.ubj"))
    out: dict[str, Any] = {}
    for server in servers:
        worst = 0.0
        for mode in modes.values():
            for i in range(sample):
                want = np.asarray(booster.inplace_predict(mode.features[i]), "float64")
                got = server.predict(server.body(mode, i))
                if got.shape != want.shape:
                    raise RuntimeError(f"{server.name}: {got.shape[0]} predictions for "
                                       f"{want.shape[0]} rows")
                worst = max(worst, float(np.max(np.abs(got - want))))
        out[server.name] = {"max_abs_diff": worst, "ok": worst <= TOLERANCE}
    return out


# --- the physical limit: XGBoost in process ---------------------------------------------------


def rate(fn: Callable[[Any], object], items: list[Any], seconds: float) -> float:
    """Calls per second of `fn` over `items` in turn, after a warm-up pass."""
    for item in items[:50]:
        fn(item)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for item in items:
            fn(item)
        calls += len(items)
    return calls / elapsed


def in_process_rates(folder: Path, features: list[np.ndarray], csv: list[bytes],
                     seconds: float) -> dict[str, float | None]:
    """Calls/s of `booster.inplace_predict` on the requests' feature vectors (one thread),
    and of our handler (CSV in, features, predict, CSV out) on the same requests as CSV."""
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(folder / "model.ubj"))
    booster.set_param({"nthread": 1})
    out: dict[str, float | None] = {"predict": rate(booster.inplace_predict, features, seconds),
                                    "handler": None}
    try:
        from mlops_kit.serving.handler import handle, model_fn
    except ImportError:  # no serving module yet
        return out
    model = model_fn(folder, threads=1)
    out["handler"] = rate(lambda body: handle(model, body, "text/csv", "text/csv"), csv, seconds)
    return out


def physical_limit(folder: Path, mode: Mode, procs: int, seconds: float,
                   tmp: Path) -> dict[str, Any]:
    """`in_process_rates` in `procs` processes at once (the servers' worker count), summed,
    as rows per second."""
    spec = tmp / f"raw-{mode.name}.pkl"
    spec.write_bytes(pickle.dumps((folder, mode.features, mode.csv, seconds)))
    children = []
    for i in range(procs):
        out = tmp / f"raw-{mode.name}-{i}.json"
        children.append((subprocess.Popen([sys.executable, __file__, "--raw", str(spec),
                                            str(out)]), out))
    rates = []
    for child, out in children:
        if child.wait() != 0:
            raise RuntimeError("in-process rate child failed")
        rates.append(json.loads(out.read_text()))
    result: dict[str, Any] = {"rows": mode.rows, "procs": procs}
    for key in ("predict", "handler"):
        values = [r[key] for r in rates]
        total = None if None in values else sum(values) * mode.rows
        result[f"{key}_rows_per_s"] = None if total is None else round(total, 1)
    result["rows_per_s"] = result["predict_rows_per_s"]
    return result


# --- measuring --------------------------------------------------------------------------------


def client_ceiling(modes: dict[str, Mode], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The load generator against a server that answers `200 ok` at once, the largest bodies."""
    port = free_port()
    trivial = Server("trivial", [sys.executable, str(Path(__file__).with_name("loadgen.py")),
                                 "--serve-trivial", str(port)], port, "/", "/", "text/plain",
                     lambda mode, i: mode.v2[i], lambda data: np.zeros(0), tmp / "trivial.log")
    out = {}
    with running(trivial):
        trivial.wait_ready()
        for mode in modes.values():
            reqs = trivial.requests(mode)
            spec = LoadSpec("127.0.0.1", port, reqs, max(args.concurrency), args.seconds,
                            args.warmup, procs=args.client_procs)
            out[mode.name] = run_load(spec)
    return out


class CpuMeter:
    """CPU time over an interval: the whole machine's, a server's (its session, read from
    /proc), and this process's with its finished children (the load generator). What is left
    is other work sharing the cores, which disturbs the figures. Linux only; None elsewhere."""

    def __init__(self, server: Server | None = None) -> None:
        self.sid = server.proc.pid if server and server.proc else -1
        self.start = self._read()

    @staticmethod
    def _session_ticks(sid: int) -> int:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):  # the process ended meanwhile
                continue
            if int(fields[3]) == sid:
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total

    def _read(self) -> tuple[float, float, float, float] | None:
        try:
            values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, AttributeError):
            return None
        mine = sum(getattr(resource.getrusage(who), f) for f in ("ru_utime", "ru_stime")
                   for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        busy = (sum(values) - values[3] - values[4]) / hz  # all but idle and iowait
        return time.perf_counter(), busy, self._session_ticks(self.sid) / hz, mine

    def stop(self) -> dict[str, float | None]:
        end = self._read()
        if self.start is None or end is None:
            return {"server_cores": None, "other_cores": None}
        wall, busy, server, mine = (b - a for a, b in zip(self.start, end, strict=True))
        return {"server_cores": round(server / wall, 2),
                "other_cores": round(max(0.0, busy - server - mine) / wall, 2)}


def measure(server: Server, mode: Mode, concurrency: int, args: argparse.Namespace,
            seconds: float | None = None, retries: int | None = None) -> dict[str, Any]:
    """One point: the load, then again (up to `--retries` times) while other work on the
    machine took more than `--max-other` cores; the least disturbed try is kept."""
    spec = LoadSpec("127.0.0.1", server.port, server.requests(mode), concurrency,
                    seconds or args.seconds, args.warmup, procs=args.client_procs)
    result = least_disturbed(lambda: run_load(spec), args, server, retries)
    result["rows_per_s"] = round(result["rps"] * mode.rows, 1)
    cores, rps = result["server_cores"], result["rps"]
    result["server_cpu_us_per_request"] = round(cores / rps * 1e6) if cores and rps else None
    return result


def least_disturbed(fn: Callable[[], dict[str, Any]], args: argparse.Namespace,
                    server: Server | None = None,
                    retries: int | None = None) -> dict[str, Any]:
    """`fn()`, again (up to `--retries` times) while other work on the machine took more than
    `--max-other` cores; the least disturbed try, with its CPU figures."""
    best: dict[str, Any] | None = None
    for attempt in range(1 + (args.retries if retries is None else retries)):
        meter = CpuMeter(server)
        result = fn()
        result.update(meter.stop(), attempt=attempt + 1)
        other = result["other_cores"]
        if best is None or (other or 0) < (best["other_cores"] or 0):
            best = result
        if other is None or other <= args.max_other:
            break
    assert best is not None
    best["disturbed"] = (best["other_cores"] or 0) > args.max_other
    return best


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def compare(point: dict[str, Any]) -> None:
    """Adds the ratio of ours to MLServer and whether the goal is met at this point."""
    a, b = point.get("ours"), point.get("mlserver")
    if not a or not b or not b["rps"]:
        point.update(ratio=None, goal_met=None)
        return
    point["ratio"] = round(a["rps"] / b["rps"], 2)
    no_worse = a["p99_ms"] is not None and a["p99_ms"] <= b["p99_ms"]
    point["goal_met"] = point["ratio"] >= GOAL_RATIO and no_worse and not a["errors"]


# --- reporting --------------------------------------------------------------------------------


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def cell(r: dict[str, Any] | None) -> str:
    """rps, p50, p99; `*` marks a point disturbed by other work, `!` one with errors."""
    if not r:
        return f"{'n/a':>9} {'':>7} {'':>7}"
    mark = ("!" if r["errors"] else "") + ("*" if r.get("disturbed") else "")
    return f"{mark:>2}{r['rps']:>7.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"


def table(mode: Mode, points: list[dict[str, Any]], limit: dict[str, Any] | None) -> None:
    print(f"  {'conc':>4} | {'ours rps':>9} {'p50 ms':>7} {'p99 ms':>7} | {'mls rps':>9} "
          f"{'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} {'goal':>4} | {'ours/limit':>10}")
    for p in points:
        ratio = "n/a" if p["ratio"] is None else f"{p['ratio']:.2f}"
        goal = {True: "PASS", False: "FAIL", None: "-"}[p["goal_met"]]
        of_limit = "n/a"
        if limit and p.get("ours"):
            of_limit = f"{p['ours']['rows_per_s'] / limit['rows_per_s']:.1%}"
        print(f"  {p['concurrency']:>4} | {cell(p.get('ours'))} | {cell(p.get('mlserver'))} | "
              f"{ratio:>5} {goal:>4} | {of_limit:>10}")


def machine(mls_python: Path | None) -> dict[str, Any]:
    versions = {}
    for pkg in ("mlops-kit", "xgboost-cpu", "numpy", "pandas", "uvicorn", "uvloop"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    if mls_python:
        code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in"
                " ('mlserver', 'mlserver-xgboost', 'xgboost-cpu', 'uvloop', 'uvicorn')}))")
        out = subprocess.run([str(mls_python), "-c", code], capture_output=True, text=True)
        if out.returncode == 0:
            versions["mlserver venv"] = json.loads(out.stdout)
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1min": load_average(),
            "busy_cores_before": busy_cores(), "packages": versions}


def busy_cores(seconds: float = 2.0) -> float | None:
    """Cores kept busy by other work while this process sleeps (from /proc/stat, Linux)."""

    def ticks() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values) - values[3] - values[4], sum(values)  # less idle and iowait

    try:
        busy0, total0 = ticks()
        time.sleep(seconds)
        busy1, total1 = ticks()
    except (OSError, ValueError, IndexError):
        return None
    return round((busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1), 2)


def save(key: str, results: dict[str, Any]) -> None:
    """Results under `key` in serving.json, keeping what the other mode wrote."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data[key] = results
    RESULTS.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\n  results: {RESULTS.relative_to(ROOT)} ({key})")


# --- the benchmark ----------------------------------------------------------------------------


def bench(args: argparse.Namespace, folder: Path, modes: dict[str, Mode], info: dict[str, Any],
          tmp: Path) -> int:
    mls_python = None if args.no_mlserver else mlserver_venv()
    results: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "machine": machine(mls_python), "requests": info,
                               "settings": {k: v for k, v in vars(args).items()
                                            if k != "raw"}}
    facts = results["machine"]
    section("machine")
    busy = facts["busy_cores_before"]
    print(f"  {facts['cores']} cores, shared by the load generator and the servers; "
          f"load average (1 min) {facts['load_average_1min']}; other work keeps {busy} cores "
          "busy")
    if (busy or 0) > 0.2:
        print("  -- the machine is busy: expect slower, noisier figures")
    print(f"  {facts['packages']}")
    print(f"  {args.workers} worker processes per server; {args.seconds} s a point after "
          f"{args.warmup} s of warm-up; {args.client_procs} client process(es); OpenMP "
          + ("defaults" if args.omp_default else "OMP_NUM_THREADS=1 for both servers"))
    print(f"  requests: {info['rows_without_missing']} of {info['test_rows']} test rows (V2 JSON "
          "has no NaN, so rows with a missing feature are left out for both servers)")

    section("load generator ceiling (a trivial `200 ok` server on the same cores)")
    ceiling = results["client_ceiling"] = client_ceiling(modes, args, tmp)
    for name, r in ceiling.items():
        print(f"  {name:<7} {r['rps']:>9.0f} requests/s at {r['concurrency']} connections, "
              f"p99 {r['p99_ms']:.2f} ms, client {r['client_cores']:.2f} cores")

    section(f"physical limit: in process, {args.workers} processes at once, one thread each")
    limits: dict[str, Any] = {}
    print(f"  {'':<7} {'inplace_predict':>18} {'our handler':>18}   (rows/s; the handler "
          "parses CSV, computes features, predicts, writes CSV)")
    for mode in modes.values():
        lim = limits[mode.name] = least_disturbed(
            partial(physical_limit, folder, mode, args.workers, min(args.seconds, 3.0), tmp),
            args)
        handler = lim["handler_rows_per_s"]
        print(f"  {mode.name:<7} {lim['predict_rows_per_s']:>18,.0f} "
              + (f"{handler:>18,.0f}" if handler else f"{'n/a':>18}")
              + ("  (* other work took over --max-other cores)" if lim["disturbed"] else ""))
    results["physical_limit"] = limits

    servers: list[Server] = []
    env = server_env(args.omp_default)
    if serve_available():
        servers.append(ours(folder, args.workers, env, tmp))
    else:
        print("\n  `mlops-kit serve` is not available yet: MLServer only")
    if mls_python:
        servers.append(mlserver(mls_python, folder, args.workers, env, tmp))
    results["servers"] = {s.name: " ".join(s.argv) for s in servers}
    with ExitStack() as stack:
        section("starting the servers")
        for server in servers:
            stack.enter_context(running(server))
        for server in servers:
            print(f"  {server.name:<9} ready in {server.wait_ready():.1f} s on port {server.port}")
        agreement = results["agreement"] = check_agreement(servers, modes, folder)
        for name, a in agreement.items():
            print(f"  {name:<9} predictions vs in-process XGBoost: max |diff| "
                  f"{a['max_abs_diff']:.2e} ({'ok' if a['ok'] else 'MISMATCH'})")
        if not all(a["ok"] for a in agreement.values()):
            save("bench", results)
            return 1
        results["modes"] = {}
        for mode in modes.values():
            section(f"{mode.name}: {mode.rows} row(s) per request")
            points = []
            for i, conc in enumerate(args.concurrency):
                point: dict[str, Any] = {"concurrency": conc}
                for server in servers if i % 2 == 0 else servers[::-1]:  # alternate who is first
                    point[server.name] = measure(server, mode, conc, args)
                compare(point)
                points.append(point)
            table(mode, points, limits[mode.name])
            for s in servers:
                cpu = [p[s.name]["server_cpu_us_per_request"] for p in points]
                cores = [p[s.name]["server_cores"] for p in points]
                print(f"  {s.name:<9} server CPU per request (us) {cpu}, cores busy {cores}")
            other = max((p[s.name]["other_cores"] or 0 for p in points for s in servers),
                        default=0)
            print(f"  other work on the machine: at most {other} cores"
                  f"{' (* = over --max-other after retries)' if other > args.max_other else ''}")
            results["modes"][mode.name] = {"rows_per_request": mode.rows, "points": points}
        for server in servers:
            if server.proc is not None and server.proc.poll() is not None:
                print(f"  !! {server.name} died during the run:\n{server.tail()}")

    goals = [p["goal_met"] for m in results["modes"].values() for p in m["points"]]
    met = all(g is True for g in goals)
    section("summary")
    print(f"  goal (ours >= {GOAL_RATIO:.0f}x MLServer's requests/s, p99 no worse, no errors): "
          f"{sum(g is True for g in goals)}/{len(goals)} points met"
          + ("" if servers and servers[0].name == "ours" else " (ours not measured)"))
    measured = [p[s.name] for m in results["modes"].values() for p in m["points"]
                for s in servers]
    disturbed = sum(r["disturbed"] for r in measured)
    if disturbed:
        print(f"  {disturbed} of {len(measured)} measurements had other work above "
              f"{args.max_other} cores (*): rerun on a quieter machine for firmer figures")
    print("  note: ours parses CSV source rows and computes the features; MLServer gets the "
          "finished feature vectors. MLServer runs one HTTP process in front of its "
          f"{args.workers} inference workers.")
    results["goal_met"] = met
    save("bench", results)
    return 0 if met else 1


def load_run(args: argparse.Namespace, folder: Path, modes: dict[str, Mode], tmp: Path) -> int:
    """`--load S`: S seconds at `--load-concurrency` connections against ours alone."""
    if not serve_available():
        print("`mlops-kit serve` is not available yet: nothing to load", file=sys.stderr)
        return 1
    mode = modes["batch" if args.load_rows > 1 else "single"]
    server = ours(folder, args.workers, server_env(args.omp_default), tmp)
    section(f"load: {args.load:.0f} s at {args.load_concurrency} connections, {mode.rows} "
            f"row(s) per request, ours with {args.workers} workers")
    with running(server):
        print(f"  ready in {server.wait_ready():.1f} s; {os.cpu_count()} cores shared by client "
              "and server")
        agreement = check_agreement([server], {mode.name: mode}, folder)["ours"]
        r = measure(server, mode, args.load_concurrency, args, seconds=args.load, retries=0)
        alive = server.proc is not None and server.proc.poll() is None
    print(f"  requests {r['requests']:,}, {r['rps']:.0f}/s; latency p50 {r['p50_ms']} ms, "
          f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms")
    print(f"  CPU: server {r['server_cores']} cores, client {r['client_cores']}, other work "
          f"{r['other_cores']}")
    print(f"  errors {r['errors']} {r['error_kinds'] or ''}; server alive at the end: {alive}")
    for sample in r["error_samples"]:
        print(f"    {sample}")
    ok = r["errors"] == 0 and alive and agreement["ok"]
    print(f"  {'PASS' if ok else 'FAIL'}  zero errors over {args.load:.0f} s")
    key = "load" if mode.rows == 1 else "load_batch"
    save(key, {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "workers": args.workers, "rows_per_request": mode.rows, "alive": alive,
               "agreement": agreement, **r})
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s a point, 1 s warm-up")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds a point")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds a point")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=list(CONCURRENCIES), help="comma-separated connection counts")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server")
    parser.add_argument("--client-procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--max-other", type=float, default=0.25,
                        help="re-measure a point while other work took more cores than this")
    parser.add_argument("--retries", type=int, default=2, help="re-measurements per point")
    parser.add_argument("--state", type=Path, help="reuse this lifecycle state dir")
    parser.add_argument("--no-mlserver", action="store_true", help="measure ours alone")
    parser.add_argument("--omp-default", action="store_true",
                        help="leave OMP_NUM_THREADS unset (MLServer's XGBoost then uses every "
                             "core in each worker)")
    parser.add_argument("--load", type=float, metavar="SECONDS", help="load run against ours")
    parser.add_argument("--load-concurrency", type=int, default=64)
    parser.add_argument("--load-rows", type=int, choices=sorted(MODES.values()), default=1)
    parser.add_argument("--raw", nargs=2, type=Path, help=argparse.SUPPRESS)  # child: SPEC OUT
    args = parser.parse_args(argv)
    if args.raw:
        rates = in_process_rates(*pickle.loads(args.raw[0].read_bytes()))
        args.raw[1].write_text(json.dumps(rates))
        return 0
    if args.quick:
        args.seconds, args.warmup = min(args.seconds, 2.0), min(args.warmup, 1.0)

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        state = args.state or tmp / "state"
        print(f"training the model with mlops-kit run (state {state})", flush=True)
        folder = train_model(state)
        modes, info = build_modes(folder, state)
        if args.load:
            return load_run(args, folder, modes, tmp)
        return bench(args, folder, modes, info, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
