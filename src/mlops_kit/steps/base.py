"""The job contract every step follows, locally and in SageMaker, Azure ML and Vertex AI jobs.

A step sees folders, never clouds: named input channels and output channels, as a SageMaker
processing or training container does (`/opt/ml/processing/input/<channel>`, ...). The runner
(local or cloud) decides where those folders come from and where they go.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.extras import MissingExtra
from mlops_kit.fileio import temp_file, write_json_atomic

JobKind = Literal["processing", "training"]
# The data a channel was made from (`data_version`, `curated_version`, `ingest_date`): each step
# copies it forward, so `register` records the lineage from its inputs alone, in every cloud.
LINEAGE_FILE = "_lineage.json"  # "_": Parquet dataset readers skip it


class StepError(Exception):
    """The step cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class StepSpec:
    """A step's signature: its channels and the kind of cloud job that runs it."""

    name: str
    kind: JobKind
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    optional_inputs: tuple[str, ...] = ()


@dataclass
class Job:
    """One execution of a step: config, channel folders, parameters and services."""

    config: LoadedConfig
    inputs: Mapping[str, Path]
    outputs: Mapping[str, Path]
    params: Mapping[str, str] = field(default_factory=dict)
    services: Mapping[str, Any] = field(default_factory=dict)

    def input(self, channel: str) -> Path:
        path = self.inputs.get(channel)
        if path is None or not path.exists():
            raise StepError(f"input channel '{channel}' is missing (expected a folder at {path})")
        return path

    def optional_input(self, channel: str) -> Path | None:
        path = self.inputs.get(channel)
        return path if path is not None and path.exists() and any(path.iterdir()) else None

    def output(self, channel: str) -> Path:
        path = self.outputs[channel]
        path.mkdir(parents=True, exist_ok=True)
        return path


def default_paths(spec: StepSpec) -> tuple[dict[str, Path], dict[str, Path]]:
    """SageMaker's container paths for the step's channels."""
    if spec.kind == "processing":
        base = Path("/opt/ml/processing")
        ins = {c: base / "input" / c for c in spec.inputs + spec.optional_inputs}
        outs = {c: base / "output" / c for c in spec.outputs}
    else:
        ins = {c: Path("/opt/ml/input/data") / c for c in spec.inputs + spec.optional_inputs}
        outs = {c: Path("/opt/ml/model") if c == "model" else Path("/opt/ml/output/data") / c
                for c in spec.outputs}
    return ins, outs


def job_main(spec: StepSpec, run: Callable[[Job], dict[str, Any]],
             argv: list[str] | None = None) -> int:
    """The module entry point: `python -m mlops_kit.steps.<name> [--input ch=dir] ...`."""
    ins, outs = default_paths(spec)
    parser = argparse.ArgumentParser(prog=f"python -m mlops_kit.steps.{spec.name}")
    parser.add_argument("--config",
                        default=os.environ.get("MLOPS_CONFIG", str(_config_default(spec))))
    parser.add_argument("--env", default=os.environ.get("MLOPS_ENV"))
    parser.add_argument("--model", default=os.environ.get("MLOPS_MODEL"))
    parser.add_argument("--input", action="append", default=[], metavar="CHANNEL=DIR")
    parser.add_argument("--output", action="append", default=[], metavar="CHANNEL=DIR")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args(argv)
    try:
        ins.update(_pairs(args.input, set(ins), "input"))
        outs.update(_pairs(args.output, set(outs), "output"))
        params = {k: v for k, v in (p.split("=", 1) for p in args.param)}
        loaded = load_config(args.config, env=args.env, sets=args.set, model=args.model)
        services = _services(spec, loaded)
        summary = run(Job(loaded, ins, outs, params, services))
    except (ConfigError, StepError, MissingExtra) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError | MissingExtra) else 1
    print(json.dumps(summary, default=str))
    return 0


def _config_default(spec: StepSpec) -> Path:
    processing = spec.kind == "processing"
    base = Path("/opt/ml/processing/input" if processing else "/opt/ml/input/data")
    return base / "config" / "mlops.yaml"


def _pairs(items: list[str], allowed: set[str], what: str) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in allowed:
            raise StepError(f"--{what} {item!r}: use CHANNEL=DIR with CHANNEL in {sorted(allowed)}")
        out[name] = Path(value)
    return out


def _services(spec: StepSpec, loaded: LoadedConfig) -> dict[str, Any]:
    if spec.name != "register":
        return {}
    from mlops_kit.registry import open_registry

    return {"registry": open_registry(loaded)}


# --- small I/O helpers shared by the steps --------------------------------------------------


def read_parquet_dir(path: Path) -> pd.DataFrame:
    """Every Parquet file under `path` (hive partitions become columns) as one frame."""
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise StepError(f"no Parquet files under {path}")
    table = pq.read_table(path, partitioning="hive") if _is_hive(path, files) else pa.concat_tables(
        [pq.read_table(f) for f in files]
    )
    return table.to_pandas()


def _is_hive(root: Path, files: list[Path]) -> bool:
    return any("=" in part for f in files for part in f.relative_to(root).parts[:-1])


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path)
    os.close(fd)
    try:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp, compression="zstd")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(obj: Any, path: Path) -> Path:
    """Write JSON atomically (temp file + rename)."""
    write_json_atomic(path, obj)
    return path


def read_lineage(folder: Path) -> dict[str, Any]:
    """The lineage a channel carries (empty if it carries none)."""
    path = folder / LINEAGE_FILE
    return dict(read_json(path)) if path.is_file() else {}


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StepError(f"expected file {path} is missing") from exc
