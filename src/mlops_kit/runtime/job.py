"""The cloud job entry point: `python -m mlops_kit.runtime.job STEP [step job arguments]`.

A SageMaker, Azure ML or Vertex AI job runs this in the project image. It does, inside the
job's container, what the local runner does around a step: an input wired to
`registry.production` that the job did not mount is fetched through the config's registry,
and a model tarball (how
SageMaker hands a training job's output to the next step) is unpacked. Then the step runs under
the usual job contract (`mlops_kit.steps.base.job_main`), so step code stays cloud-free. After
it, each `--publish OUTPUT=URI` goes into its lake table (`s3://...` or a folder) or, for
`featurestore://<group>`, into that Feature Group's online store.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.extras import MissingExtra, needs, require
from mlops_kit.fileio import scratch_dir
from mlops_kit.pipeline import EXTERNAL, Step, load_pipeline
from mlops_kit.registry import RegistryError, fetch_production, open_registry
from mlops_kit.runtime.lake import APPEND_ONLY, append_dir
from mlops_kit.runtime.ports import OnlineStoreError
from mlops_kit.steps.base import StepError, default_paths, job_main

TARBALL = "model.tar.gz"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print("usage: python -m mlops_kit.runtime.job STEP [--config ...] [--input CH=DIR] ...",
              file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    args, step_argv = _arguments(rest)
    try:
        loaded, step, inputs = _prepare(name, args)
        publications = _publications(step, args)  # checked before the step runs
    except (ConfigError, StepError, RegistryError, MissingExtra) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError | MissingExtra) else 1
    for path in inputs.values():
        unpack_model(path)
    code = job_main(step.spec, step.module.run, step_argv)
    if code != 0:
        return code
    try:
        for local, uri, zone in publications:
            publish(local, uri, loaded, append=zone in APPEND_ONLY)
    except (OnlineStoreError, MissingExtra) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, MissingExtra) else 1
    return 0


def _arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """What this entry reads of the job's arguments, and the step's own (`--publish` is
    this entry's alone)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config", default=os.environ.get("MLOPS_CONFIG", "mlops.yaml"))
    parser.add_argument("--env", default=os.environ.get("MLOPS_ENV"))
    parser.add_argument("--model", default=os.environ.get("MLOPS_MODEL"))
    for flag in ("--set", "--input", "--output", "--publish"):
        parser.add_argument(flag, action="append", default=[])
    args, _ = parser.parse_known_args(argv)
    step_argv, skip = [], False
    for item in argv:
        if skip or item.startswith("--publish="):
            skip = False
            continue
        skip = item == "--publish"
        if not skip:
            step_argv.append(item)
    return args, step_argv


def _publications(step: Step, args: argparse.Namespace
                  ) -> list[tuple[Path, str, str | None]]:
    """(output folder, lake table or feature group URI, the output's lake zone) of each
    `--publish OUTPUT=URI`."""
    outputs = default_paths(step.spec)[1]
    outputs.update({k: Path(v) for k, _, v in (o.partition("=") for o in args.output)})
    pairs = []
    for item in args.publish:
        name, sep, uri = item.partition("=")
        if not sep or name not in outputs or uri.endswith("://"):
            raise StepError(f"--publish {item!r}: use OUTPUT=URI with OUTPUT in "
                            f"{sorted(outputs)}")
        out = step.outputs.get(name)
        pairs.append((outputs[name], uri, out.publish if out else None))
    return pairs


def publish(local: Path, uri: str, loaded: LoadedConfig | None = None, *,
            append: bool = False) -> None:
    """Put a step output where `uri` says: `featurestore://<group>` into that Feature Group's
    online store; otherwise into its lake table as local publishing does: each partition
    folder (`ingest_date=...`) replaces that partition, or with `append` (the raw zone) only
    gains the files it lacks; an unpartitioned output replaces the table."""
    from mlops_kit.adapters.aws.naming import FEATURE_STORE_SCHEME

    if uri.startswith(FEATURE_STORE_SCHEME):
        put_online(local, uri.removeprefix(FEATURE_STORE_SCHEME), loaded)
        return
    parts = sorted(p for p in local.iterdir() if p.is_dir() and "=" in p.name)
    pairs = [(p, f"{uri.rstrip('/')}/{p.name}") for p in parts] or [(local, uri)]
    store = _storage(uri)
    for folder, dest in pairs:
        if append and folder is not local:
            with scratch_dir(None, "append") as scratch:  # a cloud job: no state folder
                append_dir(store, folder, dest, scratch)
        else:
            store.put_dir(folder, dest)


def put_online(local: Path, group: str, loaded: LoadedConfig | None) -> None:
    """`latest.parquet` of the features step into the Feature Group `group`, in the config's
    AWS region (boto3's default without a config); OnlineStoreError if records fail."""
    from mlops_kit.adapters.aws import naming

    with needs("publishing to a Feature Group", "aws"):
        from mlops_kit.adapters.aws.online_store import SageMakerOnlineStore

    region = naming.aws_target(loaded)[1] if loaded is not None else None
    written = SageMakerOnlineStore.in_region(region).put(
        group, pd.read_parquet(local / "latest.parquet"))
    print(f"online store {group}: {written} records written", file=sys.stderr)


def _storage(uri: str) -> Any:
    """S3 for `s3://` URIs (boto3 loads only then), the local file system otherwise."""
    if uri.startswith("s3://"):
        boto3 = require("boto3", f"the S3 location {uri}", "aws")
        from mlops_kit.adapters.aws.storage import S3Storage

        return S3Storage(boto3.client("s3"), uri[len("s3://"):].split("/", 1)[0])
    from mlops_kit.runtime.files import LocalStorage

    return LocalStorage(Path(uri).parent)


def _prepare(name: str, args: argparse.Namespace
             ) -> tuple[LoadedConfig, Step, dict[str, Path]]:
    """The config, the pipeline step `name` and its input folders, external inputs fetched."""
    loaded = load_config(args.config, env=args.env, sets=args.set, model=args.model)
    pipeline = load_pipeline(loaded)
    names = [s.name for s in pipeline.steps]
    if name not in names:
        raise StepError(f"no step {name!r} in {pipeline.path}; steps are {names}")
    step = pipeline.step(name)
    inputs = default_paths(step.spec)[0]
    inputs.update({k: Path(v) for k, _, v in (i.partition("=") for i in args.input)})
    for channel, source in step.inputs.items():
        dest = inputs[channel]
        if source in EXTERNAL and not (dest.is_dir() and any(dest.iterdir())):  # not given
            dest.mkdir(parents=True, exist_ok=True)
            fetch_production(open_registry(loaded), loaded.config.model.name, dest)
    return loaded, step, inputs


def unpack_model(folder: Path) -> None:
    """Extract `model.tar.gz` in `folder` in place (refusing members that leave it)."""
    tarball = folder / TARBALL
    if not tarball.is_file():
        return
    with tarfile.open(tarball) as tar:
        tar.extractall(folder, filter="data")
    tarball.unlink()


if __name__ == "__main__":
    sys.exit(main())
