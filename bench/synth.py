"""Synth time of the CDK app: 3 environments x 1, 10 and 50 models (cdk-nag included).

Each case runs in a fresh process (its own jsii runtime) on a copy of the example project whose
config lists N models, and times what `cdk synth` times: building the stages and writing the
cloud assembly. Printed: wall time, peak RSS of the Python process and of Node, stacks,
largest template, and the cost of one more model (the slope between cases).
Goal: 50 models x 3 environments in under 60 s, growing linearly.

    python bench/synth.py [--models 1 10 50]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LINKS = ("src", "pipelines", "cdk", "pyproject.toml", "README.md", "cdk.json")


def project(folder: Path, models: int) -> Path:
    """The example project with `models` models (every third a PyTorch one)."""
    for name in LINKS:
        (folder / name).symlink_to(ROOT / name)
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    first = raw.pop("model")
    raw["models"] = [first] + [
        {**first, "name": f"model-{i}", **({"framework": "pytorch", "params": {},
                                           "search": {"trials": 1}} if i % 3 == 0 else {})}
        for i in range(1, models)]
    (folder / "mlops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def child(root: str) -> None:
    """One synth of every environment (run in a subprocess)."""
    sys.path.insert(0, str(ROOT / "cdk"))
    import aws_cdk as cdk
    from mlops_cdk.app import build, cdk_context

    start = time.perf_counter()
    app = cdk.App(context=cdk_context(ROOT), outdir=str(Path(root) / "cdk.out"))
    stages = build(app, Path(root))
    assembly = app.synth()
    seconds = time.perf_counter() - start
    sizes = [p.stat().st_size for p in Path(assembly.directory).rglob("*.template.json")]
    stacks = sum(len(s.synth().stacks) for s in stages)
    print(json.dumps({"seconds": seconds, "stacks": stacks, "largest_kb": max(sizes) / 1024,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "node_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                      / 1024}))


def measure(models: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp), models)
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child", str(root)], env=env,
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["process_s"] = time.perf_counter() - start
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    rows = []
    print(f"{'models':>6} {'stacks':>6} {'synth s':>8} {'process s':>9} {'largest KB':>10} "
          f"{'python MB':>9} {'node MB':>8}")
    for n in args.models:
        r = measure(n)
        rows.append((n, r))
        print(f"{n:>6} {r['stacks']:>6} {r['seconds']:>8.1f} {r['process_s']:>9.1f} "
              f"{r['largest_kb']:>10.0f} {r['rss_mb']:>9.0f} {r['node_rss_mb']:>8.0f}")
    for (a, ra), (b, rb) in itertools.pairwise(rows):
        slope = (rb["seconds"] - ra["seconds"]) / (b - a)
        print(f"one more model ({a}->{b}): {slope:.2f} s (3 environments)")
    last_n, last = rows[-1]
    goal = "met" if last_n < 50 or last["process_s"] < 60 else "NOT met"
    print(f"goal 50 models x 3 environments under 60 s: {goal} "
          f"({last['process_s']:.1f} s for {last_n} models)")


if __name__ == "__main__":
    main()
