"""Synth time of the CDK app: 3 environments x 1, 10 and 50 models (cdk-nag included).

Each case runs in a fresh process (its own jsii runtime) on a copy of the example project whose
config lists N models, and times what `cdk synth` times: building the stages and writing the
cloud assembly. Printed: wall time, peak RSS of the Python process and of Node, stacks,
largest template, and the cost of one more model (the slope between cases).
Goal: 50 models x 3 environments in under 60 s, growing linearly.

Peer, in the same run: the floor of CDK itself, an app with the same stages and stacks
(3 environments, a platform stack and a stack per model, plus delivery) holding one SNS topic
each, no cdk-nag. The ratio is what the kit's constructs, the pipeline rendering and checking,
and cdk-nag add on top of synthesizing that many stacks.

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
LINKS = ("src", "cdk", "docker", "pyproject.toml", "README.md", "cdk.json")


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


def node_peak_mb() -> float:
    """Summed peak RSS (VmHWM) of this process's descendants: jsii's Node processes."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    family, grew = {os.getpid()}, True
    while grew:
        kids = {pid for pid, parent in parents.items() if parent in family} - family
        family |= kids
        grew = bool(kids)
    total = 0.0
    for pid in family - {os.getpid()}:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) / 1024 for line in status.splitlines()
                       if line.startswith("VmHWM:")), 0.0)
    return total


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
                      "node_rss_mb": node_peak_mb()}))


def floor(root: str, models: int) -> None:
    """The peer: the same stages and stacks with one resource each (run in a subprocess)."""
    import aws_cdk as cdk
    from aws_cdk import aws_sns as sns

    start = time.perf_counter()
    app = cdk.App(outdir=str(Path(root) / "cdk.out"))
    stacks = 0
    for env in ("dev", "staging", "prod"):
        stage = cdk.Stage(app, env)
        for name in ["platform", *[f"model-{i}" for i in range(models)]]:
            sns.Topic(cdk.Stack(stage, name), "Topic")
            stacks += 1
    sns.Topic(cdk.Stack(cdk.Stage(app, "cicd"), "delivery"), "Topic")
    assembly = app.synth()
    sizes = [p.stat().st_size for p in Path(assembly.directory).rglob("*.template.json")]
    print(json.dumps({"seconds": time.perf_counter() - start, "stacks": stacks + 1,
                      "largest_kb": max(sizes) / 1024,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "node_rss_mb": node_peak_mb()}))


def measure(models: int, peer: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp), models)
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        start = time.perf_counter()
        args = ["--floor", str(models)] if peer else []
        out = subprocess.run([sys.executable, __file__, "--child", str(root), *args], env=env,
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["process_s"] = time.perf_counter() - start
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--child")
    parser.add_argument("--floor", type=int)
    args = parser.parse_args()
    if args.child:
        floor(args.child, args.floor) if args.floor is not None else child(args.child)
        return
    rows = []
    print(f"{'models':>6} {'stacks':>6} {'synth s':>8} {'process s':>9} {'largest KB':>10} "
          f"{'python MB':>9} {'node MB':>8}")
    for n in args.models:
        r, peer = measure(n), measure(n, peer=True)
        rows.append((n, r))
        print(f"{n:>6} {r['stacks']:>6} {r['seconds']:>8.1f} {r['process_s']:>9.1f} "
              f"{r['largest_kb']:>10.0f} {r['rss_mb']:>9.0f} {r['node_rss_mb']:>8.0f}   "
              f"peer (CDK floor, {peer['stacks']} stacks): {peer['seconds']:.1f} s, "
              f"ratio {r['seconds'] / peer['seconds']:.2f}x")
    for (a, ra), (b, rb) in itertools.pairwise(rows):
        slope = (rb["seconds"] - ra["seconds"]) / (b - a)
        print(f"one more model ({a}->{b}): {slope:.2f} s (3 environments)")
    last_n, last = rows[-1]
    goal = "met" if last_n < 50 or last["process_s"] < 60 else "NOT met"
    print(f"goal 50 models x 3 environments under 60 s: {goal} "
          f"({last['process_s']:.1f} s for {last_n} models)")


if __name__ == "__main__":
    main()
