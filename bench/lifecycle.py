"""Benchmark of the local ML lifecycle (`mlops-kit run`): speed, memory, overhead, cost.

Run from the repository root:

    .venv/bin/python bench/lifecycle.py            # everything (the 1M-row case takes minutes)
    .venv/bin/python bench/lifecycle.py --quick    # skip the 1M-row case

Every `mlops-kit run` is a child process with its own fresh state dir (`MLOPS_STATE_DIR`), so
wall times include Python start-up and imports. Peak memory is the child's maximum RSS as the
kernel reports it in `wait4()` (the same figure as `getrusage(RUSAGE_CHILDREN).ru_maxrss`, but
for that one child, so earlier children cannot mask it). Figures are printed as a table and
written to `bench/results/lifecycle.json`; the exit status is 1 if a target is missed or a
run fails. This is a benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mlops.yaml"
RESULTS = ROOT / "bench" / "results" / "lifecycle.json"
LARGE_ROWS = 1_000_000
RAW_COLUMNS = 11  # the example schema's columns
RAW_BYTES_PER_VALUE = 8  # one 64-bit value per cell: a lower bound for the raw frame
DATA_STEPS = ("ingest", "validate", "features")
CHILD_TIMEOUT_S = 30 * 60

# Targets (limits are upper bounds).
DEMO_WALL_S = 90.0
DEMO_PEAK_BYTES = 2 * 1024**3
LARGE_WALL_S = 180.0
OVERHEAD_MAX = 0.15

MB = 1024**2


# --- child processes ------------------------------------------------------------------------


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd` to completion: wall seconds, peak RSS bytes, exit code and output."""
    load = load_average()
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(CHILD_TIMEOUT_S, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    peak = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return {"wall_s": wall, "peak_rss_bytes": int(peak), "returncode": proc.returncode,
            "load_before": load, "output": text}


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def kit_command() -> list[str]:
    script = Path(sys.executable).with_name("mlops-kit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlops_kit.cli"]


def kit_run(state: Path, *extra: str) -> dict[str, Any]:
    """`mlops-kit run` on the example config with `state` as its state dir, and its manifest."""
    env = {**os.environ, "MLOPS_STATE_DIR": str(state)}
    runs = state / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    cmd = [*kit_command(), "run", "--config", str(CONFIG), *extra]
    child = run_child(cmd, env)
    new = sorted(set(runs.iterdir()) - before) if runs.is_dir() else []
    # The first new run is the training pipeline this command started (the loop's
    # retraining, when the loop runs, is a later one).
    manifest_path = new[0] / "manifest.json" if new else None
    if manifest_path is None or not manifest_path.is_file():
        child["manifest"] = None
    else:
        child["manifest"] = json.loads(manifest_path.read_text())
    child["command"] = " ".join(["run --config mlops.yaml", *extra])
    ok = child["returncode"] == 0 and child["manifest"] is not None
    child["ok"] = ok and child["manifest"]["status"] == "succeeded"
    if not child["ok"]:
        tail = "\n".join(child["output"].splitlines()[-30:])
        print(f"!! mlops-kit {child['command']} failed (exit {child['returncode']}):\n{tail}",
              file=sys.stderr)
    return child


def run_facts(child: dict[str, Any]) -> dict[str, Any]:
    """The figures kept from one kit run (the output text is dropped)."""
    m = child["manifest"] or {}
    seconds, compute = m.get("seconds"), m.get("compute_seconds")
    overhead = seconds / compute - 1 if seconds and compute else None
    return {
        "ok": child["ok"], "returncode": child["returncode"],
        "wall_s": round(child["wall_s"], 3),
        "peak_rss_mb": round(child["peak_rss_bytes"] / MB, 1),
        "run_seconds": seconds, "compute_seconds": compute,
        "overhead": None if overhead is None else round(overhead, 4),
        "code_digest": m.get("code_digest"), "load_before": child["load_before"],
        "steps": [{"name": s["name"], "status": s["status"],
                   "seconds": round(s["seconds"], 3),
                   "compute_seconds": round(s["compute_seconds"], 3),
                   "summary": s.get("summary", {})} for s in m.get("steps", [])],
    }


# --- the peer: the same work as a plain notebook-style script --------------------------------


def notebook_peer(config_path: Path = CONFIG, rows: int | None = None) -> dict[str, Any]:
    """The lifecycle's work in one process with no orchestration, caching, lineage, tracking,
    reports, lake or registry: generate, validate, features, time split, the same random
    search (trial 0 = configured params, then draws from the space), refit on
    train + validation, score the held-out rows. Returns seconds per phase and test metrics.
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    import numpy as np
    import pandas as pd

    from mlops_kit import metrics
    from mlops_kit.config import load_config
    from mlops_kit.datasets.churn import generate
    from mlops_kit.models import ModelMeta, fit
    from mlops_kit.steps.features import FeatureSet
    from mlops_kit.steps.train import sample
    from mlops_kit.steps.validate import validate

    timings["import"] = time.perf_counter() - t

    t = time.perf_counter()
    cfg = load_config(config_path).config
    src = cfg.data.source
    n = rows or src.rows
    raw = generate(n, src.seed, src.shift, src.start, src.dirty_fraction)
    timings["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    checked = validate(raw, cfg.table)
    valid = checked.valid
    timings["validate"] = time.perf_counter() - t

    t = time.perf_counter()
    fs = FeatureSet(tuple(cfg.features.declared), cfg.table)
    X_all = fs.transform(valid).to_numpy(dtype="float64", na_value=np.nan)
    y_all = valid[cfg.table.target].to_numpy(dtype="int64")
    order = np.argsort(pd.to_datetime(valid[cfg.table.event_time]).to_numpy(), kind="stable")
    n_test = int(len(order) * cfg.features.test_fraction)
    n_val = int((len(order) - n_test) * cfg.features.validation_fraction)
    tr, va, te = np.split(order, [len(order) - n_test - n_val, len(order) - n_test])
    timings["features"] = time.perf_counter() - t

    t = time.perf_counter()
    model_cfg = cfg.model
    meta = ModelMeta(framework=model_cfg.framework, task=model_cfg.task, columns=fs.columns,
                     classes=[0, 1], seed=model_cfg.seed, threads=model_cfg.threads)
    metric = cfg.quality_gate.metric
    rng = np.random.default_rng(model_cfg.seed)
    best_params, best_score = None, None
    for i in range(model_cfg.search.trials):
        params = {**model_cfg.params, **(sample(model_cfg.search, rng) if i else {})}
        model = fit(meta.framework, X_all[tr], y_all[tr], meta, params)
        score = metrics.compute(meta.task, y_all[va], model.predict(X_all[va]))[metric]
        if best_score is None or metrics.better(metric, score, best_score):
            best_params, best_score = params, score
    both = np.concatenate([tr, va])
    final = fit(meta.framework, X_all[both], y_all[both], meta, best_params or {})
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    test = metrics.compute(meta.task, y_all[te], final.predict(X_all[te]))
    timings["score"] = time.perf_counter() - t
    compute = sum(v for k, v in timings.items() if k != "import")
    return {"rows": n, "valid": len(valid), "quarantined": len(checked.quarantine),
            "trials": model_cfg.search.trials, "seconds": {k: round(v, 3) for k, v in
                                                          timings.items()},
            "compute_seconds": round(compute, 3), f"val_{metric}": round(float(best_score), 4),
            "test_metrics": {k: round(v, 4) for k, v in test.items()}}


def peer_run(rows: int | None = None) -> dict[str, Any]:
    """The peer as a child process, so its wall time also includes start-up and imports."""
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--peer", str(out)]
        if rows:
            cmd += ["--rows", str(rows)]
        child = run_child(cmd)
        if child["returncode"] != 0 or not out.is_file():
            tail = "\n".join(child["output"].splitlines()[-30:])
            print(f"!! peer failed (exit {child['returncode']}):\n{tail}", file=sys.stderr)
            return {"ok": False, "returncode": child["returncode"]}
        inner = json.loads(out.read_text())
    return {"ok": True, "wall_s": round(child["wall_s"], 3), "load_before": child["load_before"],
            "peak_rss_mb": round(child["peak_rss_bytes"] / MB, 1), **inner}


# --- reporting ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = None
    versions = {}
    for pkg in ("mlops-kit", "numpy", "pandas", "pyarrow", "xgboost-cpu", "xgboost",
                "mlflow-skinny"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # not installed under that name
            continue
    return {"cores": os.cpu_count(), "usable_cores": usable,
            "memory_gb": round(mem / 1024**3, 1) if mem else None,
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "load_average_1min": load_average(),
            "packages": versions}


class Report:
    """Targets checked so far, printed as they are checked."""

    def __init__(self) -> None:
        self.targets: list[dict[str, Any]] = []

    def check(self, name: str, value: float | None, limit: float, unit: str = "",
              fmt: str = "{:.1f}") -> None:
        passed = value is not None and value < limit
        shown = "n/a" if value is None else fmt.format(value) + unit
        self.targets.append({"target": name, "value": value, "limit": limit, "passed": passed})
        print(f"  {'PASS' if passed else 'FAIL'}  {name:<38} {shown:>12}   (target < "
              f"{fmt.format(limit)}{unit})")

    def flag(self, name: str, passed: bool, detail: str) -> None:
        self.targets.append({"target": name, "value": detail, "limit": None, "passed": passed})
        print(f"  {'PASS' if passed else 'FAIL'}  {name:<38} {detail}")


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 86 - len(title)))


def step_table(facts: dict[str, Any]) -> None:
    steps = facts["steps"]
    total = sum(s["seconds"] for s in steps) or 1.0
    print(f"  {'step':<10} {'status':<8} {'seconds':>9} {'compute s':>10} {'share':>7}  summary")
    for s in steps:
        summary = ", ".join(f"{k}={v}" for k, v in s["summary"].items()
                            if not isinstance(v, dict | list))
        print(f"  {s['name']:<10} {s['status']:<8} {s['seconds']:>9.2f} "
              f"{s['compute_seconds']:>10.2f} {s['seconds'] / total:>6.0%}  {summary[:60]}")


def run_lines(facts: dict[str, Any]) -> None:
    print(f"  load average (1 min) before the run          {facts['load_before'] or 0:>9.2f}")
    print(f"  process wall time (start-up + imports + run) {facts['wall_s']:>9.2f} s")
    print(f"  run seconds (manifest)                       {facts['run_seconds'] or 0:>9.2f} s")
    print(f"  sum of step compute seconds                  "
          f"{facts['compute_seconds'] or 0:>9.2f} s")
    print(f"  peak RSS of the process                      {facts['peak_rss_mb']:>9.1f} MB")


# --- the benchmark --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 1M-row case")
    parser.add_argument("--large-rows", type=int, default=LARGE_ROWS,
                        help="rows for the large case (default %(default)s)")
    parser.add_argument("--peer", metavar="OUT", help=argparse.SUPPRESS)  # run the peer only
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        Path(args.peer).write_text(json.dumps(notebook_peer(CONFIG, args.rows)))
        return 0

    report = Report()
    results: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "config": str(CONFIG.relative_to(ROOT)), "quick": args.quick}
    facts = results["machine"] = machine()
    section("machine")
    print(f"  cores {facts['cores']} (usable {facts['usable_cores']}), memory "
          f"{facts['memory_gb']} GB, {facts['implementation']} {facts['python']}, "
          f"{facts['platform']}")
    load, cores = facts["load_average_1min"], facts["usable_cores"] or 1
    print(f"  load average (1 min) at start: {load}"
          + ("  -- the machine is busy: expect slower, noisier figures"
             if load is not None and load > 0.5 * cores else ""))
    print("  " + ", ".join(f"{k} {v}" for k, v in facts["packages"].items()))

    today = dt.date.today().isoformat()  # pinned so the cached re-run cannot cross midnight
    tmp_root = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    try:
        # 1. The demo, fresh state.
        section("1. demo: mlops-kit run --config mlops.yaml (fresh state; training + the loop)")
        demo_state = tmp_root / "demo"
        demo = run_facts(kit_run(demo_state, "--ingest-date", today))
        results["demo"] = demo
        if demo["steps"]:
            step_table(demo)
        run_lines(demo)
        report.flag("demo run succeeded", demo["ok"], f"exit {demo['returncode']}")
        report.check("demo wall time", demo["wall_s"], DEMO_WALL_S, " s")
        report.check("demo peak RSS", demo["peak_rss_mb"], DEMO_PEAK_BYTES / MB, " MB", "{:.0f}")
        peer = peer_run()  # measured next to the demo (reported in 5) so both see one machine

        # 2. The same again: cached.
        section("2. cached re-run of the training pipeline (same state dir, --train-only)")
        # The cache key includes a digest of the kit's code: if the source is edited between
        # the two runs (e.g. by someone else in this checkout), every step reruns by design.
        # Then the re-run is repeated (up to twice more) against the new code's cache.
        previous = demo
        for attempt in range(1, 4):
            cached = run_facts(kit_run(demo_state, "--ingest-date", today, "--train-only"))
            cached["attempt"] = attempt
            if all(s["status"] == "cached" for s in cached["steps"] if s["name"] in DATA_STEPS):
                break
            if not cached["ok"] or cached["code_digest"] == previous["code_digest"]:
                break
            was, now = str(previous["code_digest"])[:12], str(cached["code_digest"])[:12]
            print(f"  note: the kit's code changed between runs (code digest {was} -> {now}), "
                  "so nothing could be cached; re-running")
            previous = cached
        results["cached"] = cached
        if cached["steps"]:
            step_table(cached)
        print(f"  process wall time                            {cached['wall_s']:>9.2f} s")
        print(f"  run seconds (manifest)                       "
              f"{cached['run_seconds'] or 0:>9.2f} s")
        status = {s["name"]: s["status"] for s in cached["steps"]}
        report.flag("cached re-run succeeded", cached["ok"], f"exit {cached['returncode']}")
        report.flag("data steps cached (" + ", ".join(DATA_STEPS) + ")",
                    all(status.get(s) == "cached" for s in DATA_STEPS),
                    ", ".join(f"{k}={v}" for k, v in status.items()))

        # 3. One million rows.
        if args.quick:
            results["large"] = None
            section(f"3. {args.large_rows:,} rows: skipped (--quick)")
        else:
            section(f"3. {args.large_rows:,} rows through the training lifecycle (fresh state, "
                    "--train-only)")
            large = run_facts(kit_run(tmp_root / "large", "--ingest-date", today, "--train-only",
                                      "--set", f"data.source.rows={args.large_rows}"))
            raw_bytes = args.large_rows * RAW_COLUMNS * RAW_BYTES_PER_VALUE
            large.update(rows=args.large_rows, raw_estimate_mb=round(raw_bytes / MB, 1),
                         peak_over_raw=round(large["peak_rss_mb"] * MB / raw_bytes, 2))
            results["large"] = large
            if large["steps"]:
                step_table(large)
            run_lines(large)
            print(f"  rows {args.large_rows:,}; raw data in memory ~{large['raw_estimate_mb']:.0f}"
                  f" MB ({RAW_COLUMNS} columns x {RAW_BYTES_PER_VALUE} B); peak RSS / raw = "
                  f"{large['peak_over_raw']:.1f}x")
            report.flag(f"{args.large_rows:,}-row run succeeded", large["ok"],
                        f"exit {large['returncode']}")
            report.check(f"{args.large_rows:,}-row wall time", large["wall_s"], LARGE_WALL_S,
                         " s")

        # 4. Orchestration overhead.
        section("4. orchestration overhead = run seconds / sum of step compute seconds - 1")
        report.check("overhead, demo", _pct(demo["overhead"]), OVERHEAD_MAX * 100, " %")
        if results["large"]:
            report.check(f"overhead, {args.large_rows:,} rows",
                         _pct(results["large"]["overhead"]), OVERHEAD_MAX * 100, " %")

        # 5. The notebook-style peer.
        section("5. peer: the same work as a plain script (demo size, one process)")
        results["peer"] = peer
        if peer["ok"]:
            phases = ", ".join(f"{k} {v:.2f}" for k, v in peer["seconds"].items())
            print(f"  peer phases (s): {phases}")
            print(f"  peer process wall time                       {peer['wall_s']:>9.2f} s")
            print(f"  peer compute (no imports)                    "
                  f"{peer['compute_seconds']:>9.2f} s")
            print(f"  peer peak RSS                                {peer['peak_rss_mb']:>9.1f} MB")
            print(f"  load average (1 min) before the peer         "
                  f"{peer['load_before'] or 0:>9.2f}")
            metric = next(k for k in peer if k.startswith("val_"))
            kit_test = next((s["summary"] for s in demo["steps"] if s["name"] == "evaluate"), {})
            print(f"  peer {metric} {peer[metric]}, test {peer['test_metrics']}")
            print(f"  kit  evaluate summary {kit_test}")
            ratios = {
                "wall": demo["wall_s"] / peer["wall_s"],
                "run_vs_peer_compute": (demo["run_seconds"] or 0) / peer["compute_seconds"],
                "peak_rss": demo["peak_rss_mb"] / peer["peak_rss_mb"],
            }
            results["peer_ratio"] = {k: round(v, 3) for k, v in ratios.items()}
            print(f"  kit / peer, end-to-end process wall time     {ratios['wall']:>9.2f}x")
            print(f"  kit run seconds / peer compute seconds       "
                  f"{ratios['run_vs_peer_compute']:>9.2f}x")
            print(f"  kit / peer, peak RSS                         {ratios['peak_rss']:>9.2f}x")
        else:
            report.flag("peer ran", False, f"exit {peer['returncode']}")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    runs = [results.get(k) for k in ("demo", "cached", "large")]
    digests = sorted({r["code_digest"] for r in runs if r and r.get("code_digest")})
    results["code_digests"] = digests
    results["targets"] = report.targets
    missed = [t["target"] for t in report.targets if not t["passed"]]
    results["missed"] = missed
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    section("summary")
    print(f"  {len(report.targets) - len(missed)}/{len(report.targets)} targets met"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    if len(digests) > 1:
        print(f"  warning: the kit's code changed during the benchmark ({len(digests)} code "
              "digests among the runs); the figures mix code versions")
    print(f"  results: {RESULTS.relative_to(ROOT)}")
    return 1 if missed else 0


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


if __name__ == "__main__":
    raise SystemExit(main())
