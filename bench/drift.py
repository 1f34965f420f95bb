"""Benchmark of drift detection (`mlops_kit.monitoring`) against Evidently's data-drift preset.

Run from the repository root:

    .venv/bin/python bench/drift.py                  # 1,000,000 rows x 50 features
    .venv/bin/python bench/drift.py --rows 100000    # smaller (Evidently takes minutes at 1M)
    .venv/bin/python bench/drift.py --no-evidently   # ours only

The data: a reference and a current frame of `--rows` rows and 50 numeric features in five
shapes (normal, lognormal, uniform, exponential, integer counts). Ten features of the current
frame (two of each shape) are clearly shifted; the other forty are fresh draws of the reference
distribution. Ours: the reference's baseline is computed once and timed apart (that happens
at training time); `compute_drift` of the current frame against it is timed, best of
`--repeat`. Evidently 0.7.23, in its own venv (`bench/.venvs/evidently`, built on first use,
git-ignored), runs `DataDriftPreset(method="psi", threshold=T)` with our `psi_threshold` T on
the same two frames (handed over as .npy files); the run is timed once, including building
its datasets. Both flag a feature when its PSI >= T, so the verdicts are compared feature by
feature. The methods bin differently (ours: the baseline's deciles; Evidently: equal-width
bins over both frames, or the values when there are at most 20), so PSI values differ while
the verdicts on these clear cases should not.

Figures go to `bench/results/drift.json` (git-ignored). Exit status 1 if our drift time is not
under 2 s at 1M rows, or the verdicts disagree. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "drift.json"
EVIDENTLY_VENV = ROOT / "bench" / ".venvs" / "evidently"
EVIDENTLY_PINS = ["evidently==0.7.23", "pandas<3"]
FEATURES = 50
SHAPES = ("normal", "lognormal", "uniform", "exponential", "counts")
GOAL_S = 2.0
GOAL_ROWS = 1_000_000


# --- the data ---------------------------------------------------------------------------------


def draw(shape: str, shifted: bool, rows: int, rng: np.random.Generator) -> np.ndarray:
    """One feature's values; `shifted` moves the distribution clearly."""
    if shape == "normal":
        return rng.normal(1.0 if shifted else 0.0, 1.0, rows)
    if shape == "lognormal":
        return rng.lognormal(1.5 if shifted else 0.0, 1.0, rows)
    if shape == "uniform":
        return rng.uniform(0.4 if shifted else 0.0, 1.4 if shifted else 1.0, rows)
    if shape == "exponential":
        return rng.exponential(2.0 if shifted else 1.0, rows)
    return rng.poisson(7.0 if shifted else 4.0, rows).astype("float64")


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Reference and current matrices, the column names and the names of the shifted ones."""
    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}_{SHAPES[i % len(SHAPES)]}" for i in range(FEATURES)]
    shifted = {i for i in range(FEATURES) if (i // len(SHAPES)) % 5 == 0}
    ref = np.empty((rows, FEATURES))
    cur = np.empty((rows, FEATURES))
    for i in range(FEATURES):
        shape = SHAPES[i % len(SHAPES)]
        ref[:, i] = draw(shape, False, rows, rng)
        cur[:, i] = draw(shape, i in shifted, rows, rng)
    return ref, cur, names, [names[i] for i in sorted(shifted)]


def frame(matrix: np.ndarray, names: list[str]) -> pd.DataFrame:
    """A DataFrame with the count features as int64, as a source table would hold them."""
    out = pd.DataFrame({n: matrix[:, i] for i, n in enumerate(names)})
    counts = [n for n in names if n.endswith("counts")]
    return out.astype(dict.fromkeys(counts, "int64"))


# --- ours -------------------------------------------------------------------------------------


def run_ours(ref: pd.DataFrame, cur: pd.DataFrame, repeat: int) -> dict[str, Any]:
    """Baseline time, drift time (first and best of `repeat`) and PSI verdicts."""
    from mlops_kit.config.model import MonitoringConfig, Schema
    from mlops_kit.monitoring import compute_baseline, compute_drift

    columns = [{"name": n, "type": "int" if n.endswith("counts") else "float"}
               for n in ref.columns]
    schema = Schema.model_validate({"columns": [*columns, {"name": "y", "type": "int"}],
                                    "target": "y"})
    cfg = MonitoringConfig()
    start = time.perf_counter()
    baseline = compute_baseline(ref, schema)
    baseline_s = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = compute_drift(cur, baseline, cfg)
        times.append(time.perf_counter() - start)
    return {"baseline_s": round(baseline_s, 3), "drift_first_s": round(times[0], 3),
            "drift_best_s": round(min(times), 3), "threshold": cfg.psi_threshold,
            "psi": {f.name: f.psi for f in report.features},
            "flagged": [f.name for f in report.features if "psi" in f.reasons],
            "flagged_any_reason": report.drifted_features}


# --- Evidently, in its own venv ---------------------------------------------------------------


def evidently_python() -> Path:
    """Evidently's venv python, built on first use."""
    python, stamp = EVIDENTLY_VENV / "bin" / "python", EVIDENTLY_VENV / ".bench-installed"
    wanted = " ".join(EVIDENTLY_PINS)
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    print(f"  building Evidently's venv in {EVIDENTLY_VENV.relative_to(ROOT)} (once)", flush=True)
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", *EVIDENTLY_PINS], check=True)
    stamp.write_text(wanted)
    return python


def run_evidently(ref: np.ndarray, cur: np.ndarray, names: list[str],
                  threshold: float) -> dict[str, Any]:
    """Evidently's preset on the same data, in a child process of its own venv."""
    python = evidently_python()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "ref.npy", ref)
        np.save(Path(tmp) / "cur.npy", cur)
        (Path(tmp) / "names.json").write_text(json.dumps(names))
        out = subprocess.run([str(python), __file__, "--worker", tmp, "--threshold",
                              str(threshold)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"Evidently run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def evidently_worker(folder: Path, threshold: float) -> None:
    """Runs inside Evidently's venv: time the preset, print the PSI values as JSON."""
    from importlib import metadata

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    names = json.loads((folder / "names.json").read_text())
    ref = frame(np.load(folder / "ref.npy"), names)
    cur = frame(np.load(folder / "cur.npy"), names)
    start = time.perf_counter()
    definition = DataDefinition(numerical_columns=names)
    report = Report([DataDriftPreset(method="psi", threshold=threshold)])
    snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                          Dataset.from_pandas(ref, data_definition=definition))
    doc = snapshot.dict()
    seconds = time.perf_counter() - start
    psi = {m["config"]["column"]: float(m["value"]) for m in doc["metrics"]
           if m["config"].get("type", "").endswith("ValueDrift")}
    print(json.dumps({"seconds": round(seconds, 3), "psi": psi,
                      "flagged": [n for n in names if psi[n] >= threshold],
                      "version": metadata.version("evidently"),
                      "pandas": metadata.version("pandas")}))


# --- report -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib import metadata

    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "packages": {p: metadata.version(p) for p in ("mlops-kit", "numpy", "pandas",
                                                          "scipy")}}


def compare(ours: dict[str, Any], theirs: dict[str, Any] | None,
            names: list[str]) -> dict[str, Any]:
    """Feature-by-feature agreement of the PSI verdicts."""
    if theirs is None:
        return {}
    a, b = set(ours["flagged"]), set(theirs["flagged"])
    disagree = sorted(a ^ b)
    return {"agree": len(names) - len(disagree), "disagree": disagree,
            "ratio": round(theirs["seconds"] / ours["drift_best_s"], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=GOAL_ROWS)
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs of ours (best kept).")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, default=0.2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        evidently_worker(args.worker, args.threshold)
        return 0

    print(f"drift over {args.rows:,} rows x {FEATURES} features", flush=True)
    ref_m, cur_m, names, shifted = make_data(args.rows, args.seed)
    ours = run_ours(frame(ref_m, names), frame(cur_m, names), args.repeat)
    print(f"  ours: baseline {ours['baseline_s']:.2f} s (once, at training time); drift "
          f"{ours['drift_best_s']:.3f} s best of {args.repeat} (first {ours['drift_first_s']:.3f}"
          f" s); flags {len(ours['flagged'])} features by PSI", flush=True)
    theirs = None
    if not args.no_evidently:
        print("  Evidently: running (minutes at 1M rows) ...", flush=True)
        theirs = run_evidently(ref_m, cur_m, names, ours["threshold"])
        print(f"  Evidently {theirs['version']}: {theirs['seconds']:.1f} s; flags "
              f"{len(theirs['flagged'])} features by PSI")
    agreement = compare(ours, theirs, names)
    if agreement:
        print(f"  Evidently / ours: {agreement['ratio']}x; verdicts agree on "
              f"{agreement['agree']} of {FEATURES} features"
              + (f"; differ on {agreement['disagree']}" if agreement["disagree"] else ""))
    fast = ours["drift_best_s"] < GOAL_S or args.rows < GOAL_ROWS
    right = set(ours["flagged"]) == set(shifted)
    small = " (not measured: fewer rows)" if args.rows < GOAL_ROWS else ""
    print(f"  goal: drift < {GOAL_S:.0f} s at 1M rows: {'PASS' if fast else 'FAIL'}{small}; "
          f"ours flags exactly the {len(shifted)} shifted features: {'yes' if right else 'NO'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": args.rows, "features": FEATURES, "shifted": shifted,
                                   "ours": ours, "evidently": theirs, "comparison": agreement,
                                   "machine": machine()}, indent=2) + "\n")
    print(f"  results: {RESULTS.relative_to(ROOT)}")
    return 0 if fast and right and not agreement.get("disagree") else 1


if __name__ == "__main__":
    raise SystemExit(main())
